"""Durable intake of updates: stored first, handled after, marked done with the handler's commit.

Telegram forgets an update once it is confirmed (polling) or answered (webhook). We confirm only
after the update is in our database, so a process killed while handling it finds it again at
start; the primary key on update_id turns a redelivered update into a no-op, and
`bot.middlewares.DatabaseMiddleware` marks the row done in the handler's own transaction with a
conditional update, so an update handled twice (two processes, an expired claim) is applied once.

One person's updates in one chat (the order key) are applied in the order they were sent: a
claimed update waits behind an earlier one of the same key that is in flight elsewhere or waiting
for a retry. An update that keeps failing is retried a few times with growing pauses, then given
up, and the person is told, in their language, that it went wrong and to try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import short_writes, transaction
from bot.i18n import LANGUAGES, N_
from bot.services.outbox import enqueue_message
from bot.storage.dialect import insert_ignore
from models import Account, District, InboundUpdate, utcnow
from models.sealed import open_text, seal_text

log = logging.getLogger(__name__)

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 5
BATCH = 100
# Updates of one person waiting in memory behind the one being handled.
PER_KEY_QUEUE = 20
# Update kinds whose sender can be told that their action failed.
ANSWERABLE = ("message", "edited_message", "callback_query")

SORRY = N_("Sorry, something went wrong and your last action was not completed. Please try again.")


def order_key(raw: Mapping[str, Any]) -> str:
    """One person in one chat: their updates are applied in the order they were sent."""
    for name, value in raw.items():
        if name == "update_id" or not isinstance(value, Mapping):
            continue
        user = value.get("from") or value.get("user") or {}
        chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
        return f"{chat.get('id', '')}:{user.get('id', '')}"
    return "none"


def owner_gone(owner: str, me: str) -> bool:
    """Is the process that wrote this claim certainly dead? Only provable on this host.

    Owners are "label@host:pid" (`bot.app.process_owner`). A claim under our own name at start
    is from an earlier life of this process (a restarted container reuses pid and hostname); a
    pid that no longer exists on this host is a process that was killed. Anything else, such as
    another host or a name we can't parse, waits for its claim to run out.
    """
    if owner == me:
        return True
    _, _, where = owner.rpartition("@")
    host, _, pid_text = where.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


SEALED = "sealed"


def seal_update(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The update as stored: encrypted with the data key, so what people typed (an IIN, a
    shared contact, a location) never reaches the table, SQLite's WAL or PostgreSQL's WAL
    (and its archives) in clear. Only replay reads it, and the row is emptied once handled."""
    return {SEALED: seal_text(json.dumps(raw, ensure_ascii=False, separators=(",", ":")))}


