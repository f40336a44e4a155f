"""Districts, their dispatchers and vehicles: synced from the districts file at start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class District(Base):
    __tablename__ = "districts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_kk: Mapped[str] = mapped_column(String(100))
    name_ru: Mapped[str] = mapped_column(String(100))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    topic_id: Mapped[int | None] = mapped_column(BigInteger)
    # Language of the dispatcher chat: cards and replies there are written in it.
    language: Mapped[str] = mapped_column(String(2), default="ru")
    # Booking-rule overrides as given in the districts file; merged over the defaults.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Per-person limit overrides from the districts file (bot.services.limits.Limits).
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Categories the district adds: [{"code": ..., "name_kk": ..., "name_ru": ...}].
    extra_categories: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Standing orders: the furthest end date (days after the first date), the share of a day's
    # car-hours they may take, and whether public holidays are "skip"ped or "keep"t.
    standing_order_max_days: Mapped[int] = mapped_column(default=92)
    standing_order_capacity_share: Mapped[float] = mapped_column(Float, default=0.6)
    holidays: Mapped[str] = mapped_column(String(8), default="skip")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The dispatch desk riders phone: every "call the dispatcher" text gives this number.
    desk_phone: Mapped[str | None] = mapped_column(String(16))
    # The desk's working hours, "HH:MM-HH:MM" local time; None: the service hours.
    desk_hours: Mapped[str | None] = mapped_column(String(11))

    def name(self, language: str) -> str:
        return self.name_kk if language == "kk" else self.name_ru


class Dispatcher(Base):
    """A person allowed to act on a district's rides; from the file or added by an admin."""

    __tablename__ = "dispatchers"
    __table_args__ = (UniqueConstraint("district_id", "telegram_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(128), default="")
    # "file" or "admin": file entries are re-synced at start, admin entries are kept.
    source: Mapped[str] = mapped_column(String(8), default="file")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (UniqueConstraint("district_id", "plate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    plate: Mapped[str] = mapped_column(String(16))
    make: Mapped[str] = mapped_column(String(64))
    colour_kk: Mapped[str] = mapped_column(String(32))
    colour_ru: Mapped[str] = mapped_column(String(32))
    ramp: Mapped[bool] = mapped_column(Boolean, default=False)
    lift: Mapped[bool] = mapped_column(Boolean, default=False)
    seats: Mapped[int] = mapped_column(default=4)
    wheelchair_places: Mapped[int] = mapped_column(default=0)
    driver_name: Mapped[str] = mapped_column(String(128))
    driver_phone: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def wheelchair_ready(self) -> bool:
        return (self.ramp or self.lift) and self.wheelchair_places > 0
