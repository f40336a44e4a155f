"""Per-update plumbing: the person's turn, one database session, the person, and their language.

`DatabaseMiddleware` takes the place of aiogram's FSM middleware (the dispatcher is built with
`disable_fsm=True`): it takes the person's event-isolation lock, so two quick taps run one
after the other, then opens the update's session and reads the conversation state through it.
Everything an update reads and writes, its state included, is one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.methods import AnswerCallbackQuery, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, TelegramObject, Update, User
from aiogram.utils.callback_answer import CallbackAnswer
from sqlalchemy import Select, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from bot.clock import Clock
from bot.context import Context, Outbox, Replies, outbox_inserted
from bot.db import current_session
from bot.i18n import I18n
from bot.services.throttle import SLOW_DOWN, PersonThrottle, Verdict
from bot.storage.fsm import SqlStorage
from models import Account, InboundUpdate, OutboxMessage, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


# The statements every update runs, built once (building one costs more than running it).
# Conditional, and the only duplicate check: an update another process finished already (its
# claim had run out) or meanwhile is rolled back with all it did, so it is applied once. A
# handler only writes to its transaction, so running it for nothing in that rare race costs no
# more than a read of the status before every update would.
MARK_DONE = (
    update(InboundUpdate)
    .where(
        InboundUpdate.update_id == bindparam("b_update_id"),
        InboundUpdate.status.not_in(("done", "failed")),
    )
    .values(
        status="done",
        payload=None,
        # The order key holds the Telegram id; a done update needs none.
        order_key="",
        done_at=bindparam("b_done_at"),
        claimed_by=None,
        claimed_until=None,
    )
    .returning(InboundUpdate.update_id)
    .execution_options(synchronize_session=False)
)
# The same, and whether anything older than the step's answers waits for their chat (a retry,
# a row held by another or a dead process): see `DatabaseMiddleware._waiting`.
MARK_DONE_IN_ORDER = MARK_DONE.returning(
    exists().where(
        OutboxMessage.chat_id == bindparam("b_chat_id"),
        OutboxMessage.status.in_(("pending", "sending")),
        OutboxMessage.id.not_in(bindparam("b_mine", expanding=True)),
        or_(
            OutboxMessage.status == "pending",
            OutboxMessage.claimed_by.is_(None),
            OutboxMessage.claimed_by != bindparam("b_owner"),
        ),
    )
)
ACCOUNT_OF = select(Account).where(Account.telegram_id == bindparam("b_telegram_id"))


class DatabaseMiddleware(BaseMiddleware):
    """Take the person's turn, open one session per update, and commit once after the handler.

    The update's inbox row is marked done in the same transaction, so a crash before the commit
    leaves the update to be handled again, and a handled update is never applied twice.

    Nothing here or in a handler talks to Telegram while the transaction is open: the step's
    messages are outbox rows committed with it, handed to the sender right after the commit
    (`Replies`), and the pressed button's spinner is answered after the commit too. Updates
    wait for one of `turns` before they open a session, so a burst larger than the connection
    pool queues instead of failing.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fsm: FSMContextMiddleware,
        replies: Replies,
        turns: int = 8,
        owner: str | None = None,
    ):
        self.sessions = sessions
        self.fsm = fsm
        self.replies = replies
        self.owner = owner
        self.turns = asyncio.Semaphore(turns)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        context = self.fsm.resolve_event_context(data["bot"], data)
        data["fsm_storage"] = self.fsm.storage
        query = event.callback_query
        answer = data["callback_answer"] = CallbackAnswer(answered=False) if query else None
        if context is None:
            result = await self._in_turn(handler, event, data)
        else:
            async with self.fsm.events_isolation.lock(key=context.key):
                data["state"] = context
                result = await self._in_turn(handler, event, data)
        if query is not None and answer is not None and result is not UNHANDLED:
            await answer_press(data["bot"], query, answer)
        return result

    async def _in_turn(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        async with self.turns:
            return await self._in_session(handler, event, data)

    async def _in_session(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        receipt = data.get("inbox_receipt")
        # Taken before the transaction reads anything: rows that go back to the table later
        # may be missed by the order check, and then `Replies` holds the answers back.
        hand_backs_seen = self.replies.mark()
        async with self.sessions() as session:
            token = current_session.set(session)
            try:
                state = data.get("state")
                if state is not None:
                    # What aiogram's FSM middleware would have read, read in this transaction.
                    data["raw_state"] = await state.get_state()
                data["session"] = session
                outbox = data["outbox"] = Outbox(session, *_where(event), owner=self.owner)
                result = await handler(event, data)
                if isinstance(self.fsm.storage, SqlStorage):
                    await self.fsm.storage.flush()
                if data.get("from_inbox"):
                    # The step's rows get their ids first: the order check rides on the mark.
                    await session.flush()
                    older = self._one_chat(outbox)
                    # Applied once: see MARK_DONE.
                    params: dict[str, Any] = {
                        "b_update_id": event.update_id,
                        "b_done_at": utcnow(),
                    }
                    mark: Executable = MARK_DONE
                    if older:
                        mark = MARK_DONE_IN_ORDER
                        params |= {
                            "b_chat_id": outbox.urgent[0].chat_id,
                            "b_mine": [row.id for row in outbox.urgent],
                            "b_owner": self.owner or "",
                        }
                    marked = (await session.execute(mark, params)).one_or_none()
                    if marked is None:
                        log.info("update already handled", extra={"update_id": event.update_id})
                        await session.rollback()
                        _mark(receipt, "duplicate")
                        return UNHANDLED
                    if older:
                        waiting = {outbox.urgent[0].chat_id} if marked[1] else set()
                        urgent = _held_back(outbox, waiting)
                    else:
                        urgent = await self._in_order(session, outbox)
                else:
                    urgent = await self._in_order(session, outbox)
                await session.commit()
                _mark(receipt, "done")
                # A claim round only if the step left rows other than the ones handed over.
                self.replies.committed(
                    urgent, queued=outbox_inserted(session) > len(urgent), mark=hand_backs_seen
                )
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)

    def _waiting(self, outbox: Outbox) -> Select[int]:
        """Chats of the step's answers with something older still waiting elsewhere (a retry,
        a row held by another or a dead process)."""
        return select(OutboxMessage.chat_id).where(
            OutboxMessage.chat_id.in_({row.chat_id for row in outbox.urgent}),
            OutboxMessage.status.in_(("pending", "sending")),
            OutboxMessage.id.not_in([row.id for row in outbox.urgent]),
            or_(
                OutboxMessage.status == "pending",
                OutboxMessage.claimed_by.is_(None),
                OutboxMessage.claimed_by != (self.owner or ""),
            ),
        )

    @staticmethod
    def _one_chat(outbox: Outbox) -> bool:
        """Whether the order check can ride on the inbox mark: the answers go to one chat
        (nearly always: the one the update came from); else it needs a query of its own."""
        return bool(outbox.urgent) and len({row.chat_id for row in outbox.urgent}) == 1

    async def _in_order(self, session: AsyncSession, outbox: Outbox) -> list[OutboxMessage]:
        """The step's answers this process may send at once: those whose chat has nothing
        older still waiting elsewhere."""
        if not outbox.urgent:
            return []
        await session.flush()
        waiting = set(await session.scalars(self._waiting(outbox).distinct()))
        return _held_back(outbox, waiting)


def _held_back(outbox: Outbox, waiting: set[int]) -> list[OutboxMessage]:
    """The answers to chats with older messages waiting go back to the queue and follow those,
    so a chat's messages never overtake each other; the others are sent at once."""
    if not waiting:
        return outbox.urgent
    for row in outbox.urgent:
        if row.chat_id in waiting:
            row.status, row.claimed_by, row.claimed_until = "pending", None, None
    return [row for row in outbox.urgent if row.chat_id not in waiting]


def _where(event: Update) -> tuple[int | None, int | None]:
    """The chat (and forum topic) an update came from: where the step's replies go."""
    message = event.message or event.edited_message
    if message is None and event.callback_query is not None:
        pressed = event.callback_query.message
        if pressed is not None:
            topic = getattr(pressed, "message_thread_id", None)
            is_topic = getattr(pressed, "is_topic_message", None)
            return pressed.chat.id, topic if is_topic else None
    if message is not None:
        return message.chat.id, message.message_thread_id if message.is_topic_message else None
    return None, None


async def answer_press(bot: Bot, query: CallbackQuery, answer: CallbackAnswer) -> None:
    """Stop the pressed button's spinner, after the step committed; never fail the step for it.

    A press handled again after a restart is older than Telegram's window for answering it,
    and a network error here loses only the spinner: the step itself is already saved."""
    if answer.answered or answer.disabled:
        return
    answer.disable()
    try:
        await bot.answer_callback_query(
            callback_query_id=query.id,
            text=answer.text,
            show_alert=answer.show_alert,
            url=answer.url,
            cache_time=answer.cache_time,
        )
    except (TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter, TelegramServerError):
        log.info("a button press could not be answered")


def _mark(receipt: Any, state: str) -> None:
    """Tell the inbox worker (`bot.inbox.Receipt`) how the update ended."""
    if receipt is not None:
        receipt.state = state


ACTIVITY_TOUCH = timedelta(days=1)


class PersonMiddleware(BaseMiddleware):
    """Find the person's account, bind a translator to their language, and build the context.

    Private chats create the account on first contact; in groups a person has no account
    (dispatchers act there under their Telegram id) and texts use the default language.
    """

    def __init__(self, i18n: I18n, default_language: str, clock: Clock) -> None:
        self.i18n = i18n
        self.default_language = default_language
        self.clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        account: Account | None = None
        chat = data.get("event_chat")
        if user is not None and not user.is_bot:
            account = await session.scalar(ACCOUNT_OF, {"b_telegram_id": user.id})
            if account is None and chat is not None and chat.type == "private":
                account = Account(telegram_id=user.id, display_name=user.full_name[:128])
                session.add(account)
                await session.flush()
            elif account is not None:
                if account.unreachable_since is not None:
                    # They wrote to us, so the bot is no longer blocked.
                    account.unreachable_since = None
                if account.updated_at < self.clock.now() - ACTIVITY_TOUCH:
                    # Retention counts a person's activity from here: once a day is enough.
                    account.updated_at = self.clock.now()
        lang = account.language if account and account.language else None
        data["account"] = account
        data["lang"] = lang or self.default_language
        data["language_chosen"] = lang is not None
        t = data["t"] = self.i18n.translator(data["lang"])
        outbox: Outbox = data["outbox"]
        data["ctx"] = Context(
            session=session,
            account=account,
            lang=data["lang"],
            t=t,
            i18n=self.i18n,
            settings=data["settings"],
            clock=self.clock,
            now=self.clock.now(),
            outbox=outbox,
            data_key=data.get("data_key"),
            state=data.get("state"),
            chat_id=outbox.chat_id,
            topic_id=outbox.topic_id,
            user_id=user.id if user else None,
            answer=data.get("callback_answer"),
        )
        return await handler(event, data)


class ThrottleMiddleware(BaseMiddleware):
    """Message storms from one person: past the bucket they get one "slow down", then nothing.

    Private chats only (a dispatcher group is many people on one desk). Sits after
    `PersonMiddleware`, so a skipped update still commits: its inbox row is marked done and
    it is never handled later. One per process (`bot.services.throttle`).
    """

    def __init__(
        self, throttle: PersonThrottle, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.throttle = throttle
        self.monotonic = monotonic

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat = data.get("event_chat")
        if user is None or chat is None or chat.type != "private":
            return await handler(event, data)
        verdict = self.throttle.verdict(user.id, self.monotonic())
        if verdict is Verdict.HANDLE:
            return await handler(event, data)
        if verdict is Verdict.WARN:
            ctx: Context = data["ctx"]
            ctx.reply(ctx.t(SLOW_DOWN))
            log.info("a person was told to slow down")
        return None


class ForgiveStaleCallbackAnswers(BaseRequestMiddleware):
    """Answering a button press Telegram has already forgotten is not an error of the action.

    A press handled again after a restart (or after a retry) is older than Telegram's ~15 s
    window for answering it; the action itself must still be applied and committed, so the
    refused answer counts as given instead of failing the whole update.
    """

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if isinstance(method, AnswerCallbackQuery) and "query is too old" in exc.message:
                log.info("a button press was answered too late")
                # Sessions hand the result, not the Response, up the middleware chain.
                return cast("Response[TelegramType]", True)
            raise
