"""The dispatcher desk's rules: whose chat is whose, who may act, which car fits, what is open.

Handlers in the dispatcher group call these and render the result; nothing here knows Telegram.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.booking_rules import BookingRules
from bot.services.district_cache import districts_in_chat
from bot.services.i18n_types import N_, Reason
from models import (
    UNDECIDED_STATUSES,
    Dispatcher,
    District,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Vehicle,
)

S = RideStatus

# The language of a message to someone who never chose one (SETTINGS' DEFAULT_LANGUAGE default).
FALLBACK_LANGUAGE: Final = "kk"

# Reasons a dispatcher picks from a list; stored as the code, shown in the reader's language.
# The last choice, "other", is typed by the dispatcher and stored as typed.
REJECT_REASONS: Final[dict[str, str]] = {
    "no_car": N_("No car is available at that time"),
    "territory": N_("The address is outside the service territory"),
    "hours": N_("The time is outside service hours"),
    "not_eligible": N_("The rider is not eligible for the service"),
    "duplicate": N_("A duplicate of another request"),
}
CANCEL_REASONS: Final[dict[str, str]] = {
    "by_phone": N_("The rider cancelled by phone"),
    "no_car": N_("No car is available at that time"),
    "breakdown": N_("The car broke down"),
}


# Reasons the bot gives itself when a change to a standing order cancels its rides.
STANDING_ORDER_REASONS: Final[dict[str, str]] = {
    "so_date_cancelled": N_("This date was cancelled in the standing order"),
    "so_paused": N_("The standing order is paused"),
    "so_time_changed": N_("The standing order's time was changed; the ride is booked anew"),
    "so_ended": N_("The standing order was ended"),
}


def reason_msgid(reason: str | None) -> str | None:
    """The message id of a reason picked from a list, or None for a typed one."""
    if reason is None:
        return None
    return (
        REJECT_REASONS.get(reason)
        or CANCEL_REASONS.get(reason)
        or STANDING_ORDER_REASONS.get(reason)
    )


# A vehicle with a ride in one of these states is busy around that ride's pickup time.
BUSY_STATUSES = frozenset({S.SCHEDULED, S.EN_ROUTE, S.ARRIVED, S.ON_BOARD})
# What a day's manifest lists: the plan, what was done, and what still waits for a decision.
MANIFEST_STATUSES = BUSY_STATUSES | {S.COMPLETED, S.NO_SHOW} | UNDECIDED_STATUSES
# Offsets from the requested pickup offered as ready-made alternatives, in minutes.
SLOT_OFFSETS = (-60, -30, 30, 60, 120, 24 * 60)
# A proposed time must leave the driver this long to get there.
MIN_LEAD = timedelta(minutes=15)
MAX_PROPOSAL_AHEAD = timedelta(days=60)
TELEGRAM_TEXT_LIMIT = 4096
FIND_LIMIT = 20


def rules_of(district: District) -> BookingRules:
    """The booking rules with this district's overrides from the districts file."""
    return BookingRules().with_overrides(dict(district.rules or {}))


def ride_minutes(district: District) -> int:
    """How long a car is taken by one ride, for conflict checks."""
    return rules_of(district).ride_minutes


# "The car is on its way" or "has arrived" for a pickup further ahead than this is a slip: a
# pressed button on the wrong card, or a ride days away. The rider would be told a car is coming.
MOVE_LEAD: Final = timedelta(hours=3)


def too_early_to_move(pickup_at: datetime, now: datetime) -> bool:
    """True when a car can't honestly be on its way to, or waiting at, this pickup yet."""
    return pickup_at - now > MOVE_LEAD


# -- chats and people ---------------------------------------------------------------------------


async def district_for_chat(
    session: AsyncSession, chat_id: int, topic_id: int | None
) -> District | None:
    """The district whose desk is this chat (and forum topic).

    A district bound to a topic is found only in that topic; a district bound to the whole chat
    is found from any topic of it. The exact topic wins when a chat has both.
    """
    rows = await districts_in_chat(session, chat_id)
    exact = [d for d in rows if d.topic_id is not None and d.topic_id == topic_id]
    if exact:
        return exact[0]
    whole = [d for d in rows if d.topic_id is None]
    return whole[0] if whole else None


async def is_dispatcher(
    session: AsyncSession, district_id: str, telegram_id: int, admin_ids: Iterable[int] = ()
) -> bool:
    """Active dispatchers of the district may act on its rides; so may the administrators."""
    if telegram_id in set(admin_ids):
        return True
    found = await session.scalar(
        select(Dispatcher.id).where(
            Dispatcher.district_id == district_id,
            Dispatcher.telegram_id == telegram_id,
            Dispatcher.active.is_(True),
        )
    )
    return found is not None


