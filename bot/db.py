"""Database engine and sessions.

SQLite is the embedded default and gets the settings that make it safe under concurrency: WAL,
synchronous=NORMAL, foreign keys, a wait for a lock held elsewhere, and BEGIN IMMEDIATE so a
writing transaction waits for the lock up front instead of failing with "database is locked"
halfway through.

aiosqlite sends every call to a thread of its own and back: about 0.1 ms of CPU and two
wake-ups per call, three or four calls per statement, for statements that take microseconds in
WAL mode, and a transaction gave the loop away at every call while it held the write lock.
Statements run on the event loop instead (`_LoopConnection`): a lock held by another process is
waited for in asyncio sleeps, and checkpoints, which wait on the disk, are made in a thread
(`_Checkpoints`).

SQLite has one writer at a time. Left to itself, a connection that finds the write lock taken
sleeps and polls (1, 2, 5 … 100 ms), so under load most of the wall time went to sleeping while
the lock was already free (see README, "Speed"). Writers of one process therefore queue on an
asyncio lock first, handed over the moment the previous transaction ends (short writes first,
then in arrival order); other processes (the CLI, a migration) are waited for as above.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import os
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL connections kept beside the steps' (`create_engine`).
SPARE_CONNECTIONS = 4
# Execution option for an engine whose sessions never write (see `_configure_sqlite`).
READ_ONLY = "sqlite_read_only"
# Execution option for an engine whose sessions make short writes that go first (`_WriterQueue`).
WRITE_FIRST = "sqlite_write_first"

# Each SQLite engine's queue of writers (`_WriterQueue`).
_WRITERS: weakref.WeakKeyDictionary[Any, _WriterQueue] = weakref.WeakKeyDictionary()

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
        file = _SqliteFile.of(url)
        # A file keeps as many connections as PostgreSQL gets (below): opening one costs a
        # thread and four PRAGMAs, and the default pool of 5 opened one about twice a second
        # for the sender under load. (An in-memory database has one, shared.)
        sized = {} if file.in_memory else {"pool_size": pool_size + SPARE_CONNECTIONS}
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            async_creator=file.connect,
            **sized,
            # A returned connection is rolled back only when a transaction is open (see
            # `_configure_sqlite`): each call to aiosqlite is a trip to its thread.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine, file)
        return engine
    # No ping before each checkout: it cost a round trip per update. A connection that died
    # with a PostgreSQL restart fails its first statement instead, which invalidates the pool;
    # the update is retried by the inbox and the sender's or sweep's round runs again.
    # Updates take at most `pool_size` connections at once (they queue for a turn in
    # `bot.middlewares.DatabaseMiddleware`). The sender, storing arriving updates and the
    # sweeps keep `SPARE_CONNECTIONS` of their own: as overflow, each of their transactions
    # opened a new connection whenever the steps held the rest. A checkout waits its turn for
    # as long as it takes rather than failing a step.
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size + SPARE_CONNECTIONS,
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


def _configure_sqlite(engine: AsyncEngine, file: _SqliteFile) -> None:
    writers = _WRITERS[engine.sync_engine] = _WriterQueue()
    checkpoints = None if file.in_memory else _Checkpoints(file)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Waiting for another process's lock is `_LoopConnection`'s, in asyncio sleeps: SQLite's
        # own busy handler would sleep on the event loop.
        cursor.execute("PRAGMA busy_timeout=0")
        if checkpoints is not None:
            # Checkpoints (which wait on the disk) are made off the loop (`_Checkpoints`).
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A session that only reads (READ_ONLY) takes no write lock: under WAL it reads a
        # consistent snapshot without queueing behind writers.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        writers.acquire(conn.info, first=bool(conn.get_execution_options().get(WRITE_FIRST)))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release(conn.info)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _on_end(conn: Any) -> None:
        writers.release(conn.info)

    if checkpoints is not None:
        event.listen(engine.sync_engine, "commit", checkpoints.committed)

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
    """aiosqlite, with every call but closing made on the event loop (see the module's
    docstring).

    Statements in WAL mode take microseconds and never wait on the disk (checkpoints are made
    off the loop, `_Checkpoints`), so a transaction runs from BEGIN to COMMIT without giving
    the loop away, and holds SQLite's write lock for no longer than its own work. The one wait
    is for another process's write lock (the CLI, a migration): SQLite answers "busy" at once
    (busy_timeout 0) and the statement is tried again after an asyncio sleep, so the bot goes
    on answering meanwhile.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _in_thread(fn):
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        waited, pause = 0.0, 0.001
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                busy = "database is locked" in str(exc) or "database is busy" in str(exc)
                retried = getattr(fn, "__name__", "") in _RETRIED
                if not busy or not retried or waited >= _BUSY_TIMEOUT_S:
                    raise
            # A statement SQLite refused as busy did not run: it is simply tried again.
            await asyncio.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 0.05)


# Calls of the connection that may wait on the disk: made in aiosqlite's thread. (A cursor's
# close is not one of them: it only frees the statement.)
_THREAD_CALLS = frozenset({"close", "executescript", "backup", "iterdump"})


def _in_thread(fn: Callable[..., Any]) -> bool:
    return (
        isinstance(getattr(fn, "__self__", None), sqlite3.Connection)
        and getattr(fn, "__name__", "") in _THREAD_CALLS
    )


# Calls SQLite may refuse as busy, and that can then simply be made again.
_RETRIED = frozenset({"execute", "executemany", "commit"})
_BUSY_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_MS / 1000


