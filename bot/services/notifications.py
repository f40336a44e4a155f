"""What a ride's change means for people: the card refresh and the messages to the rider's circle.

Called by `bot.services.rides.change` inside the same transaction, so a change and its messages
are saved together. Every message goes to the rider and each representative in their own
language; the car's colour (free text from the districts file) is picked per recipient.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import dispatch
from bot.services.district_cache import district_by_id
from bot.services.help import with_desk_phone
from bot.services.i18n_types import N_, Reason
from bot.services.outbox import enqueue_card, enqueue_message
from bot.services.people import rider_circle
from bot.services.ride_states import Action, Outcome
from models import Account, District, Ride, Rider, RideStatus, Vehicle

S = RideStatus

SCHEDULED = N_(
    "Ride №{number} is confirmed: {date} at {time}.\n"
    "Car: {make}, {colour}, number plate {plate}.\n"
    "Driver: {driver}, {driver_phone}."
)
VEHICLE_CHANGED = N_(
    "The car for ride №{number} ({date} at {time}) has changed.\n"
    "Car: {make}, {colour}, number plate {plate}.\n"
    "Driver: {driver}, {driver_phone}."
)
TIME_AGREED = N_(
    "The new time of ride №{number} is agreed: {date} at {time}. "
    "A dispatcher will now assign a car; we will send you its details."
)
TIME_PROPOSED = N_(
    "Ride №{number}: the car can't come at {old_time}. "
    "The dispatcher offers another time: {date} at {time}. Does it suit you?"
)
REJECTED = N_(
    "Ride №{number} ({date} at {time}) was refused by the dispatcher. Reason: {reason}.\n"
    "You can book another time."
)
EN_ROUTE = N_("Ride №{number}: the car is on its way to you: {make}, {colour}, {plate}.")
ARRIVED = N_(
    "Ride №{number}: the car is waiting at the pickup address: {make}, {colour}, {plate}. "
    "Driver: {driver}, {driver_phone}."
)
ON_BOARD = N_("Ride №{number}: {name} is in the car, on the way to the destination.")
COMPLETED = N_("Ride №{number} is completed. Please rate it: 1 is very bad, 5 is excellent.")
NO_SHOW = N_(
    "Ride №{number}: the driver waited at the pickup address, but nobody came out. "
    "The ride is closed. If this is a mistake, please call the dispatcher."
)
CANCELLED = N_(
    "Ride №{number} ({date} at {time}) was cancelled by the dispatcher. Reason: {reason}."
)
DECLINED = N_(
    "Ride №{number} is cancelled: the offered time did not suit. You can book another ride."
)
CANCELLED_BY = N_("Ride №{number} ({date} at {time}) was cancelled by {who}.")
EXPIRED = N_(
    "Sorry, nobody handled ride №{number} ({date} at {time}) in time, so it is closed. "
    "Please book again or call the dispatcher."
)

# One leg of a round trip refused or cancelled by the desk while the other still stands (B9):
# the desk is asked about the other leg on its own card, and the rider is told what stands.
OTHER_LEG_AFTER_REJECT = N_(
    "Ride №{number}, one leg of a round trip, was refused. This leg, ride №{other} "
    "({date} at {time}), still stands. If the rider will not need it alone, refuse or cancel "
    "it on this card; if you keep it, the rider knows it stands."
)
OTHER_LEG_AFTER_CANCEL = N_(
    "Ride №{number}, one leg of a round trip, was cancelled. This leg, ride №{other} "
    "({date} at {time}), still stands. If the rider will not need it alone, refuse or cancel "
    "it on this card; if you keep it, the rider knows it stands."
)
OTHER_LEG_STANDS = N_(
    "Ride №{other} ({date} at {time}), the other leg of the same trip, still stands. If you "
    "no longer need it, cancel it in «{my_rides}»."
)
MY_RIDES_BUTTON = N_("My rides")

# What the rider's side did, as a new message in the group replying to the card (B18): an edit
# of the card alone makes no sound, and a busy desk would miss a freed car or a ride to assign.
RIDER_ROLE = {"rider": N_("the rider"), "representative": N_("the rider's representative")}
DESK_RIDER_CANCELLED = N_("Ride №{number} ({date} at {time}) was cancelled by {role}, {who}.")
DESK_RIDER_CANCELLED_CAR = N_(
    "Ride №{number} ({date} at {time}) was cancelled by {role}, {who}. The car {plate} is free "
    "at that time."
)
DESK_TIME_ACCEPTED = N_(
    "Ride №{number}: the new time is accepted by {role}, {who}: {date} at {time}. Assign a car "
    "on the card."
)
DESK_TIME_ACCEPTED_CAR = N_(
    "Ride №{number}: the new time is accepted by {role}, {who}: {date} at {time}. The car "
    "{plate} stays assigned."
)
DESK_TIME_DECLINED = N_(
    "Ride №{number}: the offered time is declined by {role}, {who}; the ride is cancelled."
)


async def ride_changed(session: AsyncSession, outcome: Outcome, action: Action) -> None:
    """Refresh the ride's card and tell the rider's circle what the change means for them."""
    ride = outcome.ride
    if ride is None or not outcome.ok:
        return
    district = await district_by_id(session, ride.district_id)
    if district is not None:
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )
    phone = district.desk_phone if district is not None else None
    await _tell_rider(session, ride, outcome, action, phone)
    if district is not None and action in (Action.REJECT, Action.CANCEL):
        await _other_leg_stands(session, ride, district)
    if district is not None and action in (Action.RIDER_CANCEL, Action.ACCEPT, Action.DECLINE):
        await _tell_desk(session, ride, outcome, action, district)


async def _tell_desk(
    session: AsyncSession, ride: Ride, outcome: Outcome, action: Action, district: District
) -> None:
    """A new short message replying to the card when the rider's side changed the ride."""
    event = outcome.event
    kind = event.actor_kind if event is not None else None
    if kind not in RIDER_ROLE:
        return  # the dispatcher pressed "agreed by phone" themselves: they know
    vehicle = await session.get(Vehicle, ride.vehicle_id) if ride.vehicle_id else None
    params: dict[str, Any] = {
        "number": ride.number,
        "role": {"msgid": RIDER_ROLE[kind]},
        "who": (event.actor_name if event is not None else None) or "—",
        **when(ride.pickup_at),
    }
    if vehicle is not None:
        params["plate"] = vehicle.plate
    if action is Action.RIDER_CANCEL:
        msgid = DESK_RIDER_CANCELLED_CAR if vehicle is not None else DESK_RIDER_CANCELLED
    elif action is Action.ACCEPT:
        msgid = DESK_TIME_ACCEPTED_CAR if ride.status == S.SCHEDULED else DESK_TIME_ACCEPTED
    else:
        msgid = DESK_TIME_DECLINED
    enqueue_message(
        session,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        msgid=msgid,
        params=params,
        lang=district.language,
        ride_id=ride.id,
        reply_to_card=True,
    )


