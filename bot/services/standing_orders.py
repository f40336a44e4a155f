"""Standing orders: a rider asks once, a dispatcher approves once, the rides appear by themselves.

Everything here runs inside the caller's transaction and writes what it causes (cards, messages
to the rider and every representative) as outbox rows. Rides are made by the booking service, so
a ride from a standing order is an ordinary ride from then on: reminders, status, cancellation.
An order's row is locked (`FOR UPDATE` on PostgreSQL; SQLite writers take turns) before its
lists of exceptions change or a date becomes a ride, and the unique (order, date, leg) key on
rides is the last line of defence: one ride per occurrence, whatever the processes do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import booking
from bot.services import booking_rules as br
from bot.services import standing_order_rules as so
from bot.services.dispatch import (
    FALLBACK_LANGUAGE,
    REJECT_REASONS,
    conflicts_of,
    local_day_bounds,
    suits,
)
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import N_, Reason
from bot.services.notifications import reason_param, vehicle_params
from bot.services.outbox import enqueue_card, enqueue_message
from bot.services.people import rider_circle
from bot.services.registration import eligibility_of
from bot.services.rides import Action, Actor, allowed_actions, change
from models import (
    OPEN_STATUSES,
    Account,
    District,
    OrderStatus,
    Ride,
    Rider,
    StandingOrder,
    Vehicle,
)

STANDING_ORDER_CARD: Final = "standing_order_card"
PROPOSAL_KEYBOARD: Final = "standing_order_proposal"
# Reason code stored when the rider did not take the time a dispatcher offered.
DECLINED: Final = "declined"
# How many next dates a list shows for each order.
NEXT_DATES: Final = 3

# ---- refusals ----------------------------------------------------------------------------------

ORDER_NOT_FOUND: Final = Reason(
    "order_not_found", N_("This standing order is not among your standing orders any more.")
)
NOT_PENDING: Final = Reason(
    "not_pending", N_("This standing order has already been decided; see its card.")
)
NOT_ACTIVE: Final = Reason(
    "not_active", N_("This standing order is not running, so there is nothing to change.")
)
NO_PROPOSAL: Final = Reason(
    "no_proposal", N_("There is no other time waiting for your answer in this standing order.")
)
NO_WEEKDAYS: Final = Reason(
    "no_weekdays", N_("Please name at least one weekday, for example: Mon Wed Fri.")
)
NOT_SERVICE_DAYS: Final = Reason(
    "not_service_days",
    N_("In this district cars don't run on some of these days. Please choose other days."),
)
NO_DATES: Final = Reason(
    "no_dates",
    N_("There is no ride date between the first and the end date. Please check the dates."),
)
NOT_A_DATE_OF_ORDER: Final = Reason(
    "not_a_date_of_order", N_("The standing order has no ride on that date.")
)
DATE_PASSED: Final = Reason(
    "date_passed", N_("That date has already passed. Please give a later date.")
)
PAUSE_BACKWARDS: Final = Reason(
    "pause_backwards",
    N_("The pause must end on or after the day it starts. Please give the dates again."),
)
AFTER_END: Final = Reason("after_end", N_("The standing order ends before that date ({date})."))
VEHICLE_UNFIT: Final = Reason(
    "vehicle_unfit", N_("That car can't take this rider: it has no room for the rider's needs.")
)


def first_date_too_early(earliest: date) -> Reason:
    return Reason(
        "first_date_too_early",
        N_("The first date can be {weekday}, {date} at the earliest."),
        {"weekday": br.weekday_msg(earliest), "date": br.fmt_date(earliest)},
    )


# ---- messages to the rider and representatives -----------------------------------------------

SUBMITTED = N_(
    "{who} asked for standing order №{number} for {name}: from {first} to {end}, pickup at "
    "{time}, to {destination}. A dispatcher will look at it."
)
APPROVED = N_(
    "Standing order №{number} is approved: from {first} to {end}, pickup at {time}, to "
    "{destination}. Each ride is booked by itself {days} days ahead; you will see it in /rides."
)
APPROVED_WITH_CAR = N_(
    "Standing order №{number} is approved: from {first} to {end}, pickup at {time}, to "
    "{destination}. Each ride is booked by itself {days} days ahead; you will see it in /rides.\n"
    "Usual car: {make}, {colour}, number plate {plate}. Driver: {driver}, {driver_phone}."
)
PROPOSED = N_(
    "Standing order №{number}: the cars can't come at {old_time}. The dispatcher offers "
    "pickup at {time} instead. Does it suit you?"
)
PROPOSED_WITH_BACK = N_(
    "Standing order №{number}: the cars can't come at {old_time}. The dispatcher offers "
    "pickup at {time} and the way back at {back} instead. Does it suit you?"
)
REJECTED = N_(
    "Standing order №{number} was refused by the dispatcher. Reason: {reason}.\n"
    "You can still book each ride in /book."
)
ACCEPTED_BY = N_(
    "{who} accepted the new time of standing order №{number}: pickup at {time}. "
    "The order is approved."
)
DECLINED_BY = N_(
    "{who} did not accept the new time of standing order №{number}, so the order is closed."
)
DATE_CANCELLED_BY = N_(
    "{who} cancelled the ride of {weekday}, {date} in standing order №{number}."
)
PAUSED_BY = N_(
    "{who} paused standing order №{number} from {start} to {end}. Rides start again by "
    "themselves after that."
)
TIME_CHANGED_BY = N_("{who} changed standing order №{number}: from {date} on, pickup at {time}.")
ENDED_BY = N_(
    "{who} ended standing order №{number}. Its rides that have not started are cancelled."
)
SKIPPED_HOLIDAY = N_(
    "Standing order №{number}: {weekday}, {date} is a public holiday, so there is no ride "
    "that day."
)
SKIPPED_BUSY = N_(
    "Standing order №{number}: no ride on {weekday}, {date}. There are already other rides that "
    "day, as many as allowed or at the same time."
)
SKIPPED_NOT_ELIGIBLE = N_(
    "Standing order №{number}: no ride on {weekday}, {date}. Rides can't be booked for that date; "
    "please check the VKK conclusion in /profile or call the dispatcher."
)
SKIPPED_RULES = N_(
    "Standing order №{number}: no ride on {weekday}, {date}. The district's booking rules don't "
    "allow it; please call the dispatcher."
)
VKK_ENDS_ORDER = N_(
    "The VKK conclusion of {name} is valid until: {date}, so standing order №{number} stops on "
    "that date. Bring a new conclusion in time and enter it in /profile."
)

# Why a date has no ride, as the rider's list and the card show it.
SKIP_HOLIDAY: Final = "holiday"
SKIP_CANCELLED: Final = "cancelled"
SKIP_BUSY: Final = "busy"
SKIP_NOT_ELIGIBLE: Final = "not_eligible"
SKIP_RULES: Final = "rules"
SKIP_LABELS: Final[dict[str, str]] = {
    SKIP_HOLIDAY: N_("public holiday"),
    SKIP_CANCELLED: N_("cancelled"),
    SKIP_BUSY: N_("other rides that day"),
    SKIP_NOT_ELIGIBLE: N_("can't be booked for the rider"),
    SKIP_RULES: N_("not allowed by the booking rules"),
}
_SKIP_MESSAGES: Final = {
    SKIP_HOLIDAY: SKIPPED_HOLIDAY,
    SKIP_BUSY: SKIPPED_BUSY,
    SKIP_NOT_ELIGIBLE: SKIPPED_NOT_ELIGIBLE,
    SKIP_RULES: SKIPPED_RULES,
}
_BUSY_CODES: Final = frozenset({"overlap", "daily_cap", "monthly_cap"})
_RULE_CODES: Final = frozenset(
    {
        "date_in_past",
        "same_day_not_allowed",
        "too_far_ahead",
        "not_a_service_day",
        "cutoff_passed",
        "no_times_left",
        "no_dates_open",
        "in_past",
        "outside_service_hours",
        "too_many_assistants",
        "too_many_companions",
        "return_too_early",
    }
)


def skip_kind(code: str) -> str:
    """Which of the rider-facing reasons a booking refusal's code falls under."""
    if code in _BUSY_CODES:
        return SKIP_BUSY
    if code in _RULE_CODES:
        return SKIP_RULES
    return SKIP_NOT_ELIGIBLE


