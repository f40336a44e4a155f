"""aiogram FSM storage on the bot's own database.

A conversation half-way through a registration or a booking survives a restart. Inside an update
the storage works through that update's session: it reads a conversation once, keeps what the
step writes, and `DatabaseMiddleware` flushes it in one statement just before the commit, so the
new step is committed together with what the step changed (and with the mark that the update
was handled) or not at all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import current_session, reader
from bot.services.privacy import ERASED_IN_SESSION
from bot.storage.dialect import upsert
from models import ConversationState, utcnow

TABLE = ConversationState.__table__
FSM_CACHE = "invataxi_fsm"


Row = tuple[str | None, dict[str, Any]]
# Read at every update: built once (building it costs more than running it).
STATE_OF = select(ConversationState.state, ConversationState.data).where(
    ConversationState.key == bindparam("b_key")
)


@dataclass
class _Held:
    """This transaction's view of the conversations it read or wrote, forgotten with it."""

    transaction: object
    rows: dict[str, Row] = field(default_factory=dict)
    # Columns written by the update and not yet sent: one upsert per row, just before commit.
    dirty: dict[str, set[str]] = field(default_factory=dict)


def _held(session: AsyncSession) -> _Held:
    """Only the update's own session lives long enough to profit; the person's event-isolation
    lock guarantees that no other update of theirs writes the row meanwhile."""
    transaction = session.sync_session.get_transaction()
    held: _Held | None = session.info.get(FSM_CACHE)
    if held is None or held.transaction is not transaction:
        held = session.info[FSM_CACHE] = _Held(transaction)
    return held


def _stored(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data as the JSON column gives it back, and a copy the caller may change freely."""
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


class SqlStorage(BaseStorage):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessions = sessions
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        # A read outside an update (another person's state, the CLI) is a plain read, which
        # on SQLite takes no turn among the writers.
        self._readers = reader(sessions)

    @asynccontextmanager
    async def _session(self, *, read: bool = False) -> AsyncIterator[AsyncSession]:
        session = current_session.get()
        if session is not None:
            yield session
            return
        async with (self._readers if read else self.sessions)() as own, own.begin():
            yield own

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, "state", lambda row: (value, row[1]))

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session(read=True) as session:
            return (await self._row(session, key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        stored = _stored(data)
        await self._write(key, "data", lambda row: (row[0], stored))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session(read=True) as session:
            return _stored((await self._row(session, key))[1])

    async def forget(self, key: StorageKey) -> None:
        """Drop a conversation entirely (cancel, erase)."""
        async with self._session() as session:
            built = self.key_builder.build(key)
            await session.execute(delete(ConversationState).where(ConversationState.key == built))
            held = _held(session)
            held.rows[built] = (None, {})
            held.dirty.pop(built, None)

    async def flush(self) -> None:
        """Write what the update changed, one statement a conversation; called before commit.

        A step sets the state and the data separately (aiogram's API); inside an update both
        wait here and go to the database as one upsert, in the update's transaction.
        """
        session = current_session.get()
        if session is None:
            return
        held = _held(session)
        erased = {str(tid) for tid in session.info.get(ERASED_IN_SESSION, ())}
        for built, columns in held.dirty.items():
            if erased & set(built.split(":")):
                # /forget in this very update: no conversation row is written back for them.
                continue
            state, data = held.rows[built]
            await upsert(
                session,
                TABLE,  # type: ignore[arg-type]
                {"key": built, "state": state, "data": data, "updated_at": utcnow()},
                key=["key"],
                update=[*sorted(columns), "updated_at"],
            )
        held.dirty.clear()

    async def _write(self, key: StorageKey, column: str, change: Callable[[Row], Row]) -> None:
        built = self.key_builder.build(key)
        session = current_session.get()
        if session is not None:
            row = await self._row(session, key)
            held = _held(session)
            held.rows[built] = change(row)
            held.dirty.setdefault(built, set()).add(column)
            return
        state, data = change((None, {}))
        async with self._session() as own:
            await upsert(
                own,
                TABLE,  # type: ignore[arg-type]
                {"key": built, "state": state, "data": data, "updated_at": utcnow()},
                key=["key"],
                update=[column, "updated_at"],
            )

    async def _row(self, session: AsyncSession, key: StorageKey) -> Row:
        """State and data, read once per transaction: a step asks for them several times."""
        built = self.key_builder.build(key)
        found = _held(session).rows.get(built)
        if found is None:
            row = (await session.execute(STATE_OF, {"b_key": built})).one_or_none()
            found = (row[0], dict(row[1] or {})) if row else (None, {})
            # After the read, which may have begun the transaction the cache belongs to.
            _held(session).rows[built] = found
        return found

    async def close(self) -> None:
        """The engine is closed by the app's shutdown hook, not by the storage."""
