"""The districts file: districts, their dispatch chats, dispatchers, vehicles and rule overrides.

A deployment is set up entirely from this file; it is validated at start (an error names the
line and field) and synced into the database, where the bot reads it at run time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.booking_rules import BookingRules
from bot.services.eligibility import ELIGIBILITY_RULE_KEYS, EligibilityRules
from bot.services.limits import Limits
from bot.services.phone import normalize_phone
from models import Dispatcher, District, Vehicle


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatcherEntry(_Strict):
    id: int
    name: str = ""


class CategoryEntry(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name_kk: str = Field(min_length=2)
    name_ru: str = Field(min_length=2)


class VehicleEntry(_Strict):
    plate: str = Field(min_length=3, max_length=16)
    make: str
    colour_kk: str
    colour_ru: str
    ramp: bool = False
    lift: bool = False
    seats: int = Field(default=4, ge=1, le=60)
    wheelchair_places: int = Field(default=0, ge=0, le=10)
    driver_name: str
    driver_phone: str

    @field_validator("driver_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        phone = normalize_phone(value)
        if phone is None:
            raise ValueError("expected a Kazakhstan phone number such as +7 701 123 45 67")
        return phone


class DistrictEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name_kk: str = Field(min_length=2)
    name_ru: str = Field(min_length=2)
    chat_id: int
    topic_id: int | None = None
    language: str = Field(default="ru", pattern="^(kk|ru)$")
    dispatchers: list[DispatcherEntry] = []
    vehicles: list[VehicleEntry] = []
    categories: list[CategoryEntry] = []
    rules: dict[str, Any] = {}
    # Per-person limits (bot.services.limits.Limits), e.g. bookings_per_day = 4.
    limits: dict[str, int] = {}

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        Limits().with_overrides(value)
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, Any]) -> dict[str, Any]:
        BookingRules().with_overrides(
            {k: v for k, v in value.items() if k not in ELIGIBILITY_RULE_KEYS}
        )
        EligibilityRules().for_district(value)
        return value


class DistrictsFile(_Strict):
    districts: list[DistrictEntry] = Field(min_length=1)


class DistrictsFileError(Exception):
    """The districts file can't be used; the message names the file, line and field."""


def load_districts(path: Path) -> DistrictsFile:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DistrictsFileError(
            f"{path}: cannot read the districts file ({exc.strerror}); set DISTRICTS_FILE "
            "or copy districts.example.toml"
        ) from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise DistrictsFileError(f"{path}: {exc}") from None
    try:
        parsed = DistrictsFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        line = _line_of(raw, err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise DistrictsFileError(f"{path}:{line}: {'.'.join(loc)}: {msg}") from None
    ids = [d.id for d in parsed.districts]
    if len(set(ids)) != len(ids):
        raise DistrictsFileError(f"{path}: district ids must be unique")
    return parsed


def _line_of(raw: str, loc: tuple[int | str, ...]) -> int:
    """Best effort: the line of the field's table entry, or of the field itself."""
    lines = raw.splitlines()
    start = 0
    table = ""
    for part in loc:
        if isinstance(part, int) and table:
            header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
            seen = -1
            for i in range(start, len(lines)):
                if header.match(lines[i]):
                    seen += 1
                    if seen == part:
                        start = i
                        break
        elif isinstance(part, str):
            table = f"{table}.{part}" if table and part in {"vehicles", "dispatchers"} else part
            if table == part and part != "districts":
                field = re.compile(rf"^\s*{re.escape(part)}\s*=")
                for i in range(start, len(lines)):
                    if field.match(lines[i]):
                        return i + 1
            if part in {"vehicles", "categories"}:
                table = f"districts.{part}"
    return start + 1


async def sync_districts(session: AsyncSession, spec: DistrictsFile) -> None:
    """Make the database match the file; dispatchers added by an admin in the chat are kept."""
    for entry in spec.districts:
        district = await session.get(District, entry.id)
        if district is None:
            district = District(id=entry.id)
            session.add(district)
        district.name_kk = entry.name_kk
        district.name_ru = entry.name_ru
        district.chat_id = entry.chat_id
        district.topic_id = entry.topic_id
        district.language = entry.language
        district.rules = dict(entry.rules)
        district.limits = dict(entry.limits)
        district.extra_categories = [c.model_dump() for c in entry.categories]
        district.active = True
        await session.flush()

        existing = {
            d.telegram_id: d
            for d in await session.scalars(
                select(Dispatcher).where(Dispatcher.district_id == entry.id)
            )
        }
        listed = {d.id for d in entry.dispatchers}
        for person in entry.dispatchers:
            row = existing.get(person.id)
            if row is None:
                session.add(
                    Dispatcher(
                        district_id=entry.id,
                        telegram_id=person.id,
                        name=person.name,
                        source="file",
                    )
                )
            else:
                row.name = person.name or row.name
                row.active = True
        for tid, row in existing.items():
            if tid not in listed and row.source == "file":
                row.active = False

        vehicles = {
            v.plate: v
            for v in await session.scalars(select(Vehicle).where(Vehicle.district_id == entry.id))
        }
        for spec_v in entry.vehicles:
            vehicle = vehicles.get(spec_v.plate) or Vehicle(district_id=entry.id)
            for key, value in spec_v.model_dump().items():
                setattr(vehicle, key, value)
            vehicle.active = True
            session.add(vehicle)
        listed_plates = {v.plate for v in entry.vehicles}
        for plate, vehicle in vehicles.items():
            if plate not in listed_plates:
                vehicle.active = False
    file_ids = [d.id for d in spec.districts]
    await session.execute(
        update(District).where(District.id.not_in(file_ids)).values(active=False)
    )
