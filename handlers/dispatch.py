"""The district's dispatcher chat: the ride card's buttons, typed answers, and the desk commands.

A district is recognised by the chat and forum topic a press or command comes from; only its
dispatchers (and the administrators) may act. Every press re-reads the ride and changes it only
through `rides.change`, whose conditional update makes one of two simultaneous presses win.
Secondary menus replace the card's buttons in place: a group takes only 20 bot messages a minute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message, User
from pydantic import ValidationError

from bot.callbacks.dispatch import Act, RideAct
from bot.cards import ride as ride_card
from bot.context import Context
from bot.i18n import N_, Translator
from bot.keyboards import dispatch as kb
from bot.services import dispatch, rides
from bot.services.outbox import enqueue_card
from bot.services.rides import Action, Actor
from bot.states.dispatch import DeskInput, DeskInputData
from models import District, Ride, RideEvent, Rider, RideStatus

log = logging.getLogger(__name__)

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))
router.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

S = RideStatus

NOT_A_DESK = N_("This chat is not linked to a district.")
NOT_A_DISPATCHER = N_("Only this district's dispatchers can do this.")
OUT_OF_DATE = N_("This button is out of date. Use the buttons on the request's card.")
NOT_HERE = N_("This request belongs to another district.")
ALREADY = N_("Request №{number} is already: {state}.")
TAKEN_BY = N_("Request №{number} was already taken by {name}.")
DONE = N_("Request №{number}: {state}.")
NO_CAR_FITS = N_("No car of the district suits this ride.")
TOO_EARLY_TO_MOVE = N_(
    "Ride №{number} is on {date} at {time}: too early to mark the car as on its way or "
    "arrived. Press it when the car really leaves; the rider was told nothing."
)
CAR_UNFIT = N_("This car can't take this ride.")
CONFLICT = N_(
    "{car} already has ride №{number} at {time}. Press «Assign anyway» if it can manage both."
)
# The dispatcher types the answer as a plain message in the chat, or as a reply to the card:
# a reply is hard on a phone and with a screen reader (B10). Telegram gives a bot plain group
# messages only with privacy mode off (BotFather /setprivacy) or as a group admin; the hint
# promises plain messages only when the bot said at start that it reads them.
TYPE_REASON = N_("Type the reason in words: a message in this chat, or a reply to this card.")
TYPE_TIME_HINT = N_(
    "Type the new time, for example 14:30 or 26.11 14:30: a message in this chat, or a reply to "
    "this card."
)
TYPE_REASON_REPLY = N_("Reply to this card with the reason, in words.")
TYPE_TIME_REPLY = N_("Reply to this card with the new time, for example 14:30 or 26.11 14:30.")
BAD_REASON = N_("Please type the reason in words, up to 300 characters.")
BAD_TIME = N_("Please type the time as 14:30 or 26.11 14:30.")

TYPED_STATES: dict[Act, State] = {
    Act.REJECT_REASON: DeskInput.reject_reason,
    Act.CANCEL_REASON: DeskInput.cancel_reason,
    Act.PROPOSE_TYPED: DeskInput.proposed_time,
}


@dataclass(frozen=True)
class Desk:
    district: District
    t: Translator
    actor: Actor


async def find_desk(ctx: Context, user: User) -> tuple[Desk | None, str, Translator]:
    """The district of the chat (and forum topic) the update came from, and the acting
    dispatcher; or why not (a message id) and how to say it."""
    assert ctx.chat_id is not None
    session = ctx.session
    district = await dispatch.district_for_chat(session, ctx.chat_id, ctx.topic_id)
    if district is None:
        return None, NOT_A_DESK, ctx.i18n.translator(ctx.settings.default_language)
    t = ctx.i18n.translator(district.language)
    if not await dispatch.is_dispatcher(session, district.id, user.id, ctx.settings.admin_ids):
        return None, NOT_A_DISPATCHER, t
    name = await dispatch.dispatcher_name(session, district.id, user.id) or user.full_name
    return Desk(district, t, Actor("dispatcher", user.id, name[:128])), "", t


def refused_text(t: Translator, ride: Ride | None) -> str:
    """What the loser of a race, or the presser of an old button, is told."""
    if ride is None:
        return t(NOT_HERE)
    if ride.status == S.TAKEN and ride.dispatcher_name:
        return t(TAKEN_BY, number=ride.number, name=ride.dispatcher_name)
    return t(ALREADY, number=ride.number, state=t(ride_card.desk_status(ride.status)))


async def apply(
    ctx: Context,
    desk: Desk,
    ride: Ride,
    action: Action,
    *,
    reason: str | None = None,
    values: dict[str, object] | None = None,
) -> rides.Outcome:
    """Change the ride and, for a press, say how it went in the button's answer; the card
    itself is refreshed through the outbox."""
    outcome = await rides.change(
        ctx.session,
        ride.id,
        action,
        desk.actor,
        reason=reason,
        values=values,
        now=ctx.now,
        district_id=desk.district.id,
    )
    t = desk.t
    if outcome.ok and outcome.ride is not None:
        state = t(ride_card.desk_status(outcome.ride.status))
        ctx.toast(t(DONE, number=outcome.ride.number, state=state))
    else:
        ctx.toast(refused_text(t, outcome.ride), alert=True)
    return outcome


@router.callback_query(RideAct.filter())
async def card_pressed(
    query: CallbackQuery,
    callback_data: RideAct,
    ctx: Context,
    group_messages_seen: bool = False,
) -> None:
    """`group_messages_seen`: the bot reads plain group messages (set at start, see
    `bot.runner`), so a typed answer need not be a reply."""
    message = query.message
    if not isinstance(message, Message):
        default = ctx.i18n.translator(ctx.settings.default_language)
        ctx.toast(default(OUT_OF_DATE), alert=True)
        return
    desk, why, t = await find_desk(ctx, query.from_user)
    if desk is None:
        ctx.toast(t(why), alert=True)
        return
    ride = await ctx.session.get(Ride, callback_data.ride, populate_existing=True)
    if ride is None or ride.district_id != desk.district.id:
        log.warning(
            "card press for a ride of another district", extra={"ride_id": callback_data.ride}
        )
        ctx.toast(t(NOT_HERE), alert=True)
        return
    if ride.card_message_id is None and just_posted(message, desk.district):
        # The sender posted this card and has not recorded it yet: it is the ride's card.
        ride.card_chat_id, ride.card_message_id = message.chat.id, message.message_id
    if ride.card_message_id != message.message_id or ride.card_chat_id != message.chat.id:
        ctx.toast(t(OUT_OF_DATE), alert=True)
        return
    act = callback_data.act
    if act is not Act.BACK and not kb.allows(ride.status, act):
        ctx.toast(refused_text(t, ride), alert=True)
        # The card may show an old state (a refresh still queued): make sure it catches up.
        await refresh_card(ctx, desk.district, ride)
        return
    await handle_act(ctx, message, callback_data, desk, ride, plain=group_messages_seen)


def just_posted(message: Message, district: District) -> bool:
    """A message of the bot's own in the district's chat (and topic)."""
    return (
        message.chat.id == district.chat_id
        and message.from_user is not None
        and message.from_user.is_bot
        and (district.topic_id is None or message.message_thread_id == district.topic_id)
    )


async def refresh_card(ctx: Context, district: District, ride: Ride) -> None:
    await enqueue_card(
        ctx.session,
        kind="ride_card",
        subject_id=ride.id,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        ride_id=ride.id,
    )


async def handle_act(
    ctx: Context, card: Message, data: RideAct, desk: Desk, ride: Ride, *, plain: bool = False
) -> None:
    """One press on a ride's card. Secondary menus replace the card's buttons in place."""
    session, state = ctx.session, ctx.fsm
    t, act, tz = desk.t, data.act, ctx.settings.tz
    simple = {
        Act.TAKE: Action.TAKE,
        Act.EN_ROUTE: Action.EN_ROUTE,
        Act.ARRIVED: Action.ARRIVED,
        Act.ON_BOARD: Action.ON_BOARD,
        Act.COMPLETE: Action.COMPLETE,
        Act.NO_SHOW_CONFIRM: Action.NO_SHOW,
        Act.ACCEPT_PHONE: Action.ACCEPT,
        Act.DECLINE_PHONE_CONFIRM: Action.DECLINE,
    }
    if act in simple:
        if act in (Act.EN_ROUTE, Act.ARRIVED) and dispatch.too_early_to_move(
            ride.pickup_at, ctx.now
        ):
            local = t.local(ride.pickup_at)
            when = {"date": t.date(local), "time": local.strftime("%H:%M")}
            ctx.toast(t(TOO_EARLY_TO_MOVE, number=ride.number, **when), alert=True)
            return
        outcome = await apply(ctx, desk, ride, simple[act])
        if outcome.ok and act is Act.TAKE:
            took = t("You took request №{number}. Choose a car on the card.", number=ride.number)
            ctx.toast(took)
        await state.clear()
    elif act is Act.BACK:
        await state.clear()
        _, markup = await ride_card.build(session, ride, desk.district, ctx.i18n)
        ctx.edit_markup(card, markup)
    elif act is Act.VEHICLES:
        options = await dispatch.vehicle_options(session, ride, desk.district)
        if not options:
            none = not await dispatch.has_vehicles(session, desk.district.id)
            ctx.toast(t(ride_card.NO_CARS_AT_ALL if none else NO_CAR_FITS), alert=True)
            return
        ctx.edit_markup(card, kb.vehicles_menu(t, ride.id, options, tz))
    elif act in (Act.VEHICLE, Act.VEHICLE_FORCE):
        options = await dispatch.vehicle_options(session, ride, desk.district)
        option = next((o for o in options if o.vehicle.id == data.arg), None)
        if option is None:
            ctx.toast(t(CAR_UNFIT), alert=True)
            return
        if option.conflicts and act is Act.VEHICLE:
            other = option.conflicts[0]
            text = t(
                CONFLICT,
                car=kb.car_name(option),
                number=other.number,
                time=other.pickup_at.astimezone(tz).strftime("%H:%M"),
            )
            ctx.toast(text, alert=True)
            ctx.edit_markup(card, kb.confirm_vehicle_menu(t, ride.id, option))
            return
        await apply(ctx, desk, ride, Action.ASSIGN, values={"vehicle_id": option.vehicle.id})
        await state.clear()
    elif act is Act.PROPOSE:
        rules = dispatch.rules_of(desk.district)
        slots = dispatch.proposal_slots(ride.pickup_at, ctx.now, tz, rules)
        ctx.edit_markup(card, kb.slots_menu(t, ride.id, slots, ride.pickup_at, tz))
    elif act is Act.SLOT:
        try:
            at = datetime.fromtimestamp(data.arg * 60, UTC)
        except (OverflowError, OSError, ValueError):
            ctx.toast(t(OUT_OF_DATE), alert=True)
            return
        problem = dispatch.proposal_problem(at, ctx.now)
        if problem is not None:
            ctx.toast(problem.render(t), alert=True)
            return
        await apply(ctx, desk, ride, Action.PROPOSE, values={"proposed_at": at})
        await state.clear()
    elif act is Act.REJECT:
        reasons = kb.reasons_menu(t, ride.id, Act.REJECT_REASON, dispatch.REJECT_REASONS)
        ctx.edit_markup(card, reasons)
    elif act is Act.CANCEL:
        reasons = kb.reasons_menu(t, ride.id, Act.CANCEL_REASON, dispatch.CANCEL_REASONS)
        ctx.edit_markup(card, reasons)
    elif act in (Act.REJECT_REASON, Act.CANCEL_REASON):
        listed = dispatch.REJECT_REASONS if act is Act.REJECT_REASON else dispatch.CANCEL_REASONS
        action = Action.REJECT if act is Act.REJECT_REASON else Action.CANCEL
        codes = list(listed)
        if 0 <= data.arg < len(codes):
            await apply(ctx, desk, ride, action, reason=codes[data.arg])
            await state.clear()
        elif data.arg == len(codes):  # "other": typed as a reply to the card
            hint = TYPE_REASON if plain else TYPE_REASON_REPLY
            await start_typing(ctx, card, desk, ride, TYPED_STATES[act], hint)
        else:
            ctx.toast(t(OUT_OF_DATE), alert=True)
    elif act is Act.PROPOSE_TYPED:
        hint = TYPE_TIME_HINT if plain else TYPE_TIME_REPLY
        await start_typing(ctx, card, desk, ride, DeskInput.proposed_time, hint)
    elif act is Act.NO_SHOW:
        confirm = kb.confirm_menu(t, ride.id, Act.NO_SHOW_CONFIRM, kb.CONFIRM_NO_SHOW)
        ctx.edit_markup(card, confirm)
    elif act is Act.DECLINE_PHONE:
        confirm = kb.confirm_menu(t, ride.id, Act.DECLINE_PHONE_CONFIRM, kb.CONFIRM_DECLINE)
        ctx.edit_markup(card, confirm)


async def start_typing(
    ctx: Context, card: Message, desk: Desk, ride: Ride, step: State, hint: str
) -> None:
    """The dispatcher answers by replying to the card itself: no prompt message is posted."""
    state = ctx.fsm
    await state.set_state(step)
    await state.set_data(
        DeskInputData(ride_id=ride.id, card_message_id=card.message_id).model_dump()
    )
    ctx.toast(desk.t(hint), alert=True)
    ctx.edit_markup(card, kb.back_only(desk.t, ride.id))


@router.message(StateFilter(DeskInput), ~F.text.startswith("/"))
async def typed_answer(message: Message, ctx: Context) -> None:
    """A reason or a time typed by the dispatcher who chose "type it" on a card: a plain message
    in the chat (or its topic), or a reply to that card. A reply to another message is talk."""
    state = ctx.fsm
    try:
        data = DeskInputData.model_validate(await state.get_data())
    except ValidationError:
        await state.clear()
        return
    answer = answers_the_card(message, data.card_message_id)
    if message.from_user is None or answer is None:
        return
    if answer == "plain" and not message.text:
        return  # a sticker or photo dropped in the chat is chatter, not an answer
    desk, why, t = await find_desk(ctx, message.from_user)
    if desk is None:
        await state.clear()
        ctx.reply_to(message.message_id, t(why))
        return
    ride = await ctx.session.get(Ride, data.ride_id, populate_existing=True)
    if ride is None or ride.district_id != desk.district.id:
        await state.clear()
        return
    step = await state.get_state()
    text = dispatch.typed_words(message.text)
    if step == DeskInput.proposed_time.state:
        at = dispatch.parse_time_input(text or "", ride.pickup_at, ctx.settings.tz)
        if at is None:
            ctx.reply_to(message.message_id, t(BAD_TIME))
            return
        problem = dispatch.proposal_problem(at, ctx.now)
        if problem is not None:
            ctx.reply_to(message.message_id, problem.render(t))
            return
        outcome = await apply(ctx, desk, ride, Action.PROPOSE, values={"proposed_at": at})
    else:
        if text is None:
            ctx.reply_to(message.message_id, t(BAD_REASON))
            return
        action = Action.REJECT if step == DeskInput.reject_reason.state else Action.CANCEL
        outcome = await apply(ctx, desk, ride, action, reason=text)
    await state.clear()
    if not outcome.ok:
        ctx.reply_to(message.message_id, refused_text(t, outcome.ride))


def answers_the_card(message: Message, card_message_id: int) -> str | None:
    """ "card" for a reply to the card, "plain" for a message that replies to nothing, None for a
    reply to another message (talk). In a forum topic every message "replies" to the topic's
    first message, which counts as plain."""
    replied = message.reply_to_message
    if replied is None:
        return "plain"
    if replied.message_id == card_message_id:
        return "card"
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return "plain"
    return None


# -- commands -------------------------------------------------------------------------------------


async def desk_for_command(message: Message, ctx: Context) -> Desk | None:
    if message.from_user is None:
        return None
    desk, why, t = await find_desk(ctx, message.from_user)
    if desk is None:
        ctx.reply_to(message.message_id, t(why))
    return desk


def send_lines(ctx: Context, lines: list[str]) -> None:
    """Long lists go out in as few messages as fit, in the chat's (or topic's) thread."""
    for chunk in dispatch.split_text(lines):
        ctx.reply(chunk)


def ride_line(
    t: Translator, ride: Ride, rider: Rider | None, district: District, tz: tzinfo
) -> str:
    when = ride.pickup_at.astimezone(tz).strftime("%d.%m %H:%M")
    line = t(
        "№{number} · {when} · {state} · {name}",
        number=ride.number,
        when=when,
        state=t(ride_card.desk_status(ride.status)),
        name=rider.full_name if rider else "—",
    )
    link = dispatch.card_link(district.chat_id, ride.card_message_id, district.topic_id)
    return f"{line}\n{link}" if link else line


@router.message(Command("queue"))
async def queue(message: Message, ctx: Context) -> None:
    desk = await desk_for_command(message, ctx)
    if desk is None:
        return
    t = desk.t
    rides_open = await dispatch.open_queue(ctx.session, desk.district.id)
    if not rides_open:
        ctx.reply(t("No open requests."))
        return
    lines = [t("Open requests, oldest first: {count}", count=len(rides_open))]
    for ride in rides_open:
        rider = await ctx.session.get(Rider, ride.rider_id)
        lines.append(ride_line(t, ride, rider, desk.district, ctx.settings.tz))
    send_lines(ctx, lines)


@router.message(Command("today", "tomorrow"))
async def day_manifest(message: Message, command: CommandObject, ctx: Context) -> None:
    desk = await desk_for_command(message, ctx)
    if desk is None:
        return
    t, tz = desk.t, ctx.settings.tz
    day = ctx.today + timedelta(days=1 if command.command == "tomorrow" else 0)
    groups = await dispatch.manifest(ctx.session, desk.district.id, day, tz)
    if not groups:
        ctx.reply(t("No rides on {date}.", date=day.strftime("%d.%m.%Y")))
        return
    lines = [t("Rides on {date}, by car:", date=day.strftime("%d.%m.%Y"))]
    for group in groups:
        lines.append("")
        if group.vehicle is None:
            lines.append(t("Without a car yet:"))
        else:
            v = group.vehicle
            lines.append(
                t(
                    "{make} {plate}, driver {driver}:",
                    make=v.make,
                    plate=v.plate,
                    driver=v.driver_name,
                )
            )
        for ride in group.rides:
            rider = await ctx.session.get(Rider, ride.rider_id)
            lines.append(
                t(
                    "{time} — №{number} · {state} · {name} · {origin} → {destination}",
                    time=ride.pickup_at.astimezone(tz).strftime("%H:%M"),
                    number=ride.number,
                    state=t(ride_card.desk_status(ride.status)),
                    name=rider.full_name if rider else "—",
                    origin=ride.pickup_address,
                    destination=ride.destination,
                )
            )
    send_lines(ctx, lines)


def event_line(t: Translator, event: RideEvent, tz: tzinfo) -> str:
    who = ride_card.actor_text(t, event)
    old = t(ride_card.desk_status(event.from_status)) if event.from_status else t("new request")
    line = t(
        "{when} — {who}: {old} → {new}",
        when=event.at.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
        who=who,
        old=old,
        new=t(ride_card.desk_status(event.to_status)),
    )
    if event.reason:
        line += "\n" + t("Reason: {reason}", reason=ride_card.reason_text(t, event.reason))
    return line


@router.message(Command("ride"))
async def ride_details(message: Message, command: CommandObject, ctx: Context) -> None:
    desk = await desk_for_command(message, ctx)
    if desk is None:
        return
    t, tz = desk.t, ctx.settings.tz
    number = dispatch.ride_number(command.args)
    if number is None:
        ctx.reply_to(message.message_id, t("Write the ride's number, for example: /ride 12"))
        return
    ride = await ctx.session.get(Ride, number)
    if ride is None or ride.district_id != desk.district.id:
        text = t("Ride №{number} was not found in this district.", number=number)
        ctx.reply_to(message.message_id, text)
        return
    text, _ = await ride_card.build(ctx.session, ride, desk.district, ctx.i18n)
    lines = [text, "", t("History:")]
    lines += [event_line(t, event, tz) for event in await rides.history(ctx.session, ride.id)]
    link = dispatch.card_link(desk.district.chat_id, ride.card_message_id, desk.district.topic_id)
    if link:
        lines += ["", link]
    send_lines(ctx, lines)


@router.message(Command("find"))
async def find(message: Message, command: CommandObject, ctx: Context) -> None:
    desk = await desk_for_command(message, ctx)
    if desk is None:
        return
    t = desk.t
    query = (command.args or "").strip()
    if len(query) < 2:
        ctx.reply_to(
            message.message_id,
            t("Write a phone number or part of a name, for example: /find 87011234567"),
        )
        return
    found = await dispatch.find_riders(ctx.session, desk.district.id, query[:100])
    if not found:
        ctx.reply_to(message.message_id, t("Nobody found for «{query}».", query=query[:100]))
        return
    lines: list[str] = []
    for item in found:
        rider = item.rider
        lines.append("")
        lines.append(
            t(
                "{name}, {phone}, verified until {date}",
                name=rider.full_name,
                phone=rider.phone,
                date=ride_card.verified_until(t, rider),
            )
        )
        lines += [
            t("Representative: {name}, {phone}", name=name or "—", phone=phone)
            for name, phone in item.contacts
        ]
        if not item.rides:
            lines.append(t("No rides yet."))
        lines += [ride_line(t, ride, rider, desk.district, ctx.settings.tz) for ride in item.rides]
    send_lines(ctx, lines[1:])
