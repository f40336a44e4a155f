"""Standing orders on the rider's side: asking for one, answering another time, and changing a
running one from /rides (cancel one date, pause, new time from a date on, end).

The conversation asks for whom, the weekdays, the pickup time and the way back, from, to, why,
the first and the end date, who rides along, a wheelchair and a comment, then shows a summary
whose answers can each be changed. Each step takes typed words as well as its buttons, "Back"
goes one question back, and every answer is checked against the district's rules at once; the
service checks everything again when the order is sent. Nothing exists before Confirm.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, time, timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks.standing_orders import (
    DraftField,
    MyOrderAct,
    MyStandingOrder,
    StandingOrderAnswer,
    StandingOrderDraft,
)
from bot.cards.standing_order import weekdays_text
from bot.context import Context
from bot.filters import Button
from bot.forms import NOT_TEXT, Answer, Question, Replied
from bot.i18n import N_, Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, REGULAR, SKIP, main_menu, step_keyboard
from bot.services import booking
from bot.services import standing_order_rules as rules
from bot.services import standing_orders as orders
from bot.services.dates import parse_day
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import Reason
from bot.services.ride_labels import PURPOSE_LABELS, purpose_label
from bot.states.standing_orders import (
    MyOrder,
    MyOrderData,
    OrderData,
    Regular,
    load_order,
    save_order,
)
from handlers.booking import (
    PICK_BUTTON,
    TripForm,
    ask_comment,
    chosen,
    day_text,
    district_of,
    fmt_time,
    leave,
    parse_comment,
    parse_party,
    parse_wheelchair,
    party_options,
    party_text,
    rider_label,
)
from models import District, OrderStatus, Rider

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

WORKDAYS = N_("Weekdays, Monday to Friday")
MON_WED_FRI = N_("Monday, Wednesday, Friday")
TUE_THU = N_("Tuesday, Thursday")
DAY_BUTTONS = {
    WORKDAYS: rules.WORKDAYS,
    MON_WED_FRI: frozenset({1, 3, 5}),
    TUE_THU: frozenset({2, 4}),
}
NO_BACK = N_("No way back")
DATE_HINT = N_("Please type the date, for example: {example} or «7 December».")
OUT_OF_DATE = N_("This summary is out of date. Please use the newest one.")
QUICK_DATES = 3
# How many next dates the rider may pick from when cancelling one or pausing.
PICKABLE_DATES = 6

Parsed = OrderData | Reason | None


async def rider_of(ctx: Context, data: OrderData) -> Rider | None:
    """The rider the order is for, if this person may book for them; read once per step."""
    if data.rider_id is None:
        return None
    key = ("order rider", data.rider_id)
    if key not in ctx.cache:
        ctx.cache[key] = await booking.rider_for(ctx.session, ctx.person, data.rider_id)
    rider: Rider | None = ctx.cache[key]
    return rider


def days_of(data: OrderData) -> frozenset[int]:
    return frozenset(data.weekdays or ())


def sample_day(ctx: Context) -> date:
    """A day a week ahead: time buttons are the district's hours, none of them past yet."""
    return ctx.today + timedelta(days=7)


def date_hint(ctx: Context) -> str:
    return ctx.t(DATE_HINT, example=(ctx.today + timedelta(days=5)).strftime("%d.%m.%Y"))


def date_example(ctx: Context) -> str:
    """The line under a date question: how to type one, without repeating the question."""
    example = (ctx.today + timedelta(days=5)).strftime("%d.%m.%Y")
    return ctx.t("For example: {example} or «7 December».", example=example)


def date_label(t: Translator, day: date) -> str:
    return day_text(t, day)


def picked_date(ctx: Context, text: str | None) -> date | None:
    """A date button's label or a date in words."""
    return parse_day(text or "", ctx.today)


# -- steps --------------------------------------------------------------------------------------


Ask = Callable[[Context, OrderData, Rider], Awaitable[None]]
Parse = Callable[[Message, Context, OrderData, Rider], Awaitable[Parsed]]


def step(
    state: State, ask: Ask, parse: Parse, hint: Callable[[Context], str], location: bool = False
) -> Question[OrderData]:
    """A question of the standing-order form on the shared engine (`bot.forms`): its ask and
    parse see the rider the order is for; a refused end date offers the latest allowed one."""

    async def asked(ctx: Context, data: OrderData) -> None:
        rider = await rider_of(ctx, data)
        if rider is None:
            await ctx.fsm.set_state(Regular.rider)
            await ask_rider(ctx, data, None)
        else:
            await ask(ctx, data, rider)

    async def parsed(message: Message, ctx: Context, data: OrderData) -> Answer[OrderData]:
        rider = await rider_of(ctx, data)
        if rider is None:
            return await parse_rider(message, ctx, data, None)
        result = await parse(message, ctx, data, rider)
        if isinstance(result, Reason) and state == Regular.end_date:
            await refuse_end_date(ctx, result, rider, data)
            return Replied()
        return result

    def hinted(ctx: Context, data: OrderData) -> str:
        return hint(ctx)

    return Question(state, asked, parsed, hinted, "location" if location else "text")


