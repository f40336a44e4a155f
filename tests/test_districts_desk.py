"""The districts file carries each desk's phone and hours; `invataxi check` warns about gaps."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.districts import DistrictsFileError, district_warnings, load_districts, sync_districts
from models import District

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "districts.toml"
DISTRICT = (
    '[[districts]]\nid = "aksu"\nname_kk = "Ақсу ауданы"\nname_ru = "Аксуский район"\n'
    "chat_id = -1001\n"
)


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "districts.toml"
    path.write_text(DISTRICT + extra, encoding="utf-8")
    return path


def test_desk_phone_is_normalised_and_hours_kept() -> None:
    spec = load_districts(DATA)
    by_id = {d.id: d for d in spec.districts}
    assert by_id["taldykorgan"].desk_phone == "+77282241122"
    assert by_id["taldykorgan"].desk_hours == "08:00-20:00"
    assert by_id["tekeli"].desk_phone == "+77283541122"  # written «8 (72835) 4-11-22»
    assert by_id["tekeli"].desk_hours is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('desk_phone = "12345"\n', "desk_phone"),
        ('desk_hours = "8-20"\n', "desk_hours"),
        ('desk_hours = "08:00-25:00"\n', "desk_hours"),
    ],
)
def test_bad_desk_values_name_the_line_and_field(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(DistrictsFileError, match=rf":6: districts\.0\.{field}"):
        load_districts(write(tmp_path, extra))


def test_warnings_for_no_dispatchers_no_cars_no_phone(tmp_path: Path) -> None:
    spec = load_districts(write(tmp_path, ""))
    warnings = district_warnings(spec)
    assert len(warnings) == 3
    assert all(w.startswith("aksu: ") for w in warnings)
    assert any("no dispatchers" in w and "/dispatcher_add" in w for w in warnings)
    assert any("no vehicles" in w for w in warnings)
    assert any("no desk_phone" in w for w in warnings)


def test_a_complete_district_gets_no_warning() -> None:
    spec = load_districts(DATA)
    assert district_warnings(spec) == []


def test_untouched_example_warns_for_every_district() -> None:
    spec = load_districts(ROOT / "districts.example.toml")
    warnings = district_warnings(spec)
    phones = [w for w in warnings if "no desk_phone" in w]
    assert len(phones) == len(spec.districts) == 10
    assert sum("no dispatchers" in w for w in warnings) == 10
    assert sum("no vehicles" in w for w in warnings) == 9  # only Taldykorgan lists cars


async def test_sync_stores_the_desk(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await sync_districts(session, load_districts(DATA))
    async with sessions() as session:
        taldykorgan = await session.get(District, "taldykorgan")
        tekeli = await session.get(District, "tekeli")
        assert taldykorgan is not None and tekeli is not None
        assert (taldykorgan.desk_phone, taldykorgan.desk_hours) == ("+77282241122", "08:00-20:00")
        assert (tekeli.desk_phone, tekeli.desk_hours) == ("+77283541122", None)