async def dispatcher_name(session: AsyncSession, district_id: str, telegram_id: int) -> str | None:
    """The name the districts file or the admin gave, when there is one."""
    name = await session.scalar(
        select(Dispatcher.name).where(
            Dispatcher.district_id == district_id, Dispatcher.telegram_id == telegram_id
        )
    )
    return name or None


async def list_dispatchers(session: AsyncSession, district_id: str) -> list[Dispatcher]:
    rows = await session.scalars(
        select(Dispatcher)
        .where(Dispatcher.district_id == district_id, Dispatcher.active.is_(True))
        .order_by(Dispatcher.name, Dispatcher.telegram_id)
    )
    return list(rows)


async def add_dispatcher(
    session: AsyncSession, district_id: str, telegram_id: int, name: str
) -> bool:
    """Make the person an active dispatcher; False when they already were one."""
    row = await session.scalar(
        select(Dispatcher).where(
            Dispatcher.district_id == district_id, Dispatcher.telegram_id == telegram_id
        )
    )
    if row is None:
        session.add(
            Dispatcher(
                district_id=district_id,
                telegram_id=telegram_id,
                name=name[:128],
                source="admin",
                active=True,
            )
        )
        await session.flush()
        return True
    was_active = row.active
    row.active = True
    if name and not row.name:
        row.name = name[:128]
    return not was_active


@dataclass(frozen=True)
class Removal:
    removed: bool
    # Listed in the districts file: they come back when the bot restarts unless the file changes.
    from_file: bool


async def remove_dispatcher(session: AsyncSession, district_id: str, telegram_id: int) -> Removal:
    row = await session.scalar(
        select(Dispatcher).where(
            Dispatcher.district_id == district_id, Dispatcher.telegram_id == telegram_id
        )
    )
    if row is None or not row.active:
        return Removal(removed=False, from_file=row is not None and row.source == "file")
    row.active = False
    return Removal(removed=True, from_file=row.source == "file")


# -- vehicles -----------------------------------------------------------------------------------


def seats_needed(ride: Ride) -> int:
    """Passenger seats: the rider (unless they stay in their wheelchair), assistant, companions."""
    return (0 if ride.wheelchair else 1) + int(ride.assistant) + ride.companions


def suits(vehicle: Vehicle, ride: Ride) -> bool:
    """A wheelchair rider needs a ramp or lift and a wheelchair place; everyone needs seats."""
    if ride.wheelchair and not vehicle.wheelchair_ready:
        return False
    return vehicle.seats >= seats_needed(ride)


@dataclass(frozen=True)
class VehicleOption:
    vehicle: Vehicle
    # Rides this vehicle already has with a pickup within one ride's duration of this one.
    conflicts: tuple[Ride, ...]


async def conflicts_of(
    session: AsyncSession,
    vehicle_id: int,
    at: datetime,
    minutes: int,
    exclude_ride_id: int | None = None,
) -> list[Ride]:
    window = timedelta(minutes=minutes)
    query = select(Ride).where(
        Ride.vehicle_id == vehicle_id,
        Ride.status.in_([s.value for s in BUSY_STATUSES]),
        Ride.pickup_at > at - window,
        Ride.pickup_at < at + window,
    )
    if exclude_ride_id is not None:
        query = query.where(Ride.id != exclude_ride_id)
    return list(await session.scalars(query.order_by(Ride.pickup_at)))


async def has_vehicles(session: AsyncSession, district_id: str) -> bool:
    """Whether the district has any active car at all (not just none that fits a ride)."""
    found = await session.scalar(
        select(Vehicle.id)
        .where(Vehicle.district_id == district_id, Vehicle.active.is_(True))
        .limit(1)
    )
    return found is not None


async def vehicle_options(
    session: AsyncSession, ride: Ride, district: District
) -> list[VehicleOption]:
    """The district's active vehicles that fit the ride, each with its overlapping rides."""
    vehicles = await session.scalars(
        select(Vehicle)
        .where(Vehicle.district_id == district.id, Vehicle.active.is_(True))
        .order_by(Vehicle.plate)
    )
    minutes = ride_minutes(district)
    options = []
    for vehicle in vehicles:
        if not suits(vehicle, ride):
            continue
        found = await conflicts_of(session, vehicle.id, ride.pickup_at, minutes, ride.id)
        options.append(VehicleOption(vehicle, tuple(found)))
    return options


