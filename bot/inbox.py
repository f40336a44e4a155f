"""Durable intake of updates: stored first, handled after, marked done with the handler's commit.

Telegram forgets an update once it is confirmed (polling) or answered (webhook). We confirm only
after the update is in our database, so a process killed while handling it finds it again at
start; the primary key on update_id turns a redelivered update into a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import transaction
from bot.storage.dialect import insert_ignore
from models import InboundUpdate, utcnow

log = logging.getLogger(__name__)

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 5
BATCH = 100


def order_key(raw: Mapping[str, Any]) -> str:
    """One person in one chat: their updates are applied in the order they were sent."""
    for name, value in raw.items():
        if name == "update_id" or not isinstance(value, Mapping):
            continue
        user = value.get("from") or value.get("user") or {}
        chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
        return f"{chat.get('id', '')}:{user.get('id', '')}"
    return "none"


async def store_updates(
    sessions: async_sessionmaker[AsyncSession], updates: Iterable[Mapping[str, Any]]
) -> int:
    rows = [
        {
            "update_id": int(raw["update_id"]),
            "payload": dict(raw),
            "order_key": order_key(raw),
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        }
        for raw in updates
    ]
    if not rows:
        return 0
    async with transaction(sessions) as session:
        return await insert_ignore(
            session, InboundUpdate.__table__, rows, key=["update_id"]  # type: ignore[arg-type]
        )


class UpdateWorker:
    """Claims stored updates and feeds them to the dispatcher; several processes may share it."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        *,
        concurrency: int = 32,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.sessions = sessions
        self.owner = owner
        self.wakeup = asyncio.Event()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.in_flight: set[asyncio.Task[None]] = set()

    async def claim(self) -> list[InboundUpdate]:
        now = utcnow()
        async with transaction(self.sessions) as session:
            ids = list(
                await session.scalars(
                    select(InboundUpdate.update_id)
                    .where(
                        or_(
                            InboundUpdate.status == "pending",
                            and_(
                                InboundUpdate.status == "claimed",
                                InboundUpdate.claimed_until < now,
                            ),
                        )
                    )
                    .where(or_(InboundUpdate.claimed_until.is_(None), InboundUpdate.claimed_until < now))
                    .order_by(InboundUpdate.update_id)
                    .limit(BATCH)
                )
            )
            if not ids:
                return []
            result = await session.execute(
                update(InboundUpdate)
                .where(
                    InboundUpdate.update_id.in_(ids),
                    or_(InboundUpdate.claimed_until.is_(None), InboundUpdate.claimed_until < now),
                    InboundUpdate.status.in_(("pending", "claimed")),
                )
                .values(
                    status="claimed",
                    claimed_by=self.owner,
                    claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                    attempts=InboundUpdate.attempts + 1,
                )
                .returning(InboundUpdate.update_id)
            )
            mine = set(result.scalars())
            rows = await session.scalars(
                select(InboundUpdate)
                .where(InboundUpdate.update_id.in_(mine))
                .order_by(InboundUpdate.update_id)
            )
            return list(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                batch = await self.claim()
            except Exception:
                log.exception("claiming updates failed")
                batch = []
            if batch:
                self._dispatch(batch)
                continue
            self.wakeup.clear()
            waiters = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    def _dispatch(self, batch: list[InboundUpdate]) -> None:
        groups: dict[str, list[InboundUpdate]] = defaultdict(list)
        for row in batch:
            groups[row.order_key].append(row)
        for rows in groups.values():
            task = asyncio.create_task(self._handle_group(rows))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _handle_group(self, rows: list[InboundUpdate]) -> None:
        for row in rows:
            async with self.semaphore:
                await self._handle(row)

    async def _handle(self, row: InboundUpdate) -> None:
        if row.payload is None:
            return
        try:
            await self.dp.feed_raw_update(self.bot, row.payload, from_inbox=True)
        except Exception:
            log.exception("update failed", extra={"update_id": row.update_id})
            failed = row.attempts >= MAX_ATTEMPTS
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(InboundUpdate)
                    .where(InboundUpdate.update_id == row.update_id, InboundUpdate.status != "done")
                    .values(
                        status="failed" if failed else "pending",
                        claimed_until=utcnow() + timedelta(seconds=2**row.attempts),
                        claimed_by=None,
                        payload=None if failed else row.payload,
                    )
                )

    async def drain(self, timeout: float) -> None:
        """Let in-flight handlers finish (SIGTERM): their updates are then marked done."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=timeout)


async def poll_updates(
    bot: Bot,
    sessions: async_sessionmaker[AsyncSession],
    allowed_updates: list[str],
    stop: asyncio.Event,
    on_stored: asyncio.Event,
) -> None:
    """Long polling that confirms an offset only after the updates are stored."""
    from aiogram.methods import GetUpdates

    offset: int | None = None
    backoff = 1.0
    while not stop.is_set():
        try:
            updates = await bot(
                GetUpdates(offset=offset, timeout=25, allowed_updates=allowed_updates),
                request_timeout=40,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("getUpdates failed: %s", type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 1.0
        if not updates:
            continue
        raw = [u.model_dump(mode="json", exclude_none=True, by_alias=True) for u in updates]
        await store_updates(sessions, raw)
        offset = max(u.update_id for u in updates) + 1
        on_stored.set()
