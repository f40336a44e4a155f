"""SQLite writers of one process take turns without sleeping on the lock or losing a write."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.db import create_engine, create_sessionmaker, transaction
from models import AuditLog


async def test_many_concurrent_writers_all_commit(migrated_sqlite_url: str) -> None:
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)

    async def write(n: int) -> None:
        async with transaction(sessions) as session:
            session.add(AuditLog(action="w", subject=str(n)))
            await session.flush()
            await asyncio.sleep(0)  # hold the turn across a hand-off to other tasks
            session.add(AuditLog(action="w2", subject=str(n)))

    try:
        await asyncio.gather(*(write(n) for n in range(60)))
        async with sessions() as session:
            count = await session.scalar(select(func.count()).select_from(AuditLog))
        assert count == 120
    finally:
        await engine.dispose()


async def test_a_writer_that_fails_or_is_cancelled_gives_up_its_turn(
    migrated_sqlite_url: str,
) -> None:
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)
    holding = asyncio.Event()

    async def stuck() -> None:
        async with transaction(sessions) as session:
            session.add(AuditLog(action="stuck", subject="x"))
            await session.flush()
            holding.set()
            await asyncio.sleep(3600)

    async def failing() -> None:
        async with transaction(sessions) as session:
            session.add(AuditLog(action="failing", subject="x"))
            await session.flush()
            raise RuntimeError("handler failed")

    try:
        task = asyncio.create_task(stuck())
        await holding.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(RuntimeError):
            await failing()
        async with transaction(sessions) as session:
            session.add(AuditLog(action="after", subject="x"))
        async with sessions() as session:
            actions = list(await session.scalars(select(AuditLog.action)))
        assert actions == ["after"]
    finally:
        await engine.dispose()