def open_update(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The raw update from a stored payload (rows stored before sealing are plain)."""
    if SEALED in payload:
        opened: dict[str, Any] = json.loads(open_text(str(payload[SEALED])))
        return opened
    return dict(payload)


async def store_updates(
    sessions: async_sessionmaker[AsyncSession], updates: Iterable[Mapping[str, Any]]
) -> int:
    rows: list[Mapping[str, Any]] = [
        {
            "update_id": int(raw["update_id"]),
            "payload": seal_update(raw),
            "order_key": order_key(raw),
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        }
        for raw in updates
    ]
    if not rows:
        return 0
    # The person who sent it waits: it goes before the steps waiting for SQLite's writer.
    async with transaction(short_writes(sessions)) as session:
        return await insert_ignore(
            session,
            InboundUpdate.__table__,  # type: ignore[arg-type]
            rows,
            key=["update_id"],
        )


@dataclass
class Receipt:
    """Filled in by `DatabaseMiddleware`: how the handling of one inbox update ended."""

    # "done": committed with its effects; "duplicate": it had been handled already.
    state: str | None = None


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
        on_enqueue: Callable[[], None] | None = None,
        retry_base: float = 2.0,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.sessions = sessions
        self.owner = owner
        self.wakeup = asyncio.Event()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.on_enqueue = on_enqueue or (lambda: None)
        self.retry_base = retry_base
        self.chains: dict[str, deque[InboundUpdate]] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.running: asyncio.Task[None] | None = None

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.running = asyncio.current_task()
        try:
            await self.recover()
        except Exception:
            log.exception("taking back the updates of a stopped process failed")
        while not stop.is_set():
            self.wakeup.clear()
            try:
                claimed = await self.claim_round()
            except Exception:
                log.exception("claiming updates failed")
                claimed = 0
            if claimed:
                continue
            waiters = [
                asyncio.ensure_future(self.wakeup.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def drain(self, grace: float) -> None:
        """SIGTERM: finish the update each person has in flight; hand the rest back."""
        self.stopping = True
        if self.running is not None and not self.running.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.running), grace)
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=grace)

    # -- claiming ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """Take back updates a dead process on this host was handling, without waiting."""
        async with transaction(self.sessions) as session:
            owners = list(
                await session.scalars(
                    select(InboundUpdate.claimed_by)
                    .where(
                        InboundUpdate.status == "claimed", InboundUpdate.claimed_by.is_not(None)
                    )
                    .distinct()
                )
            )
            gone = [o for o in owners if o is not None and owner_gone(o, self.owner)]
            if gone:
                await session.execute(
                    update(InboundUpdate)
                    .where(InboundUpdate.status == "claimed", InboundUpdate.claimed_by.in_(gone))
                    .values(status="pending", claimed_by=None, claimed_until=None)
                )
                log.warning("took back updates of a stopped process", extra={"owners": gone})

    async def claim_round(self) -> int:
        """Claim the updates that may be handled now and start them; returns how many."""
        if self.stopping:
            return 0
        rows = await self._claim()
        self._dispatch(rows)
        return len(rows)

    async def _claim(self) -> list[InboundUpdate]:
        now = utcnow()
        claimable = or_(
            and_(
                InboundUpdate.status == "pending",
                or_(InboundUpdate.claimed_until.is_(None), InboundUpdate.claimed_until < now),
            ),
            and_(InboundUpdate.status == "claimed", InboundUpdate.claimed_until < now),
        )
        busy = [k for k, chain in self.chains.items() if len(chain) >= PER_KEY_QUEUE]
        async with transaction(self.sessions) as session:
            query = (
                select(InboundUpdate.update_id, InboundUpdate.order_key)
                .where(claimable)
                .order_by(InboundUpdate.update_id)
                .limit(BATCH)
            )
            if busy:
                query = query.where(InboundUpdate.order_key.not_in(busy))
            candidates = [(int(u), str(k)) for u, k in (await session.execute(query)).all()]
            if not candidates:
                return []
            blockers = await self._blockers(session, {k for _, k in candidates}, now)
            chosen: list[int] = []
            per_key: Counter[str] = Counter()
            for update_id, key in candidates:
                queued = len(self.chains.get(key, ())) + per_key[key]
                if update_id > blockers.get(key, update_id) or queued >= PER_KEY_QUEUE:
                    blockers[key] = min(update_id, blockers.get(key, update_id))
                    continue
                chosen.append(update_id)
                per_key[key] += 1
            if not chosen:
                return []
            result = await session.execute(
                update(InboundUpdate)
                .where(InboundUpdate.update_id.in_(chosen), claimable)
                .values(
                    status="claimed",
                    claimed_by=self.owner,
                    claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                    attempts=InboundUpdate.attempts + 1,
                )
                .returning(InboundUpdate.update_id)
                .execution_options(synchronize_session=False)
            )
            mine = set(result.scalars())
            # Another process claimed some of them between our look and our update: it now
            # holds that person, so our later updates of the same person must not overtake.
            key_of = dict(candidates)
            lost: dict[str, int] = {}
            for update_id in chosen:
                if update_id not in mine:
                    key = key_of[update_id]
                    lost[key] = min(update_id, lost.get(key, update_id))
            behind = [u for u in mine if key_of[u] in lost and u > lost[key_of[u]]]
            if behind:
                await session.execute(
                    update(InboundUpdate)
                    .where(InboundUpdate.update_id.in_(behind))
                    .values(
                        status="pending",
                        claimed_by=None,
                        claimed_until=None,
                        attempts=InboundUpdate.attempts - 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                mine.difference_update(behind)
            rows = list(
                await session.scalars(
                    select(InboundUpdate)
                    .where(InboundUpdate.update_id.in_(mine))
                    .order_by(InboundUpdate.update_id)
                )
            )
            # Claimed once too often: the process died on it every time. Give it up here.
            hopeless = [r for r in rows if r.attempts > MAX_ATTEMPTS]
            for row in hopeless:
                await self._give_up(session, row)
        return [r for r in rows if r.attempts <= MAX_ATTEMPTS]

    async def _blockers(
        self, session: AsyncSession, keys: Iterable[str], now: datetime
    ) -> dict[str, int]:
        """Per order key, the first update waiting for a retry or held by another process."""
        result = await session.execute(
            select(InboundUpdate.order_key, func.min(InboundUpdate.update_id))
            .where(
                InboundUpdate.order_key.in_(list(keys)),
                or_(
                    and_(InboundUpdate.status == "pending", InboundUpdate.claimed_until >= now),
                    and_(
                        InboundUpdate.status == "claimed",
                        InboundUpdate.claimed_until >= now,
                        or_(
                            InboundUpdate.claimed_by.is_(None),
                            InboundUpdate.claimed_by != self.owner,
                        ),
                    ),
                ),
            )
            .group_by(InboundUpdate.order_key)
        )
        return {str(key): int(first) for key, first in result.all()}

    # -- handling ---------------------------------------------------------------------------

    def _dispatch(self, batch: list[InboundUpdate]) -> None:
        for row in batch:
            chain = self.chains.get(row.order_key)
            if chain is None:
                chain = self.chains[row.order_key] = deque()
                task = asyncio.create_task(self._run_chain(row.order_key, chain))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            chain.append(row)

    async def _run_chain(self, key: str, chain: deque[InboundUpdate]) -> None:
        try:
            while chain:
                if self.stopping:
                    await self._hand_back(list(chain))
                    chain.clear()
                    break
                row = chain.popleft()
                async with self.semaphore:
                    retrying = await self._handle(row)
                if retrying:
                    # Later updates of this person wait behind the one being retried.
                    await self._hand_back(list(chain))
                    chain.clear()
                    break
        except Exception:
            log.exception("update chain failed")
        finally:
            self.chains.pop(key, None)

    async def _hand_back(self, rows: list[InboundUpdate]) -> None:
        if not rows:
            return
        async with transaction(self.sessions) as session:
            await session.execute(
                update(InboundUpdate)
                .where(
                    InboundUpdate.update_id.in_([r.update_id for r in rows]),
                    InboundUpdate.claimed_by == self.owner,
                    InboundUpdate.status == "claimed",
                )
                .values(
                    status="pending",
                    claimed_by=None,
                    claimed_until=None,
                    attempts=InboundUpdate.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )

    async def _handle(self, row: InboundUpdate) -> bool:
        """Handle one update; True when it failed and will be tried again later."""
        if row.payload is None:
            return False
        receipt = Receipt()
        try:
            await self.dp.feed_raw_update(
                self.bot, open_update(row.payload), from_inbox=True, inbox_receipt=receipt
            )
        except Exception as exc:
            log.warning(
                "update failed: %s", type(exc).__name__, extra={"update_id": row.update_id}
            )
        if receipt.state is not None:
            return False
        # Not committed: the handler raised, or an error handler swallowed the exception.
        return await self._failed(row)

    async def _failed(self, row: InboundUpdate) -> bool:
        async with transaction(self.sessions) as session:
            if row.attempts >= MAX_ATTEMPTS:
                await self._give_up(session, row)
                return False
            delay = self.retry_base**row.attempts
            await session.execute(
                update(InboundUpdate)
                .where(InboundUpdate.update_id == row.update_id, InboundUpdate.status != "done")
                .values(
                    status="pending",
                    claimed_until=utcnow() + timedelta(seconds=delay),
                    claimed_by=None,
                )
                .execution_options(synchronize_session=False)
            )
        asyncio.get_running_loop().call_later(delay, self.wakeup.set)
        return True

    async def _give_up(self, session: AsyncSession, row: InboundUpdate) -> None:
        """The last attempt failed: keep the row without its contents and tell the person."""
        result = await session.execute(
            update(InboundUpdate)
            .where(InboundUpdate.update_id == row.update_id, InboundUpdate.status != "done")
            .values(
                status="failed",
                payload=None,
                order_key="",
                claimed_by=None,
                claimed_until=None,
            )
            .returning(InboundUpdate.update_id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return
        log.error("update given up", extra={"update_id": row.update_id})
        if row.payload is not None and await tell_failed(session, open_update(row.payload)):
            self.on_enqueue()


async def tell_failed(session: AsyncSession, raw: Mapping[str, Any]) -> bool:
    """Queue "something went wrong, please try again" to whoever sent the update.

    In a private chat it is written in the person's chosen language (or their Telegram
    language); in a dispatcher chat in the district's language. Returns whether one was queued.
    """
    for kind in ANSWERABLE:
        event = raw.get(kind)
        if isinstance(event, Mapping):
            break
    else:
        return False
    user = event.get("from") or {}
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    chat_id = chat.get("id")
    if not isinstance(chat_id, int) or user.get("is_bot"):
        return False
    if chat.get("type") == "private":
        account = await session.scalar(select(Account).where(Account.telegram_id == chat_id))
        code = user.get("language_code")
        lang = code if code in LANGUAGES else None
        enqueue_message(
            session,
            chat_id=chat_id,
            account_id=account.id if account is not None else None,
            msgid=SORRY,
            lang=lang,
        )
        return True
    district = await session.scalar(select(District).where(District.chat_id == chat_id))
    if district is None:
        return False
    enqueue_message(
        session,
        chat_id=chat_id,
        topic_id=district.topic_id,
        msgid=SORRY,
        lang=district.language,
    )
    return True


def api_url(bot: Bot) -> str:
    """The Bot API server's address as the settings give it (no token in it: it goes to logs)."""
    return bot.session.api.base.removesuffix("/bot{token}/{method}")


