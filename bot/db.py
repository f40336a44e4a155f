"""Database engine and sessions.

SQLite is the embedded default and gets the settings that make it safe under concurrency: WAL,
synchronous=NORMAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE so a writing transaction
waits for the lock up front instead of failing with "database is locked" halfway through.

aiosqlite sends every call to a thread of its own and back: about 0.1 ms of CPU and two
wake-ups per call, three or four calls per statement, for statements that take microseconds in
WAL mode. Calls that never wait run on the event loop instead (`_LoopConnection`); only those
that may wait (BEGIN, which can meet another process's write lock; COMMIT, which writes the WAL
and may checkpoint; PRAGMAs, opening and closing) still go to aiosqlite's thread.

SQLite has one writer at a time. Left to itself, a connection that finds the write lock taken
sleeps and polls (1, 2, 5 … 100 ms), so under load most of the wall time went to sleeping while
the lock was already free (see README, "Speed"). Writers of one process therefore queue on an
asyncio lock first, handed over in arrival order the moment the previous transaction ends; the
busy timeout remains for other processes (the CLI, a migration).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from bot.services.district_cache import DISTRICTS, DistrictCache

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option for an engine whose sessions never write (see `_configure_sqlite`).
READ_ONLY = "sqlite_read_only"

# The session of the update being handled, so the FSM storage writes in the same transaction.
current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
    "current_session", default=None
)


def create_engine(database_url: str, *, echo: bool = False, pool_size: int = 8) -> AsyncEngine:
    """Build the async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    `hide_parameters`: a database error (logged with the failing update) names the statement
    but never the values bound to it, which are names, phones, addresses and typed text.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            private_file(Path(url.database))
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            async_creator=_sqlite_connector(url),
            # A returned connection is rolled back only when a transaction is open (see
            # `_configure_sqlite`): each call to aiosqlite is a trip to its thread.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine)
        return engine
    # No ping before each checkout: it cost a round trip per update. A connection that died
    # with a PostgreSQL restart fails its first statement instead, which invalidates the pool;
    # the update is retried by the inbox and the sender's or sweep's round runs again.
    # Updates take at most `pool_size` connections at once (they queue for a turn in
    # `bot.middlewares.DatabaseMiddleware`); the overflow is for the sender and the sweeps, and
    # a checkout waits its turn for as long as it takes rather than failing a step.
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=6,
        pool_timeout=600,
        pool_recycle=1800,
    )


def private_file(database: Path) -> None:
    """The SQLite file readable by the bot's user only (0600; its folder 0700 when new).

    SQLite creates the `-wal` and `-shm` files with the database file's mode, so making the
    database private before the first connection makes them private too.
    """
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (database, database.with_name(database.name + "-wal")):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


def _configure_sqlite(engine: AsyncEngine) -> None:
    writers = _WriterQueue()

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A session that only reads (READ_ONLY) takes no write lock: under WAL it reads a
        # consistent snapshot without queueing behind writers.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        writers.acquire(conn.info)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release(conn.info)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _on_end(conn: Any) -> None:
        writers.release(conn.info)

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        # The pool's own reset would send a ROLLBACK after every commit, for nothing.
        if state.asyncio_safe and _in_transaction(dbapi_connection):
            dbapi_connection.rollback()

    # A connection closed or invalidated in the middle of a transaction ends it too.
    @event.listens_for(engine.sync_engine.pool, "checkin")
    @event.listens_for(engine.sync_engine.pool, "invalidate")
    @event.listens_for(engine.sync_engine.pool, "close")
    def _on_connection_gone(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        writers.release(record.info)


class _LoopConnection(aiosqlite.Connection):
    """aiosqlite, with the calls that never wait made on the event loop (see the module's
    docstring); the rest go to aiosqlite's thread as before."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _may_wait(fn, args):
            return await super()._execute(fn, *args, **kwargs)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


# Statements that may wait: for another process's write lock (BEGIN, with the busy timeout's
# sleeps), or on the disk (PRAGMA journal_mode and friends at connect, VACUUM).
_WAITING_STATEMENTS = ("BEGIN", "PRAGMA", "VACUUM")
_WAITING_CALLS = frozenset({"commit", "close", "executescript", "backup", "iterdump"})


def _may_wait(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    name = getattr(fn, "__name__", "")
    if name in _WAITING_CALLS:
        return True
    if name in ("execute", "executemany") and args:
        return str(args[0]).lstrip()[:6].upper().startswith(_WAITING_STATEMENTS)
    return False


def _sqlite_connector(url: URL) -> Callable[[], Any]:
    """Open connections as aiosqlite does, as `_LoopConnection`s usable from the loop."""
    cargs, cparams = SQLiteDialect_aiosqlite().create_connect_args(url)
    cparams = {**cparams, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}

    async def connect() -> aiosqlite.Connection:
        connection = _LoopConnection(partial(sqlite3.connect, *cargs, **cparams), 64)
        # As SQLAlchemy does for aiosqlite: a forgotten connection must not keep us alive.
        connection._thread.daemon = True
        return await connection

    return connect


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite has a transaction open on this connection (a flag read, no call)."""
    try:
        return bool(dbapi_connection._connection.in_transaction)
    except (AttributeError, ValueError):
        # No way to tell (a closed connection answers ValueError): roll back to be sure.
        return True


class _WriterQueue:
    """This process's writers to one SQLite file, one at a time, first come first served.

    Held from BEGIN IMMEDIATE to COMMIT or ROLLBACK; `info` is the connection's own dict, which
    remembers whether it holds the turn. Called from SQLAlchemy's synchronous events, which run
    inside the async engine's greenlet, so waiting for the turn suspends only this task.
    """

    HOLDING = "invataxi_writer_turn"

    def __init__(self) -> None:
        # One lock per event loop: tests and the CLI run several loops in one process.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def acquire(self, info: dict[str, Any]) -> None:
        if info.get(self.HOLDING) is not None:
            return
        lock = self._lock()
        try:
            await_only(asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000))
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        info[self.HOLDING] = lock

    def release(self, info: dict[str, Any]) -> None:
        lock = info.pop(self.HOLDING, None)
        if lock is not None and lock.locked():
            lock.release()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of one app; they share the app's copy of the districts (`district_cache`)."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, info={DISTRICTS: DistrictCache()}
    )


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work outside an update (sender, sweeps): commit on success, else roll back."""
    async with sessions() as session, session.begin():
        yield session


def reader(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for rendering only: on SQLite they read without taking the write lock, so
    building a message never waits behind the writes of handlers, sweeps and other sends."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        return sessions
    return async_sessionmaker(bind.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
