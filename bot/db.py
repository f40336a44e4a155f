"""Database engine and sessions.

SQLite is the embedded default and gets the settings that make it safe under concurrency: WAL,
synchronous=NORMAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE so a writing transaction
waits for the lock up front instead of failing with "database is locked" halfway through.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option for an engine whose sessions never write (see `_configure_sqlite`).
READ_ONLY = "sqlite_read_only"

# The session of the update being handled, so the FSM storage writes in the same transaction.
current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
    "current_session", default=None
)


def create_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: AsyncEngine) -> None:
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
        read_only = conn.get_execution_options().get(READ_ONLY)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work outside an update (sender, sweeps): commit on success, else roll back."""
    async with sessions() as session, session.begin():
        yield session
