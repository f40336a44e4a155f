"""The outbox sender: delivers what transactions queued, at Telegram's pace, at least once.

A row is claimed with a conditional update (so two processes never send the same row), sent, and
marked sent with the message id Telegram returned. Card rows are rendered from the database at
send time, so several pending refreshes of one card cost one edit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cards.registry import CARD_RENDERERS, load_all as load_cards
from bot.db import transaction
from bot.i18n import I18n
from bot.keyboards.registry import OUTBOX_KEYBOARDS, load_all as load_keyboards
from models import Account, District, OutboxMessage, Ride, utcnow

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60
MAX_ATTEMPTS = 12
GLOBAL_PER_SECOND = 28
GROUP_PER_MINUTE = 19
PRIVATE_INTERVAL = 1.0


class Pace:
    """Telegram's limits: ~1 message/s per chat, 20/min per group, ~30/s overall."""

    def __init__(self) -> None:
        self.global_sent: deque[float] = deque()
        self.per_chat: dict[int, deque[float]] = {}
        self.blocked_until: dict[int, float] = {}
        self.global_blocked_until = 0.0

    def wait_time(self, chat_id: int, now: float) -> float:
        waits = [self.global_blocked_until - now, self.blocked_until.get(chat_id, 0.0) - now]
        while self.global_sent and now - self.global_sent[0] >= 1.0:
            self.global_sent.popleft()
        if len(self.global_sent) >= GLOBAL_PER_SECOND:
            waits.append(1.0 - (now - self.global_sent[0]))
        sent = self.per_chat.get(chat_id)
        if sent:
            if chat_id < 0:
                while sent and now - sent[0] >= 60.0:
                    sent.popleft()
                if len(sent) >= GROUP_PER_MINUTE:
                    waits.append(60.0 - (now - sent[0]))
                if sent:
                    waits.append(3.0 - (now - sent[-1]))
            else:
                waits.append(PRIVATE_INTERVAL - (now - sent[-1]))
        return max(0.0, *waits)

    def record(self, chat_id: int, now: float) -> None:
        self.global_sent.append(now)
        sent = self.per_chat.setdefault(chat_id, deque())
        sent.append(now)
        if chat_id > 0 and len(sent) > 4:
            sent.popleft()

    def block(self, chat_id: int | None, seconds: float, now: float) -> None:
        if chat_id is None:
            self.global_blocked_until = max(self.global_blocked_until, now + seconds)
        else:
            self.blocked_until[chat_id] = max(self.blocked_until.get(chat_id, 0.0), now + seconds)


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        i18n: I18n,
        owner: str,
        wakeup: asyncio.Event | None = None,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.i18n = i18n
        self.owner = owner
        self.wakeup = wakeup or asyncio.Event()
        self.pace = Pace()
        self.busy = False
        load_cards()
        load_keyboards()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("outbox round failed")
                sent = 0
            if sent:
                continue
            self.wakeup.clear()
            waiters = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def claim(self, limit: int = 50) -> list[OutboxMessage]:
        now = utcnow()
        async with transaction(self.sessions) as session:
            ids = list(
                await session.scalars(
                    select(OutboxMessage.id)
                    .where(
                        or_(
                            OutboxMessage.status == "pending",
                            (OutboxMessage.status == "sending")
                            & (OutboxMessage.claimed_until < now),
                        ),
                        OutboxMessage.next_attempt_at <= now,
                    )
                    .order_by(OutboxMessage.id)
                    .limit(limit)
                )
            )
            if not ids:
                return []
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    or_(
                        OutboxMessage.status == "pending",
                        (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now),
                    ),
                )
                .values(
                    status="sending",
                    claimed_by=self.owner,
                    claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                )
                .returning(OutboxMessage.id)
            )
            mine = set(result.scalars())
            rows = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_(mine)).order_by(OutboxMessage.id)
            )
            return list(rows)

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were finished."""
        rows = await self.claim()
        if not rows:
            return 0
        self.busy = True
        try:
            by_chat: dict[int, list[OutboxMessage]] = {}
            for row in rows:
                by_chat.setdefault(row.chat_id, []).append(row)
            results = await asyncio.gather(*(self._chat_queue(chat_rows) for chat_rows in by_chat.values()))
            return sum(results)
        finally:
            self.busy = False

    async def _chat_queue(self, rows: list[OutboxMessage]) -> int:
        done = 0
        for index, row in enumerate(rows):
            ok = await self._deliver(row)
            if ok is None:
                # The chat is paused (429): hand the rest back without counting an attempt.
                await self._release(rows[index:])
                break
            done += 1
        return done

    async def _release(self, rows: list[OutboxMessage]) -> None:
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.id for r in rows]), OutboxMessage.claimed_by == self.owner)
                .values(status="pending", claimed_by=None)
            )

    async def _wait_pace(self, chat_id: int) -> None:
        while True:
            delay = self.pace.wait_time(chat_id, time.monotonic())
            if delay <= 0:
                return
            await asyncio.sleep(min(delay, 5.0))

    async def _deliver(self, row: OutboxMessage) -> bool | None:
        """True when finished (sent or given up), None when paused by a 429."""
        try:
            async with self.sessions() as session:
                request = await self._build(session, row)
            if request is None:
                await self._finish(row, status="sent", error="nothing to send")
                return True
            await self._wait_pace(request["chat_id"])
            self.pace.record(request["chat_id"], time.monotonic())
            message_id = await self._call(request)
            await self._finish(row, status="sent", message_id=message_id, request=request)
            return True
        except TelegramRetryAfter as exc:
            now = time.monotonic()
            self.pace.block(row.chat_id, exc.retry_after, now)
            await self._retry(row, exc.retry_after, f"429 retry after {exc.retry_after}", count=False)
            return None
        except TelegramMigrateToChat as exc:
            await self._migrate(row.chat_id, exc.migrate_to_chat_id)
            await self._retry(row, 0, "group migrated", count=False)
            return True
        except TelegramForbiddenError:
            await self._unreachable(row)
            return True
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                await self._finish(row, status="sent", error="not modified")
            elif "message to edit not found" in exc.message and row.kind in CARD_RENDERERS:
                await self._repost_card(row)
            else:
                log.warning("outbox message rejected: %s", exc.message[:120], extra={"outbox_id": row.id})
                await self._finish(row, status="dead", error=exc.message[:300])
            return True
        except (TelegramServerError, TelegramNetworkError, asyncio.TimeoutError, OSError) as exc:
            backoff = min(2 ** (row.attempts + 1), 300)
            await self._retry(row, backoff, type(exc).__name__)
            return True

    async def _build(self, session: AsyncSession, row: OutboxMessage) -> dict[str, Any] | None:
        if row.kind in CARD_RENDERERS:
            view = await CARD_RENDERERS[row.kind].render(session, int(row.payload["subject_id"]), self.i18n)
            if view is None:
                return None
            return {
                "method": "edit" if view.message_id else "send",
                "chat_id": view.chat_id,
                "topic_id": view.topic_id,
                "message_id": view.message_id,
                "text": view.text,
                "markup": view.markup,
            }
        lang = row.payload.get("lang") or self.i18n.default_language
        if row.account_id is not None:
            account = await session.get(Account, row.account_id)
            if account is None:
                return None
            lang = account.language or lang
        t = self.i18n.translator(lang)
        payload = row.payload
        if "msgid" in payload:
            params = {
                k: t(v["msgid"]) if isinstance(v, dict) and "msgid" in v else v
                for k, v in payload.get("params", {}).items()
            }
            text = t(payload["msgid"], **params)
        else:
            text = payload["text"]
        markup: InlineKeyboardMarkup | None = None
        if payload.get("keyboard"):
            markup = OUTBOX_KEYBOARDS[payload["keyboard"]](t, payload.get("keyboard_args", {}))
        reply_to = None
        if row.kind == "reply" and row.ride_id is not None:
            ride = await session.get(Ride, row.ride_id)
            reply_to = ride.card_message_id if ride else None
        return {
            "method": "send",
            "chat_id": row.chat_id,
            "topic_id": row.topic_id,
            "message_id": None,
            "reply_to": reply_to,
            "text": text,
            "markup": markup,
        }

    async def _call(self, request: dict[str, Any]) -> int | None:
        if request["method"] == "edit":
            await self.bot.edit_message_text(
                chat_id=request["chat_id"],
                message_id=request["message_id"],
                text=request["text"],
                reply_markup=request["markup"],
            )
            return int(request["message_id"])
        reply = (
            ReplyParameters(message_id=request["reply_to"], allow_sending_without_reply=True)
            if request.get("reply_to")
            else None
        )
        message = await self.bot.send_message(
            chat_id=request["chat_id"],
            message_thread_id=request.get("topic_id"),
            text=request["text"],
            reply_markup=request["markup"],
            reply_parameters=reply,
        )
        return message.message_id

    async def _finish(
        self,
        row: OutboxMessage,
        *,
        status: str,
        message_id: int | None = None,
        error: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> None:
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    status=status,
                    sent_at=utcnow(),
                    sent_message_id=message_id,
                    last_error=error,
                    claimed_by=None,
                    attempts=OutboxMessage.attempts + 1,
                )
            )
            if (
                request is not None
                and request["method"] == "send"
                and row.kind in CARD_RENDERERS
                and message_id is not None
            ):
                await CARD_RENDERERS[row.kind].posted(
                    session, int(row.payload["subject_id"]), request["chat_id"], message_id
                )

    async def _retry(self, row: OutboxMessage, delay: float, error: str, *, count: bool = True) -> None:
        give_up = count and row.attempts + 1 >= MAX_ATTEMPTS
        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    status="dead" if give_up else "pending",
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    claimed_by=None,
                    last_error=error,
                    attempts=OutboxMessage.attempts + (1 if count else 0),
                )
            )

    async def _repost_card(self, row: OutboxMessage) -> None:
        """The card was deleted in the chat: forget its id so the next round posts it again."""
        async with transaction(self.sessions) as session:
            await CARD_RENDERERS[row.kind].posted(session, int(row.payload["subject_id"]), row.chat_id, 0)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status="pending", claimed_by=None)
            )

    async def _migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: follow it everywhere its old id is kept."""
        async with transaction(self.sessions) as session:
            await session.execute(update(District).where(District.chat_id == old_chat_id).values(chat_id=new_chat_id))
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.chat_id == old_chat_id, OutboxMessage.status.in_(("pending", "sending")))
                .values(chat_id=new_chat_id)
            )
            await session.execute(
                update(Ride).where(Ride.card_chat_id == old_chat_id).values(card_chat_id=new_chat_id)
            )
        log.warning("dispatcher chat migrated to a supergroup")

    async def _unreachable(self, row: OutboxMessage) -> None:
        """The person blocked the bot: stop writing to them and ask dispatchers to phone them."""
        from bot.services.reachability import mark_unreachable

        async with transaction(self.sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status="dead", claimed_by=None, last_error="blocked by the user")
            )
            if row.account_id is not None:
                await mark_unreachable(session, row.account_id, row.ride_id)