# -- round trips --------------------------------------------------------------------------------

# States after which a ride will not happen (or has happened): nothing stands any more.
FINAL_STATUSES: Final = frozenset({S.COMPLETED, S.REJECTED, S.CANCELLED, S.NO_SHOW, S.EXPIRED})


async def other_leg(session: AsyncSession, ride: Ride) -> Ride | None:
    """The other half of a round trip: the way back of an outbound ride, or the outbound of a
    way back; None for a one-way ride."""
    if ride.return_of is not None:
        return await session.get(Ride, ride.return_of)
    return await session.scalar(
        select(Ride).where(Ride.return_of == ride.id).order_by(Ride.id).limit(1)
    )


async def standing_other_leg(session: AsyncSession, ride: Ride) -> Ride | None:
    """The other leg when it still stands (not refused, cancelled or over), else None."""
    other = await other_leg(session, ride)
    if other is None or other.status in FINAL_STATUSES:
        return None
    return other


# -- lists for the desk -------------------------------------------------------------------------


async def open_queue(session: AsyncSession, district_id: str) -> list[Ride]:
    """Requests nobody has decided yet, oldest first: the order they should be handled in."""
    rows = await session.scalars(
        select(Ride)
        .where(
            Ride.district_id == district_id,
            Ride.status.in_([s.value for s in UNDECIDED_STATUSES]),
        )
        .order_by(Ride.created_at, Ride.id)
    )
    return list(rows)


def local_day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, end


@dataclass(frozen=True)
class ManifestGroup:
    vehicle: Vehicle | None  # None: no vehicle yet
    rides: tuple[Ride, ...]


async def manifest(
    session: AsyncSession, district_id: str, day: date, tz: tzinfo
) -> list[ManifestGroup]:
    """A local day's rides per vehicle by pickup time; rides without a car come last."""
    start, end = local_day_bounds(day, tz)
    rides = list(
        await session.scalars(
            select(Ride)
            .where(
                Ride.district_id == district_id,
                Ride.pickup_at >= start,
                Ride.pickup_at < end,
                Ride.status.in_([s.value for s in MANIFEST_STATUSES]),
            )
            .order_by(Ride.pickup_at, Ride.id)
        )
    )
    vehicle_ids = sorted({r.vehicle_id for r in rides if r.vehicle_id is not None})
    vehicles = {
        v.id: v for v in await session.scalars(select(Vehicle).where(Vehicle.id.in_(vehicle_ids)))
    }
    groups = [
        ManifestGroup(vehicles[vid], tuple(r for r in rides if r.vehicle_id == vid))
        for vid in sorted(vehicle_ids, key=lambda i: vehicles[i].plate)
    ]
    without = tuple(r for r in rides if r.vehicle_id is None)
    if without:
        groups.append(ManifestGroup(None, without))
    return groups


@dataclass(frozen=True)
class FoundRider:
    rider: Rider
    rides: tuple[Ride, ...]  # the latest few, newest pickup first
    # Whom to call besides the rider: each representative's (name, phone) as they gave them.
    contacts: tuple[tuple[str, str], ...] = ()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def find_riders(session: AsyncSession, district_id: str, query: str) -> list[FoundRider]:
    """Riders of the district by phone (any way it is written) or by part of the name, the
    rider's or a representative's (a daughter who registered her father is found by hers).

    Names are compared in Python: SQLite's lower() knows only ASCII, and names are Cyrillic.
    """
    query = query.strip()
    digits = _digits(query)
    riders = list(
        await session.scalars(
            select(Rider).where(Rider.district_id == district_id).order_by(Rider.full_name)
        )
    )
    contacts: dict[int, list[tuple[str, str]]] = {}
    represented = await session.execute(
        select(Representation.rider_id, Representation.contact_name, Representation.contact_phone)
        .join(Rider, Rider.id == Representation.rider_id)
        .where(Rider.district_id == district_id, Representation.contact_phone.is_not(None))
        .order_by(Representation.id)
    )
    for rider_id, name, phone in represented.all():
        contacts.setdefault(rider_id, []).append((name or "", phone or ""))

    def names(rider: Rider) -> list[str]:
        return [rider.full_name, *(name for name, _ in contacts.get(rider.id, []))]

    def phones(rider: Rider) -> list[str]:
        return [rider.phone, *(phone for _, phone in contacts.get(rider.id, []))]

    if len(digits) >= 4 and len(digits) >= len(query.replace(" ", "")) // 2:
        tail = digits[-10:]
        matched = [r for r in riders if any(_digits(p).endswith(tail) for p in phones(r))]
    else:
        words = [w.casefold() for w in query.split() if w]
        if not words:
            return []
        matched = [
            r for r in riders if any(all(w in name.casefold() for w in words) for name in names(r))
        ]
    found = []
    for rider in matched[:FIND_LIMIT]:
        rides = await session.scalars(
            select(Ride)
            .where(Ride.rider_id == rider.id)
            .order_by(Ride.pickup_at.desc(), Ride.id.desc())
            .limit(5)
        )
        found.append(FoundRider(rider, tuple(rides), tuple(contacts.get(rider.id, []))))
    return found