@dataclass(frozen=True)
class _SqliteFile:
    """How to open the database: as aiosqlite does, but as `_LoopConnection`s."""

    args: tuple[Any, ...]
    params: dict[str, Any]
    in_memory: bool

    @classmethod
    def of(cls, url: URL) -> _SqliteFile:
        cargs, cparams = SQLiteDialect_aiosqlite().create_connect_args(url)
        database = str(url.database or "")
        in_memory = not database or ":memory:" in database or "mode=memory" in database
        params = {**cparams, "timeout": 0, "check_same_thread": False}
        return cls(tuple(cargs), params, in_memory)

    def open(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(*self.args, **self.params)
        return connection

    async def connect(self) -> aiosqlite.Connection:
        connection = _LoopConnection(self.open, 64)
        # As SQLAlchemy does for aiosqlite: a forgotten connection must not keep us alive.
        connection._thread.daemon = True
        opened: aiosqlite.Connection = await connection
        return opened


class _Checkpoints:
    """Copies the WAL back into the database file every `EVERY` commits, in a thread.

    SQLite would do it inside a COMMIT (every 1,000 pages), which here runs on the event loop,
    and a checkpoint writes and syncs the database file. A PASSIVE checkpoint waits for nobody
    and nobody waits for it."""

    EVERY = 200

    def __init__(self, file: _SqliteFile) -> None:
        self.file = file
        self.commits = 0
        self.running: asyncio.Future[None] | None = None

    def committed(self, _conn: Any) -> None:
        self.commits += 1
        if self.commits % self.EVERY or (self.running is not None and not self.running.done()):
            return
        loop = asyncio.get_running_loop()
        self.running = loop.run_in_executor(None, self._checkpoint)
        self.running.add_done_callback(_checkpoint_done)

    def _checkpoint(self) -> None:
        connection = self.file.open()
        try:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()


def _checkpoint_done(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        # The next one tries again; meanwhile the WAL only grows.
        log.warning("a SQLite checkpoint failed: %s", type(done.exception()).__name__)


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite has a transaction open on this connection (a flag read, no call)."""
    try:
        return bool(dbapi_connection._connection.in_transaction)
    except (AttributeError, ValueError):
        # No way to tell (a closed connection answers ValueError): roll back to be sure.
        return True


def writers_waiting(engine: AsyncEngine) -> int:
    """How many writers of this process wait for SQLite's writer turn (0 on PostgreSQL)."""
    writers = _WRITERS.get(engine.sync_engine)
    return 0 if writers is None else writers.waiting()


class _WriterQueue:
    """This process's writers to one SQLite file, one at a time: short writes first, then the
    others in arrival order.

    Held from BEGIN IMMEDIATE to COMMIT or ROLLBACK; `info` is the connection's own dict, which
    remembers whether it holds the turn. Called from SQLAlchemy's synchronous events, which run
    inside the async engine's greenlet, so waiting for the turn suspends only this task.

    Short writes (`WRITE_FIRST`: storing an arriving update, recording that messages were sent)
    take a millisecond; behind a queue of steps they waited for all of them, and with them the
    person whose update was being stored. Going first, they make each step wait at most one
    short write longer.

    A free turn is taken by whoever asks, even while the writer woken for it has not run yet:
    transactions run on the loop without giving it away (`_LoopConnection`), so one that finds
    the turn free is done before the woken writer runs. Handing the turn over instead left it
    unused for a whole turn of the loop per writer, and everyone arriving meanwhile queued.
    """

    HOLDING = "invataxi_writer_turn"

    def __init__(self) -> None:
        # One turn per event loop: tests and the CLI run several loops in one process.
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = (
            weakref.WeakKeyDictionary()
        )

    def _turn(self) -> _Turn:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = _Turn()
        return turn

    def acquire(self, info: dict[str, Any], first: bool = False) -> None:
        if info.get(self.HOLDING) is not None:
            return
        turn = self._turn()
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        # Woken and found the turn taken again: wait at the front.
        rank = 0 if first else 1
        while turn.held:
            mine = asyncio.get_running_loop().create_future()
            heapq.heappush(turn.waiting, (rank, next(turn.arrivals), mine))
            try:
                left = max(0.0, deadline - time.monotonic())
                await_only(asyncio.wait_for(asyncio.shield(mine), left))
            except BaseException as exc:
                if mine.done() and not mine.cancelled():
                    # Woken just as we gave up: wake the next one instead.
                    turn.wake_next()
                else:
                    mine.cancel()
                if isinstance(exc, TimeoutError):
                    raise sqlite3.OperationalError("database is locked") from None
                raise
            rank = -1
        turn.held = True
        info[self.HOLDING] = turn

    def waiting(self) -> int:
        turn = self._turns.get(asyncio.get_running_loop())
        return 0 if turn is None else sum(1 for *_, f in turn.waiting if not f.done())

    def release(self, info: dict[str, Any]) -> None:
        turn = info.pop(self.HOLDING, None)
        if turn is not None:
            turn.held = False
            turn.wake_next()


@dataclass
class _Turn:
    """Whether a writer holds the turn, and who waits for it (rank, arrival, future)."""

    held: bool = False
    waiting: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    arrivals: itertools.count[int] = field(default_factory=itertools.count)

    def wake_next(self) -> None:
        """The turn is free: wake the first writer still waiting (it takes it if still free)."""
        while self.waiting:
            _, _, future = heapq.heappop(self.waiting)
            if not future.done():
                future.set_result(None)
                return


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


def short_writes(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for writes of a millisecond that someone waits on (storing an arriving update,
    recording a send): on SQLite they take the writer's turn before the steps in the queue."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        return sessions
    kw = {k: v for k, v in sessions.kw.items() if k != "bind"}
    return async_sessionmaker(bind.execution_options(**{WRITE_FIRST: True}), **kw)
