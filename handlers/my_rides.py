"""My rides: the rides of the person and of everyone they book for, each with its history, and
what can be done with one: cancel it (with a reason), book the way back, book it again.

Every button re-reads the ride and checks that it belongs to one of the person's riders, so an
old or forged button shows nothing of someone else's and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.types import CallbackQuery, Message

from bot.callbacks.booking import RideAction, RidePress
from bot.context import Context
from bot.filters import Button
from bot.i18n import N_, Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, MY_RIDES, main_menu
from bot.services import booking, limits
from bot.services.booking_rules import is_late_cancellation, weekday_msg
from bot.services.dispatch import reason_msgid
from bot.services.district_cache import district_by_id
from bot.services.help import voice_reply, with_desk_phone
from bot.services.i18n_types import Reason
from bot.services.ride_labels import purpose_label, status_label
from bot.services.rides import history
from bot.states.booking import CancelData, MyRides
from handlers.booking import begin_from_ride, party_text
from handlers.standing_orders import standing_orders_section
from models import Ride, RideEvent, Rider, RideStatus, Vehicle

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

ACTORS = {
    "rider": N_("rider {name}"),
    "representative": N_("representative {name}"),
    "dispatcher": N_("dispatcher {name}"),
}
AUTOMATIC = N_("automatically")
NO_RIDES = N_("You have no rides yet. To book one, press “Book a ride” or send /book.")


def when(t: Translator, instant: datetime, tz: tzinfo) -> str:
    local = instant.astimezone(tz)
    return f"{t(weekday_msg(local.date()))}, {t.date(local)} {local.strftime('%H:%M')}"


def short_when(instant: datetime, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%d.%m %H:%M")


def ride_line(t: Translator, ride: Ride, tz: tzinfo, rider: Rider | None) -> str:
    text = t(
        "№{number}, {when}: {pickup} → {destination}. {state}.",
        number=ride.number,
        when=short_when(ride.pickup_at, tz),
        pickup=ride.pickup_address,
        destination=ride.destination,
        state=t(status_label(ride.status)),
    )
    return f"{rider.full_name}: {text}" if rider is not None else text


def button_label(t: Translator, ride: Ride, tz: tzinfo) -> str:
    return t(
        "№{number} · {when} · {state}",
        number=ride.number,
        when=short_when(ride.pickup_at, tz),
        state=t(status_label(ride.status)),
    )


@router.message(Command("rides"), StateFilter("*"))
@router.message(Button(MY_RIDES), StateFilter("*"))
async def my_rides(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    await send_list(ctx)


async def send_list(ctx: Context) -> None:
    t = ctx.t
    await standing_orders_section(ctx)
    listing = await booking.rides_of(ctx.session, ctx.person)
    if not listing.upcoming and not listing.recent:
        ctx.reply(t(NO_RIDES), main_menu(t))
        return
    tz = ctx.settings.tz
    several = len(listing.riders) > 1
    lines: list[str] = []
    for title, rides in (
        (N_("Upcoming rides:"), listing.upcoming),
        (N_("Recent rides:"), listing.recent),
    ):
        if not rides:
            continue
        if lines:
            lines.append("")
        lines.append(t(title))
        for ride in rides:
            rider = listing.riders.get(ride.rider_id) if several else None
            lines.append(ride_line(t, ride, tz, rider))
    lines.append("")
    lines.append(t("Press a ride to see its details and history."))
    buttons = [(r.id, button_label(t, r, tz)) for r in [*listing.upcoming, *listing.recent]]
    ctx.reply("\n".join(lines), kb.rides_keyboard(t, buttons))


def history_lines(t: Translator, events: list[RideEvent], tz: tzinfo) -> list[str]:
    lines = []
    for event in events:
        actor = ACTORS.get(event.actor_kind)
        who = t(actor, name=event.actor_name or "") if actor else t(AUTOMATIC)
        to_state = t(status_label(event.to_status))
        if event.from_status:
            change = f"{t(status_label(event.from_status))} → {to_state}"
        else:
            change = to_state
        line = t(
            "{when}: {change} ({who})",
            when=short_when(event.at, tz),
            change=change,
            who=who.strip(),
        )
        if event.reason:
            msgid = reason_msgid(event.reason)
            line += "\n   " + t("Reason: {reason}", reason=t(msgid) if msgid else event.reason)
        lines.append(line)
    return lines


# States in which the ride has its car: the details show the car, the driver and the phone.
WITH_CAR = frozenset(
    {
        RideStatus.SCHEDULED,
        RideStatus.EN_ROUTE,
        RideStatus.ARRIVED,
        RideStatus.ON_BOARD,
        RideStatus.COMPLETED,
    }
)


def details_text(
    t: Translator,
    view: booking.RideView,
    events: list[RideEvent],
    tz: tzinfo,
    vehicle: Vehicle | None = None,
) -> str:
    ride = view.ride
    lines = [
        t("Ride №{number}", number=ride.number),
        t("State: {state}.", state=t(status_label(ride.status))),
        t("Rider: {value}", value=view.rider.full_name),
        t("When: {value}", value=when(t, ride.pickup_at, tz)),
        t("From: {value}", value=ride.pickup_address),
        t("To: {value}", value=ride.destination),
        t("Purpose: {value}", value=t(purpose_label(ride.purpose))),
        t("Rides along: {value}", value=party_text(t, ride.assistant, ride.companions)),
        t("Wheelchair: yes") if ride.wheelchair else t("Wheelchair: no"),
    ]
    if ride.comment:
        lines.append(t("Comment: {value}", value=ride.comment))
    if vehicle is not None and ride.status in WITH_CAR:
        # B20: who is coming and whom to call, without scrolling back to the confirmation.
        lines.append(
            t(
                "Car: {make}, {colour}, number plate {plate}. Driver: {driver}, {driver_phone}.",
                make=vehicle.make,
                colour=vehicle.colour_kk if t.lang == "kk" else vehicle.colour_ru,
                plate=vehicle.plate,
                driver=vehicle.driver_name,
                driver_phone=vehicle.driver_phone,
            )
        )
    if ride.return_of is not None:
        lines.append(t("This is the way back of ride №{number}.", number=ride.return_of))
    if view.return_ride is not None:
        lines.append(t("Way back: ride №{number}.", number=view.return_ride.number))
    if ride.cancelled_late:
        lines.append(t("Cancelled late: less than the district's notice before pickup."))
    lines.append("")
    lines.append(t("History:"))
    lines.extend(history_lines(t, events, tz))
    return "\n".join(lines)


@router.callback_query(RidePress.filter(), StateFilter("*"))
async def on_ride_button(query: CallbackQuery, callback_data: RidePress, ctx: Context) -> None:
    t = ctx.t
    if callback_data.action == RideAction.LIST:
        await ctx.fsm.clear()
        await send_list(ctx)
        return
    view = await booking.ride_of(ctx.session, ctx.person, callback_data.ride_id)
    if view is None:
        ctx.toast(booking.RIDE_NOT_FOUND.render(t), alert=True)
        return
    ride = view.ride
    if callback_data.action == RideAction.OPEN:
        events = await history(ctx.session, ride.id)
        can_return = ride.return_of is None and view.return_ride is None
        ctx.reply(
            details_text(
                t,
                view,
                events,
                ctx.settings.tz,
                await ctx.session.get(Vehicle, ride.vehicle_id) if ride.vehicle_id else None,
            ),
            kb.ride_actions_keyboard(
                t, ride.id, can_cancel=view.can_cancel, can_return=can_return
            ),
        )
        return
    if callback_data.action == RideAction.CANCEL:
        if not view.can_cancel:
            phone = await desk_phone(ctx, ride)
            refusal = with_desk_phone(booking.not_cancellable(ride.status), phone)
            ctx.toast(refusal.render(t), alert=True)
            return
        too_many = await cancel_limit(ctx, ride)
        if too_many is not None:
            ctx.toast(too_many, alert=True)
            return
        await ask_cancel_reason(ctx, ride)
        return
    reverse = callback_data.action == RideAction.RETURN
    way_back = None if reverse else view.return_ride
    await begin_from_ride(ctx, ride, reverse=reverse, way_back=way_back)


async def ask_cancel_reason(ctx: Context, ride: Ride) -> None:
    t, state, session = ctx.t, ctx.fsm, ctx.session
    await state.clear()
    await state.set_state(MyRides.cancel_reason)
    await state.set_data(CancelData(ride_id=ride.id).model_dump())
    text = t("Why do you cancel ride №{number}? Choose a reason or type it.", number=ride.number)
    district = await district_by_id(session, ride.district_id)
    rules = booking.rules_of(district) if district is not None else None
    if rules is not None and is_late_cancellation(rules, ride.pickup_at, ctx.now):
        text += "\n" + t(
            "Please note: the pickup is less than {minutes} min away, so this cancellation "
            "counts as late.",
            minutes=rules.late_cancel_minutes,
        )
    ctx.reply(text, kb.cancel_reason_keyboard(t))


NOT_CANCELLED_YET = N_("Ride №{number} is not cancelled yet. Choose a reason below or type it.")
OTHER_WAY_BACK = N_(
    "The way back, ride №{number} on {day} at {time}, is still booked. Cancel it too?"
)
OTHER_THERE = N_(
    "The trip there, ride №{number} on {day} at {time}, is still booked. Cancel it too?"
)
OTHER_STAYS = N_("Ride №{number} stays booked: {day} at {time}.")
OTHER_CANCELLED = N_("Ride №{number} is cancelled too. The dispatcher has been told.")
OTHER_LEG_HINT = N_("Ride №{number} is still booked. Please press one of the two buttons.")
LATE = N_("The cancellation was late: less than the district's notice before pickup.")


async def cancel_limit(ctx: Context, ride: Ride) -> str | None:
    """The refusal, when this rider's cancellations in 24 hours reached the district's limit
    (book, cancel, book again posts a new card each time)."""
    district = await district_by_id(ctx.session, ride.district_id)
    refused = await limits.may_cancel(
        ctx.session, ride.rider_id, limits.limits_of(district), now=ctx.now
    )
    if refused is None:
        return None
    return limits.refusal_text(ctx.t, refused, district.desk_phone if district else None)


async def desk_phone(ctx: Context, ride: Ride | None) -> str | None:
    district = await district_by_id(ctx.session, ride.district_id) if ride is not None else None
    return district.desk_phone if district is not None else None


def leg_when(t: Translator, ride: Ride, tz: tzinfo) -> dict[str, object]:
    local = ride.pickup_at.astimezone(tz)
    return {
        "number": ride.number,
        "day": f"{t(weekday_msg(local.date()))}, {t.date(local)}",
        "time": local.strftime("%H:%M"),
    }


async def ride_stands(ctx: Context) -> str | None:
    """What /cancel or «Stop» says inside cancelling a ride, or None outside it.

    "Stopped. Nothing was saved." would leave the rider guessing whether the ride is cancelled
    (review B2): the ride stays booked, so the answer says so.
    """
    current = await ctx.fsm.get_state()
    if current not in (MyRides.cancel_reason.state, MyRides.other_leg.state):
        return None
    data = CancelData.model_validate(await ctx.fsm.get_data())
    if current == MyRides.cancel_reason.state:
        return ctx.t("Ride №{number} is not cancelled.", number=data.ride_id)
    view = await booking.ride_of(ctx.session, ctx.person, data.ride_id)
    if view is None:
        return None
    return ctx.t(OTHER_STAYS, **leg_when(ctx.t, view.ride, ctx.settings.tz))


@router.message(MyRides.cancel_reason)
async def on_cancel_reason(message: Message, ctx: Context) -> None:
    """Every answer says plainly whether the ride is cancelled (review B2)."""
    t, state = ctx.t, ctx.fsm
    data = CancelData.model_validate(await state.get_data())
    text = (message.text or "").strip()
    if text in ctx.i18n.variants(kb.KEEP_RIDE) or text in ctx.i18n.variants(BACK):
        await state.clear()
        ctx.reply(t("Ride №{number} is not cancelled.", number=data.ride_id), main_menu(t))
        return
    if message.voice or message.audio or message.video_note:
        ride = await ctx.session.get(Ride, data.ride_id)
        ctx.reply(voice_reply(await desk_phone(ctx, ride)).render(t))
        ctx.reply(t(NOT_CANCELLED_YET, number=data.ride_id), kb.cancel_reason_keyboard(t))
        return
    if not message.text:
        ctx.reply(t(NOT_CANCELLED_YET, number=data.ride_id), kb.cancel_reason_keyboard(t))
        return
    why = booking.clean_text(message.text)
    if isinstance(why, Reason):
        ctx.reply(
            why.render(t) + "\n" + t(NOT_CANCELLED_YET, number=data.ride_id),
            kb.cancel_reason_keyboard(t),
        )
        return
    ride = await ctx.session.get(Ride, data.ride_id)
    too_many = await cancel_limit(ctx, ride) if ride is not None else None
    if too_many is not None:
        await state.clear()
        ctx.reply(too_many, main_menu(t))
        return
    done = await booking.cancel_ride(ctx.session, ctx.person, data.ride_id, why, ctx.now)
    await state.clear()
    phone = await desk_phone(ctx, done.ride)
    if done.reason is not None:
        ctx.reply(with_desk_phone(done.reason, phone).render(t), main_menu(t))
        return
    lines = [t("Ride №{number} is cancelled. The dispatcher has been told.", number=data.ride_id)]
    if done.late:
        lines.append(with_desk_phone(Reason("late", LATE), phone).render(t))
    other = done.other_leg
    if other is None:
        ctx.reply("\n".join(lines), main_menu(t))
        return
    question = OTHER_THERE if other.id == (done.ride and done.ride.return_of) else OTHER_WAY_BACK
    lines.append(t(question, **leg_when(t, other, ctx.settings.tz)))
    await state.set_state(MyRides.other_leg)
    await state.set_data(CancelData(ride_id=other.id, why=why).model_dump())
    ctx.reply("\n".join(lines), kb.other_leg_keyboard(t))


@router.message(MyRides.other_leg)
async def on_other_leg(message: Message, ctx: Context) -> None:
    """The other half of a round trip: cancelled too, or kept, and the rider is told which."""
    t, state = ctx.t, ctx.fsm
    data = CancelData.model_validate(await state.get_data())
    text = (message.text or "").strip()
    view = await booking.ride_of(ctx.session, ctx.person, data.ride_id)
    if view is None:
        await state.clear()
        ctx.reply(booking.RIDE_NOT_FOUND.render(t), main_menu(t))
        return
    when_params = leg_when(t, view.ride, ctx.settings.tz)
    if text in ctx.i18n.variants(kb.KEEP_OTHER) or text in ctx.i18n.variants(BACK):
        await state.clear()
        ctx.reply(t(OTHER_STAYS, **when_params), main_menu(t))
        return
    if text not in ctx.i18n.variants(kb.CANCEL_OTHER_TOO):
        ctx.reply(t(OTHER_LEG_HINT, number=view.ride.number), kb.other_leg_keyboard(t))
        return
    done = await booking.cancel_ride(ctx.session, ctx.person, data.ride_id, data.why, ctx.now)
    await state.clear()
    phone = await desk_phone(ctx, view.ride)
    if done.reason is not None:
        ctx.reply(with_desk_phone(done.reason, phone).render(t), main_menu(t))
        return
    lines = [t(OTHER_CANCELLED, number=view.ride.number)]
    if done.late:
        lines.append(with_desk_phone(Reason("late", LATE), phone).render(t))
    ctx.reply("\n".join(lines), main_menu(t))
