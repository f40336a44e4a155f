"""A ride's life: the one place where a ride changes state.

Every change is one conditional UPDATE (so two dispatchers pressing at once can't both win, and an
old button can't move a ride backwards), one audit event, and the messages it causes, all in the
caller's transaction. Messages are composed by `bot.services.notifications`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import notifications
from bot.services.ride_states import (
    TRANSITIONS,
    Action,
    Actor,
    Outcome,
    allowed_actions,
)
from models import Ride, RideEvent, RideStatus, utcnow

S = RideStatus
__all__ = [
    "TRANSITIONS",
    "Action",
    "Actor",
    "Outcome",
    "allowed_actions",
    "change",
    "history",
    "record_creation",
]


async def change(
    session: AsyncSession,
    ride_id: int,
    action: Action,
    actor: Actor,
    *,
    reason: str | None = None,
    values: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    district_id: str | None = None,
    notify: bool = True,
) -> Outcome:
    """Apply `action` to the ride if its current state allows it; else change nothing.

    `district_id`, when given, must match the ride's district: a forged button can't act on
    another district's ride. `values` are extra columns the action sets (vehicle, times, reason).
    """
    now = now or utcnow()
    ride = await session.get(Ride, ride_id, populate_existing=True)
    if ride is None or (district_id is not None and ride.district_id != district_id):
        return Outcome(ok=False, ride=None)
    sources, target = TRANSITIONS[action]
    old = ride.status
    if old not in sources:
        return Outcome(ok=False, ride=ride, from_status=old)
    changes: dict[str, Any] = {}
    if action is Action.ACCEPT:
        # The offered time becomes the pickup time. Without a car chosen yet the ride goes back
        # to a dispatcher to assign one, rather than "car assigned" with no car.
        if ride.proposed_at is not None:
            changes["pickup_at"] = ride.proposed_at
        changes["proposed_at"] = None
        if ride.vehicle_id is None:
            target = S.TAKEN
    changes.update({"status": target.value, "updated_at": now})
    if target.value != old:
        changes["status_changed_at"] = now
    if reason is not None:
        changes["reason"] = reason
    if actor.kind == "dispatcher" and action in (Action.TAKE, Action.ASSIGN, Action.PROPOSE):
        changes["dispatcher_id"] = actor.telegram_id
        changes["dispatcher_name"] = actor.name
    changes.update(values or {})
    result = await session.execute(
        update(Ride)
        .where(Ride.id == ride_id, Ride.status == old)
        .values(**changes)
        .returning(Ride.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        # Someone else changed it between our read and our write: report the state that won.
        fresh = await session.get(Ride, ride_id, populate_existing=True)
        return Outcome(ok=False, ride=fresh, from_status=fresh.status if fresh else None)
    await session.refresh(ride)
    derived = {k: v for k, v in changes.items() if k in ("pickup_at", "proposed_at")}
    details = {k: _jsonable(v) for k, v in {**derived, **(values or {})}.items()}
    event = RideEvent(
        ride_id=ride_id,
        at=now,
        actor_kind=actor.kind,
        actor_id=actor.telegram_id,
        actor_name=actor.name,
        from_status=old,
        to_status=target.value,
        reason=reason,
        details={"action": action.value, **details},
    )
    session.add(event)
    outcome = Outcome(ok=True, ride=ride, from_status=old, event=event)
    if notify:
        await notifications.ride_changed(session, outcome, action)
    return outcome


async def record_creation(session: AsyncSession, ride: Ride, actor: Actor) -> RideEvent:
    """The first audit event of a new ride (the booking service builds the ride row itself)."""
    event = RideEvent(
        ride_id=ride.id,
        actor_kind=actor.kind,
        actor_id=actor.telegram_id,
        actor_name=actor.name,
        from_status=None,
        to_status=RideStatus.REQUESTED.value,
        details={"action": "request"},
    )
    session.add(event)
    return event


async def history(session: AsyncSession, ride_id: int) -> list[RideEvent]:
    rows = await session.scalars(
        select(RideEvent).where(RideEvent.ride_id == ride_id).order_by(RideEvent.at, RideEvent.id)
    )
    return list(rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