async def _other_leg_stands(session: AsyncSession, ride: Ride, district: District) -> None:
    """Ask the desk about the other leg of a round trip, on that leg's card, and tell the
    rider's circle that it still stands: nobody should find out at the clinic's door."""
    other = await dispatch.standing_other_leg(session, ride)
    if other is None:
        return
    asked = OTHER_LEG_AFTER_REJECT if ride.status == S.REJECTED else OTHER_LEG_AFTER_CANCEL
    params: dict[str, Any] = {
        "number": ride.number,
        "other": other.number,
        **when(other.pickup_at),
    }
    enqueue_message(
        session,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        msgid=asked,
        params=params,
        lang=district.language,
        ride_id=other.id,
        reply_to_card=True,
    )
    await tell(
        session, other, OTHER_LEG_STANDS, {**params, "my_rides": {"msgid": MY_RIDES_BUTTON}}
    )


async def _tell_rider(
    session: AsyncSession, ride: Ride, outcome: Outcome, action: Action, phone: str | None
) -> None:
    base: dict[str, Any] = {"number": ride.number, **when(ride.pickup_at)}
    vehicle = await session.get(Vehicle, ride.vehicle_id) if ride.vehicle_id else None
    status = ride.status
    if action is Action.TAKE:
        return
    if status == S.SCHEDULED:
        msgid = VEHICLE_CHANGED if outcome.from_status == S.SCHEDULED else SCHEDULED
        await tell(session, ride, msgid, base, vehicle=vehicle, with_vehicle=True)
    elif status == S.TAKEN and action is Action.ACCEPT:
        await tell(session, ride, TIME_AGREED, base)
    elif status == S.TIME_PROPOSED and ride.proposed_at is not None:
        params = {**base, **when(ride.proposed_at), "old_time": base["time"]}
        await tell(
            session,
            ride,
            TIME_PROPOSED,
            params,
            keyboard="proposal",
            keyboard_args={"ride_id": ride.id},
        )
    elif status == S.REJECTED:
        await tell(session, ride, REJECTED, {**base, "reason": reason_param(ride.reason)})
    elif status == S.EN_ROUTE:
        await tell(session, ride, EN_ROUTE, base, vehicle=vehicle, with_vehicle=True)
    elif status == S.ARRIVED:
        await tell(session, ride, ARRIVED, base, vehicle=vehicle, with_vehicle=True)
    elif status == S.ON_BOARD:
        # The rider knows they are in the car; the people who book for them want to know.
        rider = await session.get(Rider, ride.rider_id)
        own = await session.get(Account, rider.account_id) if rider and rider.account_id else None
        await tell(
            session,
            ride,
            ON_BOARD,
            {**base, "name": rider.full_name if rider else ""},
            exclude_telegram_id=own.telegram_id if own else None,
        )
    elif status == S.COMPLETED:
        await tell(
            session, ride, COMPLETED, base, keyboard="rating", keyboard_args={"ride_id": ride.id}
        )
    elif status == S.NO_SHOW:
        await tell_reason(session, ride, with_desk_phone(Reason("no_show", NO_SHOW, base), phone))
    elif status == S.CANCELLED and action is Action.DECLINE:
        await tell(session, ride, DECLINED, base)
    elif status == S.CANCELLED and action is Action.RIDER_CANCEL:
        # The person who cancelled was answered by the booking conversation; tell the others.
        event = outcome.event
        who = (event.actor_name if event else None) or ""
        await tell(
            session,
            ride,
            CANCELLED_BY,
            {**base, "who": who},
            exclude_telegram_id=event.actor_id if event else None,
        )
    elif status == S.CANCELLED:
        await tell(session, ride, CANCELLED, {**base, "reason": reason_param(ride.reason)})
    elif status == S.EXPIRED:
        await tell_reason(session, ride, with_desk_phone(Reason("expired", EXPIRED, base), phone))


