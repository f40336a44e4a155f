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
from bot.services import booking
from bot.services.booking_rules import is_late_cancellation, weekday_msg
from bot.services.dispatch import reason_msgid
from bot.services.i18n_types import Reason
from bot.services.ride_labels import purpose_label, status_label
from bot.services.rides import history
from bot.states.booking import CancelData, MyRides
from handlers.booking import begin_from_ride, party_text
from models import District, Ride, RideEvent, Rider, RideStatus, Vehicle

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
            ctx.toast(booking.not_cancellable(ride.status).render(t), alert=True)
            return
        await ask_cancel_reason(ctx, ride)
        return
    await begin_from_ride(ctx, ride, reverse=callback_data.action == RideAction.RETURN)


async def ask_cancel_reason(ctx: Context, ride: Ride) -> None:
    t, state, session = ctx.t, ctx.fsm, ctx.session
    await state.clear()
    await state.set_state(MyRides.cancel_reason)
    await state.set_data(CancelData(ride_id=ride.id).model_dump())
    text = t("Why do you cancel ride №{number}? Choose a reason or type it.", number=ride.number)
    district = await session.get(District, ride.district_id)
    rules = booking.rules_of(district) if district is not None else None
    if rules is not None and is_late_cancellation(rules, ride.pickup_at, ctx.now):
        text += "\n" + t(
            "Please note: the pickup is less than {minutes} min away, so this cancellation "
            "counts as late.",
            minutes=rules.late_cancel_minutes,
        )
    ctx.reply(text, kb.cancel_reason_keyboard(t))


@router.message(MyRides.cancel_reason)
async def on_cancel_reason(message: Message, ctx: Context) -> None:
    t, state = ctx.t, ctx.fsm
    data = CancelData.model_validate(await state.get_data())
    if (message.text or "").strip() in ctx.i18n.variants(BACK):
        await state.clear()
        ctx.reply(t("Ride №{number} is not cancelled.", number=data.ride_id), main_menu(t))
        return
    if not message.text:
        ctx.reply(t("Please choose a reason below or type it."))
        return
    why = booking.clean_text(message.text)
    if isinstance(why, Reason):
        ctx.reply(why.render(t))
        return
    done = await booking.cancel_ride(ctx.session, ctx.person, data.ride_id, why, ctx.now)
    await state.clear()
    if done.reason is not None:
        ctx.reply(done.reason.render(t), main_menu(t))
        return
    lines = [t("Ride №{number} is cancelled. The dispatcher has been told.", number=data.ride_id)]
    if done.late:
        lines.append(
            t("The cancellation was late: less than the district's notice before pickup.")
        )
    if done.open_return is not None:
        lines.append(
            t(
                "The way back, ride №{number}, is still booked. Cancel it in “My rides” "
                "if it is not needed.",
                number=done.open_return.number,
            )
        )
    ctx.reply("\n".join(lines), main_menu(t))
