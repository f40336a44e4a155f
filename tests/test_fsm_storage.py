"""Conversation state survives a restart: on the database by default and on Redis."""

from __future__ import annotations

import asyncio

from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.app import create_storage
from bot.db import create_engine, create_sessionmaker, current_session
from bot.settings import load_settings
from bot.storage.fsm import SqlStorage


class Booking(StatesGroup):
    destination = State()


KEY = StorageKey(bot_id=1, chat_id=42, user_id=42)


async def _write_then_reopen(
    settings_kwargs: dict[str, object],
) -> tuple[str | None, dict[str, object]]:
    settings = load_settings(bot_token="1:a", **settings_kwargs)
    engine = create_engine(settings.database_url)
    storage, isolation = create_storage(settings, create_sessionmaker(engine))
    await storage.set_state(KEY, Booking.destination)
    await storage.set_data(KEY, {"pickup": "Абай көшесі 10", "return": True})
    await storage.close()
    await engine.dispose()

    # A new process: new engine, new storage object.
    engine = create_engine(settings.database_url)
    storage, isolation = create_storage(settings, create_sessionmaker(engine))
    try:
        return await storage.get_state(KEY), await storage.get_data(KEY)
    finally:
        await storage.close()
        await isolation.close()
        await engine.dispose()


async def test_state_survives_restart_on_database(migrated_db: str) -> None:
    state, data = await _write_then_reopen({"database_url": migrated_db})
    assert state == "Booking:destination"
    assert data == {"pickup": "Абай көшесі 10", "return": True}


async def test_with_redis_the_state_stays_on_the_database(
    redis_url: str, migrated_db: str
) -> None:
    """Redis carries the per-person lock; the state commits with the step, in the database."""
    from aiogram.fsm.storage.redis import RedisEventIsolation

    state, data = await _write_then_reopen({"redis_url": redis_url, "database_url": migrated_db})
    assert state == "Booking:destination"
    assert data == {"pickup": "Абай көшесі 10", "return": True}
    settings = load_settings(bot_token="1:a", redis_url=redis_url, database_url=migrated_db)
    engine = create_engine(migrated_db)
    storage, isolation = create_storage(settings, create_sessionmaker(engine))
    try:
        assert isinstance(storage, SqlStorage)
        assert isinstance(isolation, RedisEventIsolation)
    finally:
        await isolation.close()
        await engine.dispose()


async def test_state_commits_with_the_update_or_not_at_all(migrated_db: str) -> None:
    """Inside an update the step is written by the update's transaction: a rollback undoes it."""
    settings = load_settings(bot_token="1:a", database_url=migrated_db)
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    storage, _ = create_storage(settings, sessions)
    try:
        async with sessions() as session:
            token = current_session.set(session)
            try:
                await storage.set_state(KEY, Booking.destination)
                assert await storage.get_state(KEY) == "Booking:destination"
                await session.rollback()
            finally:
                current_session.reset(token)
        assert await storage.get_state(KEY) is None
    finally:
        await engine.dispose()


async def test_first_writes_race_without_error(migrated_db: str) -> None:
    """Two first writes of one key at once: one upsert statement each, no integrity error."""
    settings = load_settings(bot_token="1:a", database_url=migrated_db)
    engine = create_engine(settings.database_url)
    storage, _ = create_storage(settings, create_sessionmaker(engine))
    try:
        await asyncio.gather(*(storage.set_data(KEY, {"n": i}) for i in range(10)))
        assert (await storage.get_data(KEY))["n"] in range(10)
    finally:
        await engine.dispose()


async def test_inside_an_update_the_state_is_read_once_and_stays_true(migrated_db: str) -> None:
    """One SELECT and one write per update however often a step asks; the next update sees it."""
    from sqlalchemy import event

    settings = load_settings(bot_token="1:a", database_url=migrated_db)
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    storage, _ = create_storage(settings, sessions)
    reads: list[str] = []
    writes: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)
        elif "conversation_states" in statement:
            writes.append(statement)

    try:
        await storage.set_data(KEY, {"stops": ["Абай көшесі 10"]})
        reads.clear()
        async with sessions() as session:
            token = current_session.set(session)
            try:
                assert await storage.get_state(KEY) is None
                data = await storage.get_data(KEY)
                data["stops"].append("changed by the caller, never saved")
                assert await storage.get_data(KEY) == {"stops": ["Абай көшесі 10"]}
                await storage.set_state(KEY, Booking.destination)
                await storage.set_data(KEY, {"stops": ["Толе би көшесі, 5"]})
                assert await storage.get_state(KEY) == "Booking:destination"
                assert await storage.get_data(KEY) == {"stops": ["Толе би көшесі, 5"]}
                writes_before = len(writes)
                assert isinstance(storage, SqlStorage)
                await storage.flush()  # what DatabaseMiddleware does before it commits
                assert len(writes) == writes_before + 1  # state and data in one statement
                await session.commit()
            finally:
                current_session.reset(token)
        assert len(reads) == 1
        assert await storage.get_state(KEY) == "Booking:destination"
        assert await storage.get_data(KEY) == {"stops": ["Толе би көшесі, 5"]}
    finally:
        await engine.dispose()
