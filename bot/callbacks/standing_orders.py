"""Buttons of standing orders: the desk's card, the rider's answer to another time, /rides.

They carry only the order and what to do (plus the car, time or reason picked); every press
re-reads the order, so an old button can't act on a state it was not made for.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class OrderAct(StrEnum):
    """What a press on a standing order's card in the dispatcher chat asks for."""

    APPROVE = "ap"  # approve without a usual car
    VEHICLES = "vl"  # show the cars that fit, to approve with one
    VEHICLE = "v"  # approve with this car (arg: vehicle id)
    PROPOSE = "pm"  # show other pickup times
    SLOT = "ps"  # offer this time (arg: minutes after midnight, local)
    PROPOSE_TYPED = "pt"  # the dispatcher will type the time
    REJECT = "rm"  # show the reasons
    REJECT_REASON = "rr"  # refuse for this reason (arg: its index in REJECT_REASON_CODES)
    REJECT_TYPED = "rt"  # the dispatcher will type the reason
    BACK = "bk"


class StandingOrderAct(CallbackData, prefix="so1"):
    order: int
    act: OrderAct
    arg: int = 0


class StandingOrderAnswer(CallbackData, prefix="sa1"):
    """The rider's answer to another time offered for their standing order."""

    order: int
    accept: bool


class MyOrderAct(StrEnum):
    """What the rider or a representative does with a standing order from /rides."""

    SHOW = "sh"
    CANCEL_DATE = "cd"  # cancel one date (arg: the date's ordinal, date.toordinal())
    PAUSE = "pa"  # ask the pause's dates
    CHANGE_TIME = "ct"  # ask the date and the new time
    END = "en"  # ask to confirm
    END_CONFIRM = "ec"


class MyStandingOrder(CallbackData, prefix="sm1"):
    order: int
    act: MyOrderAct
    arg: int = 0


class DraftField(StrEnum):
    """What a "Change …" button under the standing order's summary asks again."""

    CONFIRM = "ok"
    RIDER = "ri"
    DAYS = "dy"
    TIME = "tm"
    PICKUP = "pu"
    DESTINATION = "de"
    PURPOSE = "pp"
    DATES = "dt"
    PARTY = "pa"
    WHEELCHAIR = "wc"
    COMMENT = "co"


class StandingOrderDraft(CallbackData, prefix="sd1"):
    """A button of the summary; `key` ties it to the summary it was shown with."""

    field: DraftField
    key: str
