"""The IIN at rest: encryption, the lookup hash, and the data key's life from first start on."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services.crypto import (
    DataKey,
    DataKeyError,
    key_file_path,
    load_data_key,
    verify_data_key,
)
from bot.settings import Settings, load_settings
from models import District, Rider

IIN = "900101300017"
TOKEN = "123456:TEST-token"


def settings_for(database_url: str, data_key: str = ""):
    return load_settings(bot_token=TOKEN, database_url=database_url, data_key=data_key)


def test_encrypt_round_trip_never_stores_the_iin_in_clear() -> None:
    key = DataKey.from_secret("a-long-enough-secret-for-tests")
    token = key.encrypt(IIN)
    assert IIN not in token
    assert key.decrypt(token) == IIN
    # Fernet uses a fresh IV: two encryptions of one IIN differ, so equal IINs don't show.
    assert key.encrypt(IIN) != token


def test_lookup_hash_is_stable_keyed_and_fits_the_column() -> None:
    one = DataKey.from_secret("a-long-enough-secret-for-tests")
    same = DataKey.from_secret("a-long-enough-secret-for-tests")
    other = DataKey.from_secret("another-secret-of-enough-length")
    assert one.lookup_hash(IIN) == same.lookup_hash(IIN)
    assert one.lookup_hash(IIN) == one.lookup_hash("9001 0130 0017")
    assert one.lookup_hash(IIN) != other.lookup_hash(IIN)
    assert one.lookup_hash(IIN) != one.lookup_hash("900101300025")
    assert len(one.lookup_hash(IIN)) == 64
    assert IIN not in one.lookup_hash(IIN)


def test_a_different_key_cannot_decrypt() -> None:
    token = DataKey.from_secret("a-long-enough-secret-for-tests").encrypt(IIN)
    with pytest.raises(DataKeyError):
        DataKey.from_secret("another-secret-of-enough-length").decrypt(token)


def test_a_short_key_is_refused_with_advice() -> None:
    with pytest.raises(DataKeyError, match="DATA_KEY"):
        DataKey.from_secret("short")


def test_data_key_setting_wins(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'invataxi.sqlite3'}"
    secret = "a-long-enough-secret-for-tests-0123456789"
    key = load(settings_for(db, secret))
    assert key.generated is None
    assert not (tmp_path / "keys" / "invataxi.key").exists()
    assert key.decrypt(DataKey.from_secret(secret).encrypt(IIN)) == IIN


def test_first_start_on_sqlite_generates_a_private_key_file_and_says_to_back_it_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'invataxi.sqlite3'}"
    with caplog.at_level(logging.WARNING):
        first = load(settings_for(db))
    # Not in the data folder that is backed up with the database.
    path = tmp_path / "keys" / "invataxi.key"
    assert key_file_path(db) == path
    assert first.generated == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    secret = path.read_text().strip()
    assert len(secret) >= 32
    assert "back it up" in caplog.text
    assert secret not in caplog.text
    # The next start reads the same key from the file and writes nothing new.
    second = load(settings_for(db))
    assert second.generated is None
    assert second.decrypt(first.encrypt(IIN)) == IIN


def test_postgres_without_a_key_stops_with_one_line() -> None:
    with pytest.raises(DataKeyError, match="DATA_KEY is required") as err:
        load(settings_for("postgresql+asyncpg://u@localhost/db"))
    assert "\n" not in str(err.value)


def test_a_damaged_key_file_stops_the_start(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'invataxi.sqlite3'}"
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "invataxi.key").write_text("x\n")
    with pytest.raises(DataKeyError, match="damaged"):
        load(settings_for(db))


async def _store_rider(sessions, key: DataKey) -> None:
    async with sessions() as session, session.begin():
        session.add(District(id="d1", name_kk="Аудан", name_ru="Район", chat_id=-1))
        await session.flush()
        session.add(
            Rider(
                district_id="d1",
                full_name="Айгерім Сейітова",
                phone="+77011234567",
                iin_encrypted=key.encrypt(IIN),
                iin_hash=key.lookup_hash(IIN),
                home_address="Абай көшесі, 1",
                category="group1",
                vkk_number="12/24",
            )
        )


async def test_the_right_key_passes_the_start_check(sessions) -> None:
    key = DataKey.from_secret("a-long-enough-secret-for-tests")
    await _store_rider(sessions, key)
    async with sessions() as session:
        await verify_data_key(session, key)  # raises DataKeyError for any other key
        stored = (await session.scalars(select(Rider))).one()
    # The start goes on with the rider intact: the IIN reads back and is found by its hash.
    assert key.decrypt(stored.iin_encrypted) == IIN
    assert stored.iin_hash == key.lookup_hash(IIN)


async def test_a_wrong_key_stops_the_start_before_anything_is_written(sessions) -> None:
    await _store_rider(sessions, DataKey.from_secret("a-long-enough-secret-for-tests"))
    wrong = DataKey.from_secret("another-secret-of-enough-length")
    async with sessions() as session:
        with pytest.raises(DataKeyError, match="cannot decrypt") as err:
            await verify_data_key(session, wrong)
    assert "\n" not in str(err.value)


async def test_a_lost_key_file_is_not_replaced_by_a_new_one(sessions, tmp_path: Path) -> None:
    """A fresh key file next to a database with IINs would hide the loss: it is removed."""
    await _store_rider(sessions, DataKey.from_secret("a-long-enough-secret-for-tests"))
    db = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'invataxi.sqlite3'}"
    generated = load(settings_for(db))
    assert generated.generated is not None and generated.generated.exists()
    async with sessions() as session:
        with pytest.raises(DataKeyError, match="restore it from the backup"):
            await verify_data_key(session, generated)
    assert not generated.generated.exists()


def load(settings: Settings) -> DataKey:
    """The key as the app loads it from its settings."""
    return load_data_key(settings.data_key.get_secret_value(), settings.database_url)
