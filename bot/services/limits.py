"""Per-person limits: so one account can't flood a dispatcher chat or the bot's sending budget.

A district's dispatcher chat takes about 20 bot messages a minute, first come first served: a
person who registers people, resubmits a profile or books and cancels without end pushes real
requests back by minutes. Each limit is generous for honest use (a parent with several
children, a rider who books a round trip twice a day) and a district setting
(`[districts.limits]` in the districts file). Windows are the last 24 hours, not a calendar
day, so there is no midnight burst. A refusal is a Reason with a short, clear answer.

Also here: how many IINs one account may try at the IIN step (the "already registered" answer
would otherwise tell anyone whether a person is registered, see `bot.services.iin_check`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.help import format_phone
from bot.services.i18n_types import N_, Reason, Translate
from models import Account, AuditLog, District, Ride, RideEvent, Rider, Verification, utcnow

WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True)
class Limits:
    """Defaults; each district may override any of them (whole numbers, 1 to 1000)."""

    # People one account may register besides themselves, and may have waiting for a check.
    people_registered: int = 6
    pending_checks: int = 2
    # How often one profile may be sent to the dispatchers in 24 hours (registering counts).
    resubmissions_per_day: int = 4
    # Rides one rider may book, and cancel, in 24 hours (a round trip is two).
    bookings_per_day: int = 6
    cancellations_per_day: int = 4
    # IINs one account may type at the IIN step in 24 hours.
    iin_tries_per_day: int = 5

    def with_overrides(self, values: Mapping[str, object]) -> Limits:
        known = {f.name for f in fields(self)}
        changes: dict[str, int] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(
                    f"limits.{key}: unknown limit (known: {', '.join(sorted(known))})"
                )
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise ValueError(f"limits.{key}: expected a whole number 1-1000, got {value!r}")
            changes[key] = value
        return replace(self, **changes)


def limits_of(district: District | None) -> Limits:
    """The district's limits (its overrides over the defaults)."""
    return Limits().with_overrides(dict(district.limits or {}) if district is not None else {})


def _reason(code: str, msgid: str, limit: int) -> Reason:
    return Reason(code, msgid, {"limit": limit})


TOO_MANY_PEOPLE: Final = N_(
    "One account can register only so many people. Registered by you: {limit}. To register "
    "more, please call the dispatcher."
)
TOO_MANY_PENDING: Final = N_(
    "Profiles you registered that are still waiting for the dispatcher's check: {limit}. "
    "Please wait until they are checked, then register the next person."
)
TOO_MANY_RESUBMISSIONS: Final = N_(
    "This profile was sent for checking too often in the last 24 hours (times: {limit}). "
    "Please wait for the dispatcher's answer, or change it tomorrow."
)
TOO_MANY_BOOKINGS: Final = N_(
    "Rides booked for this rider in the last 24 hours: {limit}, the most the bot takes. "
    "If you need another ride, please call the dispatcher."
)
TOO_MANY_CANCELLATIONS: Final = N_(
    "Rides of this rider cancelled in the last 24 hours: {limit}. To change a ride now, please "
    "call the dispatcher."
)
TOO_MANY_IIN_TRIES: Final = N_(
    "Too many IINs were typed from this account in the last 24 hours. Please try again "
    "tomorrow, or call the dispatcher."
)


DESK_PHONE: Final = N_("The dispatcher's phone: {phone}.")


def refusal_text(t: Translate, reason: Reason, phone: str | None) -> str:
    """A limit's answer as the person reads it, with the desk's number when there is one
    (each answer ends by saying to call the dispatcher)."""
    text = reason.render(t)
    if not phone:
        return text
    return text + "\n" + t(DESK_PHONE, phone=format_phone(phone))


async def may_register_someone(
    session: AsyncSession, account: Account, limits: Limits, *, now: datetime | None = None
) -> Reason | None:
    """Before a "register someone else" begins (and again before it is saved)."""
    people = await session.scalar(
        select(func.count())
        .select_from(Rider)
        .where(Rider.created_by == account.id, Rider.account_id.is_distinct_from(account.id))
    )
    if int(people or 0) >= limits.people_registered:
        return _reason("limit_people", TOO_MANY_PEOPLE, limits.people_registered)
    return await _pending_checks(session, account, limits)


async def _pending_checks(
    session: AsyncSession, account: Account, limits: Limits
) -> Reason | None:
    pending = await session.scalar(
        select(func.count())
        .select_from(Verification)
        .join(Rider, Rider.id == Verification.rider_id)
        .where(
            Rider.created_by == account.id,
            Rider.account_id.is_distinct_from(account.id),
            Verification.status == "pending",
        )
    )
    if int(pending or 0) >= limits.pending_checks:
        return _reason("limit_pending", TOO_MANY_PENDING, limits.pending_checks)
    return None


async def may_resubmit(
    session: AsyncSession, rider: Rider, limits: Limits, *, now: datetime | None = None
) -> Reason | None:
    """Before an edit that sends the profile back to the dispatchers is saved.

    Counts the checks asked for this rider in the window (a resubmission while one is waiting
    edits that card but still counts, as it still costs the chat a message).
    """
    now = now or utcnow()
    asked = await session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.action == "verification_requested",
            AuditLog.subject == f"rider:{rider.id}",
            AuditLog.at > now - WINDOW,
        )
    )
    if int(asked or 0) >= limits.resubmissions_per_day:
        return _reason("limit_resubmit", TOO_MANY_RESUBMISSIONS, limits.resubmissions_per_day)
    return None


async def may_book(
    session: AsyncSession, rider_id: int, limits: Limits, *, now: datetime | None = None
) -> Reason | None:
    """Before a booking is confirmed: rides created for this rider in the window."""
    now = now or utcnow()
    booked = await session.scalar(
        select(func.count())
        .select_from(Ride)
        .where(Ride.rider_id == rider_id, Ride.created_at > now - WINDOW)
    )
    if int(booked or 0) >= limits.bookings_per_day:
        return _reason("limit_bookings", TOO_MANY_BOOKINGS, limits.bookings_per_day)
    return None


async def may_cancel(
    session: AsyncSession, rider_id: int, limits: Limits, *, now: datetime | None = None
) -> Reason | None:
    """Before a rider or representative cancels: their cancellations in the window."""
    now = now or utcnow()
    cancelled = await session.scalar(
        select(func.count())
        .select_from(RideEvent)
        .join(Ride, Ride.id == RideEvent.ride_id)
        .where(
            Ride.rider_id == rider_id,
            RideEvent.to_status == "cancelled",
            RideEvent.actor_kind.in_(("rider", "representative")),
            RideEvent.at > now - WINDOW,
        )
    )
    if int(cancelled or 0) >= limits.cancellations_per_day:
        return _reason("limit_cancellations", TOO_MANY_CANCELLATIONS, limits.cancellations_per_day)
    return None


async def iin_tries_left(
    session: AsyncSession, account: Account, limits: Limits, *, now: datetime | None = None
) -> int:
    now = now or utcnow()
    tried = await session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.action == "iin_tried",
            AuditLog.subject == f"account:{account.id}",
            AuditLog.at > now - WINDOW,
        )
    )
    return max(0, limits.iin_tries_per_day - int(tried or 0))
