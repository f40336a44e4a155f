"""The monthly report's figures: one definition each, computed from rides and their events.

The department reports to the budget how the money was used; every figure here has exactly one
definition, written in the docstring of the code that computes it (and in the README), so the
workbook, the CSV, the charts and any `/status`-style view count the same way.

Which rides: a ride belongs to the month of its pickup date in the configured time zone (a ride
picked up at 00:30 on 1 December, local time, is December's, though it is still November in
UTC). Every ride row is one request received; its outcome is its status when the report is made.

Memory: rides are read in one streamed query (`stream_rides`), one ride at a time with its
events; the totals keep only counts, the set of riders, and one count per distinct waiting time
in seconds, so a month of ten thousand rides costs no more than a month of ten.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.booking_rules import BookingRules
from bot.services.dispatch import CANCEL_REASONS, REJECT_REASONS
from bot.services.sweeps import ServiceHours
from models import District, Ride, RideEvent, Rider, RideStatus, Vehicle

S = RideStatus
# Rows fetched from the database per round trip while streaming a month's rides.
STREAM_BATCH: Final = 500
# A dispatcher's answer to a request: a car, another time, a refusal or a cancellation.
DECISIONS: Final = frozenset({S.SCHEDULED, S.TIME_PROPOSED, S.REJECTED, S.CANCELLED})
# The outcomes a report shows, in the order of the summary and of the chart's legend.
OUTCOMES: Final = (S.COMPLETED, S.REJECTED, S.CANCELLED, S.NO_SHOW, S.EXPIRED)
OPEN: Final = "open"
# A reason typed by the dispatcher may hold anything; reports show it only as "another reason".
OTHER_REASON: Final = "other"
PEOPLE_ON_THE_RIDERS_SIDE: Final = frozenset({"rider", "representative"})


# -- the month ----------------------------------------------------------------------------------


def parse_month(text: str) -> date | None:
    """ "2026-11" (or "11.2026") as the first day of that month; None when it is not a month."""
    text = text.strip()
    year_s, month_s = "", ""
    if len(text) == 7 and text[4] == "-":
        year_s, month_s = text[:4], text[5:]
    elif len(text) == 7 and text[2] == ".":
        month_s, year_s = text[:2], text[3:]
    if not (year_s.isdigit() and month_s.isdigit()):
        return None
    year, month = int(year_s), int(month_s)
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def month_code(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def previous_month(first: date) -> date:
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def month_of(instant: datetime, tz: tzinfo) -> date:
    """The month (its first day) an instant falls in, local time."""
    return instant.astimezone(tz).date().replace(day=1)


def month_bounds(first: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a local month in UTC: local midnight of its first day and of the next."""
    start = datetime.combine(first, time(0, 0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(next_month(first), time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, end


# -- one ride -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One audit event, without the names of riders or anything they typed."""

    at: datetime
    actor_kind: str
    actor_name: str | None
    from_status: str | None
    to_status: str


@dataclass
class RideFacts:
    """What a report may say about one ride: no name, phone, address or IIN."""

    id: int
    district_id: str
    pickup_at: datetime
    created_at: datetime
    purpose: str
    category: str
    rider_id: int
    status: str
    wheelchair: bool
    cancelled_late: bool
    reason: str | None
    vehicle_id: int | None
    vehicle_plate: str | None
    vehicle_make: str | None
    standing_order_id: int | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The status if the ride is finished; "open" while it is still under way."""
        return self.status if self.status in OUTCOMES else OPEN

    @property
    def booked_by_kind(self) -> str:
        """Who asked for the ride: the actor of its first event (rider, representative, ...)."""
        first = next((c for c in self.changes if c.from_status is None), None)
        return first.actor_kind if first is not None else "rider"

    @property
    def decision(self) -> Change | None:
        """The dispatcher's decision: the first event by a dispatcher that answered the request
        (assigned a car, offered another time, rejected or cancelled it). Taking a request into
        work is not yet an answer to the rider."""
        for change in self.changes:
            if change.actor_kind == "dispatcher" and change.to_status in DECISIONS:
                return change
        return None

    @property
    def decision_wait(self) -> timedelta | None:
        """Time from the request (the ride's creation) to the dispatcher's decision."""
        decision = self.decision
        return None if decision is None else max(decision.at - self.created_at, timedelta(0))

    @property
    def cancelled_by(self) -> str | None:
        """Who cancelled a cancelled ride: the actor kind of the event that cancelled it."""
        if self.status != S.CANCELLED:
            return None
        last = next((c for c in reversed(self.changes) if c.to_status == S.CANCELLED), None)
        return last.actor_kind if last is not None else None

    @property
    def reason_code(self) -> str | None:
        """A reason picked from the list, or "other" for one the dispatcher typed."""
        if self.reason is None:
            return None
        if self.reason in REJECT_REASONS or self.reason in CANCEL_REASONS:
            return self.reason
        return OTHER_REASON

    def state_times(self) -> dict[str, datetime]:
        """When the ride last entered each state it went through."""
        return {c.to_status: c.at for c in self.changes}


# -- reading ------------------------------------------------------------------------------------


async def districts_by_id(session: AsyncSession) -> dict[str, District]:
    return {d.id: d for d in await session.scalars(select(District).order_by(District.id))}


def month_query(first: date, tz: tzinfo, district_id: str | None) -> Any:
    """Rides picked up in the local month, each followed by its events, oldest number first."""
    start, end = month_bounds(first, tz)
    query = (
        select(
            Ride.id,
            Ride.district_id,
            Ride.pickup_at,
            Ride.created_at,
            Ride.purpose,
            Rider.category,
            Ride.rider_id,
            Ride.status,
            Ride.wheelchair,
            Ride.cancelled_late,
            Ride.reason,
            Ride.vehicle_id,
            Vehicle.plate,
            Vehicle.make,
            Ride.standing_order_id,
            RideEvent.at,
            RideEvent.actor_kind,
            RideEvent.actor_name,
            RideEvent.from_status,
            RideEvent.to_status,
        )
        .join(Rider, Rider.id == Ride.rider_id)
        .outerjoin(Vehicle, Vehicle.id == Ride.vehicle_id)
        .outerjoin(RideEvent, RideEvent.ride_id == Ride.id)
        .where(Ride.pickup_at >= start, Ride.pickup_at < end)
        .order_by(Ride.id, RideEvent.at, RideEvent.id)
    )
    if district_id is not None:
        query = query.where(Ride.district_id == district_id)
    return query


async def stream_rides(
    session: AsyncSession, first: date, tz: tzinfo, district_id: str | None = None
) -> AsyncIterator[RideFacts]:
    """The month's rides one at a time, each with its events, from one streamed query."""
    result = await session.stream(
        month_query(first, tz, district_id).execution_options(yield_per=STREAM_BATCH)
    )
    current: RideFacts | None = None
    # A batch at a time: one hop to the database driver per batch, not per row.
    async for batch in result.partitions(STREAM_BATCH):
        for row in batch:
            if current is None or current.id != row[0]:
                if current is not None:
                    yield current
                current = RideFacts(*row[:15])
            if row[19] is not None:
                current.changes.append(Change(*row[15:20]))
    if current is not None:
        yield current


# -- the figures --------------------------------------------------------------------------------


def desk_of(district: District | None) -> tuple[int, ServiceHours]:
    """The district's escalation time and desk hours, as the escalation sweep reads them."""
    rules = BookingRules().with_overrides(dict(district.rules or {}) if district else {})
    hours = ServiceHours(rules.service_start, rules.service_end, frozenset(rules.service_days))
    return rules.escalation_minutes, hours


def median(counts: Mapping[int, int]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count) of counted values."""
    total = sum(counts.values())
    if total == 0:
        return None
    ordered = sorted(counts.items())
    low = _nth(ordered, (total - 1) // 2)
    high = _nth(ordered, total // 2)
    return (low + high) / 2


def percentile(counts: Mapping[int, int], share: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least `share` of all at or
    below it (the 90th percentile of ten waits is the ninth shortest)."""
    total = sum(counts.values())
    if total == 0:
        return None
    return _nth(sorted(counts.items()), max(math.ceil(share * total), 1) - 1)


def _nth(ordered: Iterable[tuple[int, int]], index: int) -> int:
    seen = 0
    value = 0
    for value, count in ordered:
        seen += count
        if index < seen:
            return value
    return value


@dataclass
class CarFigures:
    plate: str
    make: str
    rides: int = 0
    days: set[date] = field(default_factory=set)


@dataclass
class MonthlyFigures:
    """Every figure of the monthly report, accumulated one ride at a time (`add`).

    Definitions (the README repeats them):
    - requests: rides picked up in the month (local time), whatever became of them.
    - by outcome: completed, rejected, cancelled, no_show, expired count rides whose status is
      that; "open" counts those still under way (requested, taken, offered, scheduled, on the
      way), so the outcomes add up to the requests.
    - rejected_by_reason: rejected rides by the reason picked from the list; a typed reason
      counts as "other".
    - cancelled_by_rider: cancelled rides whose cancelling event was by the rider or their
      representative (including declining another offered time); cancelled_by_dispatcher the
      rest; cancelled_late: cancelled rides flagged late (inside the district's window).
    - unique_riders: distinct riders among the month's requests.
    - wheelchair: requests for which a wheelchair place was asked.
    - riders_by_category: unique riders by their category (as stored when the report is made).
    - by_purpose: requests by trip purpose.
    - by_representatives: requests whose first event was by a representative.
    - from_standing_orders: requests the standing-order sweep made from a rider's standing
      order (a ride that keeps its order's number).
    - decision waits: from the request to the dispatcher's decision (`RideFacts.decision`), for
      the requests that got one; median and 90th percentile (nearest rank), wall-clock time.
    - decided_in_time / needing_decision: requests the dispatcher decided within the district's
      escalation time, counted in the desk's open hours exactly as the escalation sweep counts
      them, out of the requests that got a decision or expired undecided (a request the rider
      cancelled before any decision is in neither).
    - per car: completed rides with that car, and days in service = distinct local pickup
      dates with at least one completed ride.
    - per day: requests by outcome per local pickup date (the chart).
    """

    tz: tzinfo
    districts: Mapping[str, District]
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    cancelled_by_rider: int = 0
    cancelled_by_dispatcher: int = 0
    cancelled_late: int = 0
    wheelchair: int = 0
    by_purpose: Counter[str] = field(default_factory=Counter)
    by_representatives: int = 0
    from_standing_orders: int = 0
    rider_categories: dict[int, str] = field(default_factory=dict)
    waits: Counter[int] = field(default_factory=Counter)
    decided_in_time: int = 0
    needing_decision: int = 0
    cars: dict[int, CarFigures] = field(default_factory=dict)
    per_day: dict[date, Counter[str]] = field(default_factory=dict)
    desks: dict[str, tuple[int, ServiceHours]] = field(default_factory=dict)

    def desk(self, district_id: str) -> tuple[int, ServiceHours]:
        """`desk_of` the ride's district, worked out once per district."""
        found = self.desks.get(district_id)
        if found is None:
            found = self.desks[district_id] = desk_of(self.districts.get(district_id))
        return found

    def add(self, ride: RideFacts) -> None:
        self.requests += 1
        outcome = ride.outcome
        self.outcomes[outcome] += 1
        day = ride.pickup_at.astimezone(self.tz).date()
        self.per_day.setdefault(day, Counter())[outcome] += 1
        if outcome == S.REJECTED:
            self.rejected_by_reason[ride.reason_code or OTHER_REASON] += 1
        if outcome == S.CANCELLED:
            if ride.cancelled_by in PEOPLE_ON_THE_RIDERS_SIDE:
                self.cancelled_by_rider += 1
            else:
                self.cancelled_by_dispatcher += 1
            self.cancelled_late += int(ride.cancelled_late)
        self.wheelchair += int(ride.wheelchair)
        self.by_purpose[ride.purpose] += 1
        self.by_representatives += int(ride.booked_by_kind == "representative")
        self.from_standing_orders += int(ride.standing_order_id is not None)
        self.rider_categories[ride.rider_id] = ride.category
        decision = ride.decision
        if decision is not None:
            wait = max(decision.at - ride.created_at, timedelta(0))
            self.waits[int(wait.total_seconds())] += 1
            self.needing_decision += 1
            minutes, hours = self.desk(ride.district_id)
            if hours.open_time_between(ride.created_at, decision.at, self.tz) <= timedelta(
                minutes=minutes
            ):
                self.decided_in_time += 1
        elif outcome == S.EXPIRED:
            self.needing_decision += 1
        if outcome == S.COMPLETED and ride.vehicle_id is not None:
            car = self.cars.setdefault(
                ride.vehicle_id, CarFigures(ride.vehicle_plate or "", ride.vehicle_make or "")
            )
            car.rides += 1
            car.days.add(day)

    @property
    def unique_riders(self) -> int:
        return len(self.rider_categories)

    @property
    def riders_by_category(self) -> Counter[str]:
        return Counter(self.rider_categories.values())

    @property
    def median_wait_minutes(self) -> float | None:
        value = median(self.waits)
        return None if value is None else value / 60

    @property
    def p90_wait_minutes(self) -> float | None:
        value = percentile(self.waits, 0.9)
        return None if value is None else value / 60

    @property
    def share_decided_in_time(self) -> float | None:
        if not self.needing_decision:
            return None
        return self.decided_in_time / self.needing_decision

    def days(self, first: date) -> list[date]:
        """Every day of the month, for a chart with no gaps."""
        end = next_month(first)
        return [first + timedelta(days=n) for n in range((end - first).days)]


async def month_figures(
    session: AsyncSession, first: date, tz: tzinfo, district_id: str | None = None
) -> MonthlyFigures:
    """The figures alone, for a view that shows no rows (the same definitions as the report)."""
    figures = MonthlyFigures(tz=tz, districts=await districts_by_id(session))
    async for ride in stream_rides(session, first, tz, district_id):
        figures.add(ride)
    return figures