# ---- reading the row -------------------------------------------------------------------------


def schedule_of(order: StandingOrder) -> so.Schedule:
    """The order's dates and times as plain values (the JSON lists read once)."""
    return so.Schedule(
        weekdays=frozenset(order.weekdays),
        first_date=order.first_date,
        end_date=order.end_date,
        pickup=order.pickup_time,
        back=order.return_time,
        pauses=tuple(
            so.Pause(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
            for p in order.pauses or []
        ),
        time_changes=tuple(
            so.TimeChange(
                date.fromisoformat(c["from"]),
                time.fromisoformat(c["pickup"]),
                time.fromisoformat(c["back"]) if c.get("back") else None,
            )
            for c in order.time_changes or []
        ),
        skipped=frozenset(date.fromisoformat(s["date"]) for s in order.skipped or []),
    )


@dataclass(frozen=True)
class SkippedDate:
    day: date
    kind: str  # one of SKIP_LABELS

    @property
    def label(self) -> str:
        """The message id saying why, for the reader's translator."""
        return SKIP_LABELS.get(self.kind, SKIP_LABELS[SKIP_RULES])


def skipped_dates(order: StandingOrder) -> list[SkippedDate]:
    rows = sorted(order.skipped or [], key=lambda s: str(s["date"]))
    return [
        SkippedDate(date.fromisoformat(s["date"]), str(s.get("kind", SKIP_RULES))) for s in rows
    ]


def max_days_of(district: District) -> int:
    return district.standing_order_max_days or so.DEFAULT_MAX_DAYS


def holidays_for(district: District, start: date, end: date) -> frozenset[date]:
    """The public holidays the district skips between the dates (none where it keeps them)."""
    if (district.holidays or "skip") != "skip" or end < start:
        return frozenset()
    return so.kz_holidays(start, end)


def earliest_first_date(district: District, now: datetime, tz: ZoneInfo) -> date:
    """Tomorrow, or today where the district books the same day."""
    today = now.astimezone(tz).date()
    return today if booking.rules_of(district).same_day_allowed else today + timedelta(days=1)


def latest_end_for(rider: Rider, district: District, first_date: date) -> date:
    """The furthest end date the rider can pick (ВКК expiry, district maximum)."""
    return so.latest_end_date(first_date, rider.vkk_expires_on, max_days_of(district))


# ---- checks the conversation asks step by step, and create asks again -----------------------


def check_weekdays(district: District, weekdays: Iterable[int]) -> Reason | None:
    days = frozenset(weekdays)
    if not days:
        return NO_WEEKDAYS
    if not days <= booking.rules_of(district).service_days:
        return NOT_SERVICE_DAYS
    return None


def check_times(district: District, pickup: time, back: time | None) -> Reason | None:
    """Service hours for both, and the way back at least one ride's duration after pickup."""
    rules = booking.rules_of(district)
    if not rules.within_service_hours(pickup):
        return br.outside_service_hours(rules)
    if back is None:
        return None
    day = date(2000, 1, 3)
    if datetime.combine(day, back) < datetime.combine(day, pickup) + timedelta(
        minutes=rules.ride_minutes
    ):
        return booking.return_too_early(rules, pickup)
    if not rules.within_service_hours(back):
        return br.outside_service_hours(rules)
    return None


def check_first_date(
    rider: Rider, district: District, first_date: date, now: datetime, tz: ZoneInfo
) -> Reason | None:
    earliest = earliest_first_date(district, now, tz)
    if first_date < earliest:
        return first_date_too_early(earliest)
    return eligibility_of(rider, district, first_date).reason


def check_end_date(
    rider: Rider, district: District, first_date: date, end_date: date
) -> Reason | None:
    """None, or why not with the latest end date allowed (ВКК expiry or district maximum)."""
    return so.check_end_date(first_date, end_date, rider.vkk_expires_on, max_days_of(district))


@dataclass(frozen=True)
class OrderDraft:
    """Everything the standing order's summary shows; times are local to the district."""

    rider_id: int
    weekdays: frozenset[int]
    pickup_time: time
    pickup_address: str
    destination: str
    purpose: str
    first_date: date
    end_date: date
    return_time: time | None = None
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    assistant: bool = False
    companions: int = 0
    wheelchair: bool = False
    comment: str = ""


def check_draft(
    rider: Rider, district: District, draft: OrderDraft, now: datetime, tz: ZoneInfo
) -> Reason | None:
    """Every rule in the order the conversation asks: days, times, dates, party."""
    schedule = so.Schedule(
        weekdays=draft.weekdays,
        first_date=draft.first_date,
        end_date=draft.end_date,
        pickup=draft.pickup_time,
        back=draft.return_time,
    )
    return (
        check_weekdays(district, draft.weekdays)
        or check_times(district, draft.pickup_time, draft.return_time)
        or check_first_date(rider, district, draft.first_date, now, tz)
        or check_end_date(rider, district, draft.first_date, draft.end_date)
        or br.check_party(booking.rules_of(district), int(draft.assistant), draft.companions)
        or (None if so.occurrence_dates(schedule) else NO_DATES)
    )


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderResult:
    """The order as it is after the step, or why nothing changed.

    `latest_end` is set when the end date was refused: the answer offers it as a button.
    `capacity` is set by approve and accept: the card shows the flag.
    """

    order: StandingOrder | None = None
    reason: Reason | None = None
    latest_end: date | None = None
    capacity: so.CapacityVerdict | None = None
    cancelled_rides: tuple[Ride, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reason is None and self.order is not None


async def _locked(session: AsyncSession, order_id: int) -> StandingOrder | None:
    return await session.scalar(
        select(StandingOrder)
        .where(StandingOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _refresh_card(session: AsyncSession, order: StandingOrder) -> None:
    district = await district_by_id(session, order.district_id)
    if district is None:
        return
    await enqueue_card(
        session,
        kind=STANDING_ORDER_CARD,
        subject_id=order.id,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
    )


async def _tell(
    session: AsyncSession,
    order: StandingOrder,
    msgid: str,
    params: dict[str, Any],
    *,
    vehicle: Vehicle | None = None,
    keyboard: str | None = None,
    keyboard_args: dict[str, Any] | None = None,
    exclude_telegram_id: int | None = None,
) -> int:
    """One message to each person in the rider's circle, in their own language."""
    count = 0
    for account in await rider_circle(session, order.rider_id):
        if exclude_telegram_id is not None and account.telegram_id == exclude_telegram_id:
            continue
        own = dict(params)
        lang = account.language
        if vehicle is not None:
            own.update(vehicle_params(vehicle, lang or FALLBACK_LANGUAGE))
        enqueue_message(
            session,
            chat_id=account.telegram_id,
            account_id=account.id,
            msgid=msgid,
            params=own,
            lang=lang,
            keyboard=keyboard,
            keyboard_args=keyboard_args,
        )
        count += 1
    return count


def _base(order: StandingOrder) -> dict[str, Any]:
    return {
        "number": str(order.id),
        "first": br.fmt_date(order.first_date),
        "end": br.fmt_date(order.end_date),
        "time": br.fmt_time(order.pickup_time),
        "destination": order.destination,
    }


def _day_params(day: date) -> dict[str, Any]:
    return {"weekday": {"msgid": br.WEEKDAYS[day.isoweekday() - 1]}, "date": br.fmt_date(day)}


def _actor_of(account: Account, rider: Rider) -> Actor:
    kind = "rider" if rider.account_id == account.id else "representative"
    return Actor(kind, account.telegram_id, account.display_name)


# ---- the rider asks --------------------------------------------------------------------------


async def create_order(
    session: AsyncSession,
    account: Account,
    draft: OrderDraft,
    now: datetime,
    *,
    tz: ZoneInfo,
) -> OrderResult:
    """A pending standing order and its card in the district's desk, or why not.

    The same rules as the conversation's steps are asked again here: minutes may have passed
    and the rider's ВКК or verification may have changed meanwhile.
    """
    rider = await booking.rider_for(session, account, draft.rider_id)
    if rider is None:
        return OrderResult(reason=booking.NOT_YOUR_RIDER)
    district = await district_by_id(session, rider.district_id)
    if district is None:
        return OrderResult(reason=br.NO_DATES_OPEN)
    reason = check_draft(rider, district, draft, now, tz)
    if reason is not None:
        latest = None
        if reason.code in ("past_vkk_expiry", "past_district_maximum"):
            latest = latest_end_for(rider, district, draft.first_date)
        return OrderResult(reason=reason, latest_end=latest)
    order = StandingOrder(
        rider_id=rider.id,
        district_id=district.id,
        created_by=account.id,
        weekdays=sorted(draft.weekdays),
        pickup_time=draft.pickup_time,
        return_time=draft.return_time,
        pickup_address=draft.pickup_address,
        pickup_lat=draft.pickup_lat,
        pickup_lon=draft.pickup_lon,
        destination=draft.destination,
        purpose=draft.purpose,
        assistant=draft.assistant,
        companions=draft.companions,
        wheelchair=draft.wheelchair,
        comment=draft.comment,
        first_date=draft.first_date,
        end_date=draft.end_date,
        status=OrderStatus.PENDING.value,
        pauses=[],
        time_changes=[],
        skipped=[],
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session,
        order,
        SUBMITTED,
        {**_base(order), "who": account.display_name, "name": rider.full_name},
        exclude_telegram_id=account.telegram_id,
    )
    return OrderResult(order=order)


# ---- capacity --------------------------------------------------------------------------------


async def capacity_of(
    session: AsyncSession, order: StandingOrder, district: District
) -> so.CapacityVerdict:
    """The busiest date's share of the district's car-hours taken by approved standing orders,
    with this order added (it is not counted twice when already approved)."""
    rules = booking.rules_of(district)
    vehicles = await session.scalar(
        select(func.count())
        .select_from(Vehicle)
        .where(Vehicle.district_id == district.id, Vehicle.active.is_(True))
    )
    start, end = order.first_date, order.end_date
    off = holidays_for(district, start, end)
    mine = so.rides_per_day(schedule_of(order), start, end, off)
    others: dict[date, int] = {}
    rows = await session.scalars(
        select(StandingOrder).where(
            StandingOrder.district_id == district.id,
            StandingOrder.status == OrderStatus.APPROVED.value,
            StandingOrder.id != order.id,
            StandingOrder.end_date >= start,
            StandingOrder.first_date <= end,
        )
    )
    for other in rows:
        for day, count in so.rides_per_day(schedule_of(other), start, end, off).items():
            others[day] = others.get(day, 0) + count
    return so.capacity_check(
        mine,
        others,
        ride_minutes=rules.ride_minutes,
        capacity_minutes=so.day_capacity_minutes(rules, int(vehicles or 0)),
        cap=district.standing_order_capacity_share or so.DEFAULT_CAPACITY_SHARE,
    )


# ---- the desk decides ------------------------------------------------------------------------


async def order_for_desk(
    session: AsyncSession, order_id: int, district_id: str
) -> StandingOrder | None:
    """The order if it belongs to this desk's district (a forged button finds nothing)."""
    order = await session.get(StandingOrder, order_id, populate_existing=True)
    if order is None or order.district_id != district_id:
        return None
    return order


async def _pending_for_desk(
    session: AsyncSession, order_id: int, district_id: str | None
) -> tuple[StandingOrder | None, Reason | None]:
    order = await _locked(session, order_id)
    if order is None or (district_id is not None and order.district_id != district_id):
        return None, ORDER_NOT_FOUND
    if order.status != OrderStatus.PENDING.value:
        return order, NOT_PENDING
    return order, None


def _decided(order: StandingOrder, actor: Actor, now: datetime) -> None:
    order.decided_by = actor.telegram_id
    order.decided_by_name = actor.name
    order.decided_at = now
    order.updated_at = now


async def approve(
    session: AsyncSession,
    order_id: int,
    actor: Actor,
    now: datetime,
    *,
    vehicle_id: int | None = None,
    district_id: str | None = None,
) -> OrderResult:
    """Approve a pending order, optionally with the car its rides get when it is free."""
    order, reason = await _pending_for_desk(session, order_id, district_id)
    if order is None or reason is not None:
        return OrderResult(order=order, reason=reason)
    district = await district_by_id(session, order.district_id)
    assert district is not None
    vehicle: Vehicle | None = None
    if vehicle_id is not None:
        vehicle = await session.get(Vehicle, vehicle_id)
        if vehicle is None or vehicle.district_id != order.district_id or not vehicle.active:
            return OrderResult(order=order, reason=VEHICLE_UNFIT)
        if vehicle not in await fitting_vehicles(session, order):
            return OrderResult(order=order, reason=VEHICLE_UNFIT)
    verdict = await capacity_of(session, order, district)
    order.status = OrderStatus.APPROVED.value
    order.vehicle_id = vehicle.id if vehicle else None
    order.proposed_time = None
    order.proposed_return_time = None
    order.over_capacity = verdict.over
    _decided(order, actor, now)
    await session.flush()
    await _refresh_card(session, order)
    rules = booking.rules_of(district)
    params = {**_base(order), "days": rules.max_days_ahead}
    msgid = APPROVED_WITH_CAR if vehicle is not None else APPROVED
    await _tell(session, order, msgid, params, vehicle=vehicle)
    return OrderResult(order=order, capacity=verdict)


async def fitting_vehicles(session: AsyncSession, order: StandingOrder) -> list[Vehicle]:
    """The district's active cars that can take the order's rider and party (the car menu)."""
    probe = Ride(
        wheelchair=order.wheelchair, assistant=order.assistant, companions=order.companions
    )
    rows = await session.scalars(
        select(Vehicle)
        .where(Vehicle.district_id == order.district_id, Vehicle.active.is_(True))
        .order_by(Vehicle.plate)
    )
    return [v for v in rows if suits(v, probe)]


# Offsets from the asked pickup offered as ready-made other times, in minutes.
PROPOSAL_OFFSETS: Final = (-60, -30, 30, 60, 90, 120)


def proposal_times(district: District, pickup: time) -> list[time]:
    """Other pickup times near the asked one, inside the district's service hours."""
    rules = booking.rules_of(district)
    base = pickup.hour * 60 + pickup.minute
    found = []
    for offset in PROPOSAL_OFFSETS:
        minutes = base + offset
        if not 0 <= minutes < 24 * 60:
            continue
        at = time(minutes // 60, minutes % 60)
        if rules.within_service_hours(at):
            found.append(at)
    return found


async def propose_time(
    session: AsyncSession,
    order_id: int,
    actor: Actor,
    pickup: time,
    now: datetime,
    *,
    back: time | None = None,
    district_id: str | None = None,
) -> OrderResult:
    """Offer the rider another pickup time (the way back keeps its time unless given)."""
    order, reason = await _pending_for_desk(session, order_id, district_id)
    if order is None or reason is not None:
        return OrderResult(order=order, reason=reason)
    district = await district_by_id(session, order.district_id)
    assert district is not None
    new_back = back if back is not None else order.return_time
    reason = check_times(district, pickup, new_back)
    if reason is not None:
        return OrderResult(order=order, reason=reason)
    order.proposed_time = pickup
    order.proposed_return_time = new_back
    _decided(order, actor, now)
    await session.flush()
    await _refresh_card(session, order)
    params = {
        "number": str(order.id),
        "old_time": br.fmt_time(order.pickup_time),
        "time": br.fmt_time(pickup),
    }
    msgid = PROPOSED
    if new_back is not None:
        msgid = PROPOSED_WITH_BACK
        params["back"] = br.fmt_time(new_back)
    await _tell(
        session,
        order,
        msgid,
        params,
        keyboard=PROPOSAL_KEYBOARD,
        keyboard_args={"order_id": order.id},
    )
    return OrderResult(order=order)


async def reject(
    session: AsyncSession,
    order_id: int,
    actor: Actor,
    reason: str,
    now: datetime,
    *,
    district_id: str | None = None,
) -> OrderResult:
    """Refuse a pending order. `reason` is a code of `dispatch.REJECT_REASONS` or typed text."""
    order, refusal = await _pending_for_desk(session, order_id, district_id)
    if order is None or refusal is not None:
        return OrderResult(order=order, reason=refusal)
    order.status = OrderStatus.REJECTED.value
    order.reason = reason[:500]
    order.proposed_time = None
    order.proposed_return_time = None
    _decided(order, actor, now)
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session, order, REJECTED, {"number": str(order.id), "reason": reason_param(order.reason)}
    )
    return OrderResult(order=order)


# ---- the rider's side ------------------------------------------------------------------------


async def _mine(
    session: AsyncSession, account: Account, order_id: int
) -> tuple[StandingOrder | None, Rider | None]:
    """The order, locked, if it belongs to one of the person's riders."""
    order = await _locked(session, order_id)
    if order is None:
        return None, None
    rider = await booking.rider_for(session, account, order.rider_id)
    if rider is None:
        return None, None
    return order, rider


async def answer_proposal(
    session: AsyncSession, account: Account, order_id: int, accept: bool, now: datetime
) -> OrderResult:
    """The rider takes the offered time (the order is approved) or not (it is closed)."""
    order, rider = await _mine(session, account, order_id)
    if order is None or rider is None:
        return OrderResult(reason=ORDER_NOT_FOUND)
    if order.status != OrderStatus.PENDING.value or order.proposed_time is None:
        return OrderResult(order=order, reason=NO_PROPOSAL)
    actor = _actor_of(account, rider)
    base = {"who": account.display_name, "number": str(order.id)}
    if not accept:
        order.status = OrderStatus.REJECTED.value
        order.reason = DECLINED
        order.proposed_time = None
        order.proposed_return_time = None
        order.updated_at = now
        await session.flush()
        await _refresh_card(session, order)
        await _tell(session, order, DECLINED_BY, base, exclude_telegram_id=actor.telegram_id)
        return OrderResult(order=order)
    district = await district_by_id(session, order.district_id)
    assert district is not None
    order.pickup_time = order.proposed_time
    order.return_time = order.proposed_return_time
    order.proposed_time = None
    order.proposed_return_time = None
    verdict = await capacity_of(session, order, district)
    order.status = OrderStatus.APPROVED.value
    order.over_capacity = verdict.over
    order.updated_at = now
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session,
        order,
        ACCEPTED_BY,
        {**base, "time": br.fmt_time(order.pickup_time)},
        exclude_telegram_id=actor.telegram_id,
    )
    return OrderResult(order=order, capacity=verdict)


async def _open_rides(
    session: AsyncSession, order_id: int, start: date, end: date | None = None
) -> list[Ride]:
    query = select(Ride).where(
        Ride.standing_order_id == order_id,
        Ride.occurrence_date >= start,
        Ride.status.in_([s.value for s in OPEN_STATUSES]),
    )
    if end is not None:
        query = query.where(Ride.occurrence_date <= end)
    return list(await session.scalars(query.order_by(Ride.pickup_at, Ride.id)))


async def _cancel_rides(
    session: AsyncSession,
    rides: Sequence[Ride],
    actor: Actor,
    why: str,
    now: datetime,
    *,
    free_date: bool = False,
) -> list[Ride]:
    """Cancel the rides that may still be cancelled by the rider; the others are left alone.

    `free_date` lets the sweep make the date's ride again (after a change of time).
    """
    done = []
    for ride in rides:
        if Action.RIDER_CANCEL not in allowed_actions(ride.status):
            continue
        district = await district_by_id(session, ride.district_id)
        rules = booking.rules_of(district) if district is not None else br.BookingRules()
        values: dict[str, Any] = {
            "cancelled_late": br.is_late_cancellation(rules, ride.pickup_at, now)
        }
        if free_date:
            values["occurrence_date"] = None
        outcome = await change(
            session, ride.id, Action.RIDER_CANCEL, actor, reason=why, values=values, now=now
        )
        if outcome.ok and outcome.ride is not None:
            done.append(outcome.ride)
    return done


def _add_skip(order: StandingOrder, day: date, kind: str, code: str) -> bool:
    """Record that the date has no ride; False when it was recorded already."""
    key = day.isoformat()
    if any(s["date"] == key for s in order.skipped or []):
        return False
    order.skipped = [*(order.skipped or []), {"date": key, "kind": kind, "code": code}]
    return True


async def cancel_occurrence(
    session: AsyncSession,
    account: Account,
    order_id: int,
    day: date,
    now: datetime,
    *,
    tz: ZoneInfo,
) -> OrderResult:
    """No ride on this one date (both legs); the order's other dates stay as they are."""
    order, rider = await _mine(session, account, order_id)
    if order is None or rider is None:
        return OrderResult(reason=ORDER_NOT_FOUND)
    if order.status != OrderStatus.APPROVED.value:
        return OrderResult(order=order, reason=NOT_ACTIVE)
    if day < now.astimezone(tz).date():
        return OrderResult(order=order, reason=DATE_PASSED)
    if day not in so.weekday_dates(order.weekdays, order.first_date, order.end_date):
        return OrderResult(order=order, reason=NOT_A_DATE_OF_ORDER)
    actor = _actor_of(account, rider)
    rides = await _open_rides(session, order.id, day, day)
    cancelled = await _cancel_rides(session, rides, actor, "so_date_cancelled", now)
    _add_skip(order, day, SKIP_CANCELLED, SKIP_CANCELLED)
    order.updated_at = now
    await session.flush()
    await _refresh_card(session, order)
    if not rides:
        # Cancelled rides told the others themselves; a date not booked yet needs its own word.
        await _tell(
            session,
            order,
            DATE_CANCELLED_BY,
            {"who": account.display_name, "number": str(order.id), **_day_params(day)},
            exclude_telegram_id=actor.telegram_id,
        )
    return OrderResult(order=order, cancelled_rides=tuple(cancelled))


async def pause(
    session: AsyncSession,
    account: Account,
    order_id: int,
    start: date,
    end: date,
    now: datetime,
    *,
    tz: ZoneInfo,
) -> OrderResult:
    """No rides from `start` to `end` (a hospital stay); then they come back by themselves."""
    order, rider = await _mine(session, account, order_id)
    if order is None or rider is None:
        return OrderResult(reason=ORDER_NOT_FOUND)
    if order.status != OrderStatus.APPROVED.value:
        return OrderResult(order=order, reason=NOT_ACTIVE)
    if end < start:
        return OrderResult(order=order, reason=PAUSE_BACKWARDS)
    if start < now.astimezone(tz).date():
        return OrderResult(order=order, reason=DATE_PASSED)
    if start > order.end_date:
        return OrderResult(order=order, reason=_after_end(order))
    actor = _actor_of(account, rider)
    rides = await _open_rides(session, order.id, start, end)
    cancelled = await _cancel_rides(session, rides, actor, "so_paused", now)
    order.pauses = [*(order.pauses or []), {"start": start.isoformat(), "end": end.isoformat()}]
    order.updated_at = now
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session,
        order,
        PAUSED_BY,
        {
            "who": account.display_name,
            "number": str(order.id),
            "start": br.fmt_date(start),
            "end": br.fmt_date(end),
        },
        exclude_telegram_id=actor.telegram_id,
    )
    return OrderResult(order=order, cancelled_rides=tuple(cancelled))


def _after_end(order: StandingOrder) -> Reason:
    return Reason(AFTER_END.code, AFTER_END.msgid, {"date": br.fmt_date(order.end_date)})


async def change_time(
    session: AsyncSession,
    account: Account,
    order_id: int,
    start: date,
    pickup: time,
    now: datetime,
    *,
    back: time | None = None,
    tz: ZoneInfo,
) -> OrderResult:
    """New pickup (and way-back) times from `start` on.

    Rides already booked on or after `start` are cancelled and booked again at the new time
    (in this transaction, through the same step as the sweep), so the change needs no
    dispatcher; their default car is assigned again when it is free.
    """
    order, rider = await _mine(session, account, order_id)
    if order is None or rider is None:
        return OrderResult(reason=ORDER_NOT_FOUND)
    if order.status != OrderStatus.APPROVED.value:
        return OrderResult(order=order, reason=NOT_ACTIVE)
    district = await district_by_id(session, order.district_id)
    assert district is not None
    earliest = earliest_first_date(district, now, tz)
    if start < earliest:
        return OrderResult(order=order, reason=first_date_too_early(earliest))
    if start > order.end_date:
        return OrderResult(order=order, reason=_after_end(order))
    reason = check_times(district, pickup, back)
    if reason is not None:
        return OrderResult(order=order, reason=reason)
    actor = _actor_of(account, rider)
    rides = await _open_rides(session, order.id, start)
    cancelled = await _cancel_rides(session, rides, actor, "so_time_changed", now, free_date=True)
    kept = [c for c in order.time_changes or [] if date.fromisoformat(c["from"]) < start]
    order.time_changes = [
        *kept,
        {
            "from": start.isoformat(),
            "pickup": br.fmt_time(pickup),
            "back": br.fmt_time(back) if back is not None else None,
        },
    ]
    order.updated_at = now
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session,
        order,
        TIME_CHANGED_BY,
        {
            "who": account.display_name,
            "number": str(order.id),
            "date": br.fmt_date(start),
            "time": br.fmt_time(pickup),
        },
        exclude_telegram_id=actor.telegram_id,
    )
    for day in await due_dates(session, order.id, now, tz=tz):
        if day >= start:
            await materialize(session, order.id, day, now, tz=tz)
    return OrderResult(order=order, cancelled_rides=tuple(cancelled))


async def end_order(
    session: AsyncSession,
    account: Account,
    order_id: int,
    now: datetime,
) -> OrderResult:
    """The order stops now: no new rides, and its rides that have not started are cancelled."""
    order, rider = await _mine(session, account, order_id)
    if order is None or rider is None:
        return OrderResult(reason=ORDER_NOT_FOUND)
    if order.status not in (OrderStatus.APPROVED.value, OrderStatus.PENDING.value):
        return OrderResult(order=order, reason=NOT_ACTIVE)
    actor = _actor_of(account, rider)
    rides = [r for r in await _open_rides(session, order.id, date.min) if r.pickup_at > now]
    cancelled = await _cancel_rides(session, rides, actor, "so_ended", now)
    order.status = OrderStatus.ENDED.value
    order.proposed_time = None
    order.proposed_return_time = None
    order.updated_at = now
    await session.flush()
    await _refresh_card(session, order)
    await _tell(
        session,
        order,
        ENDED_BY,
        {"who": account.display_name, "number": str(order.id)},
        exclude_telegram_id=actor.telegram_id,
    )
    return OrderResult(order=order, cancelled_rides=tuple(cancelled))


# ---- the sweep's step: a date becomes a ride ---------------------------------------------------


@dataclass(frozen=True)
class Materialized:
    """What one date of an order came to: its rides, a skip, or nothing (done before)."""

    rides: tuple[Ride, ...] = ()
    scheduled: int = 0
    skipped: str | None = None  # the SKIP_LABELS kind

    @property
    def acted(self) -> bool:
        return bool(self.rides) or self.skipped is not None


def horizon(district: District, now: datetime, tz: ZoneInfo) -> tuple[date, date] | None:
    """The dates a ride can be booked for now, first and last (None: none open)."""
    dates = br.bookable_dates(booking.rules_of(district), now, tz)
    return (dates[0], dates[-1]) if dates else None


async def due_dates(
    session: AsyncSession, order_id: int, now: datetime, *, tz: ZoneInfo
) -> list[date]:
    """The order's dates inside the booking horizon that have neither a ride nor a skip yet."""
    order = await session.get(StandingOrder, order_id, populate_existing=True)
    if order is None or order.status != OrderStatus.APPROVED.value:
        return []
    district = await district_by_id(session, order.district_id)
    if district is None:
        return []
    window = horizon(district, now, tz)
    if window is None:
        return []
    dates = so.occurrence_dates(schedule_of(order), window[0], window[1])
    if not dates:
        return []
    booked = set(
        await session.scalars(
            select(Ride.occurrence_date).where(
                Ride.standing_order_id == order.id,
                Ride.occurrence_date.in_(dates),
                Ride.leg == "there",
            )
        )
    )
    return [d for d in dates if d not in booked]


async def materialize(
    session: AsyncSession,
    order_id: int,
    day: date,
    now: datetime,
    *,
    tz: ZoneInfo,
) -> Materialized:
    """Turn one date of an approved order into its ride(s), once.

    Under the order's lock: a date already booked, skipped, paused or outside the order is left
    alone. A public holiday the district skips, or a date the booking rules refuse, is recorded
    as skipped and the rider's circle is told why. Otherwise the booking service makes the ride
    (and its way back) as any ride, and the order's car is assigned when it fits and is free.
    """
    order = await _locked(session, order_id)
    if order is None or order.status != OrderStatus.APPROVED.value:
        return Materialized()
    schedule = schedule_of(order)
    if day not in so.occurrence_dates(schedule, day, day):
        return Materialized()
    exists = await session.scalar(
        select(Ride.id).where(
            Ride.standing_order_id == order.id, Ride.occurrence_date == day, Ride.leg == "there"
        )
    )
    if exists is not None:
        return Materialized()
    district = await district_by_id(session, order.district_id)
    if district is None:
        return Materialized()
    if day in holidays_for(district, day, day):
        return await _skip(session, order, day, SKIP_HOLIDAY, SKIP_HOLIDAY, now)
    pickup, back = schedule.times_on(day)
    draft = booking.Draft(
        rider_id=order.rider_id,
        pickup_address=order.pickup_address,
        destination=order.destination,
        purpose=order.purpose,
        day=day,
        pickup_time=pickup,
        # A new key after each change of time: the date's cancelled ride keeps the old one.
        request_key=f"so{order.id}-{day:%Y%m%d}-{len(order.time_changes or [])}",
        pickup_lat=order.pickup_lat,
        pickup_lon=order.pickup_lon,
        return_time=back,
        assistant=order.assistant,
        companions=order.companions,
        wheelchair=order.wheelchair,
        comment=order.comment,
        booked_by=order.created_by,
        standing_order_id=order.id,
        occurrence_date=day,
    )
    result = await booking.create_booking(
        session, draft, Actor.system(), now, tz=tz, announce=False
    )
    if result.reason is not None:
        code = result.reason.code
        return await _skip(session, order, day, skip_kind(code), code, now)
    if result.duplicate or result.ride is None:
        return Materialized()
    rides = tuple(r for r in (result.ride, result.return_ride) if r is not None)
    scheduled = 0
    if order.vehicle_id is not None:
        vehicle = await session.get(Vehicle, order.vehicle_id)
        if vehicle is not None and vehicle.active:
            minutes = booking.rules_of(district).ride_minutes
            for ride in rides:
                if not suits(vehicle, ride):
                    continue
                if await conflicts_of(session, vehicle.id, ride.pickup_at, minutes, ride.id):
                    continue
                outcome = await change(
                    session,
                    ride.id,
                    Action.ASSIGN,
                    Actor.system(),
                    values={"vehicle_id": vehicle.id},
                    now=now,
                )
                scheduled += int(outcome.ok)
    return Materialized(rides=rides, scheduled=scheduled)


async def _skip(
    session: AsyncSession, order: StandingOrder, day: date, kind: str, code: str, now: datetime
) -> Materialized:
    if not _add_skip(order, day, kind, code):
        return Materialized()
    order.updated_at = now
    await session.flush()
    await _tell(
        session,
        order,
        _SKIP_MESSAGES.get(kind, SKIPPED_RULES),
        {"number": str(order.id), **_day_params(day)},
    )
    await _refresh_card(session, order)
    return Materialized(skipped=kind)


async def active_order_ids(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(StandingOrder.id)
        .where(StandingOrder.status == OrderStatus.APPROVED.value)
        .order_by(StandingOrder.id)
    )
    return list(rows)


async def close_finished(session: AsyncSession, now: datetime, *, tz: ZoneInfo) -> int:
    """Approved orders whose end date has passed are ended (their rides live on as rides)."""
    today = now.astimezone(tz).date()
    result = await session.execute(
        update(StandingOrder)
        .where(StandingOrder.status == OrderStatus.APPROVED.value, StandingOrder.end_date < today)
        .values(status=OrderStatus.ENDED.value, updated_at=now)
        .returning(StandingOrder.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def vkk_reminders_due(session: AsyncSession, now: datetime, *, tz: ZoneInfo) -> list[int]:
    """Approved orders that run into their rider's ВКК expiry within 30 days, not told yet."""
    today = now.astimezone(tz).date()
    rows = await session.execute(
        select(
            StandingOrder.id,
            StandingOrder.end_date,
            StandingOrder.vkk_notice_for,
            Rider.vkk_expires_on,
        )
        .join(Rider, Rider.id == StandingOrder.rider_id)
        .where(
            StandingOrder.status == OrderStatus.APPROVED.value,
            Rider.vkk_expires_on.is_not(None),
            Rider.vkk_expires_on <= today + timedelta(days=so.VKK_NOTICE_DAYS),
        )
    )
    return [
        order_id
        for order_id, end_date, told_for, expires_on in rows.all()
        if told_for != expires_on and so.vkk_notice_due(end_date, expires_on, today)
    ]


async def remind_vkk(session: AsyncSession, order_id: int, now: datetime, *, tz: ZoneInfo) -> bool:
    """Tell the rider's circle once per conclusion that the order stops when the ВКК expires.

    Claimed by one conditional update, so two sweepers send it once.
    """
    order = await session.get(StandingOrder, order_id, populate_existing=True)
    if order is None:
        return False
    rider = await session.get(Rider, order.rider_id, populate_existing=True)
    if rider is None or rider.vkk_expires_on is None:
        return False
    expires = rider.vkk_expires_on
    if not so.vkk_notice_due(order.end_date, expires, now.astimezone(tz).date()):
        return False
    claimed = await session.execute(
        update(StandingOrder)
        .where(
            StandingOrder.id == order_id,
            or_(StandingOrder.vkk_notice_for.is_(None), StandingOrder.vkk_notice_for != expires),
        )
        .values(vkk_notice_for=expires)
        .returning(StandingOrder.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.first() is None:
        return False
    await _tell(
        session,
        order,
        VKK_ENDS_ORDER,
        {"name": rider.full_name, "date": br.fmt_date(expires), "number": str(order.id)},
    )
    return True


# ---- lists -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderView:
    """An order with what a list shows: its next ride dates and the dates without a ride."""

    order: StandingOrder
    rider: Rider
    next_dates: tuple[date, ...]
    skipped: tuple[SkippedDate, ...] = field(default_factory=tuple)


def next_dates(
    order: StandingOrder, district: District, today: date, count: int = NEXT_DATES
) -> list[date]:
    """The next dates the order will (or did) book, public holidays left out where skipped."""
    schedule = schedule_of(order)
    start = max(today, order.first_date)
    off = holidays_for(district, start, order.end_date)
    return so.occurrence_dates(schedule, start, holidays=off)[:count]


async def _views(
    session: AsyncSession, orders: Iterable[StandingOrder], today: date
) -> list[OrderView]:
    views = []
    for order in orders:
        rider = await session.get(Rider, order.rider_id)
        district = await district_by_id(session, order.district_id)
        if rider is None or district is None:
            continue
        views.append(
            OrderView(
                order=order,
                rider=rider,
                next_dates=tuple(next_dates(order, district, today)),
                skipped=tuple(s for s in skipped_dates(order) if s.day >= today),
            )
        )
    return views


LIVE_STATUSES: Final = (OrderStatus.PENDING.value, OrderStatus.APPROVED.value)
STOPPED_STATUSES: Final = (OrderStatus.REJECTED.value, OrderStatus.ENDED.value)


async def orders_of(
    session: AsyncSession, account: Account, now: datetime, *, tz: ZoneInfo
) -> list[OrderView]:
    """The person's riders' pending and running orders, for /rides."""
    riders = await booking.riders_for(session, account)
    if not riders:
        return []
    rows = await session.scalars(
        select(StandingOrder)
        .where(
            StandingOrder.rider_id.in_([r.id for r in riders]),
            StandingOrder.status.in_(LIVE_STATUSES),
        )
        .order_by(StandingOrder.first_date, StandingOrder.id)
    )
    return await _views(session, rows, now.astimezone(tz).date())


async def order_of(session: AsyncSession, account: Account, order_id: int) -> StandingOrder | None:
    """The order if it belongs to one of the person's riders (an old or forged button: None)."""
    order = await session.get(StandingOrder, order_id, populate_existing=True)
    if order is None:
        return None
    if await booking.rider_for(session, account, order.rider_id) is None:
        return None
    return order


async def district_orders(
    session: AsyncSession, district_id: str, now: datetime, *, tz: ZoneInfo
) -> list[OrderView]:
    """The district's pending and running orders, for /regular in the dispatcher chat."""
    rows = await session.scalars(
        select(StandingOrder)
        .where(StandingOrder.district_id == district_id, StandingOrder.status.in_(LIVE_STATUSES))
        .order_by(StandingOrder.status.desc(), StandingOrder.pickup_time, StandingOrder.id)
    )
    return await _views(session, rows, now.astimezone(tz).date())


async def occurrences_on(
    session: AsyncSession, district_id: str, day: date, *, tz: ZoneInfo
) -> list[Ride]:
    """Rides from standing orders on a local day (tomorrow's, for /regular), by pickup time."""
    start, end = local_day_bounds(day, tz)
    rows = await session.scalars(
        select(Ride)
        .where(
            Ride.district_id == district_id,
            Ride.standing_order_id.is_not(None),
            Ride.pickup_at >= start,
            Ride.pickup_at < end,
        )
        .order_by(Ride.pickup_at, Ride.id)
    )
    return list(rows)


REJECT_REASON_CODES: Final = tuple(REJECT_REASONS)