async def tell_reason(session: AsyncSession, ride: Ride, reason: Reason) -> int:
    """`tell` for a text built as a Reason (a "call the dispatcher" text with the desk's phone)."""
    return await tell(session, ride, reason.msgid, dict(reason.params))


def when(instant: Any) -> dict[str, Any]:
    """Date and time of an instant as params the sender shows in the reader's local time."""
    at = instant.isoformat()
    return {"date": {"at": at, "show": "date"}, "time": {"at": at, "show": "time"}}


def reason_param(reason: str | None) -> Any:
    """A reason picked from the list is translated for each reader; a typed one is shown as is."""
    msgid = dispatch.reason_msgid(reason)
    if msgid is not None:
        return {"msgid": msgid}
    return reason or "—"


async def tell(
    session: AsyncSession,
    ride: Ride,
    msgid: str,
    params: dict[str, Any],
    *,
    vehicle: Vehicle | None = None,
    with_vehicle: bool = False,
    keyboard: str | None = None,
    keyboard_args: dict[str, Any] | None = None,
    exclude_telegram_id: int | None = None,
) -> int:
    """Queue one message to each person in the rider's circle; returns how many were queued."""
    count = 0
    for account in await rider_circle(session, ride.rider_id):
        if exclude_telegram_id is not None and account.telegram_id == exclude_telegram_id:
            continue
        lang = account.language or dispatch.FALLBACK_LANGUAGE
        own = dict(params)
        if with_vehicle:
            own.update(vehicle_params(vehicle, lang))
        enqueue_message(
            session,
            chat_id=account.telegram_id,
            account_id=account.id,
            msgid=msgid,
            params=own,
            lang=lang,
            keyboard=keyboard,
            keyboard_args=keyboard_args,
            ride_id=ride.id,
        )
        count += 1
    return count


def vehicle_params(vehicle: Vehicle | None, lang: str) -> dict[str, str]:
    """The car as the rider sees it; dashes if it was removed from the file meanwhile."""
    if vehicle is None:
        return dict.fromkeys(("make", "colour", "plate", "driver", "driver_phone"), "—")
    return {
        "make": vehicle.make,
        "colour": vehicle.colour_kk if lang == "kk" else vehicle.colour_ru,
        "plate": vehicle.plate,
        "driver": vehicle.driver_name,
        "driver_phone": vehicle.driver_phone,
    }
