"""A step's answers go to the sender already claimed; a claim round is asked for only when the
step left other rows in the table (a card, a notification, an answer held back)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import SystemClock
from bot.context import Context, Replies
from bot.i18n import I18n
from bot.inbox import store_updates
from bot.middlewares import DatabaseMiddleware, PersonMiddleware
from bot.services.outbox import enqueue_message
from bot.settings import load_settings
from models import OutboxMessage
from tests.factories import message_update, sessions_on

OTHER_CHAT = -100777


def make_dispatcher(sessions: async_sessionmaker[AsyncSession], replies: Replies) -> Dispatcher:
    dp = Dispatcher(
        disable_fsm=True,
        settings=load_settings(
            bot_token="1:x", data_key="test-data-key-0123456789abcdef0123456789abcdef"
        ),
    )
    dp.update.outer_middleware(DatabaseMiddleware(sessions, dp.fsm, replies, owner="me"))
    dp.update.outer_middleware(PersonMiddleware(I18n(), "kk", SystemClock()))
    router = Router()

    @router.message()
    async def answer(message: Message, ctx: Context) -> None:
        ctx.reply("Сәлем")
        if message.text == "card":
            enqueue_message(ctx.session, chat_id=OTHER_CHAT, text="A new request")

    dp.include_router(router)
    return dp


@pytest.fixture
async def sessions(migrated_sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_on(migrated_sqlite_url) as made:
        yield made


async def feed(
    sessions: async_sessionmaker[AsyncSession], replies: Replies, update_id: int, text: str
) -> None:
    bot = Bot("123456:TEST-token")
    try:
        raw = message_update(update_id, text=text)
        await store_updates(sessions, [raw])
        await make_dispatcher(sessions, replies).feed_raw_update(bot, raw, from_inbox=True)
    finally:
        await bot.session.close()


async def test_answers_alone_ask_for_no_claim_round(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    replies = Replies()
    await feed(sessions, replies, 1, "hello")
    assert [row.payload["text"] for row in replies.take()] == ["Сәлем"]
    assert replies.arrived.is_set() and not replies.wakeup.is_set()


async def test_a_row_left_for_the_queue_asks_for_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    replies = Replies()
    await feed(sessions, replies, 2, "card")
    assert [row.payload["text"] for row in replies.take()] == ["Сәлем"]
    assert replies.wakeup.is_set()


async def test_an_answer_held_back_behind_an_older_one_asks_for_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        enqueue_message(session, chat_id=7001, text="Older, still waiting")
    replies = Replies()
    await feed(sessions, replies, 3, "hello")
    assert replies.take() == []
    assert replies.wakeup.is_set()
    async with sessions() as session:
        statuses = list(await session.scalars(select(OutboxMessage.status)))
    assert statuses == ["pending", "pending"]
