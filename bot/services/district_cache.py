"""Districts read once a minute per process instead of once per step.

Districts change only when the districts file is synced (at start) or a group becomes a
supergroup, so the whole table (a few dozen rows) is kept per process and read again after
`TTL_SECONDS`. A write through a session of this process forgets the copy at once; a change made
by another process is seen within the TTL, as a file change is during a rolling restart anyway.

The copy is handed out as detached, fully loaded `District` objects shared by every update:
readers only, never changed or added to a session. A transaction that loaded districts through
the ORM or changed them reads through its session instead, and sees its own changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached, object_session

from models import District

# Where a session finds its process's cache (`bot.db.create_sessionmaker` puts it there).
DISTRICTS = "invataxi_districts"
# Set on a session whose transaction changed districts.
WRITTEN = "invataxi_districts_written"
TTL_SECONDS = 60.0


class DistrictCache:
    """Every district of one process, loaded at once, forgotten after the TTL or a write."""

    def __init__(
        self, ttl: float = TTL_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._rows: dict[str, District] | None = None
        self._until = 0.0
        # Counts the writes: a copy read before the last one is not kept.
        self._writes = 0

    def forget(self) -> None:
        self._rows, self._until = None, 0.0
        self._writes += 1

    async def rows(self, session: AsyncSession) -> dict[str, District]:
        held = self._rows
        if held is not None and self.monotonic() < self._until:
            return held
        # One update reads the table again; the others meanwhile keep the copy being replaced.
        self._until = self.monotonic() + self.ttl
        writes = self._writes
        loaded: dict[str, District] = {}
        try:
            for row in await session.execute(select(*District.__table__.c)):
                district = District(**row._asdict())
                make_transient_to_detached(district)
                loaded[district.id] = district
        except BaseException:
            if self._writes == writes:
                self._until = 0.0
            raise
        if self._writes == writes:
            # Unless a write made it forget meanwhile: then the next read loads again.
            self._rows = loaded
        return loaded


def _cache(session: AsyncSession | Session) -> DistrictCache | None:
    """The process's copy, unless this transaction holds districts of its own: one it wrote
    (or may write: loaded through the ORM) reads its own version, as before the cache."""
    found = session.info.get(DISTRICTS)
    if not isinstance(found, DistrictCache) or session.info.get(WRITTEN):
        return None
    if any(isinstance(held, District) for held in session.identity_map.values()):
        return None
    return found


async def district_by_id(session: AsyncSession, district_id: str) -> District | None:
    """The district, from the process's copy when the session has one."""
    cache = _cache(session)
    if cache is None:
        return await session.get(District, district_id)
    return (await cache.rows(session)).get(district_id)


async def districts_in_chat(session: AsyncSession, chat_id: int) -> list[District]:
    """The active districts whose desk is in this chat."""
    cache = _cache(session)
    if cache is None:
        return list(
            await session.scalars(
                select(District).where(District.chat_id == chat_id, District.active.is_(True))
            )
        )
    return [d for d in (await cache.rows(session)).values() if d.chat_id == chat_id and d.active]


def forget_districts(session: AsyncSession | Session) -> None:
    """After a statement that changes districts without the ORM (a bulk UPDATE): forgotten now
    and again at the commit, so no update reads the old rows back in meanwhile."""
    found = session.info.get(DISTRICTS)
    if isinstance(found, DistrictCache):
        found.forget()
        session.info[WRITTEN] = True


@event.listens_for(District, "after_insert")
@event.listens_for(District, "after_update")
@event.listens_for(District, "after_delete")
def _written(_mapper: Any, _connection: Any, target: District) -> None:
    session = object_session(target)
    if session is not None:
        forget_districts(session)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(WRITTEN, None):
        forget_districts(session)
        session.info.pop(WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(WRITTEN, None)
