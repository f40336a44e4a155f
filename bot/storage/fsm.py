"""aiogram FSM storage on the bot's own database.

A conversation half-way through a registration or a booking survives a restart. Inside an update
the storage writes through that update's session, so the new step is committed together with
what the step changed (and with the mark that the update was handled) or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import READ_ONLY, current_session
from bot.storage.dialect import upsert
from models import ConversationState, utcnow

TABLE = ConversationState.__table__


class SqlStorage(BaseStorage):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessions = sessions
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        bind = sessions.kw["bind"]
        # aiogram reads the state before the update's session is open: a plain read, which
        # on SQLite takes no turn among the writers.
        self._readers = async_sessionmaker(
            bind.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

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
        async with self._session() as session:
            await upsert(
                session,
                TABLE,  # type: ignore[arg-type]
                {
                    "key": self.key_builder.build(key),
                    "state": value,
                    "data": {},
                    "updated_at": utcnow(),
                },
                key=["key"],
                update=["state", "updated_at"],
            )

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session(read=True) as session:
            row = await session.execute(
                select(ConversationState.state).where(
                    ConversationState.key == self.key_builder.build(key)
                )
            )
            return row.scalar_one_or_none()

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._session() as session:
            await upsert(
                session,
                TABLE,  # type: ignore[arg-type]
                {
                    "key": self.key_builder.build(key),
                    "state": None,
                    "data": dict(data),
                    "updated_at": utcnow(),
                },
                key=["key"],
                update=["data", "updated_at"],
            )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session(read=True) as session:
            row = await session.execute(
                select(ConversationState.data).where(
                    ConversationState.key == self.key_builder.build(key)
                )
            )
            data = row.scalar_one_or_none()
            return dict(data) if data else {}

    async def forget(self, key: StorageKey) -> None:
        """Drop a conversation entirely (cancel, erase)."""
        async with self._session() as session:
            await session.execute(
                delete(ConversationState).where(
                    ConversationState.key == self.key_builder.build(key)
                )
            )

    async def close(self) -> None:
        """The engine is closed by the app's shutdown hook, not by the storage."""
