"""Buttons of the dispatcher card and of the rider's ride messages.

They carry only the ride and what to do (plus the vehicle, slot or reason picked); every press
re-reads the ride, so an old button can't act on a state it was not made for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.callbacks.common import RowId


class Act(StrEnum):
    """What a press on a ride card asks for; short codes keep callback data small."""

    TAKE = "tk"
    VEHICLES = "vl"  # show the vehicle list
    VEHICLE = "v"  # assign this vehicle (arg: vehicle id)
    VEHICLE_FORCE = "vf"  # assign it although it has a ride in an overlapping slot
    PROPOSE = "pm"  # show the time slots
    SLOT = "ps"  # propose this time (arg: minutes since the epoch, UTC)
    PROPOSE_TYPED = "pt"  # the dispatcher will type the time
    REJECT = "rm"  # show the reasons
    REJECT_REASON = "rr"  # reject for this reason (arg: its index)
    CANCEL = "cm"  # show the cancellation reasons
    CANCEL_REASON = "cr"  # cancel for this reason (arg: its index)
    EN_ROUTE = "er"
    ARRIVED = "ar"
    ON_BOARD = "ob"
    COMPLETE = "cp"
    NO_SHOW = "nm"  # ask to confirm
    NO_SHOW_CONFIRM = "nc"
    ACCEPT_PHONE = "ya"  # the rider agreed to the offered time by phone
    DECLINE_PHONE = "ym"  # ask to confirm
    DECLINE_PHONE_CONFIRM = "yc"
    BACK = "bk"


class RideAct(CallbackData, prefix="d1"):
    ride: RowId
    act: Act
    arg: RowId = 0


class ProposalAnswer(CallbackData, prefix="rp1"):
    """The rider's answer to another time offered by the dispatcher."""

    ride: RowId
    accept: bool


class Rating(CallbackData, prefix="rt1"):
    ride: RowId
    stars: Annotated[int, Field(ge=1, le=5)]
