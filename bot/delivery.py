"""The outbox sender: delivers what transactions queued, at Telegram's pace, at least once.

How a row travels:
- It is *claimed* with a conditional update (status ``sending``, an owner and a short claim
  time that a heartbeat extends while the row waits in memory), so two processes never send the
  same row, and a row held by a process that died is taken over when its claim runs out (or at
  once, when the dead process was on this host: see `bot.inbox.owner_gone`).
- Rows of one chat go out one at a time and in the order they were written; a row that must wait
  (a 429, a 5xx, a network error, a long pacing pause) hands the rest of its chat back with it, so
  "scheduled" is never overtaken by "the car is on its way".
- It is paced to Telegram's limits (`Limits`): about 1/s per private chat, 20/min per group,
  about 30/s overall. Card rows are rendered from the database at send time, so pending refreshes
  of one card are one edit.
- It is marked ``sent`` with the message id Telegram returned, right after the call (sends
  finishing at the same moment share one commit).
- One process at a time sends (a lease), so several bot processes together keep to ~30/s.

At least once, shown once: Telegram has no idempotency key for sendMessage, so a process killed
between Telegram's answer and the commit of ``sent`` sends that one message again after a restart.
That window is kept to one short transaction right after the answer (retried on a transient
database error rather than left open), and a graceful stop (SIGTERM) lets sends in flight finish
and be recorded first. For card edits the window is harmless: an edit repeated with the same
text answers "message is not modified", which counts as done; a card *post* repeated in that
window would show twice, like any new message. A dropped connection or a timeout while Telegram
was answering is the same window seen from the other side and is retried the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    MessageEntity,
    ReplyParameters,
    User,
)
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cards.registry import CARD_RENDERERS
from bot.cards.registry import load_all as load_cards
from bot.context import EDIT, START_LINK_URL, Markup, Replies, load_markup
from bot.db import reader, short_writes, transaction
from bot.documents import DOCUMENT_RENDERERS, Document
from bot.documents import load_all as load_documents
from bot.i18n import I18n, Translator
from bot.keyboards.registry import OUTBOX_KEYBOARDS, OutboxMarkup
from bot.keyboards.registry import load_all as load_keyboards
from bot.services.district_cache import forget_districts
from bot.services.outbox import LOCATION
from bot.settings import Settings
from bot.storage.dialect import insert_ignore
from models import Account, District, OutboxMessage, Ride, SweepRun, Verification, utcnow

log = logging.getLogger(__name__)

CLAIM_SECONDS = 30.0
# Network errors and 5xx are retried with growing pauses (1 s, 2 s, ... at most 5 min); after
# this many attempts (about two hours of failures) the message is given up as ``dead``.
MAX_ATTEMPTS = 30
MAX_BACKOFF = 300.0
# A Bot API call that takes longer than this is abandoned and retried.
REQUEST_TIMEOUT = 15
# Uploading a report's files takes longer.
DOCUMENT_TIMEOUT = 120
# An outbox row that names a document renderer (`bot.services.outbox.enqueue_document`).
DOCUMENT = "document"
# Rows held in memory at most, and how many of them per chat: enough to keep 30/s busy, few
# enough that a row never waits in memory longer than its claim.
MAX_HELD = 120
PER_CHAT_QUEUE = 4
# Candidate rows looked at per claim round.
SCAN = 400
# A claim round at least this often, for rows other processes queued (this process's own steps
# and sweeps ask for one at once).
CLAIM_EVERY_S = 0.5
# A row that would wait longer than this for its chat goes back to the table until it is due.
RELEASE_AFTER = 5.0
# This many chats answering 429 within this many seconds means the whole bot is throttled
# (one chat's 429 is that chat's limit, often hit by a handler answering the person directly).
GLOBAL_429_CHATS = 3
GLOBAL_429_SPAN = 1.0
# The lease that lets one process at a time send (see `OutboxSender._take_lease`).
SENDER_LEASE = "outbox-sender"
# How soon to look again when the limit is taken by calls still waiting for their answer.
IN_FLIGHT_POLL = 0.05
# What Telegram answers to an edit of a message that is no longer there to change.
GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
# How long a graceful stop keeps sending what is already claimed.
STOP_GRACE = 5.0


@dataclass(frozen=True)
class Limits:
    """Telegram's limits, with a margin; tests may compress them (settings `OUTBOX_*`).

    A private chat may get `private_burst` messages at once (a step's answer and its next
    question), then one per `private_interval` (a token bucket): Telegram's "about one a second"
    is an average, not a wait before the first reply, and a person who answers quickly after a
    burst waits one interval for the next message, not a whole window.
    """

    global_per_second: int = 28
    group_per_window: int = 19
    group_window: float = 60.0
    group_spacing: float = 3.0
    private_interval: float = 1.0
    private_burst: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            global_per_second=settings.outbox_global_per_second,
            group_per_window=settings.outbox_group_per_minute,
            group_spacing=settings.outbox_group_spacing,
            private_interval=settings.outbox_private_interval,
            private_burst=settings.outbox_private_burst,
        )


class Pace:
    """Sliding windows of what was sent, per chat and overall, and pauses Telegram asked for."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        # When calls were answered (Telegram counted them somewhere before that moment).
        self.global_sent: deque[float] = deque()
        # Groups: when each recent message was answered (a sliding window).
        self.per_chat: dict[int, deque[float]] = {}
        # Private chats: a token bucket, [messages that may go now, when that was counted].
        self.buckets: dict[int, list[float]] = {}
        # Calls started and not answered yet: each may reach Telegram at any moment, so it
        # counts against every window until its answer comes.
        self.in_flight = 0
        self.in_flight_per_chat: Counter[int] = Counter()
        self.blocked_until: dict[int, float] = {}
        self.global_blocked_until = 0.0
        self.recent_429: deque[tuple[int, float]] = deque()

    def wait_time(self, chat_id: int, now: float) -> float:
        """How long before a message to this chat may go: the larger of both waits below."""
        return max(self.chat_wait(chat_id, now), self.global_wait(now))

    def global_wait(self, now: float) -> float:
        """The overall window (~30/s) and a pause Telegram asked of the whole bot."""
        sent_all = self.global_sent
        while sent_all and now - sent_all[0] >= 1.0:
            sent_all.popleft()
        waits = [self.global_blocked_until - now]
        if len(sent_all) + self.in_flight >= self.limits.global_per_second:
            waits.append(1.0 - (now - sent_all[0]) if sent_all else IN_FLIGHT_POLL)
        return max(0.0, *waits)

    def chat_wait(self, chat_id: int, now: float) -> float:
        """This chat's own limits (a burst then 1/s private, 20/min group) and a pause asked."""
        lim = self.limits
        waits = [self.blocked_until.get(chat_id, 0.0) - now]
        flying = self.in_flight_per_chat.get(chat_id, 0)
        sent = self.per_chat.get(chat_id)
        if chat_id < 0:
            if sent:
                while sent and now - sent[0] >= lim.group_window:
                    sent.popleft()
            count = len(sent or ()) + flying
            if count >= lim.group_per_window:
                waits.append(lim.group_window - (now - sent[0]) if sent else IN_FLIGHT_POLL)
            if flying:
                waits.append(min(IN_FLIGHT_POLL, lim.group_spacing))
            elif sent:
                waits.append(lim.group_spacing - (now - sent[-1]))
        elif lim.private_interval > 0:
            # Calls in flight have taken their token already (they are counted when answered).
            free = self._tokens(chat_id, now) - flying
            if free < 1.0:
                waits.append((1.0 - free) * lim.private_interval)
        return max(0.0, *waits)

    def _tokens(self, chat_id: int, now: float) -> float:
        """Messages this private chat may get at once now: up to a burst, one more a second."""
        lim = self.limits
        bucket = self.buckets.get(chat_id)
        if bucket is None:
            return float(lim.private_burst)
        tokens, counted = bucket
        return min(float(lim.private_burst), tokens + (now - counted) / lim.private_interval)

    def record(self, chat_id: int, now: float) -> None:
        """A call starts: it counts as in flight until `completed`."""
        self.in_flight += 1
        self.in_flight_per_chat[chat_id] += 1
        if len(self.per_chat) + len(self.buckets) > 10_000:
            self._forget_idle(now)

    def completed(self, chat_id: int, started: float, now: float) -> None:
        """A call ended: it counts from its answer on.

        Telegram counts a message when it arrives, somewhere between our start and the answer;
        measuring windows from the answer keeps network jitter from squeezing one message too
        many into Telegram's window."""
        self.released(chat_id)
        self.global_sent.append(now)
        if chat_id < 0:
            self.per_chat.setdefault(chat_id, deque()).append(now)
        elif self.limits.private_interval > 0:
            self.buckets[chat_id] = [self._tokens(chat_id, now) - 1.0, now]

    def released(self, chat_id: int) -> None:
        """A slot taken and not used (nothing to send after all): it no longer counts."""
        self.in_flight = max(0, self.in_flight - 1)
        left = self.in_flight_per_chat[chat_id] - 1
        if left > 0:
            self.in_flight_per_chat[chat_id] = left
        else:
            self.in_flight_per_chat.pop(chat_id, None)

    def _forget_idle(self, now: float) -> None:
        horizon = max(
            self.limits.group_window, self.limits.private_interval * self.limits.private_burst
        )
        for chat_id in [c for c, s in self.per_chat.items() if not s or now - s[-1] > horizon]:
            del self.per_chat[chat_id]
        full = float(self.limits.private_burst)
        for chat_id in [c for c in self.buckets if self._tokens(c, now) >= full]:
            del self.buckets[chat_id]

    def paused_chats(self, now: float) -> set[int]:
        """Chats Telegram asked us to leave alone for now (forgetting pauses that are over)."""
        for chat_id in [c for c, until in self.blocked_until.items() if until <= now]:
            del self.blocked_until[chat_id]
        return set(self.blocked_until)

    def throttled(self, chat_id: int, seconds: float, now: float) -> bool:
        """Record a 429; True when it looks global (several chats got one just now)."""
        recent = self.recent_429
        recent.append((chat_id, now))
        while recent and now - recent[0][1] >= GLOBAL_429_SPAN:
            recent.popleft()
        is_global = len({chat for chat, _ in recent}) >= GLOBAL_429_CHATS
        if is_global:
            self.global_blocked_until = max(self.global_blocked_until, now + seconds)
        else:
            self.blocked_until[chat_id] = max(self.blocked_until.get(chat_id, 0.0), now + seconds)
        return is_global


