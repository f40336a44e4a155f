"""A copy of the database gives no IIN: nothing in clear from which it follows (issue 12.2)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, text

from bot.db import create_engine, create_sessionmaker
from bot.migrate import upgrade
from bot.services.crypto import DataKey, seal_iin
from models import District, Rider
from models.sealed import SealedValueError, use_cipher

SECRET = "migration-test-key-0123456789abcdef0123"
IIN = "580305400017"


async def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: inspect(c).get_columns(table))
            return {c["name"] for c in cols}
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    rows: list[tuple[object, ...]] = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement), params)
                if result.returns_rows:
                    rows = [tuple(r) for r in result.all()]
    finally:
        await engine.dispose()
    return rows


async def test_existing_rows_keep_their_birth_date_only_sealed(db_url: str) -> None:
    key = DataKey.from_secret(SECRET)
    sealed = seal_iin(key, IIN)
    await asyncio.to_thread(upgrade, db_url, "0001")
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    await _execute(
        db_url,
        "INSERT INTO districts (id, name_kk, name_ru, chat_id, language, rules,"
        " extra_categories, active, updated_at) VALUES ('d1', 'А', 'Р', -1, 'ru', '{}', '[]',"
        " true, :now)",
        "INSERT INTO accounts (id, telegram_id, display_name, created_at, updated_at)"
        " VALUES (1, 700, 'x', :now, :now), (2, 701, 'y', :now, :now)",
        "INSERT INTO riders (id, district_id, full_name, phone, iin_encrypted, iin_hash,"
        " iin_last4, birth_date, home_address, category, vkk_number, needs_wheelchair,"
        " needs_walker, low_vision, needs_assistant, usual_assistant, usual_companion,"
        " verification, created_at, updated_at) VALUES (1, 'd1', 'Name', '+77010000000',"
        " :enc, :hash, '0017', '1958-03-05', 'addr', 'elderly', '1/2', false, false, false,"
        " false, false, false, 'verified', :now, :now)",
        "INSERT INTO representations (rider_id, account_id, relationship_kind, created_at)"
        " VALUES (1, 1, 'relative', :now), (1, 2, 'guardian', :now)",
        now=now,
        enc=sealed.encrypted,
        hash=sealed.lookup_hash,
    )
    await asyncio.to_thread(upgrade, db_url, data_key=SECRET)

    columns = await _columns(db_url, "riders")
    assert "iin_last4" not in columns and "birth_date" not in columns
    raw = await _execute(db_url, "SELECT * FROM riders")
    dump = " ".join(str(v) for v in raw[0])
    # Neither the birth date (the IIN's first six digits) nor the last four are in clear.
    assert "1958" not in dump and "0017" not in dump and "580305" not in dump

    use_cipher(key.cipher)
    engine = create_engine(db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rider = await session.get(Rider, 1)
            assert rider is not None
            assert rider.birth_date == date(1958, 3, 5)
            assert rider.iin_last4 == "0017"
    finally:
        await engine.dispose()
    rights = await _execute(
        db_url, "SELECT relationship_kind, rights FROM representations ORDER BY account_id"
    )
    assert rights == [("relative", "rides"), ("guardian", "full")]


async def test_birth_dates_are_not_migrated_without_the_key(sqlite_url: str) -> None:
    await asyncio.to_thread(upgrade, sqlite_url, "0001")
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    await _execute(
        sqlite_url,
        "INSERT INTO districts (id, name_kk, name_ru, chat_id, language, rules,"
        " extra_categories, active, updated_at) VALUES ('d1', 'А', 'Р', -1, 'ru', '{}', '[]',"
        " true, :now)",
        "INSERT INTO riders (id, district_id, full_name, phone, iin_encrypted, iin_hash,"
        " iin_last4, birth_date, home_address, category, vkk_number, needs_wheelchair,"
        " needs_walker, low_vision, needs_assistant, usual_assistant, usual_companion,"
        " verification, created_at, updated_at) VALUES (1, 'd1', 'N', '+7', 'e', 'h', '0017',"
        " '1958-03-05', 'a', 'elderly', '1', false, false, false, false, false, false,"
        " 'verified', :now, :now)",
        now=now,
    )
    with pytest.raises(RuntimeError, match="data key"):
        await asyncio.to_thread(upgrade, sqlite_url)
    # Nothing was lost: the old columns are still there for a run with the key.
    assert "birth_date" in await _columns(sqlite_url, "riders")


async def test_new_rows_store_the_birth_date_sealed(sessions) -> None:
    key = DataKey.from_secret(SECRET)
    use_cipher(key.cipher)
    sealed = seal_iin(key, IIN)
    async with sessions() as session, session.begin():
        session.add(District(id="d1", name_kk="А", name_ru="Р", chat_id=-1))
        await session.flush()
        session.add(
            Rider(
                id=5,
                district_id="d1",
                full_name="N",
                phone="+7",
                iin_encrypted=sealed.encrypted,
                iin_hash=sealed.lookup_hash,
                birth_date=date(1958, 3, 5),
                home_address="a",
                category="elderly",
                vkk_number="1",
            )
        )
    async with sessions() as session:
        raw = (await session.execute(text("SELECT birth_date_sealed FROM riders"))).scalar_one()
        assert "1958" not in raw
        use_cipher(DataKey.from_secret("some-other-key-0123456789abcdef").cipher)
        with pytest.raises(SealedValueError):
            await session.get(Rider, 5)
