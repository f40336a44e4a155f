"""The only place with dialect-specific SQL, so the SQLite default and PostgreSQL behave alike."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(session: AsyncSession, table: Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]
) -> Any:
    """Built once: constructing `excluded` and the column collections cost more than the query."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: stmt.excluded[name] for name in update}
    )


async def upsert(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, Any],
    *,
    key: Iterable[str],
    update: Iterable[str],
) -> None:
    """Insert a row or update the given columns of the existing one, in one statement.

    One statement avoids the race on first insert that read-then-write storages have.
    """
    dialect = session.get_bind().dialect.name
    stmt = _upsert_statement(dialect, table, tuple(key), tuple(update))
    await session.execute(stmt, dict(values))


async def insert_ignore(
    session: AsyncSession, table: Table, rows: list[Mapping[str, Any]], *, key: Iterable[str]
) -> int:
    """Insert rows, silently skipping those whose key exists; returns how many were new."""
    if not rows:
        return 0
    stmt = _insert(session, table).values(rows).on_conflict_do_nothing(index_elements=list(key))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