# -- text helpers -------------------------------------------------------------------------------


def card_link(chat_id: int, message_id: int | None, topic_id: int | None = None) -> str | None:
    """A link that opens the card; only supergroups have them (basic groups have none)."""
    text = str(chat_id)
    if message_id is None or message_id <= 0 or not text.startswith("-100"):
        return None
    internal = text.removeprefix("-100")
    if topic_id:
        return f"https://t.me/c/{internal}/{topic_id}/{message_id}"
    return f"https://t.me/c/{internal}/{message_id}"


def map_link(latitude: float, longitude: float) -> str:
    """A link any phone opens in its map app, for a pickup given as a location pin."""
    return f"https://maps.google.com/?q={latitude:.5f},{longitude:.5f}"


def split_text(lines: Sequence[str], limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Join lines into as few messages as fit Telegram's limit, breaking only between lines.

    A single line longer than the limit (never expected) is cut rather than lost.
    """
    chunks: list[str] = []
    current = ""
    for raw in lines:
        line = raw
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        chunks.append(current)
    return chunks


# -- what a dispatcher types --------------------------------------------------------------------

MAX_TYPED = 300


def typed_words(text: str | None, limit: int = MAX_TYPED) -> str | None:
    """Words typed by a person: not a sticker or photo, not only emoji, not too long."""
    words = (text or "").strip()
    if not words or len(words) > limit or not any(ch.isalnum() for ch in words):
        return None
    return words


def ride_number(args: str | None) -> int | None:
    """The ride's number after a command: `12`, `#12` or `№12`."""
    text = (args or "").strip().lstrip("#№").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


# -- proposed times -----------------------------------------------------------------------------

_TIME_INPUT = re.compile(
    r"^\s*(?:(?P<day>\d{1,2})\.(?P<month>\d{1,2})(?:\.(?P<year>\d{2}|\d{4}))?\s+)?"
    r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})\s*$"
)


def parse_time_input(text: str, reference: datetime, tz: tzinfo) -> datetime | None:
    """`14:30` (on the ride's own day) or `26.11 14:30` / `26.11.2026 14:30`, local time.

    Returns the UTC instant, or None when the text is not a time or not a real date. A date
    without a year that has already passed this year means next year.
    """
    match = _TIME_INPUT.match(text)
    if match is None:
        return None
    hour, minute = int(match["hour"]), int(match["minute"])
    local_ref = reference.astimezone(tz)
    try:
        clock = time(hour, minute)
        if match["day"] is None:
            day = local_ref.date()
        else:
            year = local_ref.year
            if match["year"]:
                year = int(match["year"]) + (2000 if len(match["year"]) == 2 else 0)
            day = date(year, int(match["month"]), int(match["day"]))
            if not match["year"] and day < local_ref.date() - timedelta(days=180):
                day = date(year + 1, day.month, day.day)
        # Year 0001 in a zone east of UTC is before the first representable instant.
        return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def proposal_problem(at: datetime, now: datetime) -> Reason | None:
    """Why a proposed time can't be offered, or None when it can.

    Service hours and the booking window are the dispatcher's call here: they may agree an
    unusual time with the rider on the phone.
    """
    if at < now + MIN_LEAD:
        return Reason(
            "too_soon", N_("That time has already passed or is too close. Give a later time.")
        )
    if at > now + MAX_PROPOSAL_AHEAD:
        return Reason("too_far", N_("That date is too far ahead. Give a time within two months."))
    return None


def proposal_slots(
    pickup_at: datetime, now: datetime, tz: tzinfo, rules: BookingRules
) -> list[datetime]:
    """A few alternatives near the requested time, inside service hours and not too soon."""
    slots = []
    for offset in SLOT_OFFSETS:
        at = pickup_at + timedelta(minutes=offset)
        if proposal_problem(at, now) is not None:
            continue
        local = at.astimezone(tz)
        if not rules.within_service_hours(local.time()):
            continue
        if local.isoweekday() not in rules.service_days:
            continue
        slots.append(at)
    return slots
