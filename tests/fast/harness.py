"""The fast tier: real updates through the real Dispatcher, routers, middlewares, services and
database, with no HTTP at all; tests assert on the outbox rows a step committed.

The Bot given to the Dispatcher records every call. Handlers must make none: everything a step
says is an outbox row. The only call allowed is the answer to a pressed button, which the update's
middleware makes after the commit.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import TelegramType
from sqlalchemy import select

from bot.app import App
from bot.context import EDIT, load_markup
from bot.runner import prepare
from models import OutboxMessage
from tests.e2e.harness import TOKEN, make_settings


class RecordingSession(BaseSession):
    """A Bot API that only records; any call but a button's answer fails the step loudly."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        # Runs at each call, before it is answered: what was committed by then?
        self.on_call: Callable[[TelegramMethod[Any]], Awaitable[None]] | None = None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls.append(method)
        if self.on_call is not None:
            await self.on_call(method)
        if isinstance(method, AnswerCallbackQuery):
            return True  # type: ignore[return-value]
        raise AssertionError(f"a handler called the Bot API: {type(method).__name__}")

    def stream_content(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no downloads in the fast tier")

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Said:
    """One outbox row as the person would see it."""

    chat_id: int
    text: str | None
    buttons: list[str]
    edit_of: int | None
    status: str


@dataclass
class FastBot:
    app: App
    api: RecordingSession
    bot: Bot
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    async def feed(self, raw: dict[str, Any]) -> None:
        await self.app.dp.feed_raw_update(self.bot, raw)

    def text(self, user_id: int, text: str, *, lang: str = "ru") -> dict[str, Any]:
        return {
            "update_id": next(self.ids),
            "message": {
                "message_id": next(self.message_ids),
                "date": 1_780_000_000,
                "chat": {"id": user_id, "type": "private", "first_name": "Тест"},
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Тест",
                    "language_code": lang,
                },
                "text": text,
            },
        }

    def press(
        self,
        user_id: int,
        data: str,
        message_id: int = 50,
        *,
        group: int | None = None,
        name: str = "Тест",
    ) -> dict[str, Any]:
        """A press on a bot message in the person's private chat, or (`group`) in a group."""
        chat: dict[str, Any] = (
            {"id": user_id, "type": "private", "first_name": name}
            if group is None
            else {"id": group, "type": "supergroup", "title": "Диспетчеры"}
        )
        return {
            "update_id": next(self.ids),
            "callback_query": {
                "id": f"q{next(self.ids)}",
                "chat_instance": "c" if group is None else "g",
                "from": {"id": user_id, "is_bot": False, "first_name": name},
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": 1_780_000_000,
                    "chat": chat,
                    "from": {"id": 123456, "is_bot": True, "first_name": "Invataxi"},
                    "text": "…",
                },
            },
        }

    async def said(self, chat_id: int) -> list[Said]:
        """What the bot queued for this chat, in order, rendered as the person will read it."""
        async with self.app.sessions() as session:
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.chat_id == chat_id)
                    .order_by(OutboxMessage.id)
                )
            )
        out = []
        for row in rows:
            payload = row.payload
            markup = load_markup(payload.get("markup"))
            buttons: list[str] = []
            if markup is not None:
                data = markup.model_dump()
                for line in data.get("inline_keyboard") or data.get("keyboard") or []:
                    buttons.extend(str(b["text"]) for b in line)
            text = payload.get("text")
            if text is None and "msgid" in payload:
                text = self.app.i18n.gettext(
                    payload.get("lang") or "kk", payload["msgid"], **payload.get("params", {})
                )
            edit_of = payload.get("message_id") if row.kind == EDIT else None
            out.append(Said(row.chat_id, text, buttons, edit_of, row.status))
        return out


@contextlib.asynccontextmanager
async def fast_bot(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[FastBot]:
    settings = make_settings(database_url, "http://127.0.0.1:9", tmp_path, **overrides)
    app = await prepare(settings)
    await app.bot.session.close()
    api = RecordingSession()
    bot = Bot(TOKEN, session=api)
    try:
        yield FastBot(app=app, api=api, bot=bot)
    finally:
        await app.close()
