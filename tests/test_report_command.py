"""/report in a dispatcher group, through the real dispatcher, routers and middlewares.

The command only queues: a "monthly_report" document row for the district's dispatchers and
administrators, a refusal for anyone else. The row is then rendered the way the sender will,
through the document renderer registry, to see the files a dispatcher would get.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Chat, Message, MessageEntity, Update, User
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import App
from bot.documents import DOCUMENT_RENDERERS, load_all
from bot.i18n import I18n
from bot.reports.monthly import SHEET_SUMMARY
from bot.runner import prepare
from bot.services.report_figures import month_code, month_of
from handlers.reports import MONTH_FORMAT, NOT_YET
from models import OutboxMessage
from tests.e2e.harness import ADMIN_ID, DISPATCHERS, GROUPS, make_settings

GROUP = GROUPS["taldykorgan"]
AIGUL = DISPATCHERS["taldykorgan"][0][0]
NURLAN = DISPATCHERS["tekeli"][0][0]
OUTSIDER = 8001
_ids = itertools.count(1)


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path) -> AsyncIterator[App]:
    built = await prepare(make_settings(sqlite_url, "http://127.0.0.1:9", tmp_path))
    try:
        yield built
    finally:
        await built.close()


async def say(app: App, user_id: int, text: str, chat_id: int = GROUP) -> list[OutboxMessage]:
    """Feed one command from a group member; return the outbox rows it queued."""
    n = next(_ids)
    async with app.sessions() as session:
        before = await session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()))
    command = text.split()[0]
    update = Update(
        update_id=n,
        message=Message(
            message_id=n,
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type="supergroup", title="Диспетчеры"),
            from_user=User(id=user_id, is_bot=False, first_name="Person"),
            text=text,
            entities=[MessageEntity(type="bot_command", offset=0, length=len(command))],
        ),
    )
    result = await app.dp.feed_update(app.bot, update)
    assert result is not UNHANDLED
    async with app.sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id > (before or 0))
                .order_by(OutboxMessage.id)
            )
        )


async def test_a_dispatcher_gets_the_districts_report_as_files(app: App) -> None:
    load_all()
    [row] = await say(app, AIGUL, "/report 2026-11")
    assert row.kind == "document" and row.chat_id == GROUP
    assert row.payload == {
        "renderer": "monthly_report",
        "args": {"month": "2026-11", "district_id": "taldykorgan", "tz": "Asia/Almaty"},
        "lang": "ru",  # the group's language
    }
    async with app.sessions() as session:
        documents = await DOCUMENT_RENDERERS[row.payload["renderer"]](
            session, row.payload["args"], row.payload["lang"]
        )
    workbook, *pngs = documents
    assert workbook.filename == "invataxi-2026-11-taldykorgan.xlsx"
    assert workbook.caption is not None and "ноябрь 2026" in workbook.caption
    ru = I18n().translator("ru")
    book = load_workbook(io.BytesIO(workbook.content), read_only=True)
    assert book.sheetnames[0] == ru(SHEET_SUMMARY)
    assert len(pngs) == 2 and all(p.content.startswith(b"\x89PNG") for p in pngs)


async def test_this_month_so_far_and_the_administrator(app: App) -> None:
    [row] = await say(app, ADMIN_ID, "/report")
    this_month = month_code(month_of(datetime.now(UTC), app.settings.tz))
    assert row.kind == "document" and row.payload["args"]["month"] == this_month


async def test_outsiders_and_other_districts_dispatchers_are_refused(app: App) -> None:
    ru = I18n().translator("ru")
    for user_id in (OUTSIDER, NURLAN):
        [row] = await say(app, user_id, "/report 2026-11")
        assert row.kind == "send" and row.chat_id == GROUP
        assert row.payload["text"] == ru("Only this district's dispatchers can do this.")


async def test_a_month_that_is_not_one_or_has_not_begun(app: App) -> None:
    ru = I18n().translator("ru")
    [row] = await say(app, AIGUL, "/report ноябрь")
    assert row.kind == "send" and row.payload["text"] == ru(MONTH_FORMAT)
    [row] = await say(app, AIGUL, "/report 2099-01")
    assert row.payload["text"] == ru(NOT_YET)
