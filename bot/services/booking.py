"""Booking a ride: the district's rules, the rider's eligibility and other rides, in one place.

The conversation asks these questions step by step so a person learns early what won't work;
`create_booking` asks them all again at confirm time, because minutes (or a second tap, or a
relative booking at the same moment) may have passed since the summary was shown.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import booking_rules as br
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import N_, Msg, Reason
from bot.services.notifications import tell
from bot.services.outbox import enqueue_card
from bot.services.registration import access_to, eligibility_of, riders_of
from bot.services.ride_labels import status_label
from bot.services.rides import Action, Actor, allowed_actions, change, record_creation
from bot.services.text import strip_hostile
from models import OPEN_STATUSES, Account, District, Ride, Rider, RideStatus

# Kazakhstan's one zone (UTC+5); the handlers pass the TIMEZONE setting.
MAX_TEXT: Final = 300
MAX_COMMENT: Final = 300
RECENT_DESTINATIONS: Final = 5
RECENT_RIDES: Final = 10
# "As last time" offers this many earlier trips on the first screen of booking.
LAST_TRIPS: Final = 3
RETURN_KEY_SUFFIX: Final = "-back"
RIDE_CARD: Final = "ride_card"

EMPTY_TEXT: Final = Reason("empty_text", N_("The text is empty. Please type it again."))
NO_WORDS: Final = Reason(
    "no_words", N_("Please write it in words: pictures and emoji alone can't be read.")
)
NOT_YOUR_RIDER: Final = Reason(
    "not_your_rider", N_("This person is no longer linked to you, so you can't book for them.")
)
NO_RIDERS: Final = Reason(
    "no_riders",
    N_(
        "To book a ride, first register the rider: send /start and follow the steps. "
        "After a dispatcher checks the documents you can book."
    ),
)
RIDE_NOT_FOUND: Final = Reason("ride_not_found", N_("This ride is not among your rides any more."))
BOOKED_FOR_YOU: Final = N_(
    "{who} booked ride №{number} for {name}: {date} at {time}, from {pickup} to {destination}."
)


def too_long(limit: int, length: int) -> Reason:
    return Reason(
        "too_long",
        N_("That is too long: {length} characters. Please keep it within {limit}."),
        {"length": length, "limit": limit},
    )


def return_too_early(rules: br.BookingRules, pickup: time) -> Reason:
    earliest = (datetime.combine(date(2000, 1, 1), pickup) + _span(rules)).time()
    return Reason(
        "return_too_early",
        N_(
            "The way back must start at least {minutes} min after the pickup at {time}: "
            "at {earliest} or later."
        ),
        {
            "minutes": rules.ride_minutes,
            "time": br.fmt_time(pickup),
            "earliest": br.fmt_time(earliest),
        },
    )


def not_cancellable(status: str) -> Reason:
    return Reason(
        "not_cancellable",
        N_("This ride can't be cancelled here now: {state}. Please call the dispatcher."),
        {"state": Msg(status_label(status))},
    )


# ---- typed input ---------------------------------------------------------------------------

_HM: Final = re.compile(r"(\d{1,2})(?:[:.\s-]?(\d{2}))?")


def clean_text(text: str | None, *, limit: int = MAX_TEXT) -> str | Reason:
    """Drop hostile characters (`bot.services.text`), collapse whitespace, then refuse empty
    text, over-long text, and text with no words."""
    value = " ".join(strip_hostile(text or "").split())
    if not value:
        return EMPTY_TEXT
    if len(value) > limit:
        return too_long(limit, len(value))
    if not any(ch.isalnum() for ch in value):
        return NO_WORDS
    return value


def parse_time(text: str) -> time | None:
    """`09:30`, `9:30`, `9.30`, `0930`, `930` or just `9` (on the hour)."""
    match = _HM.fullmatch(text.strip())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2] or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def new_request_key() -> str:
    """A key for one summary: confirming it twice finds the ride the first press created."""
    return secrets.token_hex(8)


# ---- the district's rules for this rider -------------------------------------------------


def rules_of(district: District) -> br.BookingRules:
    """The defaults with the district's overrides (eligibility keys are skipped by the rules)."""
    return br.BookingRules().with_overrides(dict(district.rules or {}))


