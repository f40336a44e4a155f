"""The Bot API stand-in behaves like Telegram, as seen through a real aiogram Bot.

Every end-to-end test of the bot trusts the stand-in, so it is tested against the client the
bot actually uses: if aiogram parses what the stand-in returns and raises the same exceptions
Telegram's answers cause, the bot under test cannot tell the difference.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.stand_in import SECRET_HEADER, BotApiStandIn, RateLimits, StoredMessage

USER_ID = 1001


def inline(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """An inline keyboard from rows of (text, callback_data)."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
        ]
    )


@pytest.fixture
async def stand_in() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as server:
        yield server
    # A crash inside the stand-in must never pass for a Telegram error the bot handled.
    assert server.internal_errors == []


@pytest.fixture
async def client(stand_in: BotApiStandIn) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(stand_in.base_url))
    client = Bot(stand_in.token, session=session)
    yield client
    await client.session.close()


async def raw_call(
    stand_in: BotApiStandIn,
    method: str,
    *,
    http: str = "POST",
    token: str | None = None,
    **kw: Any,
) -> tuple[int, dict[str, Any]]:
    """Call the stand-in without aiogram, to check the wire format itself."""
    url = f"{stand_in.base_url}/bot{token or stand_in.token}/{method}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(http, url, **kw) as response,
    ):
        return response.status, await response.json()


# -- protocol ------------------------------------------------------------------------------


