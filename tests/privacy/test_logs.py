"""A whole journey at DEBUG leaves no name, phone, IIN, VKK number or address in the log."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.keyboards import registration as kb
from bot.logging_setup import JsonFormatter, setup_logging
from models import Rider, Verification
from tests.factories import IIN_RU, card_of, first_contact, person, register_self

NAME = "Иван Петров"
ADDRESS = "Абай көшесі"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_a_registration_at_debug_logs_no_personal_data(bot: Any) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    captured = Captured()
    setup_logging("DEBUG")
    root.addHandler(captured)
    try:
        rider = person(bot, 7001, "ru", "Иван")
        await first_contact(bot, rider, "ru")
        await register_self(bot, rider, "ru", iin=IIN_RU, name=NAME)
        await bot.settle()
        async with bot.sessions() as session:
            stored = (await session.scalars(select(Rider))).one()
            check = (await session.scalars(select(Verification))).one()
        desk = bot.app.i18n.translator("ru")
        card = card_of(bot, -1001000000001, check.id, desk)
        await bot.dispatcher("taldykorgan", 0).press(desk(kb.APPROVE), message=card).answer()
        await bot.settle()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    log = "\n".join(captured.lines)
    # The journey did log (the bot's own records at DEBUG), just nothing personal.
    assert len(captured.lines) > 10
    typed_iin = f"{IIN_RU[:4]} {IIN_RU[4:8]} {IIN_RU[8:]}"
    for secret in (
        NAME,
        "Петров",
        stored.phone,
        stored.phone[-7:],
        IIN_RU,
        typed_iin,
        "123/45",
        ADDRESS,
    ):
        assert secret not in log, f"{secret!r} is in the log"


async def test_a_database_error_names_no_bound_value(db_url: str) -> None:
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from bot.db import create_engine

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as err:
                await conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": NAME})
    finally:
        await engine.dispose()
    assert "no_such_table" in str(err.value)
    assert NAME not in str(err.value)