def _span(rules: br.BookingRules) -> timedelta:
    return timedelta(minutes=rules.ride_minutes)


def at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def bookable_days(rider: Rider, district: District, now: datetime, tz: ZoneInfo) -> list[date]:
    """Dates the district takes bookings for and on which the rider is still eligible."""
    rules = rules_of(district)
    return [d for d in br.bookable_dates(rules, now, tz) if eligibility_of(rider, district, d).ok]


def check_rider(rider: Rider, district: District, now: datetime, tz: ZoneInfo) -> Reason | None:
    """Can this rider book anything at all: verified, and eligible on some open date."""
    days = br.bookable_dates(rules_of(district), now, tz)
    if not days:
        verdict = eligibility_of(rider, district, now.astimezone(tz).date())
        return verdict.reason or br.NO_DATES_OPEN
    verdicts = [eligibility_of(rider, district, d) for d in days]
    if any(v.ok for v in verdicts):
        return None
    return verdicts[0].reason


def check_day(
    rider: Rider, district: District, day: date, now: datetime, tz: ZoneInfo
) -> Reason | None:
    """The district's window for the date, then the rider's eligibility on it."""
    reason = br.check_date(rules_of(district), day, now, tz)
    if reason is not None:
        return reason
    return eligibility_of(rider, district, day).reason


def pickup_slots(district: District, day: date, now: datetime, tz: ZoneInfo) -> list[time]:
    return br.time_slots(rules_of(district), day, now, tz)


def return_slots(
    district: District, day: date, pickup: time, now: datetime, tz: ZoneInfo
) -> list[time]:
    """Slots of the same day that leave the ride's assumed duration after the pickup."""
    rules = rules_of(district)
    earliest = at_local(day, pickup, tz) + _span(rules)
    return [s for s in br.time_slots(rules, day, now, tz) if at_local(day, s, tz) >= earliest]


def check_time(
    district: District, day: date, at: time, now: datetime, tz: ZoneInfo
) -> Reason | None:
    return br.check_pickup(rules_of(district), at_local(day, at, tz), now, tz)


def check_return_time(
    district: District,
    day: date,
    pickup: time,
    back: time,
    now: datetime,
    tz: ZoneInfo,
) -> Reason | None:
    rules = rules_of(district)
    if at_local(day, back, tz) < at_local(day, pickup, tz) + _span(rules):
        return return_too_early(rules, pickup)
    return br.check_pickup(rules, at_local(day, back, tz), now, tz)


def party_choices(district: District) -> list[tuple[bool, int]]:
    """Who may ride along: (assistant, companions) pairs within the district's limits."""
    rules = rules_of(district)
    assistants = (False, True) if rules.max_assistants >= 1 else (False,)
    return [(a, c) for a in assistants for c in range(rules.max_companions + 1)]


async def riders_for(session: AsyncSession, account: Account) -> list[Rider]:
    return await riders_of(session, account)


async def rider_for(session: AsyncSession, account: Account, rider_id: int) -> Rider | None:
    """The rider if this person may book for them (their own profile or a linked one)."""
    access = await access_to(session, account, rider_id)
    return access.rider if access is not None else None


async def recent_destinations(
    session: AsyncSession, rider_id: int, limit: int = RECENT_DESTINATIONS
) -> list[str]:
    """The rider's last distinct destinations, newest first: most trips are repeats."""
    rows = await session.scalars(
        select(Ride.destination)
        .where(Ride.rider_id == rider_id)
        .order_by(Ride.created_at.desc(), Ride.id.desc())
        .limit(limit * 10)
    )
    seen: list[str] = []
    for destination in rows:
        if destination not in seen:
            seen.append(destination)
        if len(seen) == limit:
            break
    return seen


