"""The real bot, built by the app factory and run by the real runner, against the stand-in.

`running_bot` yields a `BotHarness`: simulated people (`rider`, `dispatcher`), the district
groups, direct database access for assertions, and `settle()` to wait until the bot has handled
every update and sent every queued message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App
from bot.runner import prepare, run_app
from bot.settings import Settings, load_settings
from models import InboundUpdate, OutboxMessage, utcnow
from tests.factories import QUICK_PACING

TOKEN = "123456:TEST-token"
TEST_DISTRICTS = Path(__file__).resolve().parent.parent / "data" / "districts.toml"

GROUPS = {"taldykorgan": -1001000000001, "tekeli": -1001000000002}
DISPATCHERS = {
    "taldykorgan": [(9001, "Айгүл"), (9002, "Марат"), (9003, "Светлана")],
    "tekeli": [(9101, "Нұрлан")],
}
ADMIN_ID = 9999


async def backlog(
    sessions: async_sessionmaker[AsyncSession], *, due_only: bool = True
) -> tuple[int, int]:
    """Updates stored and not yet handled; outbox messages not yet sent (only those due now,
    or also those waiting for a retry)."""
    waiting = OutboxMessage.status.in_(("pending", "sending"))
    async with sessions() as session:
        inbox = await session.scalar(
            select(func.count())
            .select_from(InboundUpdate)
            .where(InboundUpdate.status.in_(("pending", "claimed")))
        )
        outbox = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(waiting, OutboxMessage.next_attempt_at <= utcnow() if due_only else waiting)
        )
    return int(inbox or 0), int(outbox or 0)


@dataclass
class BotHarness:
    stand_in: Any
    app: App
    settings: Settings
    users: dict[int, Any] = field(default_factory=dict)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.app.sessions

    def person(self, user_id: int, *, name: str = "Test", lang: str = "ru") -> Any:
        """A simulated Telegram user with a private chat with the bot."""
        if user_id not in self.users:
            self.users[user_id] = self.stand_in.private_chat(
                user_id, first_name=name, language_code=lang
            )
        return self.users[user_id]

    def group(self, district: str = "taldykorgan") -> int:
        return GROUPS[district]

    def dispatcher(self, district: str = "taldykorgan", index: int = 0) -> Any:
        """A dispatcher of the district, as a member of its group."""
        user_id, name = DISPATCHERS[district][index]
        user = self.person(user_id, name=name)
        self.stand_in.add_member(GROUPS[district], user)
        return user

    def outsider(self, district: str = "taldykorgan", user_id: int = 8001) -> Any:
        """A group member who is not a dispatcher."""
        user = self.person(user_id, name="Гость")
        self.stand_in.add_member(GROUPS[district], user)
        return user

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every stored update is handled and every due message is sent."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            pending_updates = (
                len(self.stand_in.pending_updates())
                if hasattr(self.stand_in, "pending_updates")
                else 0
            )
            inbox, outbox = await backlog(self.sessions)
            worker = self.app.extras.get("worker")
            busy = bool(worker and worker.in_flight)
            if not (pending_updates or inbox or outbox or busy):
                quiet_rounds += 1
                if quiet_rounds >= 3:
                    return
            else:
                quiet_rounds = 0
        raise AssertionError("the bot did not settle in time")

    async def db(self) -> AsyncSession:
        """A fresh session for assertions (close it, or use `async with harness.sessions()`)."""
        return self.sessions()


def make_settings(database_url: str, api_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "telegram_api_url": api_url,
        "database_url": database_url,
        "districts_file": TEST_DISTRICTS,
        "admin_ids": frozenset({ADMIN_ID}),
        "default_language": "kk",
        "data_key": "test-data-key-0123456789abcdef0123456789abcdef",
        "sweep_interval_seconds": 3600,
        **QUICK_PACING,
    }
    values.update(overrides)
    return load_settings(**values)


@contextlib.asynccontextmanager
async def running_bot(
    stand_in: Any, database_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[BotHarness]:
    for district, chat_id in GROUPS.items():
        stand_in.group(chat_id, title=f"Диспетчеры {district}")
    settings = make_settings(database_url, stand_in.base_url, tmp_path, **overrides)
    app = await prepare(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_app(app, stop))
    harness = BotHarness(stand_in=stand_in, app=app, settings=settings)
    try:
        yield harness
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 30)
        await app.close()
