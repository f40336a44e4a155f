"""SQLite writers of one process take turns without sleeping on the lock or losing a write;
short writes go first, and a lock held by another process never stops the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import (
    create_engine,
    create_sessionmaker,
    reader,
    short_writes,
    transaction,
    writers_waiting,
)
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


async def test_a_short_write_goes_before_the_steps_waiting_for_the_writer(
    migrated_sqlite_url: str,
) -> None:
    """Storing an arriving update waits for the step in progress, not for every step queued."""
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)
    holding, done = asyncio.Event(), asyncio.Event()
    committed: list[str] = []

    async def write(name: str, makers: object = sessions) -> None:
        async with transaction(makers) as session:  # type: ignore[arg-type]
            session.add(AuditLog(action=name, subject="x"))
            await session.flush()
            if name == "step in progress":
                holding.set()
                await done.wait()
        committed.append(name)

    try:
        first = asyncio.create_task(write("step in progress"))
        await holding.wait()
        steps = [asyncio.create_task(write(f"step {n}")) for n in range(3)]
        await queued(engine, 3)
        stored = asyncio.create_task(write("update stored", short_writes(sessions)))
        await queued(engine, 4)
        done.set()
        await asyncio.gather(first, stored, *steps)
        assert committed[:2] == ["step in progress", "update stored"]
        assert sorted(committed[2:]) == ["step 0", "step 1", "step 2"]
    finally:
        await engine.dispose()


async def queued(engine: AsyncEngine, writers: int) -> None:
    for _ in range(2000):
        if writers_waiting(engine) >= writers:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{writers} writers never queued")


async def test_a_lock_held_by_another_process_does_not_stop_the_event_loop(
    migrated_sqlite_url: str, tmp_path: object
) -> None:
    """Statements run on the loop, but BEGIN waits for another process's lock in aiosqlite's
    thread: the bot goes on answering meanwhile, and reads are not held up at all."""
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)
    other = sqlite3.connect(migrated_sqlite_url.split("///", 1)[1], isolation_level=None)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    try:
        other.execute("BEGIN IMMEDIATE")  # the CLI, say, in the middle of a write
        clock = asyncio.create_task(ticker())
        writer = asyncio.create_task(write_one(sessions))
        async with reader(sessions)() as session:
            assert await session.scalar(select(func.count()).select_from(AuditLog)) == 0
        start = ticks
        for _ in range(2000):
            if ticks >= start + 20:
                break
            await asyncio.sleep(0.01)
        assert ticks >= start + 20, "the loop went on while the write waited"
        assert not writer.done(), "the write waits for the other process"
        other.execute("COMMIT")
        await asyncio.wait_for(writer, 10)
        clock.cancel()
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(AuditLog)) == 1
    finally:
        other.close()
        await engine.dispose()


async def write_one(sessions: object) -> None:
    async with transaction(sessions) as session:  # type: ignore[arg-type]
        session.add(AuditLog(action="after the other process", subject="x"))


async def test_a_connection_returned_in_a_transaction_is_rolled_back(
    migrated_sqlite_url: str,
) -> None:
    """No ROLLBACK after every commit, but never a transaction left open in the pool."""
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)
    try:
        connection = await engine.connect()
        await connection.execute(insert(AuditLog).values(action="half", subject="x"))
        await connection.close()
        async with transaction(sessions) as session:
            session.add(AuditLog(action="whole", subject="x"))
        async with sessions() as session:
            assert list(await session.scalars(select(AuditLog.action))) == ["whole"]
    finally:
        await engine.dispose()


async def test_the_database_file_gets_the_writes_not_only_the_wal(
    migrated_sqlite_url: str,
) -> None:
    """Checkpoints are made in a thread every so many commits (none inside a COMMIT, which runs
    on the event loop): the WAL does not grow for ever and the file holds the data."""
    path = Path(migrated_sqlite_url.split("///", 1)[1])
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)

    def pages_in_file() -> int:
        return int.from_bytes(path.read_bytes()[28:32], "big")

    before = pages_in_file()
    try:
        for n in range(450):
            async with transaction(sessions) as session:
                session.add(AuditLog(action="w", subject=f"{n}-" + "x" * 1000))
        for _ in range(1000):
            if pages_in_file() > before + 50:
                break
            await asyncio.sleep(0.01)
        assert pages_in_file() > before + 50
    finally:
        await engine.dispose()


async def test_a_transaction_does_not_give_the_loop_away(migrated_sqlite_url: str) -> None:
    """From BEGIN to COMMIT nothing else runs: the write lock is held for this work only, and
    no other writer queues behind a transaction that is waiting for a thread."""
    engine = create_engine(migrated_sqlite_url)
    sessions = create_sessionmaker(engine)
    others_ran: list[str] = []
    try:
        async with sessions() as session:
            session.add(AuditLog(action="first", subject="x"))
            await session.flush()
            asyncio.get_running_loop().call_soon(others_ran.append, "another task")
            for n in range(5):
                session.add(AuditLog(action="more", subject=str(n)))
                await session.flush()
                await session.scalar(select(func.count()).select_from(AuditLog))
            await session.commit()
            assert others_ran == []
    finally:
        await engine.dispose()
