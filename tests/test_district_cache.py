"""The process's copy of the districts: read once, forgotten on a write or after its TTL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.dispatch import district_for_chat
from bot.services.district_cache import (
    DISTRICTS,
    DistrictCache,
    district_by_id,
    forget_districts,
)
from models import District

GROUP = -100555


class DistrictReads:
    """SELECTs from the districts table (SQLite's BEGIN is a statement too, not counted)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = sessions.kw["bind"].sync_engine
        self.count = 0
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT") and "FROM districts" in statement:
            self.count += 1

    def stop(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def add_districts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        session.add_all(
            [
                District(id="north", name_kk="Солтүстік", name_ru="Север", chat_id=GROUP),
                District(id="south", name_kk="Оңтүстік", name_ru="Юг", chat_id=GROUP - 1),
            ]
        )


async def test_districts_are_read_once_and_handed_out_detached(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_districts(sessions)
    reads = DistrictReads(sessions)
    try:
        async with sessions() as session:
            first = await district_by_id(session, "north")
            again = await district_by_id(session, "south")
            desk = await district_for_chat(session, GROUP - 1, None)
        async with sessions() as session:
            later = await district_by_id(session, "north")
            missing = await district_by_id(session, "nowhere")
    finally:
        reads.stop()
    assert reads.count == 1
    assert first is later and first is not None and first.name_ru == "Север"
    assert again is desk and again is not None and again.chat_id == GROUP - 1
    assert missing is None


async def test_a_write_through_the_app_is_seen_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_districts(sessions)
    async with sessions() as session:
        assert (await district_by_id(session, "north")) is not None
    async with sessions() as session, session.begin():
        district = await session.get(District, "north")
        assert district is not None
        district.desk_phone = "+77282241122"
    async with sessions() as session:
        found = await district_by_id(session, "north")
        assert found is not None and found.desk_phone == "+77282241122"
    # A bulk UPDATE says so itself.
    async with sessions() as session, session.begin():
        await session.execute(update(District).values(active=False))
        forget_districts(session)
    async with sessions() as session:
        assert await district_for_chat(session, GROUP, None) is None


async def test_another_processs_change_is_seen_after_the_ttl(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_districts(sessions)
    now = [0.0]
    cache = DistrictCache(ttl=60, monotonic=lambda: now[0])
    mine = async_sessionmaker(sessions.kw["bind"], info={DISTRICTS: cache})
    async with mine() as session:
        assert (await district_by_id(session, "north")) is not None
    # Another process (here: sessions without this cache) renames it.
    async with sessions() as session, session.begin():
        await session.execute(
            update(District).where(District.id == "north").values(name_ru="Северный")
        )
    async with mine() as session:
        kept = await district_by_id(session, "north")
        assert kept is not None and kept.name_ru == "Север"
    now[0] = 61.0
    async with mine() as session:
        fresh = await district_by_id(session, "north")
        assert fresh is not None and fresh.name_ru == "Северный"


async def test_a_transaction_reads_its_own_change_and_a_rollback_leaves_none(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_districts(sessions)
    async with sessions() as session:
        assert (await district_by_id(session, "north")) is not None
    async with sessions() as session:
        district = await session.get(District, "north")
        assert district is not None
        district.name_ru = "Черновик"
        assert await district_by_id(session, "north") is district
        await session.flush()
        assert await district_by_id(session, "north") is district
        await session.rollback()
    async with sessions() as session:
        found = await district_by_id(session, "north")
        assert found is not None and found.name_ru == "Север"