# Waits between getUpdates attempts while they fail: 1, 2, 4 ... 30 s.
POLL_BACKOFF_FIRST = 1.0
POLL_BACKOFF_MAX = 30.0


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
    backoff = POLL_BACKOFF_FIRST
    failing_since: float | None = None
    while not stop.is_set():
        try:
            updates = await bot(
                GetUpdates(offset=offset, timeout=25, allowed_updates=allowed_updates),
                request_timeout=40,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One line when Telegram goes away and one when it is back, not one per attempt.
            if failing_since is None:
                failing_since = time.monotonic()
                log.warning(
                    "Telegram unreachable at %s: %s; retrying with backoff up to %ds",
                    api_url(bot),
                    type(exc).__name__,
                    int(POLL_BACKOFF_MAX),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, POLL_BACKOFF_MAX)
            continue
        if failing_since is not None:
            log.info(
                "Telegram reachable again at %s after %ds",
                api_url(bot),
                int(time.monotonic() - failing_since),
            )
            failing_since = None
        backoff = POLL_BACKOFF_FIRST
        if not updates:
            continue
        raw = [u.model_dump(mode="json", exclude_none=True, by_alias=True) for u in updates]
        try:
            await store_updates(sessions, raw)
        except Exception as exc:
            # Not stored, so not confirmed: the next getUpdates returns the same updates.
            log.error("storing updates failed: %s", type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, POLL_BACKOFF_MAX)
            continue
        offset = max(u.update_id for u in updates) + 1
        on_stored.set()
