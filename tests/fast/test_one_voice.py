"""One voice: a step talks to nobody while it holds the database; what it says is committed
with it and delivered after.

These run the real Dispatcher with a Bot that fails on any call but a button's answer.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path

from aiogram import Bot
from aiogram.methods import AnswerCallbackQuery

from bot.callbacks.common import LanguageChoice
from bot.settings import load_settings
from handlers import get_routers
from tests.fast.harness import fast_bot

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
# Bot API calls an aiogram object offers: a handler must queue these as outbox rows instead.
DIRECT_CALLS = {
    "answer",
    "reply",
    "edit_text",
    "edit_reply_markup",
    "edit_caption",
    "delete",
    "send_message",
    "send_document",
    "send_location",
    "answer_location",
    "answer_document",
    "copy_to",
    "forward",
}


def test_no_handler_can_reach_a_bot() -> None:
    """No handler takes a Bot, and no handler module calls the Bot API through an object."""
    settings = load_settings(
        bot_token="1:x", data_key="test-data-key-0123456789abcdef0123456789abcdef"
    )
    offenders = []
    for router in get_routers(settings):
        for observer in router.observers.values():
            for handler in observer.handlers:
                signature = inspect.signature(handler.callback, eval_str=True)
                for name, parameter in signature.parameters.items():
                    if name == "bot" or parameter.annotation is Bot:
                        offenders.append(f"{handler.callback.__qualname__}({name})")
    for path in sorted(HANDLERS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # ctx's writers, and functions of imported modules (a keyboard module's `reply`).
        allowed = {"ctx"} | {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in DIRECT_CALLS
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id in allowed)
            ):
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}(...)")
    assert offenders == []


async def test_no_filter_or_handler_runs_in_a_worker_thread(migrated_db: str, tmp_path) -> None:
    """aiogram sends a synchronous filter or handler to a thread (asyncio.to_thread), and the
    loop runs other updates meanwhile, while this one holds its transaction (on SQLite, the
    single writer). Every filter and handler of the app is evaluated in the loop."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        threaded = [
            repr(item.callback)[:100]
            for router in fast.app.dp.chain_tail
            for observer in router.observers.values()
            for handler in observer.handlers
            for item in [handler, *(handler.filters or []), *(observer._handler.filters or [])]
            if not item.awaitable
        ]
    assert threaded == []


async def test_first_contact_is_answered_through_the_outbox(migrated_db: str, tmp_path) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        await fast.feed(fast.text(7001, "/start"))
        said = await fast.said(7001)
        assert fast.api.calls == []
        assert len(said) == 1
        assert "Тілді таңдаңыз" in (said[0].text or "")
        assert "Выберите язык" in (said[0].text or "")
        # Committed already claimed by this process, to be sent the moment the step commits.
        assert said[0].buttons and said[0].status == "sending"


async def test_a_pressed_button_is_answered_after_its_step_commits(
    migrated_db: str, tmp_path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        await fast.feed(fast.text(7002, "/start"))
        committed: list[int] = []

        async def count_saved(method: object) -> None:
            committed.append(len(await fast.said(7002)))

        fast.api.on_call = count_saved
        await fast.feed(fast.press(7002, LanguageChoice(lang="ru").pack()))
        said = await fast.said(7002)
        assert [type(c) for c in fast.api.calls] == [AnswerCallbackQuery]
        # By the time the spinner was answered, the step's messages were already saved.
        assert committed == [len(said)]
        assert any(s.edit_of == 50 and s.buttons == [] for s in said), "the buttons go away"
        assert any("русский" in (s.text or "").lower() for s in said)


async def test_a_burst_larger_than_the_pool_waits_its_turn(migrated_db: str, tmp_path) -> None:
    """100 people at once with 5 connections: every one is answered, no update fails."""
    async with fast_bot(migrated_db, tmp_path, database_pool_size=5) as fast:
        people = range(8000, 8100)
        await asyncio.gather(*(fast.feed(fast.text(p, "/start")) for p in people))
        for person in people:
            said = await fast.said(person)
            assert len(said) == 1, person
            assert "Выберите язык" in (said[0].text or "")


async def test_an_answer_waits_behind_an_older_message_of_its_chat(
    migrated_db: str, tmp_path
) -> None:
    """A message still waiting for its chat (a retry, or held by a process that died) goes first:
    the step's answer is queued behind it instead of being sent at once."""
    from datetime import timedelta

    from bot.services.outbox import enqueue_message
    from models import utcnow

    async with fast_bot(migrated_db, tmp_path) as fast:
        async with fast.app.sessions() as session, session.begin():
            older = enqueue_message(session, chat_id=7003, text="Напоминание о поездке")
            older.next_attempt_at = utcnow() + timedelta(seconds=30)  # Telegram said: later
        await fast.feed(fast.text(7003, "/start"))
        await fast.feed(fast.text(7004, "/start"))
        waiting, answer = await fast.said(7003)
        assert waiting.text == "Напоминание о поездке"
        assert answer.status == "pending", "not sent ahead of the older message"
        (alone,) = await fast.said(7004)
        assert alone.status == "sending", "a chat with nothing older is answered at once"
