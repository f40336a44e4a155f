"""A ride's states and the actions between them: plain data, no database.

`bot.services.rides.change` applies them (the one place a ride changes state), and
`bot.services.notifications` says what each change means to people; both import this module,
so neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from models import Ride, RideEvent, RideStatus

S = RideStatus


class Action(StrEnum):
    TAKE = "take"
    ASSIGN = "assign"
    PROPOSE = "propose"
    ACCEPT = "accept"
    DECLINE = "decline"
    REJECT = "reject"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    ON_BOARD = "on_board"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    CANCEL = "cancel"
    RIDER_CANCEL = "rider_cancel"
    EXPIRE = "expire"


# action -> (statuses it may start from, status it leads to)
TRANSITIONS: Mapping[Action, tuple[frozenset[RideStatus], RideStatus]] = {
    Action.TAKE: (frozenset({S.REQUESTED}), S.TAKEN),
    Action.ASSIGN: (frozenset({S.REQUESTED, S.TAKEN, S.SCHEDULED}), S.SCHEDULED),
    Action.PROPOSE: (frozenset({S.REQUESTED, S.TAKEN}), S.TIME_PROPOSED),
    Action.ACCEPT: (frozenset({S.TIME_PROPOSED}), S.SCHEDULED),
    Action.DECLINE: (frozenset({S.TIME_PROPOSED}), S.CANCELLED),
    Action.REJECT: (frozenset({S.REQUESTED, S.TAKEN, S.TIME_PROPOSED}), S.REJECTED),
    Action.EN_ROUTE: (frozenset({S.SCHEDULED}), S.EN_ROUTE),
    Action.ARRIVED: (frozenset({S.SCHEDULED, S.EN_ROUTE}), S.ARRIVED),
    Action.ON_BOARD: (frozenset({S.ARRIVED}), S.ON_BOARD),
    # "On board" is optional: a dispatcher may close a ride straight from "arrived".
    Action.COMPLETE: (frozenset({S.ARRIVED, S.ON_BOARD}), S.COMPLETED),
    Action.NO_SHOW: (frozenset({S.SCHEDULED, S.EN_ROUTE, S.ARRIVED}), S.NO_SHOW),
    Action.CANCEL: (
        frozenset({S.REQUESTED, S.TAKEN, S.TIME_PROPOSED, S.SCHEDULED, S.EN_ROUTE, S.ARRIVED}),
        S.CANCELLED,
    ),
    Action.RIDER_CANCEL: (
        frozenset({S.REQUESTED, S.TAKEN, S.TIME_PROPOSED, S.SCHEDULED}),
        S.CANCELLED,
    ),
    Action.EXPIRE: (frozenset({S.REQUESTED, S.TAKEN, S.TIME_PROPOSED}), S.EXPIRED),
}


def allowed_actions(status: str) -> frozenset[Action]:
    """What may be done to a ride in this state (drives the buttons on its card)."""
    return frozenset(a for a, (sources, _) in TRANSITIONS.items() if status in sources)


@dataclass(frozen=True)
class Actor:
    kind: str  # rider, representative, dispatcher, system
    telegram_id: int | None = None
    name: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


@dataclass
class Outcome:
    """What happened: `ok` is False when the ride was not in a state that allows the action."""

    ok: bool
    ride: Ride | None
    from_status: str | None = None
    event: RideEvent | None = None
    details: dict[str, Any] = field(default_factory=dict)
