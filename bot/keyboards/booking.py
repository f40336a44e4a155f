"""Keyboards of the booking conversation and of "my rides", with the inline calendar."""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from datetime import date

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from babel.dates import format_date, get_day_names

from bot.callbacks.booking import (
    CalendarAction,
    CalendarPick,
    RideAction,
    RidePress,
    SummaryAction,
    SummaryField,
    SummaryPress,
)
from bot.i18n import N_, Translator
from bot.keyboards.common import BACK, CANCEL, step_keyboard
from bot.services.ride_labels import PURPOSE_LABELS

HOME = N_("Home address")
SEND_LOCATION = N_("Send my location")
RETURN_YES = N_("Yes, book the way back")
RETURN_NO = N_("No, one way only")
WHEELCHAIR_YES = N_("Yes, with a wheelchair")
WHEELCHAIR_NO = N_("No wheelchair")
CONFIRM = N_("Confirm the request")

# The way out of the cancel-reason step names the ride, not "Cancel" (review B2).
KEEP_RIDE = N_("Don't cancel the ride")
CANCEL_OTHER_TOO = N_("Yes, cancel it too")
KEEP_OTHER = N_("No, keep it")

CANCEL_REASONS = (
    N_("Plans changed"),
    N_("Feeling unwell"),
    N_("Going another way"),
    N_("Booked by mistake"),
)

EDIT_LABELS: dict[SummaryField, str] = {
    SummaryField.RIDER: N_("Change the rider"),
    SummaryField.PICKUP: N_("Change pickup"),
    SummaryField.DESTINATION: N_("Change destination"),
    SummaryField.PURPOSE: N_("Change purpose"),
    SummaryField.DATE: N_("Change date"),
    SummaryField.TIME: N_("Change time"),
    SummaryField.RETURN: N_("Change return trip"),
    SummaryField.PARTY: N_("Change who rides along"),
    SummaryField.WHEELCHAIR: N_("Change wheelchair"),
    SummaryField.COMMENT: N_("Change comment"),
}

CLOSED_DAY = "·"
TIMES_PER_ROW = 4


def _nav(t: Translator, *, back: bool = True) -> list[KeyboardButton]:
    row = [KeyboardButton(text=t(CANCEL))]
    if back:
        row.insert(0, KeyboardButton(text=t(BACK)))
    return row


def choice_keyboard(
    t: Translator, options: Sequence[str], *, back: bool = True
) -> ReplyKeyboardMarkup:
    """Options already rendered (names, addresses), one per row, then Back and Cancel."""
    return step_keyboard(t, list(options), back=back)


def pickup_keyboard(
    t: Translator, *, has_home: bool, back: bool, trips: Sequence[str] = ()
) -> ReplyKeyboardMarkup:
    """The last trips ("as last time") first, then home, the location pin, Back and Cancel."""
    rows: list[list[KeyboardButton]] = [[KeyboardButton(text=trip)] for trip in trips]
    if has_home:
        rows.append([KeyboardButton(text=t(HOME))])
    rows.append([KeyboardButton(text=t(SEND_LOCATION), request_location=True)])
    rows.append(_nav(t, back=back))
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def destination_keyboard(
    t: Translator, recent: Sequence[str], *, offer_home: bool
) -> ReplyKeyboardMarkup:
    options = list(recent)
    if offer_home:
        options.insert(0, t(HOME))
    return step_keyboard(t, options)


def purpose_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return step_keyboard(t, [t(msgid) for msgid in PURPOSE_LABELS.values()])


def time_keyboard(t: Translator, slots: Sequence[str]) -> ReplyKeyboardMarkup:
    """Times are short, so four share a row; the list still ends with Back and Cancel."""
    rows = [
        [KeyboardButton(text=s) for s in slots[i : i + TIMES_PER_ROW]]
        for i in range(0, len(slots), TIMES_PER_ROW)
    ]
    rows.append(_nav(t))
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def return_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return step_keyboard(t, [t(RETURN_YES), t(RETURN_NO)])


def return_times_keyboard(t: Translator, slots: Sequence[str]) -> ReplyKeyboardMarkup:
    """«No, one way only» first, then the times for the way back, four to a row."""
    rows = [[KeyboardButton(text=t(RETURN_NO))]]
    rows.extend(
        [KeyboardButton(text=s) for s in slots[i : i + TIMES_PER_ROW]]
        for i in range(0, len(slots), TIMES_PER_ROW)
    )
    rows.append(_nav(t))
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def wheelchair_keyboard(t: Translator, *, profile_says: bool) -> ReplyKeyboardMarkup:
    """The profile's answer comes first, so the usual choice is one tap at the top."""
    options = [t(WHEELCHAIR_YES), t(WHEELCHAIR_NO)]
    if not profile_says:
        options.reverse()
    return step_keyboard(t, options)


