"""The districts file: districts, their dispatch chats, dispatchers, vehicles and rule overrides.

A deployment is set up entirely from this file; it is validated at start (an error names the
line and field) and synced into the database, where the bot reads it at run time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.booking_rules import BookingRules
from bot.services.district_cache import forget_districts
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


_HHMM = r"([01][0-9]|2[0-3]):([0-5][0-9])"
_DESK_HOURS = re.compile(rf"{_HHMM}\s*[-–]\s*{_HHMM}")


class DistrictEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name_kk: str = Field(min_length=2)
    name_ru: str = Field(min_length=2)
    chat_id: int
    topic_id: int | None = None
    language: str = Field(default="ru", pattern="^(kk|ru)$")
    # The desk riders phone (a landline is fine) and its hours; both shown wherever the bot
    # tells someone to call. Without hours the service hours are given.
    desk_phone: str | None = None
    desk_hours: str | None = None
    dispatchers: list[DispatcherEntry] = []
    vehicles: list[VehicleEntry] = []
    categories: list[CategoryEntry] = []
    rules: dict[str, Any] = {}
    # Standing orders: furthest end date (days after the first date), the share of a day's
    # car-hours they may take, and whether public holidays are skipped or kept.
    standing_order_max_days: int = Field(default=92, ge=7, le=366)
    standing_order_capacity_share: float = Field(default=0.6, gt=0, le=1)
    holidays: Literal["skip", "keep"] = "skip"

    @field_validator("desk_phone")
    @classmethod
    def _desk_phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        phone = normalize_phone(value)
        if phone is None:
            raise ValueError("expected a Kazakhstan phone number such as +7 7282 24 11 22")
        return phone

    @field_validator("desk_hours")
    @classmethod
    def _desk_hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _DESK_HOURS.fullmatch(value.strip())
        if match is None:
            raise ValueError('expected the desk\'s hours such as "08:00-20:00"')
        return f"{match[1]}:{match[2]}-{match[3]}:{match[4]}"

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
        district.desk_phone = entry.desk_phone
        district.desk_hours = entry.desk_hours
        district.rules = dict(entry.rules)
        district.limits = dict(entry.limits)
        district.extra_categories = [c.model_dump() for c in entry.categories]
        district.standing_order_max_days = entry.standing_order_max_days
        district.standing_order_capacity_share = entry.standing_order_capacity_share
        district.holidays = entry.holidays
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
    forget_districts(session)


def district_warnings(spec: DistrictsFile) -> list[str]:
    """What keeps a valid file from working for riders: one line per district and gap.

    A district with no dispatcher leaves every request unanswered, one with no car can't
    schedule any ride, and one with no desk phone sends people to "call the dispatcher" with no
    number. Dispatchers added in the chat (/dispatcher_add) are not in the file, hence the hint.
    """
    warnings: list[str] = []
    for entry in spec.districts:
        if not entry.dispatchers:
            warnings.append(
                f"{entry.id}: no dispatchers in the file; requests will wait unanswered "
                "unless an administrator adds one in the group with /dispatcher_add"
            )
        if not entry.vehicles:
            warnings.append(f"{entry.id}: no vehicles; no ride can be scheduled")
        if entry.desk_phone is None:
            warnings.append(
                f"{entry.id}: no desk_phone; riders told to call the dispatcher get no number"
            )
    return warnings