# ---- confirming --------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """Everything the summary shows; times are local to the district."""

    rider_id: int
    pickup_address: str
    destination: str
    purpose: str
    day: date
    pickup_time: time
    request_key: str
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    return_time: time | None = None
    assistant: bool = False
    companions: int = 0
    wheelchair: bool = False
    comment: str = ""
    return_of: int | None = None
    booked_by: int | None = None
    # A ride made from a standing order: the order and the date it stands for.
    standing_order_id: int | None = None
    occurrence_date: date | None = None


@dataclass(frozen=True)
class BookingResult:
    """The ride (and its way back), its place in the queue, or why nothing was booked.

    `duplicate` is True when the summary had been confirmed before: the existing ride is
    returned and nothing new is created.
    """

    ride: Ride | None = None
    return_ride: Ride | None = None
    position: int | None = None
    duplicate: bool = False
    reason: Reason | None = None

    @property
    def ok(self) -> bool:
        return self.ride is not None


async def ride_by_key(session: AsyncSession, request_key: str) -> Ride | None:
    return await session.scalar(select(Ride).where(Ride.request_key == request_key))


async def return_ride_of(session: AsyncSession, ride_id: int) -> Ride | None:
    return await session.scalar(
        select(Ride).where(Ride.return_of == ride_id).order_by(Ride.id).limit(1)
    )


async def queue_position(session: AsyncSession, ride: Ride) -> int | None:
    """First come, first served: requested rides of the district created before this one, + 1."""
    if ride.status != RideStatus.REQUESTED:
        return None
    earlier = await session.scalar(
        select(func.count())
        .select_from(Ride)
        .where(
            Ride.district_id == ride.district_id,
            Ride.status == RideStatus.REQUESTED,
            Ride.id < ride.id,
        )
    )
    return int(earlier or 0) + 1


async def _existing(session: AsyncSession, request_key: str) -> BookingResult | None:
    ride = await ride_by_key(session, request_key)
    if ride is None:
        return None
    back = await ride_by_key(session, request_key + RETURN_KEY_SUFFIX)
    return BookingResult(
        ride=ride,
        return_ride=back,
        position=await queue_position(session, ride),
        duplicate=True,
    )


async def active_rides(session: AsyncSession, rider_id: int) -> list[br.ExistingRide]:
    """The rider's open rides, as the daily limit and the other caps count them."""
    rows = await session.scalars(
        select(Ride.pickup_at).where(
            Ride.rider_id == rider_id, Ride.status.in_([s.value for s in OPEN_STATUSES])
        )
    )
    return [br.ExistingRide(pickup_at=p, active=True) for p in rows]


