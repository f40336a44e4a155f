"""Retention: profiles, ride details, records and accounts are swept by the keeping rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.services import retention
from bot.services.retention import RetentionRules, profile_step
from models import Account, AuditLog, Consent, Ride, Rider
from tests.factories import Env, add_ride, add_rider

RULES = RetentionRules.with_retention_days(3 * 365)
NOW = datetime(2030, 6, 1, 9, tzinfo=UTC)


def test_an_idle_profile_is_told_30_days_ahead_then_erased() -> None:
    idle = RULES.profile_idle
    assert profile_step(NOW - idle + timedelta(days=31), None, NOW, RULES) == "keep"
    assert profile_step(NOW - idle + timedelta(days=29), None, NOW, RULES) == "notify"
    told = NOW - timedelta(days=10)
    # Told, but 30 days have not passed yet.
    assert profile_step(NOW - idle - timedelta(days=5), told, NOW, RULES) == "keep"
    assert profile_step(NOW - idle - timedelta(days=5), told, NOW + timedelta(21), RULES) == (
        "erase"
    )
    # A ride booked after the notice starts the count again.
    assert profile_step(told + timedelta(days=1), told, NOW + timedelta(21), RULES) == "keep"


async def test_the_sweep_erases_idle_and_unverified_profiles(env: Env) -> None:
    now = env.clock.now
    idle_for = timedelta(days=env.settings.retention_days)
    long_ago = now - idle_for - timedelta(days=40)
    async with env.sessions() as session, session.begin():
        idle = await add_rider(session, 6101, name="Ержан Дос")
        idle.created_at = idle.updated_at = long_ago
        await add_ride(
            session,
            idle,
            pickup_at=long_ago,
            status="completed",
            status_changed_at=long_ago,
            created_at=long_ago,
        )
        rejected = await add_rider(session, 6102, verified=False)
        rejected.verification = "rejected"
        rejected.created_at = rejected.updated_at = now - timedelta(days=91)
        fresh = await add_rider(session, 6103, verified=False)
        fresh.created_at = fresh.updated_at = now - timedelta(days=10)
        for account in await session.scalars(select(Account)):
            account.updated_at = long_ago if account.telegram_id == 6101 else now
        ids = idle.id, rejected.id, fresh.id
    await env.twice_and_at_once("retention")
    async with env.sessions() as session:
        left = set(await session.scalars(select(Rider.id)))
    # The rejected registration is gone; the idle rider is told first, not erased yet.
    assert left == {ids[0], ids[2]}
    notices = await env.messages(retention.RETENTION_NOTICE)
    assert [m.chat_id for m in notices] == [6101]

    env.clock.now = now + timedelta(days=31)
    await env.twice_and_at_once("retention")
    async with env.sessions() as session:
        left = set(await session.scalars(select(Rider.id)))
        erased = list(
            await session.scalars(
                select(AuditLog).where(AuditLog.action == "rider_erased_retention")
            )
        )
    assert left == {ids[2]}
    assert sorted(a.details["why"] for a in erased) == ["idle", "unverified"]
    async with env.sessions() as session:
        told = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "retention_notice"))
        )
    assert len(told) == 1  # told once, however often the sweep ran


async def test_ride_details_go_after_a_year_and_records_after_five(env: Env) -> None:
    now = env.clock.now
    year_ago = now - timedelta(days=366)
    async with env.sessions() as session, session.begin():
        rider = await add_rider(session, 6201)
        old = await add_ride(
            session,
            rider,
            pickup_at=year_ago,
            status="completed",
            status_changed_at=year_ago,
            comment="после химиотерапии",
        )
        recent = await add_ride(
            session,
            rider,
            pickup_at=now - timedelta(days=3),
            status="completed",
            status_changed_at=now - timedelta(days=3),
            comment="подъезд 2",
        )
        session.add(AuditLog(action="old", at=now - timedelta(days=5 * 365 + 1)))
        session.add(AuditLog(action="new", at=now - timedelta(days=10)))
        session.add(
            Consent(version="1", language="ru", text="…", withdrawn_at=now - timedelta(days=1830))
        )
        session.add(Consent(version="1", language="ru", text="…", withdrawn_at=now))
        stray = Account(telegram_id=6299, display_name="Ни разу", updated_at=now - timedelta(91))
        session.add(stray)
        ids = old.id, recent.id
    await env.twice_and_at_once("retention")
    async with env.sessions() as session:
        rides = {r.id: r for r in await session.scalars(select(Ride))}
        actions = set(await session.scalars(select(AuditLog.action)))
        consents = list(await session.scalars(select(Consent.withdrawn_at)))
        accounts = set(await session.scalars(select(Account.telegram_id)))
    anonymised, kept = rides[ids[0]], rides[ids[1]]
    assert anonymised.pickup_address == "" and anonymised.comment == ""
    assert anonymised.anonymised_at is not None and anonymised.status == "completed"
    assert kept.pickup_address and kept.comment == "подъезд 2" and kept.anonymised_at is None
    assert "old" not in actions and "new" in actions
    assert len(consents) == 1
    assert 6299 not in accounts and 6201 in accounts
