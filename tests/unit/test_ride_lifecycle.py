"""A ride's life: which action is allowed in which state, and `rides.change` on a real database.

Every change is one conditional update plus one audit event; a refused change leaves no trace;
of two dispatchers pressing "Take" at the same moment exactly one wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.rides import TRANSITIONS, Action, Actor, allowed_actions, change, history
from models import OPEN_STATUSES, Ride, RideEvent, RideStatus
from tests.factories import VAN, make_ride, make_rider, sync_test_districts, vehicle

S = RideStatus
AIGUL = Actor("dispatcher", 9001, "Айгүл")
MARAT = Actor("dispatcher", 9002, "Марат")


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        await sync_test_districts(session)
        yield session
        await session.rollback()


# -- the table ----------------------------------------------------------------------------------


def test_finished_rides_allow_nothing() -> None:
    for status in (S.COMPLETED, S.REJECTED, S.CANCELLED, S.NO_SHOW, S.EXPIRED):
        assert allowed_actions(status) == frozenset(), status


def test_every_open_state_can_move_on() -> None:
    for status in OPEN_STATUSES:
        assert allowed_actions(status), status


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (S.REQUESTED, {Action.TAKE, Action.ASSIGN, Action.PROPOSE, Action.REJECT, Action.CANCEL}),
        (S.TIME_PROPOSED, {Action.ACCEPT, Action.DECLINE, Action.REJECT, Action.CANCEL}),
        (S.SCHEDULED, {Action.ASSIGN, Action.EN_ROUTE, Action.ARRIVED, Action.NO_SHOW}),
        (S.ARRIVED, {Action.ON_BOARD, Action.COMPLETE, Action.NO_SHOW, Action.CANCEL}),
        (S.ON_BOARD, {Action.COMPLETE}),
    ],
)
def test_what_a_dispatcher_can_do_in_each_state(status: S, expected: set[Action]) -> None:
    assert expected <= allowed_actions(status)


def test_nothing_moves_a_ride_backwards_to_a_request() -> None:
    for action, (_, target) in TRANSITIONS.items():
        assert target != S.REQUESTED, action


def test_a_ride_on_board_can_no_longer_be_cancelled_or_missed() -> None:
    allowed = allowed_actions(S.ON_BOARD)
    assert Action.CANCEL not in allowed and Action.NO_SHOW not in allowed


# -- change() -----------------------------------------------------------------------------------


async def test_the_whole_happy_path_is_recorded_step_by_step(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False)
    van = await vehicle(db, VAN)
    steps = [
        (Action.TAKE, {}, S.TAKEN),
        (Action.ASSIGN, {"vehicle_id": van.id}, S.SCHEDULED),
        (Action.EN_ROUTE, {}, S.EN_ROUTE),
        (Action.ARRIVED, {}, S.ARRIVED),
        (Action.ON_BOARD, {}, S.ON_BOARD),
        (Action.COMPLETE, {}, S.COMPLETED),
    ]
    for action, values, expected in steps:
        outcome = await change(db, ride.id, action, AIGUL, values=values)
        assert outcome.ok, action
        assert outcome.ride is not None and outcome.ride.status == expected
    await db.flush()
    events = await history(db, ride.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, S.REQUESTED),
        (S.REQUESTED, S.TAKEN),
        (S.TAKEN, S.SCHEDULED),
        (S.SCHEDULED, S.EN_ROUTE),
        (S.EN_ROUTE, S.ARRIVED),
        (S.ARRIVED, S.ON_BOARD),
        (S.ON_BOARD, S.COMPLETED),
    ]
    assert all(e.actor_name == "Айгүл" for e in events[1:])
    assert events[2].details == {"action": "assign", "vehicle_id": van.id}
    fresh = await db.get(Ride, ride.id)
    assert fresh is not None and fresh.dispatcher_name == "Айгүл" and fresh.vehicle_id == van.id


async def test_a_refused_change_changes_nothing_and_leaves_no_event(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False, status=S.CANCELLED)
    outcome = await change(db, ride.id, Action.EN_ROUTE, AIGUL)
    assert not outcome.ok
    assert outcome.ride is not None and outcome.ride.status == S.CANCELLED
    count = await db.scalar(
        select(func.count()).select_from(RideEvent).where(RideEvent.ride_id == ride.id)
    )
    assert count == 1  # only the creation


async def test_a_press_from_another_districts_chat_cannot_touch_the_ride(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False)
    outcome = await change(db, ride.id, Action.TAKE, AIGUL, district_id="tekeli")
    assert not outcome.ok and outcome.ride is None
    fresh = await db.get(Ride, ride.id)
    assert fresh is not None and fresh.status == S.REQUESTED


async def test_the_reason_is_kept_on_the_ride_and_in_the_audit(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False)
    await change(db, ride.id, Action.REJECT, AIGUL, reason="territory")
    await db.flush()
    fresh = await db.get(Ride, ride.id)
    assert fresh is not None and fresh.reason == "territory"
    assert (await history(db, ride.id))[-1].reason == "territory"


async def test_accepting_an_offered_time_without_a_car_returns_it_to_the_desk(
    db: AsyncSession,
) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False)
    offered = ride.pickup_at + timedelta(hours=2)
    await change(db, ride.id, Action.PROPOSE, AIGUL, values={"proposed_at": offered})
    outcome = await change(db, ride.id, Action.ACCEPT, Actor("rider", 5001, "Анна"))
    assert outcome.ok and outcome.ride is not None
    assert outcome.ride.status == S.TAKEN  # a dispatcher still has to assign a car
    assert outcome.ride.pickup_at == offered and outcome.ride.proposed_at is None
    assert outcome.ride.dispatcher_name == "Айгүл"


async def test_accepting_an_offered_time_with_a_car_schedules_the_ride(db: AsyncSession) -> None:
    rider = await make_rider(db)
    van = await vehicle(db, VAN)
    offered = datetime.now(UTC) + timedelta(days=2)
    ride = await make_ride(
        db, rider, post_card=False, status=S.TIME_PROPOSED, vehicle_id=van.id, proposed_at=offered
    )
    outcome = await change(db, ride.id, Action.ACCEPT, Actor("representative", 5002, "Мама"))
    assert outcome.ok and outcome.ride is not None
    assert outcome.ride.status == S.SCHEDULED and outcome.ride.pickup_at == offered
    await db.flush()
    assert (await history(db, ride.id))[-1].details["pickup_at"] == offered.isoformat()


async def test_declining_an_offered_time_cancels_the_ride(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, post_card=False)
    await change(
        db, ride.id, Action.PROPOSE, AIGUL, values={"proposed_at": ride.pickup_at + timedelta(1)}
    )
    outcome = await change(db, ride.id, Action.DECLINE, Actor("rider", 5001, "Анна"))
    assert outcome.ok and outcome.ride is not None and outcome.ride.status == S.CANCELLED
    again = await change(db, ride.id, Action.ACCEPT, Actor("rider", 5001, "Анна"))
    assert not again.ok


async def test_of_two_simultaneous_takes_exactly_one_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await sync_test_districts(session)
        rider = await make_rider(session)
        ride = await make_ride(session, rider, post_card=False)
        await session.commit()
        ride_id = ride.id

    start = asyncio.Event()

    async def press(actor: Actor) -> tuple[bool, str | None]:
        async with sessions() as session:
            await start.wait()
            outcome = await change(session, ride_id, Action.TAKE, actor)
            await session.commit()
            winner = outcome.ride.dispatcher_name if outcome.ride else None
            return outcome.ok, winner

    tasks = [asyncio.create_task(press(AIGUL)), asyncio.create_task(press(MARAT))]
    await asyncio.sleep(0)
    start.set()
    results = await asyncio.gather(*tasks)
    assert sorted(ok for ok, _ in results) == [False, True]
    winner = next(name for ok, name in results if ok)
    loser_sees = next(name for ok, name in results if not ok)
    assert loser_sees == winner  # the loser is told who took it
    async with sessions() as session:
        events = await history(session, ride_id)
        assert [e.to_status for e in events].count(S.TAKEN) == 1
