"""The monthly report to the administrators: on the 1st at 09:00 local time, once per month and
administrator, however many times and in however many processes the sweep runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from bot.db import create_engine, create_sessionmaker
from bot.services.sweeps import monthly_report_due
from bot.settings import load_settings
from models import Account, OutboxMessage
from tests.factories import TZ, Clock, Env, seed_districts

ADMINS = (9998, 9999)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


@pytest.fixture
async def env(migrated_db: str) -> AsyncIterator[Env]:
    settings = load_settings(
        bot_token="1:a",
        database_url=migrated_db,
        timezone="Asia/Almaty",
        default_language="kk",
        admin_ids=",".join(str(a) for a in ADMINS),
    )
    engine = create_engine(migrated_db)
    sessions = create_sessionmaker(engine)
    await seed_districts(sessions)
    async with sessions() as session, session.begin():
        session.add(Account(telegram_id=9999, language="ru", display_name="Админ"))
    made = Env(migrated_db, sessions, settings, Clock(local(date(2026, 12, 1), 8, 59)), [engine])
    try:
        yield made
    finally:
        for e in made.engines:
            await e.dispose()


async def reports(env: Env) -> list[OutboxMessage]:
    async with env.sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "document")
                .order_by(OutboxMessage.chat_id, OutboxMessage.id)
            )
        )


def test_due_from_nine_on_the_first_for_a_week() -> None:
    first = date(2026, 12, 1)
    assert monthly_report_due(local(first, 8, 59), TZ) is None
    assert monthly_report_due(local(first, 9), TZ) == date(2026, 11, 1)
    assert monthly_report_due(local(date(2026, 12, 7), 23), TZ) == date(2026, 11, 1)
    assert monthly_report_due(local(date(2026, 12, 8), 9), TZ) is None
    assert monthly_report_due(local(date(2027, 1, 1), 9), TZ) == date(2026, 12, 1)


async def test_each_administrator_gets_last_months_report_once(env: Env) -> None:
    await env.sweeps("one").run("monthly_report")
    assert await reports(env) == []  # 08:59: not yet

    env.clock.now = local(date(2026, 12, 1), 9)
    await env.twice_and_at_once("monthly_report")
    env.clock.now += timedelta(hours=2)
    await env.sweeps("after-restart").run("monthly_report")  # a restarted process
    await asyncio.gather(
        env.sweeps("four").run("monthly_report"), env.sweeps("five").run("monthly_report")
    )

    rows = await reports(env)
    assert [row.chat_id for row in rows] == list(ADMINS)
    for row in rows:
        assert row.payload["renderer"] == "monthly_report"
        assert row.payload["args"] == {
            "month": "2026-11",
            "district_id": None,
            "tz": "Asia/Almaty",
        }
        assert row.topic_id is None  # a private chat
    assert [row.payload["lang"] for row in rows] == ["kk", "ru"]  # the default; the account's
    assert rows[0].account_id is None and rows[1].account_id is not None

    env.clock.now = local(date(2027, 1, 1), 9, 30)
    await env.twice_and_at_once("monthly_report")
    months = [row.payload["args"]["month"] for row in await reports(env)]
    assert sorted(months) == ["2026-11", "2026-11", "2026-12", "2026-12"]
