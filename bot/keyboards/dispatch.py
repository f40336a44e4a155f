"""Buttons of the ride card in the dispatcher chat, its secondary menus, and the rider's answers.

The card's main buttons follow the ride's state; a secondary menu (cars, times, reasons) replaces
them on the same card with a "Back" button, so the group gets no extra messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks.dispatch import Act, ProposalAnswer, Rating, RideAct
from bot.i18n import N_, Translator
from bot.keyboards.common import BACK
from bot.keyboards.registry import outbox_keyboard
from bot.services.dispatch import VehicleOption
from bot.services.rides import Action, allowed_actions
from models import RideStatus

S = RideStatus

LABELS: Mapping[Act, str] = {
    Act.TAKE: N_("Take it myself"),
    Act.VEHICLES: N_("Assign a car"),
    Act.PROPOSE: N_("Offer another time"),
    Act.REJECT: N_("Refuse"),
    Act.CANCEL: N_("Cancel the ride"),
    Act.EN_ROUTE: N_("Car is on its way"),
    Act.ARRIVED: N_("Car has arrived"),
    Act.ON_BOARD: N_("Rider is on board"),
    Act.COMPLETE: N_("Ride completed"),
    Act.NO_SHOW: N_("Rider did not come out"),
    Act.ACCEPT_PHONE: N_("Rider agreed by phone"),
    Act.DECLINE_PHONE: N_("Rider declined by phone"),
}
CHANGE_VEHICLE = N_("Change the car")
TYPE_TIME = N_("Type another time")
OTHER_REASON = N_("Other reason (type it)")
ASSIGN_ANYWAY = N_("Assign anyway: {car}")
CONFIRM_NO_SHOW = N_("Yes, the rider did not come out")
CONFIRM_DECLINE = N_("Yes, the rider declined: cancel the ride")
BUSY = N_("{car} — busy: ride №{number} at {time}")
ACCEPT = N_("Accept the new time")
DECLINE = N_("Decline and cancel the ride")
STARS: Mapping[int, str] = {
    5: N_("5 — excellent"),
    4: N_("4 — good"),
    3: N_("3 — so-so"),
    2: N_("2 — bad"),
    1: N_("1 — very bad"),
}

# What each card button does to the ride: a button is shown only while that is allowed.
ACTION_OF: Mapping[Act, Action] = {
    Act.TAKE: Action.TAKE,
    Act.VEHICLES: Action.ASSIGN,
    Act.VEHICLE: Action.ASSIGN,
    Act.VEHICLE_FORCE: Action.ASSIGN,
    Act.PROPOSE: Action.PROPOSE,
    Act.SLOT: Action.PROPOSE,
    Act.PROPOSE_TYPED: Action.PROPOSE,
    Act.REJECT: Action.REJECT,
    Act.REJECT_REASON: Action.REJECT,
    Act.CANCEL: Action.CANCEL,
    Act.CANCEL_REASON: Action.CANCEL,
    Act.EN_ROUTE: Action.EN_ROUTE,
    Act.ARRIVED: Action.ARRIVED,
    Act.ON_BOARD: Action.ON_BOARD,
    Act.COMPLETE: Action.COMPLETE,
    Act.NO_SHOW: Action.NO_SHOW,
    Act.NO_SHOW_CONFIRM: Action.NO_SHOW,
    Act.ACCEPT_PHONE: Action.ACCEPT,
    Act.DECLINE_PHONE: Action.DECLINE,
    Act.DECLINE_PHONE_CONFIRM: Action.DECLINE,
}

# The card's buttons per state, row by row; "cars" is where the vehicle list goes (taken rides).
LAYOUT: Mapping[str, Sequence[Sequence[Act] | str]] = {
    S.REQUESTED: [[Act.TAKE], [Act.VEHICLES, Act.PROPOSE], [Act.REJECT, Act.CANCEL]],
    S.TAKEN: ["cars", [Act.PROPOSE, Act.REJECT], [Act.CANCEL]],
    S.TIME_PROPOSED: [[Act.ACCEPT_PHONE, Act.DECLINE_PHONE], [Act.REJECT, Act.CANCEL]],
    S.SCHEDULED: [[Act.EN_ROUTE, Act.ARRIVED], [Act.VEHICLES], [Act.NO_SHOW, Act.CANCEL]],
    S.EN_ROUTE: [[Act.ARRIVED], [Act.NO_SHOW, Act.CANCEL]],
    S.ARRIVED: [[Act.ON_BOARD, Act.COMPLETE], [Act.NO_SHOW, Act.CANCEL]],
    S.ON_BOARD: [[Act.COMPLETE]],
}


def _button(text: str, ride_id: int, act: Act, arg: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=RideAct(ride=ride_id, act=act, arg=arg).pack()
    )


def allows(status: str, act: Act) -> bool:
    """Whether a button (or the menu it opens) makes sense for a ride in this state."""
    action = ACTION_OF.get(act)
    return action is None or action in allowed_actions(status)


def car_name(option: VehicleOption) -> str:
    return f"{option.vehicle.make} {option.vehicle.plate}"


def vehicle_label(t: Translator, option: VehicleOption, tz: tzinfo) -> str:
    """A car's button, saying in words when it already has a ride in an overlapping slot."""
    if not option.conflicts:
        return car_name(option)
    other = option.conflicts[0]
    return t(
        BUSY,
        car=car_name(option),
        number=other.number,
        time=other.pickup_at.astimezone(tz).strftime("%H:%M"),
    )