class Outcome(Enum):
    DONE = "done"
    # The row went back to the table to be tried later; its chat's later rows go with it.
    LATER = "later"


def has_start_links(markup: Markup | None) -> bool:
    return isinstance(markup, InlineKeyboardMarkup) and any(
        (button.url or "").startswith(START_LINK_URL)
        for row in markup.inline_keyboard
        for button in row
    )


def with_start_links(markup: Markup | None, username: str) -> Markup | None:
    """The buttons' `start-link:<parameter>` urls as the bot's own t.me links."""
    if not isinstance(markup, InlineKeyboardMarkup):
        return markup

    def written(button: InlineKeyboardButton) -> InlineKeyboardButton:
        url = button.url or ""
        if not url.startswith(START_LINK_URL):
            return button
        parameter = url.removeprefix(START_LINK_URL)
        return button.model_copy(update={"url": f"https://t.me/{username}?start={parameter}"})

    return InlineKeyboardMarkup(
        inline_keyboard=[[written(b) for b in row] for row in markup.inline_keyboard]
    )


@dataclass
class Request:
    method: str  # "send" or "edit"
    chat_id: int
    topic_id: int | None
    message_id: int | None
    text: str | None  # None: an edit of the buttons only
    markup: Markup | None
    reply_to: int | None = None
    entities: list[MessageEntity] | None = None
    # method "documents": files built by a renderer (`bot.documents`), sent as one album.
    documents: list[Document] | None = None
    # The text is the bot's link opening it with `/start <start_link>` (see `_call`).
    start_link: str | None = None
    # method "location": (latitude, longitude) of a pin (`bot.services.outbox.enqueue_location`).
    location: tuple[float, float] | None = None