def pick_hint(ctx: Context) -> str:
    return ctx.t(PICK_BUTTON)


def address_hint(ctx: Context) -> str:
    return ctx.t("Type the address in words, for example: Abay street 12, flat 5.")


def time_hint(ctx: Context) -> str:
    return ctx.t("Please type the time as hours:minutes, for example: 09:30.")


# for whom


async def ask_rider(ctx: Context, data: OrderData, rider: Rider | None) -> None:
    riders = await booking.riders_for(ctx.session, ctx.person)
    ctx.reply(
        ctx.t("Who are the regular rides for?"),
        kb.choice_keyboard(ctx.t, [rider_label(r, riders) for r in riders], back=False),
    )


async def parse_rider(message: Message, ctx: Context, data: OrderData, _: Rider | None) -> Parsed:
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
    return data.model_copy(update={"rider_id": picked.id, "wheelchair": None})


# weekdays


async def ask_weekdays(ctx: Context, data: OrderData, rider: Rider) -> None:
    t = ctx.t
    text = t(
        "On which days of the week should the car come for {name}? Press a button or type "
        "the days, for example: Mon Wed Fri.",
        name=rider.full_name,
    )
    ctx.reply(
        text,
        step_keyboard(t, [t(m) for m in DAY_BUTTONS], back=data.several_riders or data.editing),
    )


