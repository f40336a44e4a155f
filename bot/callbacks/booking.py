"""Callback data of the booking conversation and of "my rides"."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.callbacks.common import RowId


class CalendarAction(StrEnum):
    DAY = "d"
    MONTH = "m"
    CLOSED = "x"


class CalendarPick(CallbackData, prefix="bk1c"):
    """A day of the inline calendar, a month to show, or a day that can't be booked."""

    action: CalendarAction
    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int, Field(ge=1, le=12)]
    day: Annotated[int, Field(ge=0, le=31)] = 0


class SummaryAction(StrEnum):
    CONFIRM = "ok"
    EDIT = "ed"


class SummaryField(StrEnum):
    NONE = "-"
    RIDER = "rider"
    PICKUP = "pick"
    DESTINATION = "dest"
    PURPOSE = "purp"
    DATE = "date"
    TIME = "time"
    RETURN = "ret"
    PARTY = "party"
    WHEELCHAIR = "wc"
    COMMENT = "note"


class SummaryPress(CallbackData, prefix="bk1s"):
    """A button of one summary: `key` ties it to that summary, so an old one can't act."""

    action: SummaryAction
    field: SummaryField = SummaryField.NONE
    key: str


class RideAction(StrEnum):
    LIST = "ls"
    OPEN = "op"
    CANCEL = "cx"
    RETURN = "rt"
    AGAIN = "ag"


class RidePress(CallbackData, prefix="mr1"):
    action: RideAction
    ride_id: RowId = 0