def comment_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return step_keyboard(t, skip=True)


def summary_reply_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return step_keyboard(t, [t(CONFIRM)])


def summary_inline(
    t: Translator, key: str, fields: Iterable[SummaryField]
) -> InlineKeyboardMarkup:
    """Confirm first, then a "Change ..." button per field, two to a row."""
    edits = [
        InlineKeyboardButton(
            text=t(EDIT_LABELS[f]),
            callback_data=SummaryPress(action=SummaryAction.EDIT, field=f, key=key).pack(),
        )
        for f in fields
    ]
    rows = [
        [
            InlineKeyboardButton(
                text=t(CONFIRM),
                callback_data=SummaryPress(action=SummaryAction.CONFIRM, key=key).pack(),
            )
        ]
    ]
    rows.extend(edits[i : i + 2] for i in range(0, len(edits), 2))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def month_title(t: Translator, year: int, month: int) -> str:
    title = format_date(date(year, month, 1), "LLLL yyyy", locale=t.lang)
    return title[:1].upper() + title[1:]


def calendar_keyboard(
    t: Translator, year: int, month: int, bookable: Sequence[date]
) -> InlineKeyboardMarkup:
    """One month; only bookable days carry their number, the others (and other months') a dot.

    A dot answers with the bookable window when pressed, so nobody is left guessing why.
    """
    allowed = set(bookable)
    months = sorted({(d.year, d.month) for d in allowed})
    noop = CalendarPick(action=CalendarAction.CLOSED, year=year, month=month).pack()
    header = [InlineKeyboardButton(text=month_title(t, year, month), callback_data=noop)]
    names = get_day_names("short", locale=t.lang, context="stand-alone")
    weekdays = [InlineKeyboardButton(text=str(names[i]), callback_data=noop) for i in range(7)]
    rows = [header, weekdays]
    for week in _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        row = []
        for day in week:
            if day.month != month:
                row.append(InlineKeyboardButton(text=CLOSED_DAY, callback_data=noop))
            elif day in allowed:
                data = CalendarPick(
                    action=CalendarAction.DAY, year=year, month=month, day=day.day
                ).pack()
                row.append(InlineKeyboardButton(text=str(day.day), callback_data=data))
            else:
                closed = CalendarPick(
                    action=CalendarAction.CLOSED, year=year, month=month, day=day.day
                ).pack()
                row.append(InlineKeyboardButton(text=CLOSED_DAY, callback_data=closed))
        rows.append(row)
    nav = []
    current = months.index((year, month)) if (year, month) in months else -1
    if current > 0:
        y, m = months[current - 1]
        nav.append(
            InlineKeyboardButton(
                text=f"‹ {month_title(t, y, m)}",
                callback_data=CalendarPick(action=CalendarAction.MONTH, year=y, month=m).pack(),
            )
        )
    if 0 <= current < len(months) - 1:
        y, m = months[current + 1]
        nav.append(
            InlineKeyboardButton(
                text=f"{month_title(t, y, m)} ›",
                callback_data=CalendarPick(action=CalendarAction.MONTH, year=y, month=m).pack(),
            )
        )
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def date_keyboard(t: Translator, quick: Sequence[str], *, back: bool) -> ReplyKeyboardMarkup:
    """The nearest bookable days as big buttons; the calendar below has the rest."""
    return step_keyboard(t, list(quick), back=back)


def rides_keyboard(t: Translator, items: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text=label, callback_data=RidePress(action=RideAction.OPEN, ride_id=ride_id).pack()
            )
        ]
        for ride_id, label in items
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def ride_actions_keyboard(
    t: Translator, ride_id: int, *, can_cancel: bool, can_return: bool
) -> InlineKeyboardMarkup:
    def button(action: RideAction, msgid: str) -> list[InlineKeyboardButton]:
        data = RidePress(action=action, ride_id=ride_id).pack()
        return [InlineKeyboardButton(text=t(msgid), callback_data=data)]

    rows = []
    if can_cancel:
        rows.append(button(RideAction.CANCEL, N_("Cancel this ride")))
    if can_return:
        rows.append(button(RideAction.RETURN, N_("Book the way back")))
    rows.append(button(RideAction.AGAIN, N_("Book the same ride on another date")))
    rows.append(button(RideAction.LIST, N_("All my rides")))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def cancel_reason_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    """The reasons, then «Don't cancel the ride»: no generic «Cancel» that reads as success."""
    rows = [[KeyboardButton(text=t(r))] for r in CANCEL_REASONS]
    rows.append([KeyboardButton(text=t(KEEP_RIDE))])
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def other_leg_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=t(CANCEL_OTHER_TOO))], [KeyboardButton(text=t(KEEP_OTHER))]]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)
