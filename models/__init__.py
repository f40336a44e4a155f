"""SQLAlchemy models; importing this package registers every table on `Base.metadata`."""

from models.base import Base, UTCDateTime, utcnow
from models.districts import Dispatcher, District, Vehicle
from models.infra import AuditLog, ConversationState, InboundUpdate, OutboxMessage, SweepRun
from models.people import Account, Consent, Invite, Representation, Rider
from models.reports import ReportDelivery
from models.rides import (
    OPEN_STATUSES,
    UNDECIDED_STATUSES,
    Ride,
    RideEvent,
    RideStatus,
    Verification,
)
from models.standing_orders import OrderStatus, StandingOrder

__all__ = [
    "OPEN_STATUSES",
    "UNDECIDED_STATUSES",
    "Account",
    "AuditLog",
    "Base",
    "Consent",
    "ConversationState",
    "Dispatcher",
    "District",
    "InboundUpdate",
    "Invite",
    "OrderStatus",
    "OutboxMessage",
    "ReportDelivery",
    "Representation",
    "Ride",
    "RideEvent",
    "RideStatus",
    "Rider",
    "StandingOrder",
    "SweepRun",
    "UTCDateTime",
    "Vehicle",
    "Verification",
    "utcnow",
]