async def parse_weekdays(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    days = next((d for m, d in DAY_BUTTONS.items() if chosen(ctx.i18n, message.text, m)), None)
    if days is None:
        days = rules.parse_weekdays(message.text or "")
    if days is None:
        return orders.NO_WEEKDAYS
    reason = orders.check_weekdays(await district_of(ctx, rider), days)
    if reason is not None:
        return reason
    return data.model_copy(update={"weekdays": sorted(days)})


# times


async def ask_time(ctx: Context, data: OrderData, rider: Rider) -> None:
    district = await district_of(ctx, rider)
    rules_ = booking.rules_of(district)
    slots = booking.pickup_slots(district, sample_day(ctx), ctx.now, ctx.settings.tz)
    text = ctx.t(
        "At what time should the car come on these days? Cars pick up between {start}–{end}. "
        "Choose below or type the time, for example: 07:30.",
        start=fmt_time(rules_.service_start),
        end=fmt_time(rules_.service_end),
    )
    ctx.reply(text, kb.time_keyboard(ctx.t, [fmt_time(s) for s in slots]))


async def parse_time(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    at = booking.parse_time(message.text or "")
    if at is None:
        return None
    district = await district_of(ctx, rider)
    reason = orders.check_times(district, at, None)
    if reason is not None:
        return reason
    changes: dict[str, object] = {"pickup_time": at}
    if data.return_time is not None and orders.check_times(district, at, data.return_time):
        changes.update(return_time=None, want_return=None)
    return data.model_copy(update=changes)


async def ask_return(ctx: Context, data: OrderData, rider: Rider) -> None:
    ctx.reply(ctx.t("Do you need a ride back the same day?"), kb.return_keyboard(ctx.t))


async def parse_return(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    if chosen(ctx.i18n, message.text, kb.RETURN_YES):
        return data.model_copy(update={"want_return": True, "return_time": None})
    if chosen(ctx.i18n, message.text, kb.RETURN_NO):
        return data.model_copy(update={"want_return": False, "return_time": None})
    return None


async def ask_return_time(ctx: Context, data: OrderData, rider: Rider) -> None:
    assert data.pickup_time is not None
    district = await district_of(ctx, rider)
    slots = booking.return_slots(
        district, sample_day(ctx), data.pickup_time, ctx.now, ctx.settings.tz
    )
    ctx.reply(
        ctx.t("At what time should the car come for the way back? Choose below or type the time."),
        kb.time_keyboard(ctx.t, [fmt_time(s) for s in slots]),
    )


async def parse_return_time(
    message: Message, ctx: Context, data: OrderData, rider: Rider
) -> Parsed:
    at = booking.parse_time(message.text or "")
    if at is None or data.pickup_time is None:
        return None
    reason = orders.check_times(await district_of(ctx, rider), data.pickup_time, at)
    if reason is not None:
        return reason
    return data.model_copy(update={"return_time": at})


# from and to


async def ask_pickup(ctx: Context, data: OrderData, rider: Rider) -> None:
    t = ctx.t
    text = t("Where should the car pick {name} up?", name=rider.full_name)
    if rider.home_address:
        text += "\n" + t("Home address: {address}", address=rider.home_address)
    text += "\n" + t("Press a button, type another address, or send a location pin.")
    ctx.reply(text, kb.pickup_keyboard(t, has_home=bool(rider.home_address), back=True))


async def parse_pickup(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    if message.location is not None:
        return data.model_copy(
            update={
                "pickup_address": None,
                "pickup_lat": message.location.latitude,
                "pickup_lon": message.location.longitude,
            }
        )
    if chosen(ctx.i18n, message.text, kb.HOME) and rider.home_address:
        return data.model_copy(
            update={
                "pickup_address": rider.home_address,
                "pickup_lat": rider.home_lat,
                "pickup_lon": rider.home_lon,
            }
        )
    if chosen(ctx.i18n, message.text, kb.SEND_LOCATION):
        return None
    value = booking.clean_text(message.text)
    if isinstance(value, Reason):
        return value
    return data.model_copy(
        update={"pickup_address": value, "pickup_lat": None, "pickup_lon": None}
    )


async def ask_pickup_details(ctx: Context, data: OrderData, rider: Rider) -> None:
    ctx.reply(
        ctx.t(
            "Got the location. Please add the address in words (street, house, entrance) so "
            "the driver finds the place, or press Skip."
        ),
        kb.comment_keyboard(ctx.t),
    )


async def parse_pickup_details(
    message: Message, ctx: Context, data: OrderData, rider: Rider
) -> Parsed:
    if chosen(ctx.i18n, message.text, SKIP):
        where = ctx.t(
            "Location pin {lat}, {lon}",
            lat=f"{data.pickup_lat or 0:.5f}",
            lon=f"{data.pickup_lon or 0:.5f}",
        )
        return data.model_copy(update={"pickup_address": where})
    value = booking.clean_text(message.text)
    if isinstance(value, Reason):
        return value
    return data.model_copy(update={"pickup_address": value})


def offer_home(data: OrderData, rider: Rider) -> bool:
    return bool(rider.home_address) and data.pickup_address != rider.home_address


async def ask_destination(ctx: Context, data: OrderData, rider: Rider) -> None:
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
    message: Message, ctx: Context, data: OrderData, rider: Rider
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


async def ask_purpose(ctx: Context, data: OrderData, rider: Rider) -> None:
    ctx.reply(ctx.t("What are the trips for?"), kb.purpose_keyboard(ctx.t))


async def parse_purpose(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    for code, msgid in PURPOSE_LABELS.items():
        if chosen(ctx.i18n, message.text, msgid):
            return data.model_copy(update={"purpose": code})
    return None


# dates


def first_dates(ctx: Context, data: OrderData, district: District) -> list[date]:
    earliest = orders.earliest_first_date(district, ctx.now, ctx.settings.tz)
    found = rules.weekday_dates(days_of(data), earliest, earliest + timedelta(days=21))
    return found[:QUICK_DATES]


async def ask_first_date(ctx: Context, data: OrderData, rider: Rider) -> None:
    t = ctx.t
    quick = first_dates(ctx, data, await district_of(ctx, rider))
    ctx.reply(
        t("From which date should the rides start? Choose below or type the date.")
        + "\n"
        + date_example(ctx),
        step_keyboard(t, [date_label(t, d) for d in quick]),
    )


async def parse_first_date(
    message: Message, ctx: Context, data: OrderData, rider: Rider
) -> Parsed:
    day = picked_date(ctx, message.text)
    if day is None:
        return None
    district = await district_of(ctx, rider)
    reason = orders.check_first_date(rider, district, day, ctx.now, ctx.settings.tz)
    if reason is not None:
        return reason
    changes: dict[str, object] = {"first_date": day, "latest_end": None}
    if data.end_date is not None and orders.check_end_date(rider, district, day, data.end_date):
        changes["end_date"] = None
    return data.model_copy(update=changes)


def end_dates(data: OrderData, latest: date) -> list[date]:
    """A month after the first date (when allowed), and the latest date allowed."""
    assert data.first_date is not None
    month = data.first_date + timedelta(days=30)
    return [month, latest] if month < latest else [latest]


async def ask_end_date(ctx: Context, data: OrderData, rider: Rider) -> None:
    t = ctx.t
    assert data.first_date is not None
    latest = orders.latest_end_for(rider, await district_of(ctx, rider), data.first_date)
    text = t(
        "Until which date? The latest possible end date is {date}. Choose below or type the date.",
        date=date_label(t, latest),
    )
    ctx.reply(text, step_keyboard(t, [date_label(t, d) for d in end_dates(data, latest)]))


async def parse_end_date(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    day = picked_date(ctx, message.text)
    if day is None or data.first_date is None:
        return None
    district = await district_of(ctx, rider)
    reason = orders.check_end_date(rider, district, data.first_date, day)
    if reason is not None:
        return reason
    return data.model_copy(update={"end_date": day, "latest_end": None})


async def refuse_end_date(ctx: Context, reason: Reason, rider: Rider, data: OrderData) -> None:
    """The refusal says why, and the latest date allowed is one button away."""
    assert data.first_date is not None
    latest = orders.latest_end_for(rider, await district_of(ctx, rider), data.first_date)
    ctx.reply(reason.render(ctx.t), step_keyboard(ctx.t, [date_label(ctx.t, latest)]))


# who rides along, wheelchair, comment


async def ask_party(ctx: Context, data: OrderData, rider: Rider) -> None:
    options = party_options(await district_of(ctx, rider), rider)
    ctx.reply(
        ctx.t("Who rides along with {name}?", name=rider.full_name),
        kb.choice_keyboard(ctx.t, [party_text(ctx.t, a, c) for a, c in options]),
    )


async def ask_wheelchair(ctx: Context, data: OrderData, rider: Rider) -> None:
    ctx.reply(
        ctx.t(
            "Will {name} travel in a wheelchair on these rides? Then a car with a ramp or lift "
            "will come.",
            name=rider.full_name,
        ),
        kb.wheelchair_keyboard(ctx.t, profile_says=rider.needs_wheelchair),
    )


def comment_hint(ctx: Context) -> str:
    return ctx.t("Type the comment, or press Skip.")


# summary

EDIT_LABELS: dict[DraftField, str] = {
    DraftField.RIDER: N_("Change the rider"),
    DraftField.DAYS: N_("Change the days"),
    DraftField.TIME: N_("Change time"),
    DraftField.PICKUP: N_("Change pickup"),
    DraftField.DESTINATION: N_("Change destination"),
    DraftField.PURPOSE: N_("Change purpose"),
    DraftField.DATES: N_("Change the dates"),
    DraftField.PARTY: N_("Change who rides along"),
    DraftField.WHEELCHAIR: N_("Change wheelchair"),
    DraftField.COMMENT: N_("Change comment"),
}
FIELD_STEPS: dict[DraftField, State] = {
    DraftField.RIDER: Regular.rider,
    DraftField.DAYS: Regular.weekdays,
    DraftField.TIME: Regular.time,
    DraftField.PICKUP: Regular.pickup,
    DraftField.DESTINATION: Regular.destination,
    DraftField.PURPOSE: Regular.purpose,
    DraftField.DATES: Regular.first_date,
    DraftField.PARTY: Regular.party,
    DraftField.WHEELCHAIR: Regular.wheelchair,
    DraftField.COMMENT: Regular.comment,
}


def times_text(t: Translator, pickup: time, back: time | None) -> str:
    if back is None:
        return t("pickup at {time}, no way back", time=fmt_time(pickup))
    return t("pickup at {time}, way back at {back}", time=fmt_time(pickup), back=fmt_time(back))


def summary_text(ctx: Context, data: OrderData, rider: Rider) -> str:
    t = ctx.t
    assert data.pickup_time is not None and data.first_date and data.end_date
    lines = [
        t("Please check the standing order:"),
        t("Rider: {value}", value=rider.full_name),
        t("Days: {value}", value=weekdays_text(t, sorted(days_of(data)))),
        t("Time: {value}", value=times_text(t, data.pickup_time, data.return_time)),
        t("From: {value}", value=data.pickup_address or ""),
        t("To: {value}", value=data.destination or ""),
        t("Purpose: {value}", value=t(purpose_label(data.purpose or "other"))),
        t(
            "Dates: from {first} to {end}",
            first=date_label(t, data.first_date),
            end=date_label(t, data.end_date),
        ),
        t("Rides along: {value}", value=party_text(t, bool(data.assistant), data.companions or 0)),
        t("Wheelchair: yes") if data.wheelchair else t("Wheelchair: no"),
        t("Comment: {value}", value=data.comment) if data.comment else t("Comment: none"),
    ]
    return "\n".join(lines)


def summary_keyboard(t: Translator, data: OrderData) -> InlineKeyboardMarkup:
    key = data.key or ""
    fields = [f for f in EDIT_LABELS if f is not DraftField.RIDER or data.several_riders]
    edits = [
        InlineKeyboardButton(
            text=t(EDIT_LABELS[f]), callback_data=StandingOrderDraft(field=f, key=key).pack()
        )
        for f in fields
    ]
    confirm = StandingOrderDraft(field=DraftField.CONFIRM, key=key).pack()
    rows = [[InlineKeyboardButton(text=t(kb.CONFIRM), callback_data=confirm)]]
    rows.extend(edits[i : i + 2] for i in range(0, len(edits), 2))
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def ask_summary(ctx: Context, data: OrderData, rider: Rider) -> None:
    """A new key per summary shown: its buttons confirm this version of the order only."""
    fresh = data.model_copy(update={"key": booking.new_request_key()[:16], "editing": True})
    await save_order(ctx.fsm, fresh)
    ctx.reply(
        ctx.t("Almost done. Check the standing order and press “Confirm the request”."),
        kb.summary_reply_keyboard(ctx.t),
    )
    ctx.reply(summary_text(ctx, fresh, rider), summary_keyboard(ctx.t, fresh))


async def parse_summary(message: Message, ctx: Context, data: OrderData, rider: Rider) -> Parsed:
    return None


def summary_hint(ctx: Context) -> str:
    return ctx.t("Press “Confirm the request”, or a “Change” button under the summary.")


STEPS: list[Question[OrderData]] = [
    step(Regular.rider, ask_rider, parse_rider, pick_hint),
    step(Regular.weekdays, ask_weekdays, parse_weekdays, pick_hint),
    step(Regular.time, ask_time, parse_time, time_hint),
    step(Regular.return_trip, ask_return, parse_return, pick_hint),
    step(Regular.return_time, ask_return_time, parse_return_time, time_hint),
    step(Regular.pickup, ask_pickup, parse_pickup, address_hint, location=True),
    step(Regular.pickup_details, ask_pickup_details, parse_pickup_details, address_hint),
    step(Regular.destination, ask_destination, parse_destination, address_hint),
    step(Regular.purpose, ask_purpose, parse_purpose, pick_hint),
    step(Regular.first_date, ask_first_date, parse_first_date, date_hint),
    step(Regular.end_date, ask_end_date, parse_end_date, date_hint),
    step(Regular.party, ask_party, parse_party, pick_hint),
    step(Regular.wheelchair, ask_wheelchair, parse_wheelchair, pick_hint),
    step(Regular.comment, ask_comment, parse_comment, comment_hint),
    step(Regular.summary, ask_summary, parse_summary, summary_hint),
]
BY_STATE = {question.state.state: question for question in STEPS}
ORDER = [question.state for question in STEPS]


def first_unanswered(data: OrderData) -> State | None:
    checks: list[tuple[State, bool]] = [
        (Regular.rider, data.rider_id is None),
        (Regular.weekdays, not data.weekdays),
        (Regular.time, data.pickup_time is None),
        (Regular.return_trip, data.want_return is None),
        (Regular.return_time, bool(data.want_return) and data.return_time is None),
        (Regular.pickup, data.pickup_address is None and data.pickup_lat is None),
        (Regular.pickup_details, data.pickup_address is None),
        (Regular.destination, data.destination is None),
        (Regular.purpose, data.purpose is None),
        (Regular.first_date, data.first_date is None),
        (Regular.end_date, data.end_date is None),
        (Regular.party, data.assistant is None or data.companions is None),
        (Regular.wheelchair, data.wheelchair is None),
        (Regular.comment, data.comment is None),
    ]
    return next((state for state, missing in checks if missing), None)


def applies(state: State, data: OrderData, *, going_back: bool) -> bool:
    if state == Regular.rider:
        return data.several_riders
    if state == Regular.pickup_details:
        return not going_back and data.pickup_lat is not None and data.pickup_address is None
    if state == Regular.return_time:
        return bool(data.want_return)
    return True


def following(state: State, data: OrderData) -> State:
    """After an answer: the next question; once at the summary, the next unanswered one
    (a new first date asks the end date again when that no longer fits)."""
    if data.editing:
        if state == Regular.first_date and data.end_date is not None:
            return Regular.end_date
        return first_unanswered(data) or Regular.summary
    index = ORDER.index(state)
    for candidate in ORDER[index + 1 :]:
        if applies(candidate, data, going_back=False):
            return candidate
    return Regular.summary


def previous(state: State, data: OrderData) -> State | None:
    if data.editing and state != Regular.summary and first_unanswered(data) is None:
        return Regular.summary
    index = ORDER.index(state)
    for candidate in reversed(ORDER[:index]):
        if applies(candidate, data, going_back=True):
            return candidate
    return None


async def go_to(ctx: Context, data: OrderData, state: State, rider: Rider | None = None) -> None:
    """Ask a question of the form (the rider is read from the draft, once per step)."""
    await FORM.go_to(ctx, data, BY_STATE[state.state or ""])


# -- entry points -------------------------------------------------------------------------------


@router.message(Command("regular"), StateFilter("*"))
@router.message(Button(REGULAR), StateFilter("*"))
async def start_order(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    riders = await booking.riders_for(ctx.session, ctx.person)
    if not riders:
        await leave(ctx, booking.NO_RIDERS.render(ctx.t))
        return
    data = OrderData(several_riders=len(riders) > 1)
    rider: Rider | None = None
    if len(riders) == 1:
        rider = riders[0]
        reason = booking.check_rider(
            rider, await district_of(ctx, rider), ctx.now, ctx.settings.tz
        )
        if reason is not None:
            await leave(ctx, reason.render(ctx.t))
            return
        data = data.model_copy(update={"rider_id": rider.id})
    ctx.reply(
        ctx.t(
            "A standing order books the same trip on the same days by itself, for example "
            "dialysis on Monday, Wednesday and Friday. A dispatcher approves it once."
        )
    )
    await go_to(ctx, data, first_unanswered(data) or Regular.summary, rider)


class StandingOrderForm(TripForm[OrderData]):
    """The standing-order conversation, shaped like a booking's; its own is Confirm on the
    summary."""

    async def load(self, ctx: Context) -> OrderData:
        return await load_order(ctx.fsm)

    async def save(self, ctx: Context, draft: OrderData) -> None:
        await save_order(ctx.fsm, draft)

    async def intercept(
        self, message: Message, ctx: Context, draft: OrderData, question: Question[OrderData]
    ) -> bool:
        rider = await rider_of(ctx, draft)
        if rider is None and question.state != Regular.rider:
            await leave(ctx, booking.NOT_YOUR_RIDER.render(ctx.t))
            return True
        if question.state == Regular.summary and chosen(ctx.i18n, message.text, kb.CONFIRM):
            assert rider is not None
            await confirm(ctx, draft, draft.key or "", rider)
            return True
        return False


FORM = StandingOrderForm(
    STEPS, following=following, previous=previous, summary=Regular.summary, rider=rider_of
)


@router.message(StateFilter(Regular))
async def on_answer(message: Message, ctx: Context) -> None:
    """Every answer of every step: Back, bad input, or the next question."""
    await FORM.handle(message, ctx)


@router.callback_query(StandingOrderDraft.filter(), StateFilter("*"))
async def on_summary_button(
    query: CallbackQuery, callback_data: StandingOrderDraft, ctx: Context
) -> None:
    t = ctx.t
    data = await load_order(ctx.fsm)
    current = await ctx.fsm.get_state() == Regular.summary.state
    if not current or data.key != callback_data.key:
        ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    rider = await rider_of(ctx, data)
    if rider is None:
        await leave(ctx, booking.NOT_YOUR_RIDER.render(t))
        return
    if callback_data.field is DraftField.CONFIRM:
        await confirm(ctx, data, callback_data.key, rider)
        return
    target = FIELD_STEPS.get(callback_data.field)
    if target is None or (target == Regular.rider and not data.several_riders):
        ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    await go_to(ctx, data, target, rider)


def draft_of(data: OrderData, rider: Rider) -> orders.OrderDraft:
    assert data.pickup_time is not None and data.first_date and data.end_date
    return orders.OrderDraft(
        rider_id=rider.id,
        weekdays=days_of(data),
        pickup_time=data.pickup_time,
        return_time=data.return_time if data.want_return else None,
        pickup_address=data.pickup_address or "",
        pickup_lat=data.pickup_lat,
        pickup_lon=data.pickup_lon,
        destination=data.destination or "",
        purpose=data.purpose or "other",
        first_date=data.first_date,
        end_date=data.end_date,
        assistant=bool(data.assistant),
        companions=data.companions or 0,
        wheelchair=bool(data.wheelchair),
        comment=data.comment or "",
    )


async def confirm(ctx: Context, data: OrderData, key: str, rider: Rider) -> None:
    """Send the order to the desk once; a refusal leads back to the answer to change."""
    t = ctx.t
    incomplete = first_unanswered(data)
    if incomplete is not None or not key:
        await go_to(ctx, data, incomplete or Regular.summary, rider)
        return
    result = await orders.create_order(
        ctx.session, ctx.person, draft_of(data, rider), ctx.now, tz=ctx.settings.tz
    )
    if result.reason is not None or result.order is None:
        reason = result.reason or orders.NO_DATES
        if result.latest_end is not None:
            await ctx.fsm.set_state(Regular.end_date)
            await save_order(ctx.fsm, data.model_copy(update={"end_date": None}))
            await refuse_end_date(ctx, reason, rider, data)
            return
        ctx.reply(
            reason.render(t) + "\n" + t("Change the request with the buttons under the summary.")
        )
        return
    await ctx.fsm.clear()
    order = result.order
    ctx.reply(
        t(
            "Standing order №{number} is sent to the dispatchers: {days}, {times}, from {first} "
            "to {end}. We will write to you here when a dispatcher has looked at it.",
            number=order.id,
            days=weekdays_text(t, order.weekdays),
            times=times_text(t, order.pickup_time, order.return_time),
            first=date_label(t, order.first_date),
            end=date_label(t, order.end_date),
        ),
        main_menu(t),
    )


# -- the rider's answer to another time ---------------------------------------------------------


@router.callback_query(StandingOrderAnswer.filter(), StateFilter("*"))
async def on_proposal_answer(
    query: CallbackQuery, callback_data: StandingOrderAnswer, ctx: Context
) -> None:
    t = ctx.t
    result = await orders.answer_proposal(
        ctx.session, ctx.person, callback_data.order, callback_data.accept, ctx.now
    )
    if result.reason is not None or result.order is None:
        ctx.toast((result.reason or orders.ORDER_NOT_FOUND).render(t), alert=True)
        ctx.edit_markup(query.message, None)
        return
    order = result.order
    ctx.edit_markup(query.message, None)
    if callback_data.accept:
        text = t(
            "Standing order №{number} is approved with the new time: {times}. The rides are "
            "booked by themselves; you will see them in /rides.",
            number=order.id,
            times=times_text(t, order.pickup_time, order.return_time),
        )
    else:
        text = t(
            "Standing order №{number} is closed. You can still book each ride in /book.",
            number=order.id,
        )
    ctx.reply(text, main_menu(t))


# -- standing orders in /rides ------------------------------------------------------------------


def order_text(t: Translator, view: orders.OrderView, several: bool) -> str:
    order = view.order
    if order.status == OrderStatus.PENDING and order.proposed_time is not None:
        state = t("another time offered, waiting for your answer")
    elif order.status == OrderStatus.PENDING:
        state = t("waiting for a dispatcher")
    else:
        state = t("running")
    lines = [
        t("Standing order №{number}: {state}.", number=order.id, state=state),
        t(
            "{days}, {times}",
            days=weekdays_text(t, order.weekdays),
            times=times_text(t, order.pickup_time, order.return_time),
        ),
        t("{pickup} → {destination}", pickup=order.pickup_address, destination=order.destination),
        t(
            "Dates: from {first} to {end}",
            first=date_label(t, order.first_date),
            end=date_label(t, order.end_date),
        ),
    ]
    if several:
        lines.insert(1, t("Rider: {value}", value=view.rider.full_name))
    if view.next_dates:
        lines.append(
            t(
                "Next rides: {dates}",
                dates=", ".join(date_label(t, d) for d in view.next_dates),
            )
        )
    if view.skipped:
        lines.append(
            t(
                "No ride on: {dates}",
                dates=", ".join(f"{date_label(t, s.day)} ({t(s.label)})" for s in view.skipped),
            )
        )
    return "\n".join(lines)


def order_keyboard(t: Translator, view: orders.OrderView) -> InlineKeyboardMarkup | None:
    order = view.order

    def button(act: MyOrderAct, msgid: str) -> list[InlineKeyboardButton]:
        data = MyStandingOrder(order=order.id, act=act).pack()
        return [InlineKeyboardButton(text=t(msgid), callback_data=data)]

    rows = []
    if order.status == OrderStatus.APPROVED:
        rows += [
            button(MyOrderAct.CANCEL_DATE, N_("Cancel one date")),
            button(MyOrderAct.PAUSE, N_("Pause between two dates")),
            button(MyOrderAct.CHANGE_TIME, N_("Change the time from a date on")),
        ]
    if order.status in (OrderStatus.APPROVED, OrderStatus.PENDING):
        rows.append(button(MyOrderAct.END, N_("End the standing order")))
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def standing_orders_section(ctx: Context) -> None:
    """The person's standing orders for /rides: one message each, with what can be done."""
    views = await orders.orders_of(ctx.session, ctx.person, ctx.now, tz=ctx.settings.tz)
    several = len({v.rider.id for v in views}) > 1
    for view in views:
        ctx.reply(order_text(ctx.t, view, several), order_keyboard(ctx.t, view))


async def pickable_dates(ctx: Context, order_id: int) -> list[date]:
    order = await orders.order_of(ctx.session, ctx.person, order_id)
    if order is None:
        return []
    district = await district_by_id(ctx.session, order.district_id)
    if district is None:
        return []
    return orders.next_dates(order, district, ctx.today, PICKABLE_DATES)


async def ask_date(ctx: Context, state: State, data: MyOrderData, question: str) -> None:
    await ctx.fsm.set_state(state)
    await ctx.fsm.set_data(data.model_dump(mode="json"))
    quick = await pickable_dates(ctx, data.order_id)
    ctx.reply(
        question + "\n" + date_example(ctx),
        step_keyboard(ctx.t, [date_label(ctx.t, d) for d in quick]),
    )


@router.callback_query(MyStandingOrder.filter(), StateFilter("*"))
async def on_order_button(
    query: CallbackQuery, callback_data: MyStandingOrder, ctx: Context
) -> None:
    t = ctx.t
    order = await orders.order_of(ctx.session, ctx.person, callback_data.order)
    if order is None:
        ctx.toast(orders.ORDER_NOT_FOUND.render(t), alert=True)
        return
    act = callback_data.act
    await ctx.fsm.clear()
    data = MyOrderData(order_id=order.id)
    if act is MyOrderAct.END_CONFIRM:
        result = await orders.end_order(ctx.session, ctx.person, order.id, ctx.now)
        ctx.edit_markup(query.message, None)
        if result.reason is not None:
            ctx.reply(result.reason.render(t), main_menu(t))
            return
        ctx.reply(
            t(
                "Standing order №{number} is ended. Its rides that had not started are "
                "cancelled: {count}.",
                number=order.id,
                count=len(result.cancelled_rides),
            ),
            main_menu(t),
        )
        return
    if order.status not in (OrderStatus.APPROVED, OrderStatus.PENDING) or (
        act is not MyOrderAct.END and order.status != OrderStatus.APPROVED
    ):
        ctx.toast(orders.NOT_ACTIVE.render(t), alert=True)
        return
    if act is MyOrderAct.CANCEL_DATE:
        question = t("Which date should have no ride? Choose below or type the date.")
        await ask_date(ctx, MyOrder.cancel_date, data, question)
    elif act is MyOrderAct.PAUSE:
        question = t("From which date should the rides stop? Choose below or type the date.")
        await ask_date(ctx, MyOrder.pause_start, data, question)
    elif act is MyOrderAct.CHANGE_TIME:
        question = t(
            "From which date on should the new time apply? Choose below or type the date."
        )
        await ask_date(ctx, MyOrder.change_from, data, question)
    elif act is MyOrderAct.END:
        keep = MyStandingOrder(order=order.id, act=MyOrderAct.SHOW).pack()
        end = MyStandingOrder(order=order.id, act=MyOrderAct.END_CONFIRM).pack()
        ctx.reply(
            t(
                "End standing order №{number}? Its rides that have not started will be cancelled.",
                number=order.id,
            ),
            InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=t("Yes, end it"), callback_data=end)],
                    [InlineKeyboardButton(text=t("No, keep it"), callback_data=keep)],
                ]
            ),
        )
    else:  # SHOW: keep it as it is
        ctx.edit_markup(query.message, None)
        ctx.toast(t("The standing order stays as it is."))


@router.message(StateFilter(MyOrder))
async def on_change_answer(message: Message, ctx: Context) -> None:
    """The dates and times of a change to a running order, typed or pressed."""
    t = ctx.t
    data = MyOrderData.model_validate(await ctx.fsm.get_data())
    step = await ctx.fsm.get_state()
    if chosen(ctx.i18n, message.text, BACK):
        await leave(ctx, t("Nothing was changed."))
        return
    if not message.text:
        ctx.reply(t(NOT_TEXT))
        return
    tz = ctx.settings.tz
    if step in (MyOrder.change_pickup.state, MyOrder.change_back.state):
        await on_new_time(message, ctx, data, step or "")
        return
    day = picked_date(ctx, message.text)
    if day is None:
        ctx.reply(date_hint(ctx))
        return
    if step == MyOrder.cancel_date.state:
        result = await orders.cancel_occurrence(
            ctx.session, ctx.person, data.order_id, day, ctx.now, tz=tz
        )
        if result.reason is not None:
            ctx.reply(result.reason.render(t))
            return
        await leave(
            ctx,
            t(
                "There will be no ride on {date} in standing order №{number}. The other dates "
                "stay as they are.",
                date=date_label(t, day),
                number=data.order_id,
            ),
        )
    elif step == MyOrder.pause_start.state:
        data = data.model_copy(update={"start": day})
        await ctx.fsm.set_state(MyOrder.pause_end)
        await ctx.fsm.set_data(data.model_dump(mode="json"))
        ctx.reply(
            t(
                "Until which date should the rides stop? The rides start again by themselves "
                "after it."
            )
            + "\n"
            + date_example(ctx),
            step_keyboard(t),
        )
    elif step == MyOrder.pause_end.state:
        assert data.start is not None
        result = await orders.pause(
            ctx.session, ctx.person, data.order_id, data.start, day, ctx.now, tz=tz
        )
        if result.reason is not None:
            ctx.reply(result.reason.render(t))
            return
        await leave(
            ctx,
            t(
                "Standing order №{number} is paused from {start} to {end}. The rides start "
                "again by themselves after that.",
                number=data.order_id,
                start=date_label(t, data.start),
                end=date_label(t, day),
            ),
        )
    elif step == MyOrder.change_from.state:
        order = await orders.order_of(ctx.session, ctx.person, data.order_id)
        if order is None:
            await leave(ctx, orders.ORDER_NOT_FOUND.render(t))
            return
        data = data.model_copy(update={"start": day})
        await ctx.fsm.set_state(MyOrder.change_pickup)
        await ctx.fsm.set_data(data.model_dump(mode="json"))
        district = await district_by_id(ctx.session, order.district_id)
        assert district is not None
        slots = booking.pickup_slots(district, sample_day(ctx), ctx.now, tz)
        ctx.reply(
            t("At what time should the car come from {date} on?", date=date_label(t, day)),
            kb.time_keyboard(t, [fmt_time(s) for s in slots]),
        )


async def on_new_time(message: Message, ctx: Context, data: MyOrderData, step: str) -> None:
    t = ctx.t
    order = await orders.order_of(ctx.session, ctx.person, data.order_id)
    start = data.start
    if order is None or start is None:
        await leave(ctx, orders.ORDER_NOT_FOUND.render(t))
        return
    district = await district_by_id(ctx.session, order.district_id)
    assert district is not None
    back: time | None = None
    if step == MyOrder.change_back.state:
        if data.pickup is None:
            await leave(ctx, t("Nothing was changed."))
            return
        pickup = data.pickup
        if not chosen(ctx.i18n, message.text, NO_BACK):
            back = booking.parse_time(message.text or "")
            if back is None:
                ctx.reply(time_hint(ctx))
                return
    else:
        parsed = booking.parse_time(message.text or "")
        if parsed is None:
            ctx.reply(time_hint(ctx))
            return
        pickup = parsed
        reason = orders.check_times(district, pickup, None)
        if reason is not None:
            ctx.reply(reason.render(t))
            return
        if order.return_time is not None:
            data = data.model_copy(update={"pickup": pickup})
            await ctx.fsm.set_state(MyOrder.change_back)
            await ctx.fsm.set_data(data.model_dump(mode="json"))
            slots = booking.return_slots(
                district, sample_day(ctx), pickup, ctx.now, ctx.settings.tz
            )
            ctx.reply(
                t("And the way back: at what time should the car come?"),
                kb.time_keyboard(t, [t(NO_BACK), *(fmt_time(s) for s in slots)]),
            )
            return
    result = await orders.change_time(
        ctx.session,
        ctx.person,
        order.id,
        start,
        pickup,
        ctx.now,
        back=back,
        tz=ctx.settings.tz,
    )
    if result.reason is not None:
        ctx.reply(result.reason.render(t))
        return
    await leave(
        ctx,
        t(
            "Standing order №{number}: from {date} on, {times}. Rides already booked from that "
            "date are booked again at the new time.",
            number=order.id,
            date=date_label(t, start),
            times=times_text(t, pickup, back),
        ),
    )
