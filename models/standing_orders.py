"""Standing orders: a rider's repeating trip (dialysis Mon/Wed/Fri 07:30, back at 12:00).

One order is approved once; the sweep turns each of its dates into an ordinary ride when the date
enters the booking horizon. Its exceptions (pauses, time changes from a date on, skipped and
cancelled dates) are small lists on the row, always changed under the row's lock.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class OrderStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ENDED = "ended"


class StandingOrder(Base):
    __tablename__ = "standing_orders"
    __table_args__ = (Index("ix_standing_orders_district_status", "district_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"), index=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    # ISO weekdays, 1 is Monday, sorted.
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    pickup_time: Mapped[time] = mapped_column(Time)
    return_time: Mapped[time | None] = mapped_column(Time)
    pickup_address: Mapped[str] = mapped_column(String(300))
    pickup_lat: Mapped[float | None]
    pickup_lon: Mapped[float | None]
    destination: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(16))
    assistant: Mapped[bool] = mapped_column(Boolean, default=False)
    companions: Mapped[int] = mapped_column(default=0)
    wheelchair: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(String(500), default="")
    first_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"))
    # Another pickup (and way-back) time offered by a dispatcher, waiting for the rider.
    proposed_time: Mapped[time | None] = mapped_column(Time)
    proposed_return_time: Mapped[time | None] = mapped_column(Time)
    # Set when approved: the desk's capacity share was exceeded on some date (shown on the card).
    over_capacity: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{"start": "2026-12-10", "end": "2026-12-20"}]: no rides on these dates, both included.
    pauses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"from": "2026-12-14", "pickup": "08:00", "back": "13:00" | null}], oldest first.
    time_changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"date": "2026-12-16", "code": "holiday", "msgid": ..., "params": {...}}]
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_by_name: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    card_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The ВКК expiry the rider was last reminded about (once per conclusion).
    vkk_notice_for: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
