"""The booking conversation: for whom, from, to, why, when, the way back, who rides along, a
comment, then a summary where any answer can be changed before confirming.

Each step is a row of `STEPS`: a question and a parser. One handler drives them all, so every
step treats Back, stickers, emoji and over-long text the same way and keeps its place on bad
input. Answers are checked against the district's rules as they are given, so a person learns
at once what won't work; `bot.services.booking.create_booking` checks everything again at
confirm time. `/cancel` (handlers.start) drops the draft: nothing exists before Confirm.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import TypeVar

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message
from babel.dates import format_date
from pydantic import BaseModel

from bot.callbacks.booking import (
    CalendarAction,
    CalendarPick,
    SummaryAction,
    SummaryField,
    SummaryPress,
)
from bot.context import Context
from bot.filters import Button
from bot.forms import Accepts, Form, Question, Replied
from bot.i18n import LANGUAGES, N_, I18n, Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, BOOK, SKIP, main_menu
from bot.services import booking, dates, day_limit, limits
from bot.services.booking_rules import weekday_msg
from bot.services.district_cache import district_by_id
from bot.services.help import with_desk_phone
from bot.services.i18n_types import Reason
from bot.services.outbox import enqueue_message
from bot.services.ride_labels import PURPOSE_LABELS, purpose_label, status_label
from bot.services.rides import Actor
from bot.states.booking import Booking, BookingData, load_booking, save_booking
from models import District, Ride, Rider

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

# The next bookable days offered as buttons by name; the calendar only on request (a screen
# reader reads a calendar as 42 buttons, 28 of them «·»).
QUICK_DATES = 5
PICK_BUTTON = N_("Please choose one of the buttons below.")
DATE_FORMAT = N_("Please type the date as day.month, for example: {example}.")
TIME_FORMAT = N_("Please type the time as hours:minutes, for example: 09:30.")
OUT_OF_DATE = N_("This summary is out of date. Please use the newest one.")
OLD_CALENDAR = N_("This calendar is out of date. Please use the newest one.")
NO_DATES = Reason("no_dates", N_("Sorry, no date can be booked now. Please call the dispatcher."))
ALREADY_BOOKED = N_("This request was already sent: ride №{number}. Nothing new was booked.")


async def rider_of(ctx: Context, data: BookingData) -> Rider | None:
    """The rider the draft is for, if this person may book for them; read once per step."""
    if data.rider_id is None:
        return None
    key = ("booking rider", data.rider_id)
    if key not in ctx.cache:
        ctx.cache[key] = await booking.rider_for(ctx.session, ctx.person, data.rider_id)
    rider: Rider | None = ctx.cache[key]
    return rider


async def district_of(ctx: Context, rider: Rider) -> District:
    district = await district_by_id(ctx.session, rider.district_id)
    assert district is not None, "a rider's district comes from the districts file"
    return district


def chosen(i18n: I18n, text: str | None, msgid: str) -> bool:
    value = (text or "").strip()
    return bool(value) and value in i18n.variants(msgid)


def fmt_time(at: time) -> str:
    return at.strftime("%H:%M")


def day_text(t: Translator, day: date) -> str:
    return f"{t(weekday_msg(day))}, {t.date(day)}"


def said(ctx: Context, reason: Reason, district: District | None) -> str:
    """A refusal or notice as the person reads it, with the desk's phone where it says to call."""
    return with_desk_phone(reason, district.desk_phone if district else None).render(ctx.t)


# -- steps --------------------------------------------------------------------------------------

Parsed = BookingData | Reason | Replied | None
"""A parser returns the updated draft, a Reason (bad input, say why), Replied (it answered
itself, with buttons of its own), or None (show the hint)."""

Ask = Callable[[Context, BookingData, Rider], Awaitable[None]]
Parse = Callable[[Message, Context, BookingData, Rider], Awaitable[Parsed]]


def step(
    state: State,
    ask: Ask,
    parse: Parse,
    hint: Callable[[Context, BookingData], str],
    accepts: Accepts = "text",
) -> Question[BookingData]:
    """A question of the booking form: its ask and parse see the rider the draft is for."""

    async def asked(ctx: Context, data: BookingData) -> None:
        rider = await rider_of(ctx, data)
        if rider is None:
            await ask_rider(ctx, data, None)
        else:
            await ask(ctx, data, rider)

    async def parsed(message: Message, ctx: Context, data: BookingData) -> Parsed:
        rider = await rider_of(ctx, data)
        if rider is None:
            return await parse_rider(message, ctx, data, None)
        return await parse(message, ctx, data, rider)

    return Question(state, asked, parsed, hint, accepts)


def pick_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t(PICK_BUTTON)


def address_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t("Type the address in words, for example: Abay street 12, flat 5.")


def has_back(data: BookingData, state: State) -> bool:
    return previous(state, data) is not None


# for whom


def rider_label(rider: Rider, riders: list[Rider]) -> str:
    """The name; a namesake gets the last digits of the phone to tell them apart."""
    if sum(r.full_name == rider.full_name for r in riders) > 1:
        return f"{rider.full_name} (…{rider.phone[-4:]})"
    return rider.full_name


async def ask_rider(ctx: Context, data: BookingData, rider: Rider | None) -> None:
    riders = await booking.riders_for(ctx.session, ctx.person)
    labels = [rider_label(r, riders) for r in riders]
    trips = [label for label, _ in await last_trips(ctx, data)]
    text = ctx.t("Who is the ride for?")
    if trips:
        text += "\n" + ctx.t("Or book one of the last trips again: the date is all you choose.")
    ctx.reply(text, kb.choice_keyboard(ctx.t, trips + labels, back=has_back(data, Booking.rider)))


