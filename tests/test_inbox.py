"""Durable updates: what Telegram handed over is applied exactly once, whatever happens.

A small dispatcher with the real middlewares and a handler that records its effect (an audit
row) stands in for the bot's features, so a lost update, a doubled one or a half-applied one
shows as a missing or extra row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import ErrorEvent, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import SystemClock
from bot.context import Replies
from bot.i18n import I18n
from bot.inbox import MAX_ATTEMPTS, SORRY, UpdateWorker, owner_gone, store_updates
from bot.middlewares import DatabaseMiddleware, ForgiveStaleCallbackAnswers, PersonMiddleware
from bot.settings import load_settings
from models import Account, AuditLog, InboundUpdate, OutboxMessage, utcnow
from tests.factories import message_update, sessions_on

HERE = socket.gethostname()


@dataclass
class Behaviour:
    """What the test handler does: fail some attempts, wait for a signal, or just record."""

    failures: dict[int, int] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[int] = field(default_factory=list)


def make_dispatcher(
    sessions: async_sessionmaker[AsyncSession], behaviour: Behaviour, *, swallow: bool = False
) -> Dispatcher:
    dp = Dispatcher(
        disable_fsm=True,
        settings=load_settings(
            bot_token="1:x", data_key="test-data-key-0123456789abcdef0123456789abcdef"
        ),
    )
    dp.update.outer_middleware(DatabaseMiddleware(sessions, dp.fsm, Replies()))
    dp.update.outer_middleware(PersonMiddleware(I18n(), "kk", SystemClock()))
    router = Router()

    @router.message()
    async def record(message: Message, session: AsyncSession) -> None:
        behaviour.calls.append(message.message_id)
        session.add(AuditLog(action="handled", subject=str(message.message_id)))
        await session.flush()
        if behaviour.gate is not None:
            behaviour.entered.set()
            await behaviour.gate.wait()
        left = behaviour.failures.get(message.message_id, 0)
        if left:
            behaviour.failures[message.message_id] = left - 1
            raise RuntimeError("database hiccup")

    if swallow:

        @router.errors()
        async def swallowed(event: ErrorEvent) -> bool:
            return True

    dp.include_router(router)
    return dp


@dataclass
class Inbox:
    sessions: async_sessionmaker[AsyncSession]
    behaviour: Behaviour
    bot: Bot
    workers: list[UpdateWorker] = field(default_factory=list)

    def worker(self, name: str = "bot", *, swallow: bool = False) -> UpdateWorker:
        dp = make_dispatcher(self.sessions, self.behaviour, swallow=swallow)
        worker = UpdateWorker(
            dp, self.bot, self.sessions, f"{name}@{HERE}:{os.getpid()}", retry_base=0.05
        )
        self.workers.append(worker)
        return worker

    async def effects(self) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(select(AuditLog.subject).order_by(AuditLog.id))
            return [str(r) for r in rows]

    async def statuses(self) -> dict[int, str]:
        async with self.sessions() as session:
            rows = await session.execute(select(InboundUpdate.update_id, InboundUpdate.status))
            return {int(u): str(s) for u, s in rows.all()}


@pytest.fixture
async def inbox(migrated_sqlite_url: str) -> AsyncIterator[Inbox]:
    bot = Bot("123456:TEST-token")
    try:
        async with sessions_on(migrated_sqlite_url) as sessions:
            yield Inbox(sessions, Behaviour(), bot)
    finally:
        await bot.session.close()


@pytest.fixture
async def any_inbox(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Inbox]:
    bot = Bot("123456:TEST-token")
    try:
        yield Inbox(sessions, Behaviour(), bot)
    finally:
        await bot.session.close()


@pytest.fixture
async def pg_inbox(migrated_postgres_url: str) -> AsyncIterator[Inbox]:
    from bot.db import create_engine, create_sessionmaker

    engine = create_engine(migrated_postgres_url)
    bot = Bot("123456:TEST-token")
    try:
        yield Inbox(create_sessionmaker(engine), Behaviour(), bot)
    finally:
        await bot.session.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def running(worker: UpdateWorker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await worker.drain(5)
        await asyncio.wait_for(task, 5)


async def settled(
    inbox: Inbox, check: Callable[[dict[int, str]], bool], seconds: float = 10
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check(await inbox.statuses()):
        assert loop.time() < deadline, f"updates did not settle: {await inbox.statuses()}"
        await asyncio.sleep(0.02)


def all_finished(statuses: dict[int, str]) -> bool:
    return bool(statuses) and all(s in ("done", "failed") for s in statuses.values())


async def test_an_update_is_applied_once_and_its_contents_dropped(inbox: Inbox) -> None:
    await store_updates(inbox.sessions, [message_update(1)])
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
    assert await inbox.effects() == ["1"]
    async with inbox.sessions() as session:
        row = await session.get(InboundUpdate, 1)
        assert row is not None and row.status == "done" and row.payload is None
        # The order key held the person's Telegram id: a done update keeps none.
        assert row.order_key == ""


async def test_a_redelivered_update_is_applied_once(inbox: Inbox) -> None:
    """Polling after a restart, or a webhook retry, hands the same update over again."""
    assert await store_updates(inbox.sessions, [message_update(2)]) == 1
    assert await store_updates(inbox.sessions, [message_update(2)]) == 0
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
        assert await store_updates(inbox.sessions, [message_update(2)]) == 0
        # Not stored again: the worker has nothing new to claim.
        assert await inbox.statuses() == {2: "done"}
    # And fed straight to the dispatcher after it was done, it changes nothing.
    worker = inbox.worker()
    await worker.dp.feed_raw_update(inbox.bot, message_update(2), from_inbox=True)
    assert await inbox.effects() == ["2"]


async def test_an_update_of_a_killed_process_is_handled_after_restart(inbox: Inbox) -> None:
    await store_updates(inbox.sessions, [message_update(3)])
    dead_pid = 2**22 + 4321
    async with inbox.sessions() as session, session.begin():
        await session.execute(
            update(InboundUpdate).values(
                status="claimed",
                attempts=1,
                claimed_by=f"bot@{HERE}:{dead_pid}",
                claimed_until=utcnow() + timedelta(minutes=2),
            )
        )
    async with running(inbox.worker()):
        await settled(inbox, all_finished, seconds=3)
    assert await inbox.effects() == ["3"]


async def test_a_transient_failure_is_retried_and_applied_once(inbox: Inbox) -> None:
    inbox.behaviour.failures = {4: 2}
    await store_updates(inbox.sessions, [message_update(4)])
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
    # The failed attempts were rolled back with their effects.
    assert await inbox.effects() == ["4"]
    assert inbox.behaviour.calls == [4, 4, 4]
    async with inbox.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "error-handler"])
async def test_after_the_last_attempt_the_person_is_told_in_their_language(
    inbox: Inbox, swallow: bool
) -> None:
    inbox.behaviour.failures = {5: 99}
    async with inbox.sessions() as session, session.begin():
        session.add(Account(telegram_id=7005, language="ru", display_name="Асель"))
    await store_updates(inbox.sessions, [message_update(5, user_id=7005, language_code="kk")])
    async with running(inbox.worker(swallow=swallow)):
        await settled(inbox, all_finished)
    assert inbox.behaviour.calls == [5] * MAX_ATTEMPTS
    assert await inbox.effects() == []
    async with inbox.sessions() as session:
        row = await session.get(InboundUpdate, 5)
        assert row is not None and row.status == "failed" and row.payload is None
        assert row.order_key == ""
        (sorry,) = await session.scalars(select(OutboxMessage))
    # Their chosen language (Russian) wins over Telegram's (Kazakh): rendered at send time.
    assert sorry.chat_id == 7005 and sorry.account_id is not None
    assert sorry.payload["msgid"] == SORRY
    assert "попробуйте" in I18n().gettext("ru", SORRY)


async def test_a_newcomer_is_told_in_telegrams_language(inbox: Inbox) -> None:
    inbox.behaviour.failures = {6: 99}
    await store_updates(inbox.sessions, [message_update(6, user_id=7006, language_code="kk")])
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
    async with inbox.sessions() as session:
        (sorry,) = await session.scalars(select(OutboxMessage))
    assert sorry.chat_id == 7006 and sorry.payload["lang"] == "kk"


async def test_a_persons_updates_wait_behind_one_being_retried(inbox: Inbox) -> None:
    """Confirm, then Cancel: if Confirm hiccups, Cancel must still come after it."""
    inbox.behaviour.failures = {10: 1}
    await store_updates(inbox.sessions, [message_update(10), message_update(11)])
    await store_updates(inbox.sessions, [message_update(12, user_id=7012)])
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
    assert [e for e in await inbox.effects() if e != "12"] == ["10", "11"]
    mine = [n for n in inbox.behaviour.calls if n in (10, 11)]
    assert mine == [10, 10, 11]


@pytest.mark.postgres
async def test_an_update_handled_twice_at_once_is_applied_once(pg_inbox: Inbox) -> None:
    """Two processes: the first is slow, its claim runs out, the second takes the update.

    On PostgreSQL both handlers really run at once (on SQLite the second waits for the
    first's write lock and then finds the update done)."""
    inbox = pg_inbox
    inbox.behaviour.gate = asyncio.Event()
    async with inbox.sessions() as session, session.begin():
        session.add(Account(telegram_id=7001, language="kk", display_name="Асель"))
    await store_updates(inbox.sessions, [message_update(20)])
    first = inbox.worker("first")
    async with running(first):
        await asyncio.wait_for(inbox.behaviour.entered.wait(), 5)
        async with inbox.sessions() as session, session.begin():
            await session.execute(
                update(InboundUpdate).values(claimed_until=utcnow() - timedelta(seconds=1))
            )
        second = inbox.worker("second")
        inbox.behaviour.entered.clear()
        async with running(second):
            await asyncio.wait_for(inbox.behaviour.entered.wait(), 5)
            inbox.behaviour.gate.set()
            await settled(inbox, all_finished)
    assert inbox.behaviour.calls == [20, 20]
    assert await inbox.effects() == ["20"]


async def test_stopping_finishes_the_update_in_flight(inbox: Inbox) -> None:
    """SIGTERM while a handler runs: it completes and commits; the rest waits for next start."""
    inbox.behaviour.gate = asyncio.Event()
    await store_updates(inbox.sessions, [message_update(n) for n in (30, 31, 32)])
    worker = inbox.worker()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(inbox.behaviour.entered.wait(), 5)
    stop.set()
    draining = asyncio.create_task(worker.drain(5))
    # The loop has stopped claiming while the handler is still held: drain waits for it.
    await asyncio.wait_for(asyncio.shield(task), 5)
    assert worker.in_flight and not draining.done()
    inbox.behaviour.gate.set()
    await draining
    assert await inbox.effects() == ["30"]
    statuses = await inbox.statuses()
    assert statuses == {30: "done", 31: "pending", 32: "pending"}
    async with inbox.sessions() as session:
        attempts = await session.scalars(
            select(InboundUpdate.attempts).where(InboundUpdate.update_id > 30)
        )
        assert set(attempts) == {0}
    # The next start picks them up.
    inbox.behaviour.gate = None
    async with running(inbox.worker()):
        await settled(inbox, all_finished)
    assert await inbox.effects() == ["30", "31", "32"]


async def test_two_processes_apply_every_update_once(any_inbox: Inbox) -> None:
    inbox = any_inbox
    updates = [message_update(100 + n, user_id=7100 + n % 7) for n in range(40)]
    await store_updates(inbox.sessions, updates)
    async with running(inbox.worker("one")), running(inbox.worker("two")):
        await settled(inbox, all_finished)
    effects = await inbox.effects()
    assert sorted(effects) == sorted(str(100 + n) for n in range(40))
    for user in range(7):
        theirs = [e for e in effects if (int(e) - 100) % 7 == user]
        assert theirs == sorted(theirs, key=int)


def test_owner_gone() -> None:
    me = f"bot@{HERE}:{os.getpid()}"
    assert owner_gone(me, me)  # our own name at start: an earlier life of this process
    assert owner_gone(f"bot@{HERE}:{2**22 + 1}", me)
    assert not owner_gone(f"other@{HERE}:{os.getpid()}", me)  # a sibling in this process
    assert not owner_gone(f"bot@{HERE}:1", me)  # alive (init)
    assert not owner_gone("bot@elsewhere:12345", me)
    assert not owner_gone("something odd", me)


async def test_a_press_answered_after_telegram_forgot_it_still_counts(stand_in: Any) -> None:
    """Handled again after a restart, a press is too old to answer; its action must still
    commit, so the refused answer is not an error."""
    # Telegram forgets a press after `callback_timeout`; at 0 it is too old once answered.
    stand_in.callback_timeout = 0.0
    user = stand_in.private_chat(7050, "Асель")
    plain, forgiving = stand_in.make_bot(), stand_in.make_bot()
    forgiving.session.middleware(ForgiveStaleCallbackAnswers())
    try:
        sent = await plain.send_message(
            7050,
            "Карточка",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Взять", callback_data="take")]]
            ),
        )
        press = user.press("Взять", message=stand_in.message(7050, sent.message_id))
        with pytest.raises(TelegramBadRequest, match="query is too old"):
            await plain.answer_callback_query(press.id)
        assert await forgiving.answer_callback_query(press.id) is True
    finally:
        await plain.session.close()
        await forgiving.session.close()