async def create_booking(
    session: AsyncSession,
    draft: Draft,
    actor: Actor,
    now: datetime,
    *,
    tz: ZoneInfo,
    announce: bool = True,
) -> BookingResult:
    """Create the ride (and its way back) as requested, or say why not; never twice per key.

    `announce=False` leaves out the "{who} booked ride …" message to the rider's circle: the
    standing-order sweep books on nobody's behalf and tells people in its own words.

    The rider's row is locked first (PostgreSQL; SQLite writers are serial already), so two
    confirmations of one summary, or two relatives booking at once, are decided one after the
    other against the same counts. The unique request key is the last line of defence.
    """
    found = await _existing(session, draft.request_key)
    if found is not None:
        return found
    rider = await session.scalar(select(Rider).where(Rider.id == draft.rider_id).with_for_update())
    if rider is None:
        return BookingResult(reason=NOT_YOUR_RIDER)
    # Another confirmation may have committed while we waited for the lock.
    found = await _existing(session, draft.request_key)
    if found is not None:
        return found
    district = await district_by_id(session, rider.district_id)
    if district is None:
        return BookingResult(reason=br.NO_DATES_OPEN)
    verdict = eligibility_of(rider, district, draft.day)
    if verdict.reason is not None:
        return BookingResult(reason=verdict.reason)
    rules = rules_of(district)
    pickup = at_local(draft.day, draft.pickup_time, tz)
    party = {"assistants": int(draft.assistant), "companions": draft.companions}
    others = await active_rides(session, rider.id)
    reason = br.check_booking(rules, pickup, now, tz, existing=others, **party)
    if reason is not None:
        return BookingResult(reason=reason)
    back: datetime | None = None
    if draft.return_time is not None:
        back = at_local(draft.day, draft.return_time, tz)
        if back < pickup + _span(rules):
            return BookingResult(reason=return_too_early(rules, draft.pickup_time))
        with_first = [*others, br.ExistingRide(pickup_at=pickup, active=True)]
        reason = br.check_booking(rules, back, now, tz, existing=with_first, **party)
        if reason is not None:
            return BookingResult(reason=reason)
    return_of = draft.return_of
    if return_of is not None:
        original = await session.get(Ride, return_of)
        if original is None or original.rider_id != rider.id:
            return_of = None

    def build(**fields: object) -> Ride:
        common: dict[str, object] = {
            "rider_id": rider.id,
            "district_id": rider.district_id,
            "booked_by": draft.booked_by,
            "status": RideStatus.REQUESTED.value,
            "purpose": draft.purpose,
            "assistant": draft.assistant,
            "companions": draft.companions,
            "wheelchair": draft.wheelchair,
            "comment": draft.comment,
            "created_at": now,
            "updated_at": now,
            "status_changed_at": now,
            "standing_order_id": draft.standing_order_id,
            "occurrence_date": draft.occurrence_date,
        }
        return Ride(**{**common, **fields})

    standing = draft.standing_order_id is not None

    try:
        async with session.begin_nested():
            ride = build(
                pickup_address=draft.pickup_address,
                pickup_lat=draft.pickup_lat,
                pickup_lon=draft.pickup_lon,
                destination=draft.destination,
                pickup_at=pickup,
                return_of=return_of,
                request_key=draft.request_key,
                leg="there" if standing else None,
            )
            session.add(ride)
            await session.flush()
            return_ride: Ride | None = None
            if back is not None:
                return_ride = build(
                    pickup_address=draft.destination,
                    destination=draft.pickup_address,
                    pickup_lat=None,
                    pickup_lon=None,
                    pickup_at=back,
                    return_of=ride.id,
                    request_key=draft.request_key + RETURN_KEY_SUFFIX,
                    leg="back" if standing else None,
                )
                session.add(return_ride)
                await session.flush()
    except IntegrityError:
        # The same summary was confirmed in another transaction that committed first.
        found = await _existing(session, draft.request_key)
        if found is None:
            raise
        return found
    for created in (ride, return_ride):
        if created is None:
            continue
        event = await record_creation(session, created, actor)
        event.at = now
        await enqueue_card(
            session,
            kind=RIDE_CARD,
            subject_id=created.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=created.id,
        )
        if not announce:
            continue
        await tell(
            session,
            created,
            BOOKED_FOR_YOU,
            {
                "who": actor.name or "",
                "number": created.number,
                "name": rider.full_name,
                "pickup": created.pickup_address,
                "destination": created.destination,
                "date": br.fmt_date(created.pickup_at.astimezone(tz).date()),
                "time": br.fmt_time(created.pickup_at.astimezone(tz).time()),
            },
            exclude_telegram_id=actor.telegram_id,
        )
    return BookingResult(
        ride=ride, return_ride=return_ride, position=await queue_position(session, ride)
    )


# ---- my rides ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RideList:
    upcoming: list[Ride]
    recent: list[Ride]
    riders: dict[int, Rider]


async def rides_of(session: AsyncSession, account: Account, limit: int = RECENT_RIDES) -> RideList:
    """Open rides soonest first, then finished ones newest first, of every rider of the person."""
    riders = {r.id: r for r in await riders_for(session, account)}
    if not riders:
        return RideList([], [], {})
    open_values = [s.value for s in OPEN_STATUSES]
    upcoming = await session.scalars(
        select(Ride)
        .where(Ride.rider_id.in_(riders), Ride.status.in_(open_values))
        .order_by(Ride.pickup_at, Ride.id)
    )
    recent = await session.scalars(
        select(Ride)
        .where(Ride.rider_id.in_(riders), Ride.status.not_in(open_values))
        .order_by(Ride.pickup_at.desc(), Ride.id.desc())
        .limit(limit)
    )
    return RideList(list(upcoming), list(recent), riders)


