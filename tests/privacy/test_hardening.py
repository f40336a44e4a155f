"""Smaller points of issue 12.10: input, callback data, files, settings, card binding."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram.filters.callback_data import CallbackData
from sqlalchemy import text

from bot.callbacks.booking import CalendarAction, CalendarPick, RidePress
from bot.callbacks.dispatch import Rating, RideAct
from bot.callbacks.registration import ProfilePress, VerifyPress
from bot.db import create_engine
from bot.services import registration as reg
from bot.services.booking import clean_text
from bot.services.crypto import DataKey, key_file_path, load_data_key
from bot.services.dispatch import parse_time_input
from bot.services.text import has_hostile, strip_hostile
from bot.settings import SettingsError, load_settings
from tests.factories import account, register

TOKEN = "123456:TEST-token"
KEY = "a-long-random-key-0123456789abcdefghijkl"


# -- hostile text ---------------------------------------------------------------------------


def test_nul_control_and_bidi_characters_are_removed() -> None:
    assert strip_hostile("Абай 1\x00'); DROP") == "Абай 1'); DROP"
    assert strip_hostile("подъезд\x1b[31m 2\x07") == "подъезд[31m 2"
    # A right-to-left override would make the card line read backwards; zero-width hides text.
    assert strip_hostile("дом \u202eKCATTA\u202c") == "дом KCATTA"
    assert strip_hostile("қ\u200bала") == "қала"
    assert strip_hostile("１２３") == "123"  # full-width digits folded
    assert strip_hostile("Әлихан Серікұлы") == "Әлихан Серікұлы"
    assert has_hostile("a\u202eb") and not has_hostile("Абай көшесі, 12\n5-пәтер")
    assert clean_text("Абай 1\x00") == "Абай 1"
    assert clean_text("\u202e\u200b\x00") == clean_text("")  # nothing left: refused as empty


# -- callback data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "pf1:op:" + "9" * 30 + ":0:",
        "mr1:op:" + "9" * 30,
        "rt1:" + "9" * 30 + ":5",
        "rt1:1:99",
        "d1:" + "9" * 25 + ":tk:0",
        "vf1:" + "9" * 30 + ":ok:",
        "bk1c:day:99999:1:1",
        "mr1:op:-1",
    ],
)
def test_oversized_numbers_in_button_data_do_not_unpack(data: str) -> None:
    factories: dict[str, type[CallbackData]] = {
        "pf1": ProfilePress,
        "mr1": RidePress,
        "rt1": Rating,
        "d1": RideAct,
        "vf1": VerifyPress,
        "bk1c": CalendarPick,
    }
    factory = factories[data.split(":")[0]]
    with pytest.raises(ValueError):
        factory.unpack(data)


def test_ordinary_button_data_still_unpacks() -> None:
    assert Rating.unpack(Rating(ride=12, stars=5).pack()).ride == 12
    pick = CalendarPick(action=CalendarAction.DAY, year=2026, month=12, day=31)
    assert CalendarPick.unpack(pick.pack()) == pick


def test_a_typed_year_0001_is_not_a_time_rather_than_a_crash() -> None:
    almaty = ZoneInfo("Asia/Almaty")
    assert parse_time_input("01.01.0001 00:00", datetime.now(UTC), almaty) is None
    assert parse_time_input("14:30", datetime(2026, 12, 2, 5, tzinfo=UTC), almaty) is not None


# -- files ----------------------------------------------------------------------------------


async def test_the_database_its_wal_and_the_key_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "invataxi.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('x')"))
        wal = database.with_name(database.name + "-wal")
        assert wal.exists()
        for path in (database, wal):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        await engine.dispose()
    settings = load_settings(bot_token=TOKEN, database_url=url)
    load_data_key(settings.data_key.get_secret_value(), settings.database_url)
    key = key_file_path(url)
    assert key is not None and key.exists()
    assert database.parent not in key.parents  # not in the folder that is backed up
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


# -- settings -------------------------------------------------------------------------------


def test_the_bot_api_address_must_be_https_unless_on_this_machine() -> None:
    with pytest.raises(SettingsError, match=r"TELEGRAM_API_URL.*https"):
        load_settings(bot_token=TOKEN, telegram_api_url="http://api.example.kz")
    for local in ("http://127.0.0.1:8081", "http://localhost:8081", "http://[::1]:8081"):
        assert load_settings(bot_token=TOKEN, telegram_api_url=local).telegram_api_url == local
    assert load_settings(bot_token=TOKEN, telegram_api_url="https://api.example.kz")


def test_the_webhook_secret_and_the_data_key_are_checked() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(bot_token=TOKEN, webhook_secret="has spaces and !")
    assert load_settings(bot_token=TOKEN, webhook_secret="ok_secret-42")
    for weak in ("short-key", "a" * 40, "abababababababababababababababababab"):
        with pytest.raises(SettingsError, match=r"DATA_KEY.*weak"):
            load_settings(bot_token=TOKEN, data_key=weak)
    assert load_settings(bot_token=TOKEN, data_key=KEY)
    assert DataKey.from_secret(KEY)


# -- verification presses bound to their card -----------------------------------------------


async def test_a_decision_counts_only_from_the_checks_own_card(db) -> None:
    rider = await register(db, await account(db, 1))
    check = await reg.pending_verification(db, rider.id)
    assert check is not None
    check.card_chat_id, check.card_message_id = -1001000000001, 77
    await db.flush()
    for chat, message in ((-1001000000002, 77), (-1001000000001, 78)):
        wrong = await reg.decide(
            db,
            check.id,
            approve=True,
            actor_id=9001,
            actor_name="Айгүл",
            chat_id=chat,
            message_id=message,
        )
        assert not wrong.ok and wrong.wrong_card
    assert rider.verification == "pending"
    right = await reg.decide(
        db,
        check.id,
        approve=True,
        actor_id=9001,
        actor_name="Айгүл",
        chat_id=-1001000000001,
        message_id=77,
    )
    assert right.ok and rider.verification == "verified"