async def test_get_me_returns_bot_identity_from_token(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    me = await client.get_me()
    assert me.id == int(stand_in.token.split(":")[0]) == stand_in.bot_id
    assert me.is_bot
    assert me.username == "invataxi_test_bot"
    assert me.first_name == "Invataxi"


async def test_unknown_method_and_bad_token(stand_in: BotApiStandIn) -> None:
    status, body = await raw_call(stand_in, "sendTelepathy", data={"chat_id": "1"})
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    status, body = await raw_call(stand_in, "getMe", token="not-a-token")
    assert status == 401
    assert body["ok"] is False


async def test_missing_required_parameters_are_refused(stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    status, body = await raw_call(stand_in, "sendMessage", data={"text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    status, body = await raw_call(stand_in, "sendMessage", data={"chat_id": str(USER_ID)})
    assert body["description"] == "Bad Request: message text is empty"
    status, body = await raw_call(stand_in, "getChatMember", data={"chat_id": str(USER_ID)})
    assert (status, body["description"]) == (400, "Bad Request: user_id is required")


async def test_accepts_json_urlencoded_and_query_parameters(stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    markup = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    status, body = await raw_call(
        stand_in,
        "sendMessage",
        json={"chat_id": USER_ID, "text": "json", "reply_markup": markup},
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    assert body["result"]["reply_markup"] == markup
    status, body = await raw_call(
        stand_in,
        "sendMessage",
        data={"chat_id": str(USER_ID), "text": "form", "reply_markup": json.dumps(markup)},
    )
    assert body["result"]["text"] == "form"
    status, body = await raw_call(
        stand_in, "SENDMESSAGE", http="GET", params={"chat_id": str(USER_ID), "text": "query"}
    )
    assert body["ok"] and body["result"]["text"] == "query"
    assert [m.text for m in stand_in.messages(USER_ID)] == ["json", "form", "query"]


async def test_unmodelled_methods_answer_in_their_declared_type(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    stand_in.private_chat(USER_ID)
    group = stand_in.group(-1001500, "Dispatchers")
    assert await client.set_my_description("Invataxi") is True
    assert await client.get_chat_member_count(group.id) == 1
    photo = await client.send_photo(USER_ID, "AgACAgIAAx-file-id", caption="<b>Car</b>")
    assert photo.photo is not None and photo.photo[-1].file_id == "AgACAgIAAx-file-id"
    assert photo.caption == "<b>Car</b>"  # no parse_mode: markup is kept as typed
    assert stand_in.messages(USER_ID)[-1].kind == "photo"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await client.pin_chat_message(-999, 1)


# -- sending -------------------------------------------------------------------------------


async def test_send_message_returns_real_message_shape(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    stand_in.private_chat(USER_ID, "Асель")
    group = stand_in.group(-1001234567890, "Диспетчеры")
    basic = stand_in.group(-4242, "Basic")
    first = await client.send_message(
        USER_ID,
        "<b>Заказ №5</b> принят &amp; ждёт",
        parse_mode="HTML",
        reply_markup=inline([("OK", "ok")]),
    )
    second = await client.send_message(USER_ID, "второе")
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.type == "private" and first.chat.first_name == "Асель"
    assert first.from_user is not None and first.from_user.id == stand_in.bot_id
    assert first.text == "Заказ №5 принят & ждёт"
    assert first.entities is not None and first.entities[0].type == "bold"
    assert (first.entities[0].offset, first.entities[0].length) == (0, 8)
    assert first.reply_markup is not None
    stored = stand_in.messages(USER_ID)[0]
    assert stored.raw_text == "<b>Заказ №5</b> принят &amp; ждёт"
    assert stored.buttons[0][0]["callback_data"] == "ok"
    assert (await client.send_message(group.id, "g")).chat.type == "supergroup"
    assert (await client.send_message(basic.id, "b")).chat.type == "group"


async def test_text_length_is_checked_after_parsing(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await client.send_message(USER_ID, "  \n ")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await client.send_message(USER_ID, "")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await client.send_message(USER_ID, "я" * 4097)
    await client.send_message(USER_ID, "я" * 4096)
    await client.send_message(USER_ID, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    # Emoji count twice: Telegram measures UTF-16 code units.
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await client.send_message(USER_ID, "🚕" * 2049)
    assert len(stand_in.messages(USER_ID)) == 2


async def test_malformed_markup_is_refused(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await client.send_message(USER_ID, "1 < 2 and 3 > 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await client.send_message(USER_ID, "<b>bold", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await client.send_message(USER_ID, "Цена 1500 тг.", parse_mode="MarkdownV2")
    ok = await client.send_message(USER_ID, "*Цена* 1500 тг\\.", parse_mode="MarkdownV2")
    assert ok.text == "Цена 1500 тг."
    assert ok.entities is not None and ok.entities[0].type == "bold"
    assert (await client.send_message(USER_ID, "1 < 2")).text == "1 < 2"


async def test_inline_keyboard_rules(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await client.send_message(USER_ID, "x", reply_markup=inline([("Too long", "d" * 65)]))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        # 33 Cyrillic letters are 66 bytes in UTF-8: the limit is in bytes, not characters.
        await client.send_message(USER_ID, "x", reply_markup=inline([("Cyr", "ж" * 33)]))
    text_only = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Nothing")]])
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await client.send_message(USER_ID, "x", reply_markup=text_only)
    await client.send_message(USER_ID, "x", reply_markup=inline([("Max", "d" * 64)]))
    assert len(stand_in.messages(USER_ID)) == 1


async def test_contact_and_location_buttons_only_in_private_chats(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    group = stand_in.group(-1001600, "Group")
    keyboard = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📞 Телефон", request_contact=True)],
            [
                KeyboardButton(text="📍 Где я", request_location=True),
                KeyboardButton(text="Отмена"),
            ],
        ],
        resize_keyboard=True,
    )
    with pytest.raises(TelegramBadRequest):
        await client.send_message(group.id, "share", reply_markup=keyboard)
    await client.send_message(USER_ID, "share", reply_markup=keyboard)
    assert user.keyboard_buttons == ["📞 Телефон", "📍 Где я", "Отмена"]

    contact = user.tap("📞 Телефон")
    assert contact.extra["contact"]["user_id"] == USER_ID
    location = user.tap("📍 Где я")
    assert "location" in location.extra
    assert user.tap("Отмена").text == "Отмена"
    with pytest.raises(AssertionError, match=r"\[Отмена\]"):
        user.tap("Назад")
    updates = await client.get_updates()
    assert [u.message.content_type for u in updates if u.message] == [
        "contact",
        "location",
        "text",
    ]
    await client.send_message(USER_ID, "bye", reply_markup=ReplyKeyboardRemove())
    with pytest.raises(AssertionError, match="no reply keyboard"):
        user.tap("Отмена")


async def test_unknown_chat_thread_and_reply(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    forum = stand_in.group(-1001700, "Forum", forum=True)
    plain = stand_in.group(-1001701, "Plain")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await client.send_message(555, "hi")
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await client.send_message(plain.id, "hi", message_thread_id=7)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await client.send_message(forum.id, "hi", message_thread_id=7)
    thread = stand_in.topic(forum, "Заказы")
    sent = await client.send_message(forum.id, "in topic", message_thread_id=thread)
    assert sent.message_thread_id == thread and sent.is_topic_message
    assert [m.text for m in stand_in.messages(forum.id, thread_id=thread)] == ["in topic"]
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await client.send_message(USER_ID, "re", reply_parameters=ReplyParameters(message_id=99))


async def test_blocked_user_unstarted_user_and_migrated_group(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    stranger = stand_in.user(2002, "Stranger")
    stand_in.block(USER_ID)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await client.send_message(USER_ID, "hi")
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await client.send_message(stranger.id, "hi")
    user.send_text("/start")  # writing to the bot again lifts the block
    await client.send_message(USER_ID, "welcome back")

    stand_in.group(-4300, "Old group")
    stand_in.migrate(-4300, -1004300)
    with pytest.raises(TelegramMigrateToChat) as migrated:
        await client.send_message(-4300, "hi")
    assert migrated.value.migrate_to_chat_id == -1004300
    assert (await client.send_message(-1004300, "hi")).chat.type == "supergroup"
    assert not stand_in.messages(-4300)


# -- editing and deleting ------------------------------------------------------------------


async def test_edits_are_tracked_and_validated(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    card = await client.send_message(
        USER_ID, "Заказ: новый", reply_markup=inline([("Отменить", "c")])
    )
    edited = await client.edit_message_text(
        text="Заказ: <b>принят</b>",
        chat_id=USER_ID,
        message_id=card.message_id,
        parse_mode="HTML",
        reply_markup=inline([("Отменить", "c")]),
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await client.edit_message_text(
            text="Заказ: <b>принят</b>",
            chat_id=USER_ID,
            message_id=card.message_id,
            parse_mode="HTML",
            reply_markup=inline([("Отменить", "c")]),
        )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await client.edit_message_reply_markup(
            chat_id=USER_ID, message_id=card.message_id, reply_markup=inline([("Отменить", "c")])
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await client.edit_message_text(text="x", chat_id=USER_ID, message_id=404)
    # Leaving reply_markup out of editMessageText removes the keyboard, as in Telegram.
    await client.edit_message_text(
        text="Заказ: выполнен", chat_id=USER_ID, message_id=card.message_id
    )

    [stored] = stand_in.messages(USER_ID)
    assert stored.text == "Заказ: выполнен" and stored.buttons == []
    assert [v.text for v in stored.versions] == [
        "Заказ: новый",
        "Заказ: принят",
        "Заказ: выполнен",
    ]
    assert len(stored.edits) == 2 and stored.edited
    kinds = [(e.kind, e.message.message_id) for e in stand_in.events]
    assert kinds == [("new", 1), ("edit", 1), ("edit", 1)]


async def test_delete_message(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)
    sent = await client.send_message(USER_ID, "temporary")
    incoming = user.send_text("my text")
    assert await client.delete_message(USER_ID, sent.message_id)
    assert await client.delete_message(USER_ID, incoming.message_id)  # bots may delete incoming
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await client.delete_message(USER_ID, sent.message_id)
    assert stand_in.messages(USER_ID, include_user=True) == []
    message = stand_in.message(USER_ID, sent.message_id)
    assert message is not None and message.deleted


# -- callback queries ----------------------------------------------------------------------


async def test_press_produces_callback_query_aiogram_parses(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID, "Асель")
    await client.send_message(USER_ID, "Старое", reply_markup=inline([("Да", "old")]))
    card = await client.send_message(USER_ID, "Подтвердить?", reply_markup=inline([("Да", "yes")]))
    pressed = user.press("Да")  # the newest message with such a button
    [update] = await client.get_updates()
    query = update.callback_query
    assert isinstance(query, CallbackQuery)
    assert query.id == pressed.id and query.data == "yes"
    assert query.from_user.id == USER_ID and query.chat_instance
    assert isinstance(query.message, Message) and query.message.message_id == card.message_id

    assert await client.answer_callback_query(query.id, text="Готово", show_alert=True)
    answer = await user.wait_answer(pressed)
    assert (answer.text, answer.show_alert) == ("Готово", True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await client.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await client.answer_callback_query("123456")
    second = user.press(lambda text: text == "Да", message=stand_in.messages(USER_ID)[0])
    assert second.data == "old"
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await client.answer_callback_query(second.id, text="x" * 201)


async def test_press_missing_button_lists_what_is_there(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    await client.send_message(
        USER_ID, "Меню", reply_markup=inline([("Заказать", "o"), ("Помощь", "h")])
    )
    with pytest.raises(AssertionError, match=r"\[Заказать\] \| \[Помощь\]"):
        user.press("Отмена")
    forged = user.press_data(stand_in.messages(USER_ID)[0], "order:999:cancel")
    [update] = await client.get_updates()
    assert update.callback_query is not None
    assert update.callback_query.data == "order:999:cancel" == forged.data


async def test_unanswered_callback_expires(client: Bot, stand_in: BotApiStandIn) -> None:
    # At 0 a press is already too old by the time anyone answers it.
    stand_in.callback_timeout = 0.0
    user = stand_in.private_chat(USER_ID)
    await client.send_message(USER_ID, "?", reply_markup=inline([("Да", "y")]))
    pressed = user.press("Да")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await client.answer_callback_query(pressed.id)
    with pytest.raises(AssertionError, match="did not answer callback query"):
        await pressed.answer(timeout=0.05)


# -- user actions --------------------------------------------------------------------------


async def test_user_actions_become_updates_aiogram_parses(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID, "Асель", language_code="kk")
    user.send_text("/start@invataxi_test_bot ref42")
    user.send_text("Привет")
    user.send_contact("+77011234567")
    user.send_contact("+77770000000", own=False)
    user.send_location(43.25, 76.95)
    user.send_sticker()
    user.send_photo(caption="документ")
    user.send_voice()
    updates = await client.get_updates()
    messages = [u.message for u in updates]
    assert all(m is not None for m in messages)
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = messages[0]
    assert first is not None and first.from_user is not None
    assert first.from_user.language_code == "kk" and first.chat.type == "private"
    assert first.entities is not None
    entity = first.entities[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 24)
    assert messages[1] is not None and messages[1].entities is None
    types = [m.content_type for m in messages if m is not None]
    assert types == ["text", "text", "contact", "contact", "location", "sticker", "photo", "voice"]
    own, other = messages[2], messages[3]
    assert own is not None and own.contact is not None and own.contact.user_id == USER_ID
    assert other is not None and other.contact is not None and other.contact.user_id is None
    message_ids = [m.message_id for m in messages if m is not None]
    assert message_ids == list(range(1, 9))


async def test_group_privacy_mode(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)
    group = stand_in.group(-1001800, "Not admin here", bot_status="member")
    user.send_text("just chatting", chat=group)
    user.send_text("/orders", chat=group)
    user.send_text("hey @invataxi_test_bot", chat=group)
    user.send_text("/other@some_other_bot", chat=group)
    user.send_photo(chat=group)
    updates = await client.get_updates()
    texts = [u.message.text for u in updates if u.message]
    assert texts == ["/orders", "hey @invataxi_test_bot"]
    assert len(stand_in.messages(group.id, include_user=True)) == 5


async def test_wait_for_reports_what_the_user_saw(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)
    await client.send_message(USER_ID, "Добро пожаловать")
    user.send_text("/order")
    # The greeting came before the user's action, so it does not satisfy the wait.
    with pytest.raises(AssertionError) as failure:
        await user.wait_for("Добро", timeout=0.1)
    report = str(failure.value)
    assert "Добро пожаловать" in report and "/order" in report

    async def reply_later() -> None:
        await asyncio.sleep(0.05)
        await client.send_message(USER_ID, "Откуда вас забрать?")

    task = asyncio.create_task(reply_later())
    found = await user.wait_for("Откуда")
    await task
    assert found.text == "Откуда вас забрать?"
    assert user.last_message() is found
    assert await user.wait_for("Добро", after=0) is stand_in.messages(USER_ID)[0]


# -- getUpdates ----------------------------------------------------------------------------


async def test_get_updates_offset_limit_and_confirmation(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    for text in ("one", "two", "three"):
        user.send_text(text)
    first = await client.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["one", "two"]
    again = await client.get_updates()  # nothing confirmed yet: all three come again
    assert len(again) == 3
    rest = await client.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert await client.get_updates(offset=rest[-1].update_id + 1) == []
    assert stand_in.pending_updates() == []


async def test_negative_offset_keeps_only_the_last_updates(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    for text in ("one", "two", "three"):
        user.send_text(text)
    last = await client.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["three"]
    assert len(stand_in.pending_updates()) == 1


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    started = time.monotonic()
    poll = asyncio.create_task(client.get_updates(timeout=10))
    await wait_until(lambda: stand_in._poll_generation == 1)  # the poll is waiting
    user.send_text("hello")
    updates = await asyncio.wait_for(poll, 5)
    assert [u.message.text for u in updates if u.message] == ["hello"]
    assert time.monotonic() - started < 2
    started = time.monotonic()
    assert await client.get_updates(offset=updates[-1].update_id + 1, timeout=1) == []
    assert time.monotonic() - started >= 0.9


async def test_second_poller_terminates_the_first(client: Bot, stand_in: BotApiStandIn) -> None:
    first = asyncio.create_task(client.get_updates(timeout=10))
    await wait_until(lambda: stand_in._poll_generation == 1)  # the first poll is waiting
    second = asyncio.create_task(client.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 5)
    assert await second == []


async def test_allowed_updates_filter(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)
    await client.get_updates(allowed_updates=["callback_query"])
    assert stand_in.queue.allowed_updates == ["callback_query"]
    user.send_text("ignored")
    await client.send_message(USER_ID, "?", reply_markup=inline([("Да", "y")]))
    user.press("Да")
    updates = await client.get_updates()
    assert [u.event_type for u in updates] == ["callback_query"]


# -- faults and limits ---------------------------------------------------------------------


async def test_injected_faults_map_to_aiogram_exceptions(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    stand_in.private_chat(USER_ID)
    stand_in.inject("429", method="sendMessage", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as flood:
        await client.send_message(USER_ID, "a")
    assert flood.value.retry_after == 3
    stand_in.inject("500", method="sendMessage")
    with pytest.raises(TelegramServerError):
        await client.send_message(USER_ID, "b")
    stand_in.inject("drop", chat_id=USER_ID)
    with pytest.raises(TelegramNetworkError):
        await client.send_message(USER_ID, "c")
    assert stand_in.messages(USER_ID) == []  # faults strike before anything is stored
    await client.send_message(USER_ID, "d")
    assert [m.text for m in stand_in.messages(USER_ID)] == ["d"]
    assert [r.fault for r in stand_in.calls("sendMessage")] == ["429", "500", "drop", None]


async def test_fail_rate_is_reproducible(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)

    async def run(seed: int) -> list[str]:
        stand_in.fail_rate(0.5, kinds=("429", "500"), methods=["sendMessage"], seed=seed)
        outcomes = []
        for index in range(12):
            try:
                await client.send_message(USER_ID, f"m{index}")
                outcomes.append("ok")
            except TelegramRetryAfter:
                outcomes.append("429")
            except TelegramServerError:
                outcomes.append("500")
        return outcomes

    first, second = await run(7), await run(7)
    assert first == second
    assert "ok" in first and {"429", "500"} & set(first)
    assert len(stand_in.messages(USER_ID)) == 2 * first.count("ok")
    stand_in.fail_rate(0)
    await client.get_me()  # getUpdates/getMe unaffected after switching off


async def test_enforced_limits_answer_429() -> None:
    limits = RateLimits(group_per_minute=20, private_burst=3, private_per_second=1.0)
    async with BotApiStandIn(enforce_limits=True, limits=limits) as server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
        limited = Bot(server.token, session=session)
        try:
            server.private_chat(USER_ID)
            group = server.group(-1001900, "Busy group")
            for index in range(20):
                await limited.send_message(group.id, f"g{index}")
            with pytest.raises(TelegramRetryAfter) as flood:
                await limited.send_message(group.id, "one too many")
            assert flood.value.retry_after > 1
            for index in range(3):
                await limited.send_message(USER_ID, f"p{index}")
            with pytest.raises(TelegramRetryAfter):
                await limited.send_message(USER_ID, "burst over")
            assert server.provoked_429 == 2
            assert len(server.messages(group.id)) == 20
        finally:
            await limited.session.close()


async def test_request_log(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    stand_in.private_chat(2002)
    await client.send_message(USER_ID, "a")
    await client.send_message(2002, "b")
    await client.send_chat_action(USER_ID, "typing")
    with pytest.raises(TelegramBadRequest):
        await client.send_message(USER_ID, "")
    assert len(stand_in.calls("sendMessage")) == 3
    [record] = stand_in.calls("sendMessage", chat_id=2002)
    assert record.ok and record.params["text"] == "b" and record.result["message_id"] == 1
    assert stand_in.calls("sendchataction")[0].params["action"] == "typing"
    assert [r.error for r in stand_in.errors()] == ["Bad Request: message text is empty"]
    assert all(r.time <= time.monotonic() for r in stand_in.requests)


async def test_outage_and_recovery_keep_state(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.private_chat(USER_ID)
    await client.send_message(USER_ID, "before")
    await stand_in.stop()
    with pytest.raises(TelegramNetworkError):
        await client.send_message(USER_ID, "during")
    await stand_in.start()  # same port, same chats: the bot just reconnects
    await client.send_message(USER_ID, "after")
    assert [m.text for m in stand_in.messages(USER_ID)] == ["before", "after"]


async def test_copy_forward_media_group_and_kicked_bot(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    user = stand_in.private_chat(USER_ID)
    group = stand_in.group(-1002100, "Dispatch")
    photo = user.send_photo(caption="справка")
    copied = await client.copy_message(group.id, USER_ID, photo.message_id)
    copy = stand_in.message(group.id, copied.message_id)
    assert copy is not None and copy.kind == "photo" and copy.caption == "справка"
    forwarded = await client.forward_message(group.id, USER_ID, photo.message_id)
    assert forwarded.forward_origin is not None
    album = await client.send_media_group(
        USER_ID,
        media=[InputMediaPhoto(media="file-1"), InputMediaPhoto(media="file-2", caption="two")],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    stand_in.remove_bot(group.id)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await client.send_message(group.id, "hi")


# -- settings ------------------------------------------------------------------------------


async def test_commands_menu_and_chat_info(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)
    group = stand_in.group(-1002000, "Dispatch")
    stand_in.add_member(group, user, "creator")
    commands = [BotCommand(command="start", description="Начать")]
    assert await client.set_my_commands(commands, language_code="ru")
    assert await client.get_my_commands() == []
    assert [c.command for c in await client.get_my_commands(language_code="ru")] == ["start"]
    assert stand_in.commands(language_code="ru") == [{"command": "start", "description": "Начать"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await client.set_my_commands([BotCommand(command="Start!", description="x")])
    assert await client.delete_my_commands(language_code="ru")
    assert stand_in.commands(language_code="ru") == []
    assert await client.set_chat_menu_button(chat_id=USER_ID)

    info = await client.get_chat(group.id)
    assert (info.type, info.title) == ("supergroup", "Dispatch")
    assert (await client.get_chat_member(group.id, USER_ID)).status == "creator"
    assert (await client.get_chat_member(group.id, stand_in.bot_id)).status == "administrator"
    stand_in.user(3003, "Not in group")
    assert (await client.get_chat_member(group.id, 3003)).status == "left"
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await client.send_chat_action(USER_ID, "dancing")


# -- webhooks ------------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint recording what it receives; can be told to fail."""

    def __init__(self, reply: Callable[[dict[str, Any]], Awaitable[web.Response]] | None = None):
        self.updates: list[dict[str, Any]] = []
        self.secrets: list[str | None] = []
        self.failures_left = 0
        self.reply = reply
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=500)
        self.updates.append(body)
        self.secrets.append(request.headers.get(SECRET_HEADER))
        if self.reply is not None:
            return await self.reply(body)
        return web.json_response({})

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/webhook", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/webhook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_webhook_round_robin_secret_and_failover(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    users = [stand_in.private_chat(USER_ID + index) for index in range(4)]
    async with Receiver() as first, Receiver() as second:
        assert await client.set_webhook(first.url, secret_token="s3cret_token")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await client.get_updates()
        stand_in.webhook_targets = [first.url, second.url]
        for user in users:
            user.send_text(f"hi from {user.id}")
        await wait_until(lambda: len(first.updates) + len(second.updates) == 4)
        assert len(first.updates) == 2 and len(second.updates) == 2
        assert set(first.secrets + second.secrets) == {"s3cret_token"}
        # Confirmed once each receiver's 200 is back, a moment after it got the update.
        await wait_until(lambda: stand_in.pending_updates() == [])

        second.failures_left = 100  # instance down: everything goes to the first one
        for user in users:
            user.send_text("again")
        await wait_until(lambda: len(first.updates) == 6)
        assert len(second.updates) == 2
        info = await client.get_webhook_info()
        assert info.url == first.url and info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message
        assert await client.delete_webhook()
        assert (await client.get_webhook_info()).url == ""


async def test_webhook_retries_until_delivered(client: Bot, stand_in: BotApiStandIn) -> None:
    stand_in.webhook.retry_delay = 0.05
    user = stand_in.private_chat(USER_ID)
    async with Receiver() as receiver:
        receiver.failures_left = 2
        await client.set_webhook(receiver.url)
        user.send_text("first")
        user.send_text("second")
        await wait_until(lambda: len(receiver.updates) == 2)
        texts = [u["message"]["text"] for u in receiver.updates]
        assert texts == ["first", "second"]  # a chat's updates stay in order across retries
        failed = [a for a in stand_in.webhook.attempts if not a.ok]
        assert len(failed) == 2


async def test_webhook_reply_method_is_executed(client: Bot, stand_in: BotApiStandIn) -> None:
    user = stand_in.private_chat(USER_ID)

    async def answer(update: dict[str, Any]) -> web.Response:
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    async with Receiver(reply=answer) as receiver:
        await client.set_webhook(receiver.url)
        user.send_text("ping")
        reply = await user.wait_for("pong")
        assert reply.from_bot
        assert stand_in.calls("sendMessage")[0].source == "webhook-reply"


async def test_aiogram_webhook_answer_in_response_body(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> Any:
        # Returning the method (not awaiting it) makes aiogram answer in the webhook response.
        return message.answer(f"echo: {message.text}")

    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher, client, handle_in_background=False, secret_token="webhook_secret"
    )
    handler.register(app, path="/webhook")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
        await client.set_webhook(url, secret_token="webhook_secret")
        user = stand_in.private_chat(USER_ID)
        user.send_text("привет")
        reply = await user.wait_for("echo: привет")
        assert reply.from_bot and reply.text == "echo: привет"
        [call] = stand_in.calls("sendMessage")
        assert call.source == "webhook-reply" and call.ok
    finally:
        await runner.cleanup()


async def test_group_member_presses_without_starting_the_bot(
    client: Bot, stand_in: BotApiStandIn
) -> None:
    group = stand_in.group(-1002200, "Диспетчеры")
    driver = stand_in.user(3003, "Водитель")
    stand_in.add_member(group, driver)
    card = await client.send_message(
        group.id, "Новый заказ", reply_markup=inline([("Взять", "t:1")])
    )
    driver.press("Взять", chat=group)
    [update] = await client.get_updates()
    assert update.callback_query is not None and update.callback_query.message is not None
    assert update.callback_query.message.chat.id == group.id
    assert update.callback_query.message.message_id == card.message_id
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await client.send_message(driver.id, "hi")
    with pytest.raises(AssertionError, match="never started"):
        driver.last_message()


# -- a whole bot -----------------------------------------------------------------------------


async def test_aiogram_dispatcher_end_to_end(client: Bot, stand_in: BotApiStandIn) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(
            "Привет! Заказать такси?", reply_markup=inline([("Да", "order:yes"), ("Нет", "no")])
        )

    @dispatcher.callback_query(F.data == "order:yes")
    async def order(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text("Заказ принят ✅")
        await query.answer("Ищем машину")

    user = stand_in.private_chat(USER_ID, "Асель")
    polling = asyncio.create_task(
        dispatcher.start_polling(client, handle_signals=False, close_bot_session=False)
    )
    try:
        user.send_text("/start")
        card = await user.wait_for("Заказать такси?")
        pressed = user.press("Да")
        assert (await pressed.answer()).text == "Ищем машину"
        edited = await user.wait_for("Заказ принят")
        assert edited is card and card.edited and card.buttons == []
        assert len(stand_in.messages(USER_ID)) == 1  # edited in place, not re-posted
    finally:
        await dispatcher.stop_polling()
        await polling


def test_stored_message_describe() -> None:
    stand_in = BotApiStandIn()
    user = stand_in.user(USER_ID, "Асель")
    chat = stand_in.private_chat_of(user)
    message = StoredMessage(chat, 1, 0, user.to_api(), from_bot=False, text="hello")
    assert message.describe() == "#1 Асель: 'hello'"