@dataclass(frozen=True)
class RideView:
    ride: Ride
    rider: Rider
    own: bool
    can_cancel: bool
    return_ride: Ride | None


async def ride_of(session: AsyncSession, account: Account, ride_id: int) -> RideView | None:
    """The ride if it belongs to one of the person's riders (an old or forged button is None)."""
    ride = await session.get(Ride, ride_id, populate_existing=True)
    if ride is None:
        return None
    access = await access_to(session, account, ride.rider_id)
    if access is None:
        return None
    return RideView(
        ride=ride,
        rider=access.rider,
        own=access.own,
        can_cancel=Action.RIDER_CANCEL in allowed_actions(ride.status),
        return_ride=await return_ride_of(session, ride.id),
    )


@dataclass(frozen=True)
class Cancelled:
    """`other_leg` is the other half of a round trip when it is still booked: the rider is
    asked about it, so nobody is left at the clinic or fetched for nothing (review B9)."""

    ride: Ride | None
    late: bool = False
    open_return: Ride | None = None
    reason: Reason | None = None
    other_leg: Ride | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


async def cancel_ride(
    session: AsyncSession, account: Account, ride_id: int, why: str, now: datetime
) -> Cancelled:
    """The rider's or a representative's cancellation, flagged late inside the district window."""
    view = await ride_of(session, account, ride_id)
    if view is None:
        return Cancelled(ride=None, reason=RIDE_NOT_FOUND)
    district = await district_by_id(session, view.ride.district_id)
    rules = rules_of(district) if district is not None else br.BookingRules()
    late = br.is_late_cancellation(rules, view.ride.pickup_at, now)
    actor = Actor(
        "rider" if view.own else "representative", account.telegram_id, account.display_name
    )
    outcome = await change(
        session,
        ride_id,
        Action.RIDER_CANCEL,
        actor,
        reason=why,
        values={"cancelled_late": late},
        now=now,
    )
    if not outcome.ok:
        status = outcome.ride.status if outcome.ride is not None else view.ride.status
        return Cancelled(ride=outcome.ride, reason=not_cancellable(status))
    back = view.return_ride
    open_back = back if back is not None and back.status in OPEN_STATUSES else None
    other = open_back
    if view.ride.return_of is not None:
        there = await session.get(Ride, view.ride.return_of, populate_existing=True)
        if there is not None and there.status in OPEN_STATUSES:
            other = there
    return Cancelled(ride=outcome.ride, late=late, open_return=open_back, other_leg=other)


@dataclass(frozen=True)
class Trip:
    """A ride booked before, with its way back if it had one: what "as last time" repeats."""

    ride: Ride
    way_back: Ride | None


async def last_trips(
    session: AsyncSession, rider_ids: Sequence[int], *, limit: int = LAST_TRIPS
) -> list[Trip]:
    """The riders' latest trips there (not their ways back), newest first, one per route and
    time: the same trip booked every week is offered once."""
    if not rider_ids:
        return []
    rows = await session.scalars(
        select(Ride)
        .where(Ride.rider_id.in_(rider_ids), Ride.return_of.is_(None))
        .order_by(Ride.created_at.desc(), Ride.id.desc())
        .limit(limit * 10)
    )
    trips: list[Trip] = []
    seen: set[tuple[object, ...]] = set()
    for ride in rows:
        back = await return_ride_of(session, ride.id)
        key = (
            ride.rider_id,
            ride.pickup_address,
            ride.destination,
            ride.pickup_at.time(),
            back.pickup_at.time() if back is not None else None,
        )
        if key in seen:
            continue
        seen.add(key)
        trips.append(Trip(ride=ride, way_back=back))
        if len(trips) == limit:
            break
    return trips