def vehicle_rows(
    t: Translator, ride_id: int, options: Sequence[VehicleOption], tz: tzinfo
) -> list[list[InlineKeyboardButton]]:
    return [
        [_button(vehicle_label(t, option, tz), ride_id, Act.VEHICLE, option.vehicle.id)]
        for option in options
    ]


def card_keyboard(
    t: Translator,
    ride_id: int,
    status: str,
    options: Sequence[VehicleOption],
    tz: tzinfo,
) -> InlineKeyboardMarkup | None:
    """The card's main buttons for the ride's state; None once nothing more can be done."""
    rows: list[list[InlineKeyboardButton]] = []
    for row in LAYOUT.get(status, ()):
        if row == "cars":
            rows.extend(vehicle_rows(t, ride_id, options, tz))
            continue
        buttons = []
        for act in row:
            if not isinstance(act, Act) or not allows(status, act):
                continue
            label = (
                CHANGE_VEHICLE if act is Act.VEHICLES and status == S.SCHEDULED else LABELS[act]
            )
            buttons.append(_button(t(label), ride_id, act))
        if buttons:
            rows.append(buttons)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def _with_back(
    t: Translator, ride_id: int, rows: list[list[InlineKeyboardButton]]
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[*rows, [_button(t(BACK), ride_id, Act.BACK)]])


def vehicles_menu(
    t: Translator, ride_id: int, options: Sequence[VehicleOption], tz: tzinfo
) -> InlineKeyboardMarkup:
    return _with_back(t, ride_id, vehicle_rows(t, ride_id, options, tz))


def confirm_vehicle_menu(
    t: Translator, ride_id: int, option: VehicleOption
) -> InlineKeyboardMarkup:
    row = [
        _button(
            t(ASSIGN_ANYWAY, car=car_name(option)), ride_id, Act.VEHICLE_FORCE, option.vehicle.id
        )
    ]
    return _with_back(t, ride_id, [row])


def slots_menu(
    t: Translator, ride_id: int, slots: Sequence[datetime], pickup_at: datetime, tz: tzinfo
) -> InlineKeyboardMarkup:
    """Ready-made times; a slot on another day shows its date too."""
    day = pickup_at.astimezone(tz).date()
    buttons = []
    for slot in slots:
        local = slot.astimezone(tz)
        label = local.strftime("%H:%M") if local.date() == day else local.strftime("%d.%m %H:%M")
        buttons.append(_button(label, ride_id, Act.SLOT, int(slot.timestamp()) // 60))
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([_button(t(TYPE_TIME), ride_id, Act.PROPOSE_TYPED)])
    return _with_back(t, ride_id, rows)


def reasons_menu(
    t: Translator, ride_id: int, act: Act, reasons: Mapping[str, str]
) -> InlineKeyboardMarkup:
    """One reason per row; the last index (past the list) is "other", typed by the dispatcher."""
    rows = [
        [_button(t(msgid), ride_id, act, index)] for index, msgid in enumerate(reasons.values())
    ]
    rows.append([_button(t(OTHER_REASON), ride_id, act, len(reasons))])
    return _with_back(t, ride_id, rows)


def confirm_menu(t: Translator, ride_id: int, act: Act, label: str) -> InlineKeyboardMarkup:
    return _with_back(t, ride_id, [[_button(t(label), ride_id, act)]])


def back_only(t: Translator, ride_id: int) -> InlineKeyboardMarkup:
    """While the dispatcher types: Back returns the card to its buttons."""
    return _with_back(t, ride_id, [])


@outbox_keyboard("proposal")
def proposal_keyboard(t: Translator, args: dict[str, Any]) -> InlineKeyboardMarkup:
    ride_id = int(args["ride_id"])
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(ACCEPT), callback_data=ProposalAnswer(ride=ride_id, accept=True).pack()
                )
            ],
            [
                InlineKeyboardButton(
                    text=t(DECLINE),
                    callback_data=ProposalAnswer(ride=ride_id, accept=False).pack(),
                )
            ],
        ]
    )


@outbox_keyboard("rating")
def rating_keyboard(t: Translator, args: dict[str, Any]) -> InlineKeyboardMarkup:
    """Five big rows, each saying in words what the number means."""
    ride_id = int(args["ride_id"])
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(label), callback_data=Rating(ride=ride_id, stars=stars).pack()
                )
            ]
            for stars, label in STARS.items()
        ]
    )
