"""The sweeps on a real database: each acts once, run twice in a row or by two processes at once.

"Two processes" are two `Sweeps` with their own engines and owners on the same database, run
concurrently; every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.i18n import I18n
from bot.services import notifications
from bot.status import collect_status
from bot.sweeps import (
    BEFORE_REMINDER,
    ESCALATION,
    EVENING_REMINDER,
    SWEEP_NAMES,
    VKK_7,
    VKK_30,
    VKK_EXPIRED,
    Sweeps,
)
from handlers.status import render
from models import (
    Account,
    ConversationState,
    InboundUpdate,
    OutboxMessage,
    Ride,
    RideEvent,
    Rider,
    SweepRun,
    Vehicle,
)
from tests.e2e.harness import ADMIN_ID
from tests.factories import (
    HERE,
    TODAY,
    TOMORROW,
    Env,
    add_ride,
    add_rider,
    link_representative,
    local,
)


async def scheduled_ride(env: Env, *, pickup: datetime, scheduled: datetime) -> Ride:
    async with env.sessions() as session, session.begin():
        rider = await add_rider(session, 6001, lang="ru", name="Гульнара Сейтова")
        await link_representative(session, rider, 6002, lang="kk", name="Асан")
        vehicle = await session.scalar(select(Vehicle))
        assert vehicle is not None
        return await add_ride(
            session,
            rider,
            pickup_at=pickup,
            status="scheduled",
            vehicle_id=vehicle.id,
            status_changed_at=scheduled,
            created_at=scheduled - timedelta(hours=1),
        )


async def test_evening_and_before_pickup_reminders_go_once_to_everyone(env: Env) -> None:
    ride = await scheduled_ride(env, pickup=local(TOMORROW, 9, 30), scheduled=local(TODAY, 11))
    env.clock.now = local(TODAY, 18, 59)
    await env.twice_and_at_once("reminders")
    assert await env.messages() == []

    env.clock.now = local(TODAY, 19, 5)
    await env.twice_and_at_once("reminders")
    evening = await env.messages(EVENING_REMINDER)
    assert sorted(m.chat_id for m in evening) == [6001, 6002]
    by_chat = {m.chat_id: m.payload["params"] for m in evening}
    # Each reads the car's colour in their own language.
    assert "белый" in by_chat[6001]["car"] and "ақ" in by_chat[6002]["car"]
    assert by_chat[6001]["time"] == "09:30" and by_chat[6001]["date"] == "11.03.2026"
    text = I18n().gettext("ru", EVENING_REMINDER, **by_chat[6001])
    assert "завтра" in text and "123ABC05" in text

    env.clock.now = local(TOMORROW, 8, 35)
    await env.twice_and_at_once("reminders")
    before = await env.messages(BEFORE_REMINDER)
    assert sorted(m.chat_id for m in before) == [6001, 6002]
    assert before[0].payload["params"]["driver_phone"] == "+77015551122"
    async with env.sessions() as session:
        fresh = await session.get(Ride, ride.id)
        assert fresh is not None and fresh.reminder_evening_at and fresh.reminder_before_at


async def test_no_reminder_for_a_ride_scheduled_after_the_reminder_time(env: Env) -> None:
    await scheduled_ride(env, pickup=local(TOMORROW, 9, 30), scheduled=local(TODAY, 19, 30))
    env.clock.now = local(TODAY, 19, 31)
    await env.twice_and_at_once("reminders")
    assert await env.messages() == []


async def requested_ride(
    env: Env, created: datetime, pickup: datetime, user: int = 6001, **values: Any
) -> Ride:
    async with env.sessions() as session, session.begin():
        rider = await add_rider(session, user)
        return await add_ride(
            session,
            rider,
            pickup_at=pickup,
            created_at=created,
            status_changed_at=created,
            card_chat_id=-1001000000001,
            card_message_id=77,
            **values,
        )


async def test_an_unanswered_request_is_escalated_once(env: Env) -> None:
    ride = await requested_ride(env, local(TODAY, 10, 0), local(TOMORROW, 9, 30))
    env.clock.now = local(TODAY, 10, 14)
    await env.twice_and_at_once("escalation")
    assert await env.messages() == []

    env.clock.now = local(TODAY, 10, 16)
    await env.twice_and_at_once("escalation")
    (alert,) = await env.messages(ESCALATION)
    assert alert.kind == "reply" and alert.ride_id == ride.id
    assert alert.chat_id == -1001000000001 and alert.payload["lang"] == "ru"
    assert [m["telegram_id"] for m in alert.payload["mentions"]] == [9001, 9002, 9003]
    assert alert.payload["params"]["since"] == "10:00, 10.03"


async def test_no_escalation_outside_service_hours_or_once_taken(env: Env) -> None:
    await requested_ride(env, local(TODAY, 19, 55), local(TOMORROW + timedelta(days=1), 12))
    await requested_ride(env, local(TODAY, 10, 0), local(TOMORROW, 12), 6002, status="taken")
    env.clock.now = local(TODAY, 23, 0)
    await env.twice_and_at_once("escalation")
    env.clock.now = local(TOMORROW, 8, 5)
    await env.twice_and_at_once("escalation")
    assert await env.messages() == []
    # Five minutes the evening before and ten this morning: the desk has had it 15 minutes.
    env.clock.now = local(TOMORROW, 8, 10)
    await env.twice_and_at_once("escalation")
    assert len(await env.messages(ESCALATION)) == 1


async def test_a_request_nobody_decided_expires_once_and_the_rider_is_told(env: Env) -> None:
    ride = await requested_ride(env, local(TODAY, 8, 0), local(TODAY, 11, 0))
    env.clock.now = local(TODAY, 11, 1)
    await env.twice_and_at_once("expiry")
    async with env.sessions() as session:
        fresh = await session.get(Ride, ride.id)
        assert fresh is not None and fresh.status == "expired"
        events = list(await session.scalars(select(RideEvent).where(RideEvent.ride_id == ride.id)))
    assert [(e.to_status, e.actor_kind) for e in events] == [("expired", "system")]
    told = [m for m in await env.messages() if m.chat_id == 6001]
    assert len(told) == 1
    assert told[0].payload["msgid"] == notifications.EXPIRED
    # Told it was closed and invited to book again, in their language.
    text = I18n().gettext("ru", notifications.EXPIRED, **told[0].payload["params"])
    assert "закажите" in text


async def vkk_rider(env: Env, expires: date) -> int:
    async with env.sessions() as session, session.begin():
        rider = await add_rider(session, 6001, lang="kk", name="Айша")
        rider.vkk_expires_on = expires
        return rider.id


async def test_vkk_letters_30_and_7_days_before_and_after_expiry(env: Env) -> None:
    expires = date(2026, 4, 5)
    rider_id = await vkk_rider(env, expires)
    steps = [
        (date(2026, 3, 5), None),
        (date(2026, 3, 10), VKK_30),
        (date(2026, 3, 29), VKK_7),
        (date(2026, 4, 5), None),  # valid through its last day: nothing new
        (date(2026, 4, 6), VKK_EXPIRED),
    ]
    for day, letter in steps:
        before = len(await env.messages())
        env.clock.now = local(day, 10)
        await env.twice_and_at_once("vkk")
        new = (await env.messages())[before:]
        assert [m.payload["msgid"] for m in new] == ([letter] if letter else []), day
    last = (await env.messages())[-1]
    assert last.payload["params"] == {"name": "Айша", "date": "05.04.2026"}

    # A new conclusion is verified: letters start over for the new date.
    async with env.sessions() as session, session.begin():
        await session.execute(
            update(Rider).where(Rider.id == rider_id).values(vkk_expires_on=date(2027, 4, 5))
        )
    env.clock.now = local(date(2027, 3, 10), 10)
    await env.twice_and_at_once("vkk")
    assert (await env.messages())[-1].payload["msgid"] == VKK_30
    assert len(await env.messages(VKK_30)) == 2


async def test_vkk_letters_wait_for_the_daytime(env: Env) -> None:
    await vkk_rider(env, date(2026, 4, 5))
    env.clock.now = local(date(2026, 3, 10), 6, 0)
    await env.twice_and_at_once("vkk")
    assert await env.messages() == []


async def test_abandoned_conversations_are_forgotten_after_a_week(env: Env) -> None:
    now = env.clock.now
    async with env.sessions() as session, session.begin():
        session.add(
            ConversationState(
                key="old", state="Booking:address", updated_at=now - timedelta(days=8)
            )
        )
        session.add(
            ConversationState(
                key="new", state="Booking:address", updated_at=now - timedelta(days=6)
            )
        )
    await env.twice_and_at_once("conversations")
    async with env.sessions() as session:
        keys = list(await session.scalars(select(ConversationState.key)))
    assert keys == ["new"]


async def test_data_past_its_keeping_period_is_deleted(env: Env) -> None:
    now = env.clock.now
    # Ride records are kept five years (anonymised after one): see bot.services.retention.
    old = now - timedelta(days=5 * 365 + 1)
    async with env.sessions() as session, session.begin():
        rider = await add_rider(session, 6001)
        finished = await add_ride(
            session, rider, pickup_at=old, status="completed", status_changed_at=old
        )
        kept = await add_ride(
            session,
            rider,
            pickup_at=now - timedelta(days=10),
            status="completed",
            status_changed_at=now - timedelta(days=10),
        )
        still_open = await add_ride(
            session, rider, pickup_at=old, status="scheduled", status_changed_at=old
        )
        for ride in (finished, kept, still_open):
            session.add(RideEvent(ride_id=ride.id, actor_kind="system", to_status=ride.status))
        session.add_all(
            [
                InboundUpdate(
                    update_id=1, order_key="a", status="done", done_at=now - timedelta(days=8)
                ),
                InboundUpdate(
                    update_id=2, order_key="a", status="done", done_at=now - timedelta(hours=1)
                ),
                OutboxMessage(
                    chat_id=6001, kind="send", status="sent", sent_at=now - timedelta(days=4)
                ),
                OutboxMessage(
                    chat_id=6001, kind="send", status="sent", sent_at=now - timedelta(hours=1)
                ),
                OutboxMessage(
                    chat_id=6001,
                    kind="send",
                    status="pending",
                    created_at=now - timedelta(days=40),
                ),
            ]
        )
    await env.twice_and_at_once("retention")
    async with env.sessions() as session:
        rides = set(await session.scalars(select(Ride.id)))
        events = set(await session.scalars(select(RideEvent.ride_id)))
        updates = set(await session.scalars(select(InboundUpdate.update_id)))
        outbox = list(
            await session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id))
        )
    assert rides == events == {kept.id, still_open.id}
    assert updates == {2}
    # A message still owed is never deleted, however old.
    assert outbox == ["sent", "pending"]


async def test_a_sweep_leased_by_a_live_process_is_skipped(env: Env) -> None:
    async with env.sessions() as session, session.begin():
        session.add(
            SweepRun(
                name="expiry",
                lease_owner="bot@another-host:1",
                lease_until=env.clock.now + timedelta(minutes=1),
            )
        )
    assert await env.sweeps().run("expiry") is None
    env.clock.now += timedelta(minutes=2)  # the lease ran out: that process is gone
    assert await env.sweeps().run("expiry") == 0
    async with env.sessions() as session:
        run = await session.get(SweepRun, "expiry")
    assert run is not None and run.lease_owner is None
    assert run.last_finished_at is not None and run.last_result == "ok: 0"


async def test_every_sweep_records_its_run(env: Env) -> None:
    results = await env.sweeps().run_all()
    assert set(results) == set(SWEEP_NAMES)
    async with env.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(SweepRun)
            .where(SweepRun.last_finished_at.is_not(None))
        )
    assert count == len(SWEEP_NAMES)


# -- the operator's view ------------------------------------------------------------------------


async def test_status_shows_backlog_unanswered_requests_unreachable_riders_and_sweeps(
    env: Env,
) -> None:
    now = datetime.now(UTC)
    async with env.sessions() as session, session.begin():
        cut_off = await add_rider(session, 6101, name="Без связи")
        reachable = await add_rider(session, 6102, name="На связи")
        await link_representative(session, reachable, 6103)
        for rider in (cut_off, reachable):
            account = await session.get(Account, rider.account_id)
            assert account is not None
            account.unreachable_since = now
        old = await add_ride(session, cut_off, created_at=now - timedelta(minutes=40))
        await add_ride(session, reachable, created_at=now - timedelta(minutes=5))
        await add_ride(session, reachable, status="taken")
        session.add_all(
            [
                OutboxMessage(chat_id=6101, kind="send", created_at=now - timedelta(minutes=3)),
                OutboxMessage(chat_id=6102, kind="send", created_at=now - timedelta(minutes=1)),
                OutboxMessage(chat_id=6102, kind="send", status="dead"),
                InboundUpdate(update_id=1, order_key="a", status="pending", received_at=now),
                InboundUpdate(update_id=2, order_key="a", status="failed", received_at=now),
            ]
        )
    await env.sweeps().run("expiry")
    report = await collect_status(env.sessions)
    assert report["outbox"]["waiting"] == 2 and report["outbox"]["dead"] == 1
    assert 170 <= report["outbox"]["oldest_age_s"] <= 240
    assert report["inbox"] == {
        "waiting": 1,
        "oldest_age_s": report["inbox"]["oldest_age_s"],
        "failed": 1,
    }
    desks = {d["id"]: d for d in report["districts"]}
    assert desks["taldykorgan"]["unanswered"] == 2
    assert desks["taldykorgan"]["oldest_ride"] == old.id
    assert desks["tekeli"]["oldest_ride"] is None
    # The second rider's representative still hears from the bot.
    assert report["unreachable_riders"] == 1
    assert [s["name"] for s in report["sweeps"]] == ["expiry"]
    assert report["sweeps"][0]["last_finished_at"] is not None
    assert json.loads(json.dumps(report)) == report

    i18n = I18n()
    ru = render(report, i18n.translator("ru"), "ru", env.settings.tz)
    assert "город Талдыкорган: 2, самая старая — №" in ru and "ждёт 40 мин" in ru
    assert "город Текели: нет." in ru
    kk = render(report, i18n.translator("kk"), "kk", env.settings.tz)
    assert "Талдықорған қаласы" in kk and "Текелі қаласы: жоқ." in kk


def test_invataxi_status_prints_json(
    migrated_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    url = migrated_sqlite_url
    monkeypatch.setenv("BOT_TOKEN", "1:a")
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outbox"] == {
        "waiting": 0,
        "oldest_age_s": None,
        "dead": 0,
        "sender": {"process": None, "lease_until": None},
    }
    assert main(["status"]) == 0
    assert "outbox: 0 waiting" in capsys.readouterr().out


async def test_status_command_for_administrators_only(bot: Any) -> None:
    async with bot.sessions() as session, session.begin():
        session.add(Account(telegram_id=ADMIN_ID, language="ru", display_name="Админ"))
    admin = bot.person(ADMIN_ID, name="Админ", lang="ru")
    admin.send_text("/status")
    report = await admin.wait_for("Состояние бота")
    assert "город Талдыкорган: нет." in report.text
    assert "Сообщений в очереди на отправку нет." in report.text

    stranger = bot.person(8123, name="Гость", lang="ru")
    stranger.send_text("/status")
    reply = await stranger.wait_for(lambda m: True)
    assert "Состояние бота" not in reply.text


async def test_the_scheduler_runs_the_sweeps_in_process(env: Env) -> None:
    settings = env.settings.model_copy(update={"sweep_interval_seconds": 1})
    sweeps = Sweeps(env.sessions, settings, f"sched@{HERE}:1")
    scheduler = sweeps.start()
    try:
        assert {job.id for job in scheduler.get_jobs()} == set(SWEEP_NAMES)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            async with env.sessions() as session:
                ran = set(
                    await session.scalars(
                        select(SweepRun.name).where(SweepRun.last_finished_at.is_not(None))
                    )
                )
            if {"reminders", "escalation", "expiry"} <= ran:
                break
            assert loop.time() < deadline, f"only {ran} ran"
            await asyncio.sleep(0.2)
    finally:
        await sweeps.stop(5)
    assert not scheduler.running
