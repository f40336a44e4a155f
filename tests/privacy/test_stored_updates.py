"""What people typed is never written in clear, not even to SQLite's WAL (issue 12.4)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.inbox import open_update, store_updates
from models import InboundUpdate

TYPED_IIN = "9001 0130 0017"


def update(update_id: int, text: str) -> dict[str, object]:
    chat = {"id": 7001, "type": "private", "first_name": "Иван"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 5,
            "date": 1764666000,
            "chat": chat,
            "from": {"id": 7001, "is_bot": False, "first_name": "Иван"},
            "text": text,
        },
    }


async def test_a_typed_iin_reaches_neither_the_table_nor_the_wal(
    sessions, migrated_db: str
) -> None:
    await store_updates(sessions, [update(1, TYPED_IIN)])
    async with sessions() as session:
        row = (await session.scalars(select(InboundUpdate))).one()
    assert row.payload is not None and TYPED_IIN not in str(row.payload)
    # Replay reads it back whole.
    assert open_update(row.payload)["message"]["text"] == TYPED_IIN
    if migrated_db.startswith("sqlite"):
        database = Path(migrated_db.split("///", 1)[1])
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
        assert any(p.name.endswith("-wal") for p in files)
        for path in files:
            data = path.read_bytes()
            assert TYPED_IIN.encode() not in data and "Иван".encode() not in data, path.name
