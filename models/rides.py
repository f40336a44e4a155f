"""Rides and their audit trail."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class RideStatus(StrEnum):
    """Outcome codes as paratransit systems report them (see DOMAIN.md)."""

    REQUESTED = "requested"
    TAKEN = "taken"
    TIME_PROPOSED = "time_proposed"
    SCHEDULED = "scheduled"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    ON_BOARD = "on_board"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"


OPEN_STATUSES = frozenset(
    {
        RideStatus.REQUESTED,
        RideStatus.TAKEN,
        RideStatus.TIME_PROPOSED,
        RideStatus.SCHEDULED,
        RideStatus.EN_ROUTE,
        RideStatus.ARRIVED,
        RideStatus.ON_BOARD,
    }
)
UNDECIDED_STATUSES = frozenset({RideStatus.REQUESTED, RideStatus.TAKEN, RideStatus.TIME_PROPOSED})


class Ride(Base):
    __tablename__ = "rides"
    __table_args__ = (
        Index("ix_rides_district_status_pickup", "district_id", "status", "pickup_at"),
        Index("ix_rides_rider_pickup", "rider_id", "pickup_at"),
        # One ride per standing-order occurrence and leg, whatever the sweepers do.
        UniqueConstraint("standing_order_id", "occurrence_date", "leg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"))
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    booked_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=RideStatus.REQUESTED)
    pickup_address: Mapped[str] = mapped_column(String(300))
    pickup_lat: Mapped[float | None]
    pickup_lon: Mapped[float | None]
    destination: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(16))
    pickup_at: Mapped[datetime]
    return_of: Mapped[int | None] = mapped_column(ForeignKey("rides.id", ondelete="SET NULL"))
    assistant: Mapped[bool] = mapped_column(Boolean, default=False)
    companions: Mapped[int] = mapped_column(default=0)
    wheelchair: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(String(500), default="")
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"))
    proposed_at: Mapped[datetime | None]
    dispatcher_id: Mapped[int | None] = mapped_column(BigInteger)
    dispatcher_name: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    cancelled_late: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None]
    rating_comment: Mapped[str | None] = mapped_column(String(500))
    card_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Idempotency key of the confirmation that created the ride: a second tap finds the first.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Sweep claims: set by one conditional update each, so a sweep acts once per ride.
    reminder_evening_at: Mapped[datetime | None]
    reminder_before_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # Rides made from a standing order: the order, the date it stands for, "there" or "back".
    standing_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("standing_orders.id", ondelete="SET NULL")
    )
    occurrence_date: Mapped[date | None] = mapped_column(Date)
    leg: Mapped[str | None] = mapped_column(String(8))
    # Set when the ride lost its name, phone and addresses after the keeping period.
    anonymised_at: Mapped[datetime | None]

    @property
    def number(self) -> str:
        """The short number a rider quotes on the phone."""
        return str(self.id)


class RideEvent(Base):
    """Who changed a ride, when, from what to what, and why: the report to the budget."""

    __tablename__ = "ride_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ride_id: Mapped[int] = mapped_column(ForeignKey("rides.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # rider, representative, dispatcher, system
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(String(128))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Verification(Base):
    """A rider profile waiting for, or decided by, a district dispatcher."""

    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"), index=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    # pending, approved, rejected, superseded
    status: Mapped[str] = mapped_column(String(16), default="pending")
    card_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_by_name: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
