"""Per-update plumbing: the person's turn, one database session, the person, and their language.

`DatabaseMiddleware` takes the place of aiogram's FSM middleware (the dispatcher is built with
`disable_fsm=True`): it takes the person's event-isolation lock, so two quick taps run one
after the other, then opens the update's session and reads the conversation state through it.
Everything an update reads and writes, its state included, is one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.methods import AnswerCallbackQuery, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update, User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import current_session
from bot.i18n import I18n
from bot.storage.fsm import SqlStorage
from models import Account, InboundUpdate, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DatabaseMiddleware(BaseMiddleware):
    """Take the person's turn, open one session per update, and commit once after the handler.

    The update's inbox row is marked done in the same transaction, so a crash before the commit
    leaves the update to be handled again, and a handled update is never applied twice.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fsm: FSMContextMiddleware,
        on_commit: Callable[[], None],
    ):
        self.sessions = sessions
        self.fsm = fsm
        self.on_commit = on_commit

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        context = self.fsm.resolve_event_context(data["bot"], data)
        data["fsm_storage"] = self.fsm.storage
        if context is None:
            return await self._in_session(handler, event, data)
        async with self.fsm.events_isolation.lock(key=context.key):
            data["state"] = context
            return await self._in_session(handler, event, data)

    async def _in_session(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        receipt = data.get("inbox_receipt")
        async with self.sessions() as session:
            token = current_session.set(session)
            try:
                if data.get("from_inbox"):
                    status = await session.scalar(
                        select(InboundUpdate.status).where(
                            InboundUpdate.update_id == event.update_id
                        )
                    )
                    if status in ("done", "failed"):
                        log.info("update already handled", extra={"update_id": event.update_id})
                        await session.rollback()
                        _mark(receipt, "duplicate")
                        return UNHANDLED
                state = data.get("state")
                if state is not None:
                    # What aiogram's FSM middleware would have read, read in this transaction.
                    data["raw_state"] = await state.get_state()
                data["session"] = session
                result = await handler(event, data)
                if isinstance(self.fsm.storage, SqlStorage):
                    await self.fsm.storage.flush()
                if data.get("from_inbox"):
                    # Conditional: if another process finished this update meanwhile (its claim
                    # had run out), ours is rolled back and the update is applied once.
                    marked = await session.execute(
                        update(InboundUpdate)
                        .where(
                            InboundUpdate.update_id == event.update_id,
                            InboundUpdate.status.not_in(("done", "failed")),
                        )
                        .values(
                            status="done",
                            payload=None,
                            done_at=utcnow(),
                            claimed_by=None,
                            claimed_until=None,
                        )
                        .returning(InboundUpdate.update_id)
                    )
                    if marked.scalar_one_or_none() is None:
                        log.warning("update handled twice", extra={"update_id": event.update_id})
                        await session.rollback()
                        _mark(receipt, "duplicate")
                        return UNHANDLED
                await session.commit()
                _mark(receipt, "done")
                self.on_commit()
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)


def _mark(receipt: Any, state: str) -> None:
    """Tell the inbox worker (`bot.inbox.Receipt`) how the update ended."""
    if receipt is not None:
        receipt.state = state


class PersonMiddleware(BaseMiddleware):
    """Find the person's account and bind a translator to their language.

    Private chats create the account on first contact; in groups a person has no account
    (dispatchers act there under their Telegram id) and texts use the default language.
    """

    def __init__(self, i18n: I18n, default_language: str) -> None:
        self.i18n = i18n
        self.default_language = default_language

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        account: Account | None = None
        chat = data.get("event_chat")
        if user is not None and not user.is_bot:
            account = await session.scalar(select(Account).where(Account.telegram_id == user.id))
            if account is None and chat is not None and chat.type == "private":
                account = Account(telegram_id=user.id, display_name=user.full_name[:128])
                session.add(account)
                await session.flush()
            elif account is not None and account.unreachable_since is not None:
                # They wrote to us, so the bot is no longer blocked.
                account.unreachable_since = None
        lang = account.language if account and account.language else None
        data["account"] = account
        data["lang"] = lang or self.default_language
        data["language_chosen"] = lang is not None
        data["t"] = self.i18n.translator(data["lang"])
        return await handler(event, data)


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
