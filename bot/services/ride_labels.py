"""A ride's state and purpose in words: message ids shared by the rider's and dispatchers' views.

Stored codes (`models.RideStatus`, `Ride.purpose`) never reach a person; these msgids do, through
the reader's translator. Booking, "my rides" and the dispatcher card all use the same words.
"""

from __future__ import annotations

from typing import Final

from bot.services.i18n_types import N_
from models import RideStatus

STATUS_LABELS: Final[dict[str, str]] = {
    RideStatus.REQUESTED: N_("Waiting for a dispatcher"),
    RideStatus.TAKEN: N_("A dispatcher is arranging it"),
    RideStatus.TIME_PROPOSED: N_("Another time offered, waiting for your answer"),
    RideStatus.SCHEDULED: N_("Car assigned"),
    RideStatus.EN_ROUTE: N_("The car is on its way"),
    RideStatus.ARRIVED: N_("The car is waiting at the pickup address"),
    RideStatus.ON_BOARD: N_("On the way to the destination"),
    RideStatus.COMPLETED: N_("Completed"),
    RideStatus.REJECTED: N_("Refused by the dispatcher"),
    RideStatus.CANCELLED: N_("Cancelled"),
    RideStatus.NO_SHOW: N_("The rider did not come out"),
    RideStatus.EXPIRED: N_("Not handled in time"),
}

# Purpose codes fit Ride.purpose (16 characters); the order is the order of the buttons.
PURPOSE_LABELS: Final[dict[str, str]] = {
    "clinic": N_("Clinic or hospital"),
    "procedure": N_("Procedures (e.g. dialysis)"),
    "pharmacy": N_("Pharmacy"),
    "rehab": N_("Rehabilitation centre"),
    "work": N_("Work"),
    "study": N_("Study"),
    "public_service": N_("Public service centre or social office"),
    "other": N_("Other"),
}


def status_label(status: str) -> str:
    """The msgid for a stored status; an unknown code falls back to the code itself."""
    return STATUS_LABELS.get(status, status)


def purpose_label(purpose: str) -> str:
    return PURPOSE_LABELS.get(purpose, PURPOSE_LABELS["other"])