@dataclass
class Finished:
    """The outcome of one send, waiting for the group commit."""

    rows: list[OutboxMessage]
    status: str
    message_id: int | None
    error: str | None
    request: Request | None


class OutboxSender:
    """Claims due outbox rows and delivers them; any number of processes may run one."""

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        i18n: I18n,
        owner: str,
        wakeup: asyncio.Event | None = None,
        *,
        replies: Replies | None = None,
        limits: Limits | None = None,
        claim_seconds: float = CLAIM_SECONDS,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.reads = reader(sessions)
        # Recording a send is short and holds up the chat's next message: it goes first.
        self.records = short_writes(sessions)
        self.i18n = i18n
        self.owner = owner
        self.replies = replies or Replies()
        if wakeup is not None:
            self.replies.wakeup = wakeup
        self.wakeup = self.replies.wakeup
        self.limits = limits or Limits()
        self.pace = Pace(self.limits)
        self.claim_seconds = claim_seconds
        self.queues: dict[int, deque[OutboxMessage]] = {}
        self.workers: dict[int, asyncio.Task[None]] = {}
        self.held: set[int] = set()
        # A send made room that the last claim round lacked: worth another round at once.
        self.progress = asyncio.Event()
        # The last claim round left due rows in the table for want of room (`MAX_HELD`, a full
        # chat queue); only then does a finished send call for a round before the timer.
        self.left_behind = False
        self.stopping = False
        self.stop_deadline = 0.0
        self.finished = 0
        self.stats: Counter[str] = Counter()
        self.outcomes: deque[tuple[Finished, asyncio.Future[None]]] = deque()
        self.committer: asyncio.Task[None] | None = None
        self.turns: deque[tuple[int, asyncio.Future[float | None]]] = deque()
        self.granter: asyncio.Task[None] | None = None
        self.releases: set[asyncio.Task[None]] = set()
        load_cards()
        load_keyboards()
        load_documents()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, then finish what is in flight (see `STOP_GRACE`)."""
        self.stopping = False
        self.replies.listener = self._answers_now
        try:
            await self.recover()
        except Exception:
            log.exception("taking back the rows of a stopped process failed")
        heartbeat_at = time.monotonic() + self.claim_seconds / 3
        lease_at = 0.0
        leased = False
        claim_at = 0.0
        while not stop.is_set():
            # A claim round when rows were queued, a send made room, or it is time anyway (rows
            # of other processes); not for a step's answers alone, handed over already claimed.
            due = self.wakeup.is_set() or self.progress.is_set() or time.monotonic() >= claim_at
            self.wakeup.clear()
            self.progress.clear()
            self.replies.arrived.clear()
            claimed = 0
            try:
                # Normally taken already, as the step committed (`_answers_now`).
                claimed = self._answers_now()
                if time.monotonic() >= lease_at:
                    lease_at = time.monotonic() + self.claim_seconds / 3
                    leased = await self._take_lease()
                if leased and due:
                    if len(self.held) < MAX_HELD // 2:
                        claim_at = time.monotonic() + CLAIM_EVERY_S
                        claimed = await self.claim_round()
                        if claimed:
                            # More may be due: the next round comes at once.
                            claim_at = 0.0
                    else:
                        self.left_behind = True
                if time.monotonic() >= heartbeat_at:
                    heartbeat_at = time.monotonic() + self.claim_seconds / 3
                    await self._heartbeat()
            except Exception:
                log.exception("outbox round failed")
            if (claimed or self.replies.ready) and len(self.held) < MAX_HELD // 2:
                continue
            await _first_of(
                self.wakeup, self.replies.arrived, self.progress, stop, seconds=CLAIM_EVERY_S
            )
        self.replies.listener = None
        await self.wind_down(STOP_GRACE)
        if leased:
            with contextlib.suppress(Exception):
                await self._end_lease()

    async def _take_lease(self) -> bool:
        """One sending process at a time, so several processes together keep to ~30/s.

        The lease (a `SweepRun` row) runs out `claim_seconds` after its last renewal, or at once
        when its holder is a dead process on this host; then another process takes over.
        """
        from bot.inbox import owner_gone

        now = utcnow()
        async with transaction(self.sessions) as session:
            await insert_ignore(
                session,
                SweepRun.__table__,  # type: ignore[arg-type]
                [{"name": SENDER_LEASE}],
                key=["name"],
            )
            holder = await session.scalar(
                select(SweepRun.lease_owner).where(SweepRun.name == SENDER_LEASE)
            )
            free = or_(
                SweepRun.lease_until.is_(None),
                SweepRun.lease_until < now,
                SweepRun.lease_owner == self.owner,
            )
            if holder is not None and owner_gone(holder, self.owner):
                free = or_(free, SweepRun.lease_owner == holder)
            taken = await session.execute(
                update(SweepRun)
                .where(SweepRun.name == SENDER_LEASE, free)
                .values(
                    lease_owner=self.owner,
                    lease_until=now + timedelta(seconds=self.claim_seconds),
                )
                .returning(SweepRun.name)
                .execution_options(synchronize_session=False)
            )
            return taken.scalar_one_or_none() is not None

    async def _end_lease(self) -> None:
        async with transaction(self.sessions) as session:
            await session.execute(
                update(SweepRun)
                .where(SweepRun.name == SENDER_LEASE, SweepRun.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def run_once(self) -> int:
        """Deliver everything due now and wait for it; returns how many rows were finished."""
        before = self.finished
        while await self.claim_round():
            await self._drain_workers()
        await self._drain_workers()
        return self.finished - before

    async def wind_down(self, grace: float) -> None:
        """Stop claiming; let sends in flight finish and hand back what has not started."""
        self.stopping = True
        self.stop_deadline = time.monotonic() + grace
        await self._drain_workers(within=grace + REQUEST_TIMEOUT)
        if self.granter is not None and not self.granter.done():
            self.granter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.granter
        if self.held:
            await self._release_ids(list(self.held), delay=0.0)
            self.held.clear()

    async def _drain_workers(self, within: float | None = None) -> None:
        deadline = None if within is None else time.monotonic() + within
        while self.workers:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                tasks = list(self.workers.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return
            await asyncio.wait(set(self.workers.values()), timeout=left)

    # -- claiming ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """Take back rows a dead process on this host was sending, not waiting out its claim."""
        from bot.inbox import owner_gone

        async with transaction(self.sessions) as session:
            owners = list(
                await session.scalars(
                    select(OutboxMessage.claimed_by)
                    .where(
                        OutboxMessage.status == "sending", OutboxMessage.claimed_by.is_not(None)
                    )
                    .distinct()
                )
            )
            gone = [o for o in owners if o is not None and owner_gone(o, self.owner)]
            if gone:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.status == "sending", OutboxMessage.claimed_by.in_(gone))
                    .values(status="pending", claimed_by=None, claimed_until=None)
                )
                log.warning("took back outbox rows of a stopped process", extra={"owners": gone})

    def _answers_now(self) -> int:
        """Put the answers of steps that just committed into their chats' queues, at once and
        not at this loop's next round (which may be waiting for the database meanwhile).

        Answers to people who are waiting go first, whichever process holds the lease: this
        process's handlers committed them claimed for it. Returns how many were taken."""
        if self.stopping:
            return 0
        urgent = self.replies.take()
        if not urgent:
            return 0
        late = self.replies.overtaking(urgent)
        if late:
            # Their chat's older rows went back to the table after the step's order check:
            # these follow them from the table, in order (until then they stay claimed by
            # this process, so nobody sends them ahead).
            release = asyncio.create_task(self._release_ids([r.id for r in late], delay=0.0))
            self.releases.add(release)
            release.add_done_callback(self._released)
            urgent = [r for r in urgent if r not in late]
        return self.accept(urgent)

    def _released(self, task: asyncio.Task[None]) -> None:
        self.releases.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # They stay claimed by this process until the claim runs out, then go in order.
            log.error("sending back answers that came too late failed", exc_info=task.exception())

    def accept(self, rows: list[OutboxMessage]) -> int:
        """Take rows this process's steps committed already claimed: no transaction needed."""
        if self.stopping:
            # Their claim runs out, or the next start takes them back (`recover`).
            return 0
        self._hold(rows)
        return len(rows)

    async def claim_round(self) -> int:
        """Claim due rows that can go soon, keeping each chat's order; returns how many."""
        room = MAX_HELD - len(self.held)
        if room <= 0 or self.stopping:
            self.left_behind = room <= 0
            return 0
        now = utcnow()
        mono = time.monotonic()
        full = {c for c, q in self.queues.items() if len(q) >= PER_CHAT_QUEUE}
        # Rows of full chats may be waiting: a send from one of them calls for the next round.
        self.left_behind = bool(full)
        full |= self.pace.paused_chats(mono)
        if self.pace.global_blocked_until > mono:
            return 0
        claimable = or_(
            OutboxMessage.status == "pending",
            and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now),
        )
        async with transaction(self.sessions) as session:
            query = (
                select(OutboxMessage.id, OutboxMessage.chat_id)
                .where(claimable, OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)
                .limit(SCAN)
            )
            if full:
                query = query.where(OutboxMessage.chat_id.not_in(full))
            candidates = [
                (int(i), int(c))
                for i, c in (await session.execute(query)).all()
                if i not in self.held
            ]
            if not candidates:
                return 0
            blockers = await self._blockers(session, {c for _, c in candidates}, now)
            chosen: list[int] = []
            per_chat: Counter[int] = Counter()
            stopped: set[int] = set()
            for row_id, chat_id in candidates:
                if chat_id in stopped:
                    continue
                queued = len(self.queues.get(chat_id, ())) + per_chat[chat_id]
                if row_id > blockers.get(chat_id, row_id) or queued >= PER_CHAT_QUEUE:
                    self.left_behind = self.left_behind or queued >= PER_CHAT_QUEUE
                    stopped.add(chat_id)
                    continue
                chosen.append(row_id)
                per_chat[chat_id] += 1
                if len(chosen) >= room:
                    self.left_behind = True
                    break
            if not chosen:
                return 0
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(chosen), claimable)
                .values(
                    status="sending",
                    claimed_by=self.owner,
                    claimed_until=now + timedelta(seconds=self.claim_seconds),
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            mine = set(result.scalars())
            if not mine:
                return 0
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.id.in_(mine))
                    .order_by(OutboxMessage.id)
                )
            )
        self._hold(rows)
        return len(rows)

    def _hold(self, rows: list[OutboxMessage]) -> None:
        for row in rows:
            self.held.add(row.id)
            queue = self.queues.setdefault(row.chat_id, deque())
            queue.append(row)
            if len(queue) > 1 and queue[-2].id > row.id:
                # A step's answer claimed before older rows of its chat: keep the chat's order.
                ordered = sorted(queue, key=lambda r: r.id)
                queue.clear()
                queue.extend(ordered)
            if row.chat_id not in self.workers:
                self.workers[row.chat_id] = asyncio.create_task(self._chat_worker(row.chat_id))

    async def _blockers(
        self, session: AsyncSession, chats: Iterable[int], now: Any
    ) -> dict[int, int]:
        """Per chat, the first row that is not due yet or is held by another process: later
        rows of that chat wait for it, so a chat's messages never overtake each other."""
        result = await session.execute(
            select(OutboxMessage.chat_id, func.min(OutboxMessage.id))
            .where(
                OutboxMessage.chat_id.in_(list(chats)),
                or_(
                    and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at > now),
                    and_(
                        OutboxMessage.status == "sending",
                        OutboxMessage.claimed_until >= now,
                        or_(
                            OutboxMessage.claimed_by.is_(None),
                            OutboxMessage.claimed_by != self.owner,
                        ),
                    ),
                ),
            )
            .group_by(OutboxMessage.chat_id)
        )
        return {int(chat): int(first) for chat, first in result.all()}

    async def _heartbeat(self) -> None:
        """Extend the claims of rows still waiting in memory."""
        if not self.held:
            return
        until = utcnow() + timedelta(seconds=self.claim_seconds)
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(list(self.held)),
                    OutboxMessage.claimed_by == self.owner,
                    OutboxMessage.status == "sending",
                )
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )

    # -- one chat ---------------------------------------------------------------------------

    async def _chat_worker(self, chat_id: int) -> None:
        queue = self.queues[chat_id]
        try:
            while queue:
                started = await self._turn(chat_id)
                if started is None:
                    wait = 0.0 if self.stopping else self.pace.chat_wait(chat_id, time.monotonic())
                    await self._hand_back(queue, delay=wait)
                    break
                row = queue.popleft()
                merged = [r for r in queue if row.merge_key and r.merge_key == row.merge_key]
                for other in merged:
                    queue.remove(other)
                try:
                    outcome, delay = await self._deliver(row, merged, started)
                except Exception:
                    log.exception("outbox row failed", extra={"outbox_id": row.id})
                    delay = 2.0**row.attempts
                    with contextlib.suppress(Exception):
                        delay = await self._retry(row, "internal error", count=True)
                    outcome = Outcome.LATER
                self._forget([row, *merged])
                if outcome is Outcome.LATER:
                    # The row is back in the table (committed): answers checked before that
                    # must not overtake it.
                    self.replies.handed_back(chat_id)
                    await self._hand_back(queue, delay=delay)
                    break
        except Exception:
            # The database failed us: let the claims run out, and the rows are sent later.
            log.exception("outbox chat worker failed")
            self._forget(list(queue))
            queue.clear()
        finally:
            # Rows left here only when the worker was cancelled: they stay in `held`, and
            # `wind_down` hands them back.
            self.workers.pop(chat_id, None)
            self.queues.pop(chat_id, None)

    async def _turn(self, chat_id: int) -> float | None:
        """Wait until this chat may send; returns when its slot began, or None to hand back.

        The chat's own limits are waited out here; the overall ~30/s is granted in the order
        chats asked for it (`_grant_turns`), so a group card waiting for a free second is not
        overtaken again and again by private messages that happen to wake first.
        """
        while True:
            now = time.monotonic()
            if self.pace.wait_time(chat_id, now) <= 0 and not self.turns:
                self.pace.record(chat_id, now)
                return now
            wait = self.pace.chat_wait(chat_id, now)
            late = self.stopping and (wait > 1.0 or now > self.stop_deadline)
            if wait > RELEASE_AFTER or late:
                return None
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            turn: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
            self.turns.append((chat_id, turn))
            if self.granter is None or self.granter.done():
                self.granter = asyncio.create_task(self._grant_turns())
            return await turn

    async def _grant_turns(self) -> None:
        """Hand out the overall slots first come, first served."""
        while self.turns:
            now = time.monotonic()
            wait = self.pace.global_wait(now)
            if wait > 0:
                if self.stopping and (wait > 1.0 or now > self.stop_deadline):
                    while self.turns:
                        _, turn = self.turns.popleft()
                        if not turn.done():
                            turn.set_result(None)
                    return
                await asyncio.sleep(min(wait, 1.0))
                continue
            chat_id, turn = self.turns.popleft()
            if turn.done():
                continue
            self.pace.record(chat_id, now)
            turn.set_result(now)

    def _forget(self, rows: Iterable[OutboxMessage]) -> None:
        for row in rows:
            self.held.discard(row.id)
        if self.left_behind and len(self.held) < MAX_HELD // 2:
            self.progress.set()

    async def _hand_back(self, queue: deque[OutboxMessage], delay: float) -> None:
        """Return the chat's waiting rows to the table; rows claimed meanwhile go back too."""
        while queue:
            rows = list(queue)
            queue.clear()
            try:
                await self._release_ids([r.id for r in rows], delay=delay)
            finally:
                self._forget(rows)
                for chat_id in {r.chat_id for r in rows}:
                    self.replies.handed_back(chat_id)

    async def _release_ids(self, ids: list[int], delay: float) -> None:
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == self.owner)
                .values(
                    status="pending",
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                )
                .execution_options(synchronize_session=False)
            )

    # -- one row ----------------------------------------------------------------------------

    async def _deliver(
        self, row: OutboxMessage, merged: list[OutboxMessage], started: float
    ) -> tuple[Outcome, float]:
        """Send one row (and the card refreshes merged into it); say whether the chat goes on."""
        try:
            async with self.reads() as session:
                request = await self._build(session, row)
        except BaseException:
            self.pace.released(row.chat_id)
            raise
        if request is None or isinstance(request, str):
            self.pace.released(row.chat_id)
        if request is None:
            await self._finish([row, *merged], status="sent", error="nothing to send")
            return Outcome.DONE, 0.0
        if isinstance(request, str):
            await self._finish([row, *merged], status="dead", error=request)
            return Outcome.DONE, 0.0
        self.stats["calls"] += 1
        try:
            try:
                message_id = await self._call(request)
            finally:
                self.pace.completed(row.chat_id, started, time.monotonic())
        except TelegramRetryAfter as exc:
            self.stats["429"] += 1
            is_global = self.pace.throttled(row.chat_id, exc.retry_after, time.monotonic())
            log.warning(
                "telegram asked to slow down",
                extra={"retry_after": exc.retry_after, "global": is_global},
            )
            await self._retry(row, "429", delay=exc.retry_after, count=False, merged=merged)
            return Outcome.LATER, float(exc.retry_after)
        except TelegramMigrateToChat as exc:
            await self._migrate(row.chat_id, exc.migrate_to_chat_id)
            await self._retry(row, "group migrated", delay=0.0, count=False, merged=merged)
            return Outcome.LATER, 0.0
        except TelegramForbiddenError as exc:
            await self._forbidden(row, merged, exc.message)
            return Outcome.DONE, 0.0
        except TelegramUnauthorizedError:
            log.error("the bot token was rejected; sending paused")
            self.pace.global_blocked_until = time.monotonic() + 60.0
            await self._retry(row, "401", delay=60.0, count=False, merged=merged)
            return Outcome.LATER, 60.0
        except TelegramBadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                self.stats["not_modified"] += 1
                await self._finish([row, *merged], status="sent", error="not modified")
            elif "message to edit not found" in text and row.kind in CARD_RENDERERS:
                await self._repost_card(row, merged)
                return Outcome.LATER, 0.0
            elif row.kind == EDIT and any(why in text for why in GONE):
                # The person deleted the message, or it is too old to change: nothing to do.
                self.stats["gone"] += 1
                await self._finish([row, *merged], status="sent", error=text[:300])
            else:
                log.warning(
                    "outbox message rejected: %s", exc.message[:120], extra={"outbox_id": row.id}
                )
                await self._finish([row, *merged], status="dead", error=exc.message[:300])
            return Outcome.DONE, 0.0
        except TelegramEntityTooLarge as exc:
            await self._finish([row, *merged], status="dead", error=exc.message[:300])
            return Outcome.DONE, 0.0
        except (TelegramServerError, TelegramNetworkError, ClientDecodeError, OSError) as exc:
            # The request may not have reached Telegram, or Telegram failed on its side.
            self.stats["5xx" if isinstance(exc, TelegramServerError) else "network"] += 1
            name = type(exc).__name__
            return Outcome.LATER, await self._retry(row, name, count=True, merged=merged)
        except TelegramAPIError as exc:
            log.warning("outbox message rejected: %s", exc.message[:120])
            await self._finish([row, *merged], status="dead", error=exc.message[:300])
            return Outcome.DONE, 0.0
        self.stats["sent"] += 1
        await self._finish([row, *merged], status="sent", message_id=message_id, request=request)
        return Outcome.DONE, 0.0

    async def _build(self, session: AsyncSession, row: OutboxMessage) -> Request | str | None:
        """The call to make, None when there is nothing to send, or why it can't be sent."""
        if row.kind in CARD_RENDERERS:
            view = await CARD_RENDERERS[row.kind].render(
                session, int(row.payload["subject_id"]), self.i18n
            )
            if view is None:
                return None
            return Request(
                method="edit" if view.message_id else "send",
                chat_id=view.chat_id,
                topic_id=view.topic_id,
                message_id=view.message_id,
                text=view.text,
                markup=view.markup,
            )
        payload = row.payload
        if row.kind == DOCUMENT:
            return await self._documents(session, row)
        if row.kind == LOCATION:
            return await self._location(session, row)
        if "markup" in payload or "start_link" in payload or row.kind == EDIT:
            # Written by a step (`bot.context.Outbox`): the text is already in the person's
            # language and the buttons are stored as they are.
            return Request(
                method="edit" if row.kind == EDIT else "send",
                chat_id=row.chat_id,
                topic_id=row.topic_id,
                message_id=payload.get("message_id"),
                text=payload.get("text"),
                markup=load_markup(payload.get("markup")),
                reply_to=payload.get("reply_to"),
                start_link=payload.get("start_link"),
            )
        lang = payload.get("lang") or self.i18n.default_language
        if row.account_id is not None:
            account = await session.get(Account, row.account_id)
            if account is None:
                return None
            if account.unreachable_since is not None:
                return "unreachable: the person blocked the bot"
            lang = account.language or lang
        t = self.i18n.translator(lang)
        if "msgid" in payload:
            params = shown_params(t, payload.get("params", {}))
            msgid = str(payload["msgid"])
            text = t(msgid, **params)
        else:
            text = str(payload["text"])
        entities = None
        if payload.get("mentions"):
            text, entities = with_mentions(text, payload["mentions"])
        markup: OutboxMarkup | None = None
        if payload.get("keyboard"):
            markup = OUTBOX_KEYBOARDS[payload["keyboard"]](t, payload.get("keyboard_args", {}))
        reply_to = payload.get("reply_to")
        if row.kind == "reply" and row.ride_id is not None:
            ride = await session.get(Ride, row.ride_id)
            if ride is not None and ride.card_chat_id == row.chat_id:
                reply_to = ride.card_message_id or None
        return Request(
            method="send",
            chat_id=row.chat_id,
            topic_id=row.topic_id,
            message_id=None,
            text=text,
            markup=markup,
            reply_to=reply_to,
            entities=entities,
        )

    async def _location(self, session: AsyncSession, row: OutboxMessage) -> Request:
        """A pin, replying to the ride's card when the card is in that chat."""
        reply_to = None
        if row.ride_id is not None:
            ride = await session.get(Ride, row.ride_id)
            if ride is not None and ride.card_chat_id == row.chat_id:
                reply_to = ride.card_message_id or None
        return Request(
            method="location",
            chat_id=row.chat_id,
            topic_id=row.topic_id,
            message_id=None,
            text=None,
            markup=None,
            reply_to=reply_to,
            location=(float(row.payload["latitude"]), float(row.payload["longitude"])),
        )

    async def _documents(self, session: AsyncSession, row: OutboxMessage) -> Request | str | None:
        """Build the files now, in the recipient's language (a report is current when sent)."""
        payload = row.payload
        renderer = DOCUMENT_RENDERERS.get(str(payload.get("renderer")))
        if renderer is None:
            return f"no document renderer {payload.get('renderer')!r}"
        lang = payload.get("lang") or self.i18n.default_language
        if row.account_id is not None:
            account = await session.get(Account, row.account_id)
            if account is None:
                return None
            lang = account.language or lang
        documents = await renderer(session, dict(payload.get("args") or {}), lang)
        if not documents:
            return None
        return Request(
            method="documents",
            chat_id=row.chat_id,
            topic_id=row.topic_id,
            message_id=None,
            text=None,
            markup=None,
            documents=documents,
        )

    async def _send_documents(self, request: Request) -> int:
        """One file as a document; several as one album, so a retry never sends half of them."""
        documents = request.documents or []
        if len(documents) == 1:
            (only,) = documents
            message = await self.bot.send_document(
                chat_id=request.chat_id,
                message_thread_id=request.topic_id,
                document=BufferedInputFile(only.content, only.filename),
                caption=only.caption,
                request_timeout=DOCUMENT_TIMEOUT,
            )
            return message.message_id
        album = [
            InputMediaDocument(
                media=BufferedInputFile(document.content, document.filename),
                caption=document.caption,
            )
            for document in documents[:10]
        ]
        sent = await self.bot.send_media_group(
            chat_id=request.chat_id,
            message_thread_id=request.topic_id,
            media=list(album),
            request_timeout=DOCUMENT_TIMEOUT,
        )
        return sent[0].message_id

    async def _call(self, request: Request) -> int | None:
        if request.method == "documents":
            return await self._send_documents(request)
        if has_start_links(request.markup):
            # A card's button that opens the bot's private chat: only the sender knows the
            # bot's name (aiogram keeps getMe's answer: asked once per process).
            me = await self.bot.me()
            request = replace(request, markup=with_start_links(request.markup, me.username or ""))
        if request.method == "edit":
            assert request.message_id is not None
            markup = request.markup
            assert markup is None or isinstance(markup, InlineKeyboardMarkup), "inline only"
            if request.text is None:
                await self.bot.edit_message_reply_markup(
                    chat_id=request.chat_id,
                    message_id=request.message_id,
                    reply_markup=markup,
                    request_timeout=REQUEST_TIMEOUT,
                )
                return request.message_id
            await self.bot.edit_message_text(
                chat_id=request.chat_id,
                message_id=request.message_id,
                text=request.text,
                reply_markup=markup,
                request_timeout=REQUEST_TIMEOUT,
            )
            return request.message_id
        reply = (
            ReplyParameters(message_id=request.reply_to, allow_sending_without_reply=True)
            if request.reply_to
            else None
        )
        if request.method == "location":
            assert request.location is not None
            latitude, longitude = request.location
            pin = await self.bot.send_location(
                chat_id=request.chat_id,
                message_thread_id=request.topic_id,
                latitude=latitude,
                longitude=longitude,
                reply_parameters=reply,
                request_timeout=REQUEST_TIMEOUT,
            )
            return pin.message_id
        text = request.text
        if request.start_link is not None:
            # aiogram keeps the answer of getMe: Telegram is asked once per process.
            me = await self.bot.me()
            text = f"https://t.me/{me.username}?start={request.start_link}"
        assert text is not None
        message = await self.bot.send_message(
            chat_id=request.chat_id,
            message_thread_id=request.topic_id,
            text=text,
            entities=request.entities,
            reply_markup=request.markup,
            reply_parameters=reply,
            request_timeout=REQUEST_TIMEOUT,
        )
        return message.message_id

    async def _finish(
        self,
        rows: list[OutboxMessage],
        *,
        status: str,
        message_id: int | None = None,
        error: str | None = None,
        request: Request | None = None,
    ) -> None:
        """Record the outcome at once and wait until it is committed.

        Outcomes of sends finishing at the same moment are committed together (a group commit):
        on SQLite one write lock for many sends instead of one each, which keeps the window
        between Telegram's answer and the commit short under load."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.outcomes.append((Finished(rows, status, message_id, error, request), done))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.create_task(self._commit_outcomes())
        await done
        self.finished += len(rows)

    async def _commit_outcomes(self) -> None:
        """Write queued outcomes, all that are waiting in one transaction, until none is left."""
        while self.outcomes:
            batch = list(self.outcomes)
            self.outcomes.clear()
            error: BaseException | None = None
            for attempt in range(5):
                try:
                    async with transaction(self.records) as session:
                        await self._write_finish(session, [finished for finished, _ in batch])
                    error = None
                    break
                except OperationalError as exc:
                    # A transient database error is retried: a row left ``sending`` after a
                    # successful send would be sent again.
                    error = exc
                    await asyncio.sleep(0.2 * (attempt + 1))
                except Exception as exc:
                    error = exc
                    break
            for _, done in batch:
                if done.done():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def _write_finish(self, session: AsyncSession, batch: list[Finished]) -> None:
        """Every outcome of the batch in one statement (one row of parameters per message)."""
        table = OutboxMessage.__table__
        now = utcnow()
        await session.execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=bindparam("new_status"),
                sent_at=now,
                sent_message_id=bindparam("new_message_id"),
                last_error=bindparam("new_error"),
                claimed_by=None,
                claimed_until=None,
                attempts=table.c.attempts + 1,
            ),
            [
                {
                    "row_id": r.id,
                    "new_status": finished.status,
                    "new_message_id": finished.message_id,
                    "new_error": finished.error,
                }
                for finished in batch
                for r in finished.rows
            ],
        )
        for finished in batch:
            row, request = finished.rows[0], finished.request
            if (
                request is not None
                and request.method == "send"
                and row.kind in CARD_RENDERERS
                and finished.message_id is not None
            ):
                await CARD_RENDERERS[row.kind].posted(
                    session, int(row.payload["subject_id"]), request.chat_id, finished.message_id
                )

    async def _retry(
        self,
        row: OutboxMessage,
        error: str,
        *,
        delay: float | None = None,
        count: bool = True,
        merged: list[OutboxMessage] | None = None,
    ) -> float:
        """Put the row back to be tried after `delay` (default: a growing backoff); returns it.

        Only failures that say something about the message count as attempts; a 429 or a
        migration does not."""
        if delay is None:
            delay = min(2.0**row.attempts, MAX_BACKOFF)
        give_up = count and row.attempts + 1 >= MAX_ATTEMPTS
        if give_up:
            log.error("outbox message given up after %d attempts", row.attempts + 1)
        ids = [row.id, *(r.id for r in merged or ())]
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    status="dead" if give_up else "pending",
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:300],
                    attempts=OutboxMessage.attempts + (1 if count else 0),
                )
                .execution_options(synchronize_session=False)
            )
        return delay

    async def _repost_card(self, row: OutboxMessage, merged: list[OutboxMessage]) -> None:
        """The card was deleted in the chat: forget its id so the next round posts it again."""
        async with transaction(self.sessions) as session:
            await CARD_RENDERERS[row.kind].posted(
                session, int(row.payload["subject_id"]), row.chat_id, 0
            )
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id, *(r.id for r in merged)]))
                .values(status="pending", claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )

    async def _migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: follow it everywhere its old id is kept."""
        async with transaction(self.sessions) as session:
            await session.execute(
                update(District).where(District.chat_id == old_chat_id).values(chat_id=new_chat_id)
            )
            forget_districts(session)
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.chat_id == old_chat_id,
                    OutboxMessage.status.in_(("pending", "sending")),
                )
                .values(chat_id=new_chat_id)
                .execution_options(synchronize_session=False)
            )
            for model in (Ride, Verification):
                await session.execute(
                    update(model)
                    .where(model.card_chat_id == old_chat_id)
                    .values(card_chat_id=new_chat_id)
                    .execution_options(synchronize_session=False)
                )
        self.pace.per_chat.pop(old_chat_id, None)
        self.pace.buckets.pop(old_chat_id, None)
        log.warning(
            "dispatcher chat migrated to a supergroup",
            extra={"old": old_chat_id, "new": new_chat_id},
        )

    async def _forbidden(
        self, row: OutboxMessage, merged: list[OutboxMessage], description: str
    ) -> None:
        """The person blocked the bot: stop writing to them and ask dispatchers to phone them.

        In a group it means the bot was removed from a dispatcher chat: loud in the log and in
        the operator's view (dead messages), nothing anyone in the group could read."""
        from bot.services.reachability import mark_unreachable

        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id, *(r.id for r in merged)]))
                .values(
                    status="dead",
                    claimed_by=None,
                    claimed_until=None,
                    last_error=description[:300],
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if row.chat_id < 0:
                log.error("the bot can't write to a dispatcher chat", extra={"chat": row.chat_id})
                return
            account_id = row.account_id
            if account_id is None:
                account_id = await session.scalar(
                    select(Account.id).where(Account.telegram_id == row.chat_id)
                )
            if account_id is not None:
                await mark_unreachable(session, account_id, row.ride_id)
        self.finished += 1 + len(merged)
        self.wakeup.set()


def shown_params(t: Translator, params: dict[str, Any]) -> dict[str, Any]:
    """A queued message's params as its reader sees them: texts and times made local."""
    return {k: _param(t, v) for k, v in params.items()}


def _param(t: Translator, value: Any) -> Any:
    """A param given as {"msgid": ...} is itself a text, in the recipient's language; one given
    as {"at": iso, "show": "date" or "time"} is an instant shown in local time."""
    if isinstance(value, dict) and "msgid" in value:
        msgid = str(value["msgid"])
        return t(msgid)
    if isinstance(value, dict) and "at" in value:
        local = t.local(datetime.fromisoformat(str(value["at"])))
        return local.strftime("%H:%M") if value.get("show") == "time" else t.date(local)
    return value


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def with_mentions(text: str, mentions: list[dict[str, Any]]) -> tuple[str, list[MessageEntity]]:
    """Append the names of the people to alert, each a mention by Telegram id.

    A text_mention entity notifies the person without a username and without a parse mode, so
    names and addresses in the text never need escaping.
    """
    entities: list[MessageEntity] = []
    out = text + "\n"
    for index, person in enumerate(mentions):
        name = str(person.get("name") or person["telegram_id"])
        if index:
            out += ", "
        entities.append(
            MessageEntity(
                type="text_mention",
                offset=utf16_len(out),
                length=utf16_len(name),
                user=User(id=int(person["telegram_id"]), is_bot=False, first_name=name),
            )
        )
        out += name
    return out, entities


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