async def parse_rider(
    message: Message, ctx: Context, data: BookingData, _: Rider | None
) -> Parsed:
    riders = await booking.riders_for(ctx.session, ctx.person)
    text = " ".join((message.text or "").split()).casefold()
    found = [
        r for r in riders if text in (rider_label(r, riders).casefold(), r.full_name.casefold())
    ]
    if len(found) != 1:
        return None
    picked = found[0]
    reason = booking.check_rider(picked, await district_of(ctx, picked), ctx.now, ctx.settings.tz)
    if reason is not None:
        return reason
    changes: dict[str, object] = {"rider_id": picked.id}
    if data.editing and picked.id != data.rider_id:
        changes["wheelchair"] = picked.needs_wheelchair
    return data.model_copy(update=changes)


# pickup


async def ask_pickup(ctx: Context, data: BookingData, rider: Rider) -> None:
    t = ctx.t
    text = t("Where should the car pick {name} up?", name=rider.full_name)
    if rider.home_address:
        text += "\n" + t("Home address: {address}", address=rider.home_address)
    text += "\n" + t("Press a button, type another address, or send a location pin.")
    trips = [label for label, _ in await last_trips(ctx, data)]
    if trips:
        text += "\n" + t("Or book one of the last trips again: the date is all you choose.")
    back = has_back(data, Booking.pickup)
    ctx.reply(
        text, kb.pickup_keyboard(t, has_home=bool(rider.home_address), back=back, trips=trips)
    )


