"""Keeping personal data only as long as its purpose needs (DOMAIN.md, "How long things are kept").

- A rider profile stays while it is used; after `profile_idle` (the retention setting, 3 years)
  without a ride or a change, the rider and their representatives are told 30 days ahead, then
  it is erased as by /forget (cards and notices in the dispatcher chat edited to one line).
- A profile never verified (rejected or left pending) goes after 90 days without a change.
- A finished ride keeps its addresses, comments and names for one year (complaints, repeat
  bookings), then is anonymised: counts, category, purpose, times and outcome stay for reports,
  and its card in the dispatcher chat is edited to one line. Rides go after five years.
- Audit rows (ids only) and withdrawn consents go after five years (proof, accounting).
- An account nobody is kept for (no rider, no link, not a dispatcher) goes after 90 days unused:
  a consent it gave is withdrawn first and the account anonymised as by /forget; an account
  with no consent left is deleted.
A rider with an open ride is never erased; the next sweep looks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.district_cache import district_by_id
from bot.services.i18n_types import N_
from bot.services.outbox import enqueue_card
from bot.services.people import notify_rider
from bot.services.privacy import Erased, erase_rider, forget
from bot.services.registration import audit
from models import (
    OPEN_STATUSES,
    Account,
    AuditLog,
    Consent,
    Dispatcher,
    Representation,
    Ride,
    RideEvent,
    Rider,
    RideStatus,
)

YEAR: Final = timedelta(days=365)
RIDE_CARD: Final = "ride_card"
OPEN: Final = tuple(s.value for s in OPEN_STATUSES)
FINISHED: Final = tuple(s.value for s in RideStatus if s not in OPEN_STATUSES)

RETENTION_NOTICE: Final = N_(
    "A profile has not been used for a long time and will be erased, as the consent says.\n"
    "Profile: {name}\nDate of erasure: {date}\nTo keep it, book a ride or change something "
    "in /profile before that date."
)


@dataclass(frozen=True)
class RetentionRules:
    """How long each kind of data is kept; defaults from DOMAIN.md."""

    profile_idle: timedelta = 3 * YEAR
    profile_notice: timedelta = timedelta(days=30)
    unverified: timedelta = timedelta(days=90)
    ride_personal: timedelta = YEAR
    records: timedelta = 5 * YEAR
    consent_proof: timedelta = 5 * YEAR
    account_unused: timedelta = timedelta(days=90)

    @classmethod
    def with_retention_days(cls, days: int) -> RetentionRules:
        return cls(profile_idle=timedelta(days=days))


ProfileStep = Literal["keep", "notify", "erase"]


def profile_step(
    last_active: datetime, notice_at: datetime | None, now: datetime, rules: RetentionRules
) -> ProfileStep:
    """What an idle profile is due: nothing yet, the 30-day notice, or erasure.

    A notice counts only when it was given after the last activity: a ride booked after the
    notice starts the count again. Erasure never comes sooner than 30 days after the notice.
    """
    if notice_at is not None and notice_at >= last_active:
        if now >= notice_at + rules.profile_notice and now >= last_active + rules.profile_idle:
            return "erase"
        return "keep"
    if now >= last_active + rules.profile_idle - rules.profile_notice:
        return "notify"
    return "keep"


def unverified_due(rider: Rider, now: datetime, rules: RetentionRules) -> bool:
    """A registration that was never verified (rejected, or nobody decided) and left alone."""
    return (
        rider.verified_at is None
        and rider.verification in ("pending", "rejected")
        and max(rider.created_at, rider.updated_at) < now - rules.unverified
    )


async def last_active(session: AsyncSession, rider: Rider) -> datetime:
    """The latest sign of use: the profile changed, a ride booked or taken, a person active."""
    latest = max(rider.created_at, rider.updated_at)
    rides = (
        await session.execute(
            select(func.max(Ride.created_at), func.max(Ride.pickup_at)).where(
                Ride.rider_id == rider.id
            )
        )
    ).one()
    people = await session.scalar(
        select(func.max(Account.updated_at)).where(
            or_(
                Account.id == rider.account_id,
                Account.id.in_(
                    select(Representation.account_id).where(Representation.rider_id == rider.id)
                ),
            )
        )
    )
    for value in (*rides, people):
        if value is not None and value > latest:
            latest = value
    return latest


async def has_open_ride(session: AsyncSession, rider_id: int) -> bool:
    return (
        await session.scalar(
            select(Ride.id).where(Ride.rider_id == rider_id, Ride.status.in_(OPEN)).limit(1)
        )
        is not None
    )


async def due(
    session: AsyncSession, rider_id: int, now: datetime, rules: RetentionRules
) -> ProfileStep:
    """What the rider is due, read only: most riders are due nothing, and finding that out
    must not take a write turn on SQLite for each of them."""
    rider = await session.get(Rider, rider_id)
    if rider is None:
        return "keep"
    if unverified_due(rider, now, rules):
        return "erase"
    return profile_step(await last_active(session, rider), rider.retention_notice_at, now, rules)


async def review_rider(
    session: AsyncSession, rider_id: int, now: datetime, rules: RetentionRules, tz_name: str
) -> ProfileStep:
    """Notify or erase one rider if due; call in its own transaction (one per rider)."""
    rider = await session.get(Rider, rider_id, populate_existing=True)
    if rider is None or await has_open_ride(session, rider_id):
        return "keep"
    if unverified_due(rider, now, rules):
        await _erase(session, rider, now, "unverified")
        return "erase"
    step = profile_step(await last_active(session, rider), rider.retention_notice_at, now, rules)
    if step == "notify":
        # Claimed with a conditional update that keeps `updated_at`, which counts as activity.
        claimed = await session.execute(
            update(Rider)
            .where(
                Rider.id == rider_id,
                or_(
                    Rider.retention_notice_at.is_(None),
                    Rider.retention_notice_at == rider.retention_notice_at,
                ),
            )
            .values(retention_notice_at=now, updated_at=Rider.updated_at)
            .returning(Rider.id)
            .execution_options(synchronize_session=False)
        )
        if claimed.first() is None:
            return "keep"
        from zoneinfo import ZoneInfo

        when = (now + rules.profile_notice).astimezone(ZoneInfo(tz_name)).strftime("%d.%m.%Y")
        await notify_rider(
            session, rider.id, RETENTION_NOTICE, {"name": rider.full_name, "date": when}
        )
        audit(session, "retention_notice", subject=f"rider:{rider.id}")
    elif step == "erase":
        await _erase(session, rider, now, "idle")
    return step


async def _erase(session: AsyncSession, rider: Rider, now: datetime, why: str) -> None:
    rider_id = rider.id
    await session.execute(
        update(Consent)
        .where(Consent.rider_id == rider_id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
        .execution_options(synchronize_session=False)
    )
    rides = await erase_rider(session, rider)
    audit(
        session,
        "rider_erased_retention",
        subject=f"rider:{rider_id}",
        details={"why": why, "rides": rides},
    )


async def riders_to_review(
    session: AsyncSession, now: datetime, rules: RetentionRules
) -> list[int]:
    """Riders old enough that a rule may apply; the rules themselves decide per rider."""
    horizon = now - min(rules.unverified, rules.profile_idle - rules.profile_notice)
    return list(
        await session.scalars(
            select(Rider.id).where(Rider.created_at < horizon).order_by(Rider.id)
        )
    )


async def anonymise_rides(
    session: AsyncSession, now: datetime, rules: RetentionRules, *, limit: int = 500
) -> int:
    """Finished rides past `ride_personal` lose their addresses, comments and names."""
    rides = list(
        await session.scalars(
            select(Ride)
            .where(
                Ride.status.in_(FINISHED),
                Ride.status_changed_at < now - rules.ride_personal,
                Ride.anonymised_at.is_(None),
            )
            .order_by(Ride.id)
            .limit(limit)
        )
    )
    for ride in rides:
        ride.pickup_address = ""
        ride.pickup_lat = None
        ride.pickup_lon = None
        ride.destination = ""
        ride.comment = ""
        ride.rating_comment = None
        ride.reason = None
        ride.dispatcher_name = None
        ride.booked_by = None
        ride.anonymised_at = now
        if ride.card_message_id:
            district = await district_by_id(session, ride.district_id)
            await enqueue_card(
                session,
                kind=RIDE_CARD,
                subject_id=ride.id,
                chat_id=int(ride.card_chat_id or 0),
                topic_id=district.topic_id if district else None,
                ride_id=ride.id,
            )
    if rides:
        await session.execute(
            update(RideEvent)
            .where(RideEvent.ride_id.in_([r.id for r in rides]))
            .values(actor_name=None, reason=None)
            .execution_options(synchronize_session=False)
        )
    return len(rides)


async def delete_old_records(session: AsyncSession, now: datetime, rules: RetentionRules) -> int:
    """Audit rows and withdrawn consents past their five years of proof."""
    audits = await session.execute(
        delete(AuditLog)
        .where(AuditLog.at < now - rules.records)
        .returning(AuditLog.id)
        .execution_options(synchronize_session=False)
    )
    consents = await session.execute(
        delete(Consent)
        .where(Consent.withdrawn_at.is_not(None), Consent.withdrawn_at < now - rules.consent_proof)
        .returning(Consent.id)
        .execution_options(synchronize_session=False)
    )
    return len(audits.all()) + len(consents.all())


async def unused_accounts(
    session: AsyncSession, now: datetime, rules: RetentionRules
) -> list[int]:
    """Accounts nobody is kept for: no rider of their own, no link, not a dispatcher."""
    return list(
        await session.scalars(
            select(Account.id)
            .where(
                Account.updated_at < now - rules.account_unused,
                ~exists().where(Rider.account_id == Account.id),
                ~exists().where(Representation.account_id == Account.id),
                ~exists().where(Dispatcher.telegram_id == Account.telegram_id),
            )
            .order_by(Account.id)
        )
    )


async def sweep_account(session: AsyncSession, account_id: int, now: datetime, tz: str) -> bool:
    """Withdraw and anonymise an unused account that gave consent; delete one with none left."""
    account = await session.get(Account, account_id, populate_existing=True)
    if account is None:
        return False
    consents = await session.scalar(
        select(func.count()).select_from(Consent).where(Consent.account_id == account_id)
    )
    if consents:
        if account.consent_version is None:
            return False  # already anonymised: kept while its consents are kept as proof
        return isinstance(await forget(session, account, now=now, tz=tz), Erased)
    await session.delete(account)
    await session.flush()
    audit(session, "account_deleted_retention", subject=f"account:{account_id}")
    return True