async def parse_pickup(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    if message.location is not None:
        return data.model_copy(
            update={
                "pickup_address": None,
                "pickup_lat": message.location.latitude,
                "pickup_lon": message.location.longitude,
            }
        )
    if chosen(ctx.i18n, message.text, kb.SEND_LOCATION):
        return Reason(
            "no_location",
            N_(
                "This Telegram app could not send the location. Please type the address, "
                "or send a pin with the paperclip button."
            ),
        )
    if chosen(ctx.i18n, message.text, kb.HOME) and rider.home_address:
        return data.model_copy(
            update={
                "pickup_address": rider.home_address,
                "pickup_lat": rider.home_lat,
                "pickup_lon": rider.home_lon,
            }
        )
    value = booking.clean_text(message.text)
    if isinstance(value, Reason):
        return value
    return data.model_copy(
        update={"pickup_address": value, "pickup_lat": None, "pickup_lon": None}
    )


async def ask_pickup_details(ctx: Context, data: BookingData, rider: Rider) -> None:
    ctx.reply(
        ctx.t(
            "Got the location. Please add the address in words (street, house, entrance) so "
            "the driver finds the place, or press Skip."
        ),
        kb.comment_keyboard(ctx.t),
    )


async def parse_pickup_details(
    message: Message, ctx: Context, data: BookingData, rider: Rider
) -> Parsed:
    if chosen(ctx.i18n, message.text, SKIP):
        where = ctx.t(
            "Location pin {lat}, {lon}", lat=f"{data.pickup_lat:.5f}", lon=f"{data.pickup_lon:.5f}"
        )
        return data.model_copy(update={"pickup_address": where})
    value = booking.clean_text(message.text)
    if isinstance(value, Reason):
        return value
    return data.model_copy(update={"pickup_address": value})


# destination


def offer_home(data: BookingData, rider: Rider) -> bool:
    return bool(rider.home_address) and data.pickup_address != rider.home_address


async def ask_destination(ctx: Context, data: BookingData, rider: Rider) -> None:
    recent = [
        d
        for d in await booking.recent_destinations(ctx.session, rider.id)
        if d != data.pickup_address
    ]
    text = ctx.t("Where to? Type the address or the place, for example: Regional hospital.")
    if recent:
        text += "\n" + ctx.t("Or choose one of the recent destinations below.")
    ctx.reply(text, kb.destination_keyboard(ctx.t, recent, offer_home=offer_home(data, rider)))


async def parse_destination(
    message: Message, ctx: Context, data: BookingData, rider: Rider
) -> Parsed:
    if chosen(ctx.i18n, message.text, kb.HOME) and offer_home(data, rider):
        value: str | Reason = rider.home_address
    else:
        value = booking.clean_text(message.text)
    if isinstance(value, Reason):
        return value
    if value == data.pickup_address:
        return Reason(
            "same_address",
            N_("The destination is the same as the pickup address. Please type where to go."),
        )
    return data.model_copy(update={"destination": value})


# purpose


async def ask_purpose(ctx: Context, data: BookingData, rider: Rider) -> None:
    ctx.reply(ctx.t("What is the trip for?"), kb.purpose_keyboard(ctx.t))


async def parse_purpose(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    for code, msgid in PURPOSE_LABELS.items():
        if chosen(ctx.i18n, message.text, msgid):
            return data.model_copy(update={"purpose": code})
    return None


# date


CALENDAR = N_("Another day: the calendar")
ONE_WAY_ON = N_("One way only, on {day}")


def day_month(t: Translator, day: date) -> str:
    return format_date(day, "d MMMM", locale=t.lang)


def quick_label_for(t: Translator, day: date, today: date) -> str:
    """«Завтра, 3 декабря» / «Ертең, 3 желтоқсан», then «пятница, 4 декабря»: read by name."""
    if day == today + timedelta(days=1):
        return t("Tomorrow, {day}", day=day_month(t, day))
    return f"{t(weekday_msg(day))}, {day_month(t, day)}"


def quick_label(ctx: Context, day: date) -> str:
    return quick_label_for(ctx.t, day, ctx.today)


async def ask_date(ctx: Context, data: BookingData, rider: Rider) -> None:
    t = ctx.t
    district = await district_of(ctx, rider)
    days = booking.bookable_days(rider, district, ctx.now, ctx.settings.tz)
    if not days:
        reason = booking.check_rider(rider, district, ctx.now, ctx.settings.tz)
        await leave(ctx, said(ctx, reason or NO_DATES, district))
        return
    text = t(
        "Which day? You can book from {first} to {last}. Choose below, or type a date, "
        "for example: {example}.",
        first=day_text(t, days[0]),
        last=day_text(t, days[-1]),
        example=days[0].strftime("%d.%m"),
    )
    quick = [quick_label(ctx, d) for d in days[:QUICK_DATES]]
    if len(days) > QUICK_DATES:
        quick.append(t(CALENDAR))
    ctx.reply(text, kb.date_keyboard(t, quick, back=has_back(data, Booking.date)))


def show_calendar(ctx: Context, days: list[date]) -> None:
    first = days[0]
    ctx.reply(
        ctx.t("Or pick a day in the calendar:"),
        kb.calendar_keyboard(ctx.t, first.year, first.month, days),
    )


def date_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t(DATE_FORMAT, example=(ctx.today + timedelta(days=2)).strftime("%d.%m"))


async def parse_date(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    text = message.text or ""
    if chosen(ctx.i18n, text, CALENDAR):
        district = await district_of(ctx, rider)
        days = booking.bookable_days(rider, district, ctx.now, ctx.settings.tz)
        if days:
            show_calendar(ctx, days)
            return Replied()
        return with_desk_phone(NO_DATES, district.desk_phone)
    one_way = one_way_day(ctx, text)
    if one_way is not None:
        data = data.model_copy(update={"want_return": False, "return_time": None})
    day = one_way or dates.parse_day(text, ctx.today)
    if day is None:
        return None
    result = await with_day(ctx, data, rider, day)
    if isinstance(result, DayFull):
        ctx.reply(result.text, kb.date_keyboard(ctx.t, result.options, back=True))
        return Replied()
    return result


def one_way_day(ctx: Context, text: str) -> date | None:
    """The «One way only, on …» button offered when the way back does not fit the day."""
    text = text.strip()
    for lang in LANGUAGES:
        before, _, after = ctx.i18n.translator(lang)(ONE_WAY_ON, day="\x00").partition("\x00")
        fits = len(text) > len(before) + len(after)
        if fits and text.startswith(before) and text.endswith(after):
            return dates.parse_day(text[len(before) : len(text) - len(after)], ctx.today)
    return None


@dataclass(frozen=True)
class DayFull:
    """The daily limit leaves no room for what is wanted that day: why, and what fits instead."""

    text: str
    options: list[str]

    def render(self, t: Translator) -> str:
        return self.text


async def room_on(
    ctx: Context, data: BookingData, rider: Rider, district: District, day: date, legs: int
) -> DayFull | None:
    """The daily limit when the date is chosen, not after ten answers (review B7)."""
    rules = booking.rules_of(district)
    existing = await booking.active_rides(ctx.session, rider.id)
    room = day_limit.day_room(rules, day, existing, ctx.now, ctx.settings.tz, legs=legs)
    reason = room.reason(rules)
    if reason is None:
        return None
    options = []
    if room.one_way_fits:
        options.append(ctx.t(ONE_WAY_ON, day=quick_label(ctx, day)))
    if room.other_day is not None:
        options.append(quick_label(ctx, room.other_day))
    return DayFull(said(ctx, reason, district), options)


async def with_day(
    ctx: Context, data: BookingData, rider: Rider, day: date
) -> BookingData | Reason | DayFull:
    """The draft on this date; a pickup or return time that no longer fits is asked again."""
    district = await district_of(ctx, rider)
    reason = booking.check_day(rider, district, day, ctx.now, ctx.settings.tz)
    if reason is not None:
        return with_desk_phone(reason, district.desk_phone)
    full = await room_on(ctx, data, rider, district, day, legs=2 if data.want_return else 1)
    if full is not None:
        return full
    changes: dict[str, object] = {"day": day}
    tz = ctx.settings.tz
    if data.pickup_time is not None and booking.check_time(
        district, day, data.pickup_time, ctx.now, tz
    ):
        changes.update(pickup_time=None, return_time=None)
    elif (
        data.pickup_time is not None
        and data.return_time is not None
        and (
            booking.check_return_time(
                district, day, data.pickup_time, data.return_time, ctx.now, tz
            )
        )
    ):
        changes["return_time"] = None
    return data.model_copy(update=changes)


# time


def time_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t(TIME_FORMAT)


async def ask_time(ctx: Context, data: BookingData, rider: Rider) -> None:
    assert data.day is not None
    district = await district_of(ctx, rider)
    rules = booking.rules_of(district)
    slots = booking.pickup_slots(district, data.day, ctx.now, ctx.settings.tz)
    text = ctx.t(
        "At what time should the car come on {day}? Cars pick up between {start}–{end}. "
        "Choose below or type the time, for example: 09:30.",
        day=day_text(ctx.t, data.day),
        start=fmt_time(rules.service_start),
        end=fmt_time(rules.service_end),
    )
    ctx.reply(text, kb.time_keyboard(ctx.t, [fmt_time(s) for s in slots]))


async def parse_time(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    at = booking.parse_time(message.text or "")
    if at is None or data.day is None:
        return None
    district = await district_of(ctx, rider)
    tz = ctx.settings.tz
    reason = booking.check_time(district, data.day, at, ctx.now, tz)
    if reason is not None:
        return reason
    changes: dict[str, object] = {"pickup_time": at}
    if data.return_time is not None and booking.check_return_time(
        district, data.day, at, data.return_time, ctx.now, tz
    ):
        changes["return_time"] = None
    return data.model_copy(update=changes)


# the way back


WAY_BACK_OR_NOT = N_(
    "Do you need a ride back the same day? Choose when the car should pick {name} up for the "
    "way back from {place}, or press «No, one way only»."
)


async def ask_return(ctx: Context, data: BookingData, rider: Rider) -> None:
    """The way back and its time in one question: one tap fewer for a round trip."""
    assert data.day is not None and data.pickup_time is not None
    district = await district_of(ctx, rider)
    slots = booking.return_slots(district, data.day, data.pickup_time, ctx.now, ctx.settings.tz)
    if not slots:
        ctx.reply(ctx.t("Do you need a ride back the same day?"), kb.return_keyboard(ctx.t))
        return
    text = ctx.t(WAY_BACK_OR_NOT, name=rider.full_name, place=data.destination or "")
    ctx.reply(text, kb.return_times_keyboard(ctx.t, [fmt_time(s) for s in slots]))


async def parse_return(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    if chosen(ctx.i18n, message.text, kb.RETURN_YES):
        assert data.day is not None and data.pickup_time is not None
        district = await district_of(ctx, rider)
        tz = ctx.settings.tz
        if not booking.return_slots(district, data.day, data.pickup_time, ctx.now, tz):
            return Reason(
                "no_return_times",
                N_("There are no pickup times left that day for the way back."),
            )
        room = await room_on(ctx, data, rider, district, data.day, legs=2)
        if room is not None:
            # «No, one way only», or the nearest day with room for both legs, one tap each.
            options = [ctx.t(kb.RETURN_NO), *room.options[-1:]]
            if options[-1].startswith(ctx.t(ONE_WAY_ON, day="")):
                options.pop()
            ctx.reply(room.text, kb.date_keyboard(ctx.t, options, back=True))
            return Replied()
        return data.model_copy(update={"want_return": True, "return_time": None})
    other = dates.parse_day(message.text or "", ctx.today)
    if other is not None and (message.text or "").strip() == quick_label(ctx, other):
        # The other date offered because the way back did not fit: both legs on that day.
        moved = await with_day(
            ctx, data.model_copy(update={"want_return": True, "return_time": None}), rider, other
        )
        if isinstance(moved, DayFull):
            ctx.reply(moved.text, kb.date_keyboard(ctx.t, moved.options, back=True))
            return Replied()
        return moved
    if chosen(ctx.i18n, message.text, kb.RETURN_NO):
        return data.model_copy(update={"want_return": False, "return_time": None})
    at = booking.parse_time(message.text or "")
    if at is not None and data.day is not None and data.pickup_time is not None:
        district = await district_of(ctx, rider)
        reason = booking.check_return_time(
            district, data.day, data.pickup_time, at, ctx.now, ctx.settings.tz
        )
        if reason is not None:
            return reason
        room = await room_on(ctx, data, rider, district, data.day, legs=2)
        if room is not None:
            options = [ctx.t(kb.RETURN_NO), *room.options[-1:]]
            if options[-1].startswith(ctx.t(ONE_WAY_ON, day="")):
                options.pop()
            ctx.reply(room.text, kb.date_keyboard(ctx.t, options, back=True))
            return Replied()
        return data.model_copy(update={"want_return": True, "return_time": at})
    return None


async def ask_return_time(ctx: Context, data: BookingData, rider: Rider) -> None:
    assert data.day is not None and data.pickup_time is not None
    district = await district_of(ctx, rider)
    slots = booking.return_slots(district, data.day, data.pickup_time, ctx.now, ctx.settings.tz)
    text = ctx.t(
        "At what time should the car pick {name} up for the way back from {place}? "
        "Choose below or type the time.",
        name=rider.full_name,
        place=data.destination or "",
    )
    ctx.reply(text, kb.time_keyboard(ctx.t, [fmt_time(s) for s in slots]))


async def parse_return_time(
    message: Message, ctx: Context, data: BookingData, rider: Rider
) -> Parsed:
    at = booking.parse_time(message.text or "")
    if at is None or data.day is None or data.pickup_time is None:
        return None
    district = await district_of(ctx, rider)
    reason = booking.check_return_time(
        district, data.day, data.pickup_time, at, ctx.now, ctx.settings.tz
    )
    if reason is not None:
        return reason
    return data.model_copy(update={"return_time": at})


# who rides along

PARTY_ALONE = N_("Alone, nobody rides along")
PARTY_ASSISTANT = N_("With an assistant")
PARTY_COMPANION = N_("With a companion")
PARTY_BOTH = N_("With an assistant and a companion")
PARTY_COMPANIONS = N_("With {count} companions")
PARTY_ASSISTANT_COMPANIONS = N_("With an assistant and {count} companions")


def party_text(t: Translator, assistant: bool, companions: int) -> str:
    if companions >= 2:
        return t(PARTY_ASSISTANT_COMPANIONS if assistant else PARTY_COMPANIONS, count=companions)
    return t(
        {
            (False, 0): PARTY_ALONE,
            (True, 0): PARTY_ASSISTANT,
            (False, 1): PARTY_COMPANION,
            (True, 1): PARTY_BOTH,
        }[(assistant, companions)]
    )


def party_options(district: District, rider: Rider) -> list[tuple[bool, int]]:
    """The district's choices; what the profile says usually happens comes first."""
    choices = booking.party_choices(district)
    usual = (rider.usual_assistant or rider.needs_assistant, 1 if rider.usual_companion else 0)
    if usual in choices:
        choices.remove(usual)
        choices.insert(0, usual)
    return choices


async def ask_party(ctx: Context, data: BookingData, rider: Rider) -> None:
    options = party_options(await district_of(ctx, rider), rider)
    labels = [party_text(ctx.t, a, c) for a, c in options]
    ctx.reply(
        ctx.t("Who rides along with {name}?", name=rider.full_name),
        kb.choice_keyboard(ctx.t, labels),
    )


# The trip's own answers, shared with the standing-order conversation, whose draft has the same
# fields (assistant, companions, wheelchair, comment).
TripDraft = TypeVar("TripDraft", bound=BaseModel)


async def parse_party(
    message: Message, ctx: Context, data: TripDraft, rider: Rider
) -> TripDraft | None:
    text = (message.text or "").strip()
    for assistant, companions in party_options(await district_of(ctx, rider), rider):
        texts = {
            party_text(ctx.i18n.translator(lang), assistant, companions) for lang in LANGUAGES
        }
        if text in texts:
            return data.model_copy(update={"assistant": assistant, "companions": companions})
    return None


# wheelchair


async def ask_wheelchair(ctx: Context, data: BookingData, rider: Rider) -> None:
    ctx.reply(
        ctx.t(
            "Will {name} travel in a wheelchair on this ride? Then a car with a ramp or lift "
            "will come.",
            name=rider.full_name,
        ),
        kb.wheelchair_keyboard(ctx.t, profile_says=rider.needs_wheelchair),
    )


async def parse_wheelchair(
    message: Message, ctx: Context, data: TripDraft, rider: Rider
) -> TripDraft | None:
    if chosen(ctx.i18n, message.text, kb.WHEELCHAIR_YES):
        return data.model_copy(update={"wheelchair": True})
    if chosen(ctx.i18n, message.text, kb.WHEELCHAIR_NO):
        return data.model_copy(update={"wheelchair": False})
    return None


# comment


async def ask_comment(ctx: Context, data: BaseModel, rider: Rider) -> None:
    ctx.reply(
        ctx.t(
            "Anything the dispatcher or driver should know? For example: entrance 2, 5th floor, "
            "no lift. Type it (up to {limit} characters) or press Skip.",
            limit=booking.MAX_COMMENT,
        ),
        kb.comment_keyboard(ctx.t),
    )


async def parse_comment(
    message: Message, ctx: Context, data: TripDraft, rider: Rider
) -> TripDraft | Reason:
    if chosen(ctx.i18n, message.text, SKIP):
        return data.model_copy(update={"comment": ""})
    value = booking.clean_text(message.text, limit=booking.MAX_COMMENT)
    if isinstance(value, Reason):
        return value
    return data.model_copy(update={"comment": value})


def comment_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t("Type the comment, or press Skip.")


# summary


def summary_text(ctx: Context, data: BookingData, rider: Rider) -> str:
    t = ctx.t
    assert data.day is not None and data.pickup_time is not None
    lines = [
        t("Please check the request:"),
        t("Rider: {value}", value=rider.full_name),
        t("From: {value}", value=data.pickup_address or ""),
        t("To: {value}", value=data.destination or ""),
        t("Purpose: {value}", value=t(purpose_label(data.purpose or "other"))),
        t("Date: {value}", value=day_text(t, data.day)),
        t("Pickup time: {value}", value=fmt_time(data.pickup_time)),
        t("Way back: at {value}", value=fmt_time(data.return_time))
        if data.return_time is not None
        else t("Way back: not needed"),
        t("Rides along: {value}", value=party_text(t, bool(data.assistant), data.companions or 0)),
        t("Wheelchair: yes") if data.wheelchair else t("Wheelchair: no"),
        t("Comment: {value}", value=data.comment) if data.comment else t("Comment: none"),
    ]
    return "\n".join(lines)


def summary_fields(data: BookingData) -> list[SummaryField]:
    fields = list(SummaryField)[1:]
    if not data.several_riders:
        fields.remove(SummaryField.RIDER)
    return fields


async def ask_summary(ctx: Context, data: BookingData, rider: Rider) -> None:
    """A new key per summary shown: its buttons confirm this version of the request only."""
    key = booking.new_request_key()
    fresh = data.model_copy(update={"request_key": key, "editing": True})
    await save_booking(ctx.fsm, fresh)
    ctx.reply(
        ctx.t("Almost done. Check the request and press “Confirm the request”."),
        kb.summary_reply_keyboard(ctx.t),
    )
    ctx.reply(
        summary_text(ctx, fresh, rider), kb.summary_inline(ctx.t, key, summary_fields(fresh))
    )


async def parse_summary(message: Message, ctx: Context, data: BookingData, rider: Rider) -> Parsed:
    return None


def summary_hint(ctx: Context, data: BookingData) -> str:
    return ctx.t("Press “Confirm the request”, or a “Change” button under the summary.")


STEPS: list[Question[BookingData]] = [
    step(Booking.rider, ask_rider, parse_rider, pick_hint),
    step(Booking.pickup, ask_pickup, parse_pickup, address_hint, "location"),
    step(Booking.pickup_details, ask_pickup_details, parse_pickup_details, address_hint),
    step(Booking.destination, ask_destination, parse_destination, address_hint),
    step(Booking.purpose, ask_purpose, parse_purpose, pick_hint),
    step(Booking.date, ask_date, parse_date, date_hint),
    step(Booking.time, ask_time, parse_time, time_hint),
    step(Booking.return_trip, ask_return, parse_return, pick_hint),
    step(Booking.return_time, ask_return_time, parse_return_time, time_hint),
    step(Booking.party, ask_party, parse_party, pick_hint),
    step(Booking.wheelchair, ask_wheelchair, parse_wheelchair, pick_hint),
    step(Booking.comment, ask_comment, parse_comment, comment_hint),
    step(Booking.summary, ask_summary, parse_summary, summary_hint),
]
BY_STATE = {question.state.state: question for question in STEPS}
ORDER = [question.state for question in STEPS]

FIELD_STEPS: dict[SummaryField, State] = {
    SummaryField.RIDER: Booking.rider,
    SummaryField.PICKUP: Booking.pickup,
    SummaryField.DESTINATION: Booking.destination,
    SummaryField.PURPOSE: Booking.purpose,
    SummaryField.DATE: Booking.date,
    SummaryField.TIME: Booking.time,
    SummaryField.RETURN: Booking.return_trip,
    SummaryField.PARTY: Booking.party,
    SummaryField.WHEELCHAIR: Booking.wheelchair,
    SummaryField.COMMENT: Booking.comment,
}


def first_unanswered(data: BookingData) -> State | None:
    """The first question without an answer; None when the request is complete."""
    checks: list[tuple[State, bool]] = [
        (Booking.rider, data.rider_id is None),
        (Booking.pickup, data.pickup_address is None and data.pickup_lat is None),
        (Booking.pickup_details, data.pickup_address is None),
        (Booking.destination, data.destination is None),
        (Booking.purpose, data.purpose is None),
        (Booking.date, data.day is None),
        (Booking.time, data.pickup_time is None),
        (Booking.return_trip, data.want_return is None),
        (Booking.return_time, bool(data.want_return) and data.return_time is None),
        (Booking.party, data.assistant is None or data.companions is None),
        (Booking.wheelchair, data.wheelchair is None),
        (Booking.comment, data.comment is None),
    ]
    return next((state for state, missing in checks if missing), None)


def applies(state: State, data: BookingData, *, going_back: bool) -> bool:
    if state == Booking.rider:
        return data.several_riders
    if state == Booking.pickup_details:
        return not going_back and data.pickup_lat is not None and data.pickup_address is None
    if state == Booking.return_time:
        # Chosen at the way-back question already; Back goes to that question.
        return bool(data.want_return) and data.return_time is None and not going_back
    return True


def following(state: State, data: BookingData) -> State:
    """After an answer: the next question, or (once at the summary) the next unanswered one."""
    if data.editing:
        return first_unanswered(data) or Booking.summary
    index = ORDER.index(state)
    for candidate in ORDER[index + 1 :]:
        if applies(candidate, data, going_back=False):
            return candidate
    return Booking.summary


def previous(state: State, data: BookingData) -> State | None:
    """Back: one question back, or to the summary when the request was already complete."""
    if data.editing and state != Booking.summary and first_unanswered(data) is None:
        return Booking.summary
    index = ORDER.index(state)
    for candidate in reversed(ORDER[:index]):
        if applies(candidate, data, going_back=True):
            return candidate
    return None


async def go_to(ctx: Context, data: BookingData, state: State, rider: Rider | None = None) -> None:
    """Ask a question of the form (the rider is read from the draft, once per step)."""
    await FORM.go_to(ctx, data, BY_STATE[state.state or ""])


async def leave(ctx: Context, text: str) -> None:
    await ctx.fsm.clear()
    ctx.reply(text, main_menu(ctx.t))


# -- entry points -------------------------------------------------------------------------------


@router.message(Command("book"), StateFilter("*"))
@router.message(Button(BOOK), StateFilter("*"))
async def start_booking(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    await begin(ctx, BookingData())


async def begin(ctx: Context, data: BookingData) -> None:
    """Start (or restart with a prefilled draft) at the first question that needs an answer."""
    riders = await booking.riders_for(ctx.session, ctx.person)
    if not riders:
        await leave(ctx, booking.NO_RIDERS.render(ctx.t))
        return
    data = data.model_copy(update={"several_riders": len(riders) > 1})
    if data.rider_id is None and len(riders) == 1:
        data = data.model_copy(update={"rider_id": riders[0].id})
    rider = await rider_of(ctx, data)
    if data.rider_id is not None and rider is None:
        await leave(ctx, booking.NOT_YOUR_RIDER.render(ctx.t))
        return
    if rider is not None:
        district = await district_of(ctx, rider)
        reason = booking.check_rider(rider, district, ctx.now, ctx.settings.tz)
        if reason is not None and not data.several_riders:
            await leave(ctx, said(ctx, reason, district))
            return
        if reason is not None:
            ctx.reply(said(ctx, reason, district))
            data = data.model_copy(update={"rider_id": None})
            rider = None
    target = first_unanswered(data) or Booking.summary
    await go_to(ctx, data, target, rider)


async def begin_from_ride(
    ctx: Context, ride: Ride, *, reverse: bool, way_back: Ride | None = None
) -> None:
    """Book the way back (addresses swapped) or the same ride again, its way back included
    (review B3): only the date is asked, and the time where it no longer fits."""
    if reverse:
        data = BookingData(
            rider_id=ride.rider_id,
            pickup_address=ride.destination,
            destination=ride.pickup_address,
            purpose=ride.purpose,
            want_return=False,
            assistant=ride.assistant,
            companions=ride.companions,
            wheelchair=ride.wheelchair,
            comment=ride.comment,
            return_of=ride.id,
            editing=True,
        )
    else:
        data = repeated(ctx, ride, way_back)
    await ctx.fsm.clear()
    await begin(ctx, data)


def repeated(ctx: Context, ride: Ride, way_back: Ride | None) -> BookingData:
    """Everything of an earlier trip but its date: addresses, purpose, times, the way back,
    who rides along, wheelchair and comment."""
    tz = ctx.settings.tz
    return BookingData(
        rider_id=ride.rider_id,
        pickup_address=ride.pickup_address,
        pickup_lat=ride.pickup_lat,
        pickup_lon=ride.pickup_lon,
        destination=ride.destination,
        purpose=ride.purpose,
        pickup_time=ride.pickup_at.astimezone(tz).time().replace(tzinfo=None),
        want_return=way_back is not None,
        return_time=(
            way_back.pickup_at.astimezone(tz).time().replace(tzinfo=None)
            if way_back is not None
            else None
        ),
        assistant=ride.assistant,
        companions=ride.companions,
        wheelchair=ride.wheelchair,
        comment=ride.comment,
        editing=True,
    )


# -- as last time -------------------------------------------------------------------------------

AS_LAST_TIME = N_("As last time: to {place} at {time}")
AS_LAST_TIME_BACK = N_("As last time: to {place} at {time}, with the way back at {back}")


def trip_label(ctx: Context, trip: booking.Trip, riders: list[Rider]) -> str:
    tz = ctx.settings.tz
    params = {
        "place": trip.ride.destination,
        "time": fmt_time(trip.ride.pickup_at.astimezone(tz).time()),
    }
    if trip.way_back is not None:
        back = fmt_time(trip.way_back.pickup_at.astimezone(tz).time())
        label = ctx.t(AS_LAST_TIME_BACK, back=back, **params)
    else:
        label = ctx.t(AS_LAST_TIME, **params)
    if len(riders) > 1:
        rider = next((r for r in riders if r.id == trip.ride.rider_id), None)
        if rider is not None:
            label = f"{rider_label(rider, riders)}: {label}"
    return label


async def last_trips(ctx: Context, data: BookingData) -> list[tuple[str, booking.Trip]]:
    """The first screen of a new booking offers the person's last trips, one tap each."""
    if data.editing or data.day is not None:
        return []
    riders = await booking.riders_for(ctx.session, ctx.person)
    ids = [r.id for r in riders if data.rider_id in (None, r.id)]
    trips = await booking.last_trips(ctx.session, ids)
    return [(trip_label(ctx, trip, riders), trip) for trip in trips]


async def picked_trip(ctx: Context, data: BookingData, text: str | None) -> Parsed:
    """A tapped "as last time": the whole trip carried over, then straight to the date."""
    value = (text or "").strip()
    for label, trip in await last_trips(ctx, data):
        if label != value:
            continue
        rider = await booking.rider_for(ctx.session, ctx.person, trip.ride.rider_id)
        if rider is None:
            return None
        district = await district_of(ctx, rider)
        reason = booking.check_rider(rider, district, ctx.now, ctx.settings.tz)
        if reason is not None:
            return with_desk_phone(reason, district.desk_phone)
        return repeated(ctx, trip.ride, trip.way_back).model_copy(
            update={"several_riders": data.several_riders}
        )
    return None


# -- answers ------------------------------------------------------------------------------------


class TripForm(Form[TripDraft]):
    """What a booking and a standing order share on the engine (`bot.forms`): questions in a
    fixed order that skip what does not apply, Back to the summary once the draft is complete,
    leaving to the main menu, and the rider's district desk for a voice message."""

    hint_after_reason = False

    def __init__(
        self,
        questions: list[Question[TripDraft]],
        *,
        following: Callable[[State, TripDraft], State],
        previous: Callable[[State, TripDraft], State | None],
        summary: State,
        rider: Callable[[Context, TripDraft], Awaitable[Rider | None]],
    ) -> None:
        super().__init__(questions)
        self.following, self.previous = following, previous
        self.summary, self.rider = summary, rider

    def after(self, draft: TripDraft, question: Question[TripDraft]) -> Question[TripDraft]:
        return self.by_state[self.following(question.state, draft).state or ""]

    def before(
        self, draft: TripDraft, question: Question[TripDraft]
    ) -> Question[TripDraft] | None:
        back = self.previous(question.state, draft)
        return self.by_state[back.state or ""] if back is not None else None

    async def complete(self, ctx: Context, draft: TripDraft) -> None:
        await self.go_to(ctx, draft, self.by_state[self.summary.state or ""])

    async def back_at_start(
        self, ctx: Context, draft: TripDraft, question: Question[TripDraft]
    ) -> None:
        await leave(ctx, ctx.t("Stopped. Nothing was saved."))

    async def lost(self, ctx: Context) -> None:
        await leave(ctx, ctx.t("Main menu."))

    def is_back(self, ctx: Context, message: Message) -> bool:
        return chosen(ctx.i18n, message.text, BACK)

    async def desk_phone(self, ctx: Context, draft: TripDraft) -> str | None:
        rider = await self.rider(ctx, draft)
        return (await district_of(ctx, rider)).desk_phone if rider is not None else None


class BookingForm(TripForm[BookingData]):
    """The booking conversation: what is its own is Confirm on the summary, "as last time" on
    the first screen, and the desk's phone in a refusal."""

    async def load(self, ctx: Context) -> BookingData:
        return await load_booking(ctx.fsm)

    async def save(self, ctx: Context, draft: BookingData) -> None:
        await save_booking(ctx.fsm, draft)

    def reason_text(self, ctx: Context, draft: BookingData, reason: Reason) -> str:
        district = ctx.cache.get(("booking district", draft.rider_id))
        return said(ctx, reason, district)

    async def intercept(
        self, message: Message, ctx: Context, draft: BookingData, question: Question[BookingData]
    ) -> bool:
        rider = await rider_of(ctx, draft)
        if rider is None and question.state != Booking.rider:
            await leave(ctx, booking.NOT_YOUR_RIDER.render(ctx.t))
            return True
        if rider is not None:
            # For the desk's phone in a refusal (`reason_text`).
            ctx.cache[("booking district", draft.rider_id)] = await district_of(ctx, rider)
        if question.state == Booking.summary and chosen(ctx.i18n, message.text, kb.CONFIRM):
            assert rider is not None
            await confirm(ctx, draft, draft.request_key or "", rider)
            return True
        if question.state in (Booking.rider, Booking.pickup) and message.text:
            # "As last time" on the first screen: everything but the date carried over.
            result = await picked_trip(ctx, draft, message.text)
            if isinstance(result, BookingData):
                await go_to(ctx, result, following(question.state, result))
                return True
            if isinstance(result, Reason):
                ctx.reply(said(ctx, result, None))
                return True
        return False


FORM = BookingForm(
    STEPS, following=following, previous=previous, summary=Booking.summary, rider=rider_of
)


@router.message(StateFilter(Booking))
async def on_answer(message: Message, ctx: Context) -> None:
    """Every answer of every step: Back, bad input, or the next question."""
    await FORM.handle(message, ctx)


@router.callback_query(Booking.date, CalendarPick.filter())
async def on_calendar(query: CallbackQuery, callback_data: CalendarPick, ctx: Context) -> None:
    t = ctx.t
    data = await load_booking(ctx.fsm)
    rider = await rider_of(ctx, data)
    if rider is None:
        ctx.toast(t(OLD_CALENDAR), alert=True)
        return
    days = booking.bookable_days(rider, await district_of(ctx, rider), ctx.now, ctx.settings.tz)
    if callback_data.action == CalendarAction.MONTH:
        if any((d.year, d.month) == (callback_data.year, callback_data.month) for d in days):
            ctx.edit_markup(
                query.message,
                kb.calendar_keyboard(t, callback_data.year, callback_data.month, days),
            )
        return
    if callback_data.action == CalendarAction.CLOSED or not days:
        window = (
            t(
                "You can book from {first} to {last}.",
                first=day_text(t, days[0]),
                last=day_text(t, days[-1]),
            )
            if days
            else said(ctx, NO_DATES, await district_of(ctx, rider))
        )
        ctx.toast(window, alert=True)
        return
    try:
        day = date(callback_data.year, callback_data.month, callback_data.day)
    except ValueError:
        ctx.toast(t(OLD_CALENDAR), alert=True)
        return
    result = await with_day(ctx, data, rider, day)
    if isinstance(result, DayFull):
        ctx.reply(result.text, kb.date_keyboard(t, result.options, back=True))
        return
    if not isinstance(result, BookingData):
        ctx.toast(result.render(t), alert=True)
        return
    ctx.edit(query.message, t("Date: {value}", value=day_text(t, day)))
    await go_to(ctx, result, following(Booking.date, result), rider)


@router.callback_query(CalendarPick.filter(), StateFilter("*"))
async def on_old_calendar(query: CallbackQuery, ctx: Context) -> None:
    """A calendar left on screen after the date was typed, or from an earlier booking."""
    ctx.toast(ctx.t(OLD_CALENDAR), alert=True)


@router.callback_query(SummaryPress.filter(), StateFilter("*"))
async def on_summary_button(
    query: CallbackQuery, callback_data: SummaryPress, ctx: Context
) -> None:
    """Confirm or change; a button of an older summary (or an already sent one) does nothing."""
    t = ctx.t
    data = await load_booking(ctx.fsm)
    current = await ctx.fsm.get_state() == Booking.summary.state
    if not current or data.request_key != callback_data.key:
        existing = await booking.ride_by_key(ctx.session, callback_data.key)
        if existing is not None:
            ctx.toast(t(ALREADY_BOOKED, number=existing.number), alert=True)
        else:
            ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    rider = await rider_of(ctx, data)
    if rider is None:
        await leave(ctx, booking.NOT_YOUR_RIDER.render(t))
        return
    if callback_data.action == SummaryAction.CONFIRM:
        await confirm(ctx, data, callback_data.key, rider)
        return
    target = FIELD_STEPS.get(callback_data.field)
    if target is None or (target == Booking.rider and not data.several_riders):
        ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    await go_to(ctx, data, target, rider)


async def confirm(ctx: Context, data: BookingData, key: str, rider: Rider) -> None:
    """Create the ride (and its way back) once; a refusal keeps the summary to change things."""
    t = ctx.t
    incomplete = first_unanswered(data)
    if incomplete is not None or data.day is None or data.pickup_time is None or not key:
        await go_to(ctx, data, incomplete or Booking.summary, rider)
        return
    draft = booking.Draft(
        rider_id=rider.id,
        pickup_address=data.pickup_address or "",
        pickup_lat=data.pickup_lat,
        pickup_lon=data.pickup_lon,
        destination=data.destination or "",
        purpose=data.purpose or "other",
        day=data.day,
        pickup_time=data.pickup_time,
        return_time=data.return_time if data.want_return else None,
        assistant=bool(data.assistant),
        companions=data.companions or 0,
        wheelchair=bool(data.wheelchair),
        comment=data.comment or "",
        return_of=data.return_of,
        request_key=key,
        booked_by=ctx.person.id,
    )
    district = await district_of(ctx, rider)
    # Book, cancel, book again posts a new card each time: so many new rides a day per rider.
    too_many = await limits.may_book(
        ctx.session, rider.id, limits.limits_of(district), now=ctx.now
    )
    if too_many is not None:
        await ctx.fsm.clear()
        ctx.reply(limits.refusal_text(t, too_many, district.desk_phone), main_menu(t))
        return
    kind = "rider" if rider.account_id == ctx.person.id else "representative"
    actor = Actor(kind, ctx.person.telegram_id, ctx.person.display_name)
    result = await booking.create_booking(ctx.session, draft, actor, ctx.now, tz=ctx.settings.tz)
    if result.reason is not None or result.ride is None:
        district = await district_of(ctx, rider)
        reason = said(ctx, result.reason, district) if result.reason else t(OUT_OF_DATE)
        ctx.reply(reason + "\n" + t("Change the request with the buttons under the summary."))
        return
    await ctx.fsm.clear()
    # Queued with the ride, not sent from here: if this process dies before the commit, the
    # replayed press books once and the rider reads one confirmation with the real number.
    confirmation = enqueue_message(
        ctx.session,
        chat_id=ctx.person.telegram_id,
        text=booked_text(ctx, result, rider, await district_of(ctx, rider)),
        account_id=ctx.person.id,
        keyboard="main_menu",
        ride_id=result.ride.id,
    )
    ctx.outbox.hurry(confirmation)


def booked_text(
    ctx: Context, result: booking.BookingResult, rider: Rider, district: District
) -> str:
    t = ctx.t
    ride = result.ride
    assert ride is not None
    local = ride.pickup_at.astimezone(ctx.settings.tz)
    if result.duplicate:
        lines = [t(ALREADY_BOOKED, number=ride.number)]
    else:
        lines = [
            t(
                "Request №{number} is sent: {day} at {time}, for {name}.",
                number=ride.number,
                day=day_text(t, local.date()),
                time=fmt_time(local.time()),
                name=rider.full_name,
            )
        ]
    if result.return_ride is not None:
        back = result.return_ride.pickup_at.astimezone(ctx.settings.tz)
        lines.append(
            t(
                "The way back is request №{number}, at {time}.",
                number=result.return_ride.number,
                time=fmt_time(back.time()),
            )
        )
    if result.position is not None:
        lines.append(t("Place in the district's queue: {position}.", position=result.position))
    else:
        lines.append(t("State: {state}.", state=t(status_label(ride.status))))
    call = Reason(
        "booked",
        N_(
            "A dispatcher will assign a car, and we will write to you here. "
            "Quote the number {number} if you call the dispatcher."
        ),
        {"number": ride.number},
    )
    lines.append(said(ctx, call, district))
    return "\n".join(lines)
