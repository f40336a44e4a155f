"""The dispatcher desk's rules: chats, permissions, fitting cars, queue, manifests, search, texts.

Also home of the ride factories the dispatcher tests share: a verified rider (with or without a
representative) and a ride, built straight in the database as the booking service would.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.districts import load_districts, sync_districts
from bot.services import dispatch, notifications
from bot.services.outbox import enqueue_card
from bot.services.rides import Action, Actor, change, record_creation
from models import (
    Account,
    District,
    OutboxMessage,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Vehicle,
)
from tests.conftest import TEST_DISTRICTS

ALMATY = ZoneInfo("Asia/Almaty")
_serial = itertools.count(1)


# -- factories ----------------------------------------------------------------------------------


async def seed(session: AsyncSession) -> None:
    """The test districts file, synced as at start."""
    await sync_districts(session, load_districts(TEST_DISTRICTS))
    await session.flush()


async def make_account(
    session: AsyncSession, telegram_id: int, *, language: str = "ru", name: str = "Person"
) -> Account:
    account = await session.scalar(select(Account).where(Account.telegram_id == telegram_id))
    if account is None:
        account = Account(telegram_id=telegram_id, language=language, display_name=name)
        session.add(account)
        await session.flush()
    return account


async def make_rider(
    session: AsyncSession,
    *,
    district_id: str = "taldykorgan",
    account: Account | None = None,
    representative: Account | None = None,
    name: str = "Анна Иванова",
    phone: str = "+77011234567",
    wheelchair: bool = False,
    vkk_expires_on: date | None = date(2027, 12, 31),
) -> Rider:
    n = next(_serial)
    rider = Rider(
        account_id=account.id if account else None,
        district_id=district_id,
        full_name=name,
        phone=phone,
        iin_encrypted="sealed",
        iin_hash=f"hash-{n}-{datetime.now(UTC).timestamp()}",
        home_address="ул. Абая, 1",
        category="group1",
        disability_group=1,
        vkk_number=f"VKK-{n}",
        vkk_expires_on=vkk_expires_on,
        needs_wheelchair=wheelchair,
        verification="verified",
        verified_at=datetime.now(UTC),
    )
    session.add(rider)
    await session.flush()
    if representative is not None:
        session.add(
            Representation(
                rider_id=rider.id, account_id=representative.id, relationship_kind="parent"
            )
        )
        await session.flush()
    return rider


async def make_ride(
    session: AsyncSession,
    rider: Rider,
    *,
    pickup_at: datetime | None = None,
    status: RideStatus = RideStatus.REQUESTED,
    vehicle_id: int | None = None,
    wheelchair: bool | None = None,
    created_at: datetime | None = None,
    post_card: bool = True,
    **extra: Any,
) -> Ride:
    """A ride as the booking service creates it: the row, its first event, its card queued."""
    ride = Ride(
        rider_id=rider.id,
        district_id=rider.district_id,
        pickup_address=extra.pop("pickup_address", "ул. Абая, 1"),
        destination=extra.pop("destination", "Областная больница"),
        purpose=extra.pop("purpose", "clinic"),
        pickup_at=pickup_at or datetime.now(UTC) + timedelta(days=1),
        wheelchair=rider.needs_wheelchair if wheelchair is None else wheelchair,
        status=status.value,
        vehicle_id=vehicle_id,
        **extra,
    )
    if created_at is not None:
        ride.created_at = created_at
    session.add(ride)
    await session.flush()
    await record_creation(session, ride, Actor("rider", None, rider.full_name))
    await session.flush()
    if post_card:
        district = await session.get(District, rider.district_id)
        assert district is not None
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )
    return ride


async def vehicle(session: AsyncSession, plate: str) -> Vehicle:
    found = await session.scalar(select(Vehicle).where(Vehicle.plate == plate))
    assert found is not None
    return found


VAN, SEDAN, TEKELI_VAN = "123ABC05", "456DEF05", "789GHI05"


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        await seed(session)
        yield session
        await session.rollback()


# -- pure rules ---------------------------------------------------------------------------------


def test_split_text_keeps_lines_whole_and_fits_the_limit() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(200)]
    chunks = dispatch.split_text(lines, limit=1000)
    assert len(chunks) > 1
    assert all(len(c) <= 1000 for c in chunks)
    assert "\n".join(chunks).split("\n") == lines


def test_split_text_cuts_a_single_overlong_line_rather_than_losing_it() -> None:
    chunks = dispatch.split_text(["short", "y" * 2500, "tail"], limit=1000)
    assert "".join(chunks).count("y") == 2500
    assert chunks[0] == "short" and chunks[-1].endswith("tail")
    assert all(len(c) <= 1000 for c in chunks)


def test_card_links_exist_for_supergroups_and_topics_only() -> None:
    assert dispatch.card_link(-1001000000001, 42) == "https://t.me/c/1000000001/42"
    assert dispatch.card_link(-1001000000001, 42, 7) == "https://t.me/c/1000000001/7/42"
    assert dispatch.card_link(-4000123, 42) is None  # a basic group has no links
    assert dispatch.card_link(-1001000000001, None) is None


def test_typed_time_on_the_rides_own_day_or_a_given_date() -> None:
    ride_at = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 10:00 in Almaty
    assert dispatch.parse_time_input("14:30", ride_at, ALMATY) == datetime(
        2026, 11, 26, 9, 30, tzinfo=UTC
    )
    assert dispatch.parse_time_input(" 27.11 9:05 ", ride_at, ALMATY) == datetime(
        2026, 11, 27, 4, 5, tzinfo=UTC
    )
    assert dispatch.parse_time_input("27.11.2026 09:05", ride_at, ALMATY) == datetime(
        2026, 11, 27, 4, 5, tzinfo=UTC
    )
    # A date early next year, typed in late autumn, means next year.
    assert dispatch.parse_time_input("05.01 10:00", ride_at, ALMATY) == datetime(
        2027, 1, 5, 5, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["25:00", "14:3", "31.02 10:00", "завтра", "", "14-30"])
def test_typed_time_that_is_not_a_time_is_refused(text: str) -> None:
    ride_at = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    assert dispatch.parse_time_input(text, ride_at, ALMATY) is None


def test_a_proposed_time_must_be_ahead_but_not_too_far() -> None:
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert dispatch.proposal_problem(now - timedelta(hours=1), now) is not None
    assert dispatch.proposal_problem(now + timedelta(minutes=5), now) is not None
    assert dispatch.proposal_problem(now + timedelta(days=90), now) is not None
    assert dispatch.proposal_problem(now + timedelta(hours=3), now) is None


def test_offered_slots_stay_in_service_hours_and_in_the_future() -> None:
    rules = dispatch.rules_of(District(id="x", rules={}))
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    # 08:30 local: an hour earlier is before the service opens (08:00 by default).
    pickup = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)
    slots = dispatch.proposal_slots(pickup, now, ALMATY, rules)
    local = [s.astimezone(ALMATY) for s in slots]
    assert local, "some alternatives are offered"
    assert all(time(8, 0) <= t.time() <= time(20, 0) for t in local)
    assert all(s > now for s in slots)
    assert pickup - timedelta(minutes=60) not in slots
    assert pickup + timedelta(days=1) in slots


def test_reasons_from_the_list_are_recognised_and_typed_ones_are_not() -> None:
    assert dispatch.reason_msgid("no_car") == dispatch.REJECT_REASONS["no_car"]
    assert dispatch.reason_msgid("by_phone") == dispatch.CANCEL_REASONS["by_phone"]
    assert dispatch.reason_msgid("Пассажир в больнице") is None
    assert dispatch.reason_msgid(None) is None


# -- chats and people ---------------------------------------------------------------------------


async def test_the_district_is_found_by_its_chat_and_topic(db: AsyncSession) -> None:
    found = await dispatch.district_for_chat(db, -1001000000001, None)
    assert found is not None and found.id == "taldykorgan"
    # A district bound to the whole chat answers from any topic of it.
    found = await dispatch.district_for_chat(db, -1001000000001, 55)
    assert found is not None and found.id == "taldykorgan"
    assert await dispatch.district_for_chat(db, -1009999999999, None) is None


async def test_a_forum_with_a_topic_per_district_keeps_them_apart(db: AsyncSession) -> None:
    forum = -1002000000000
    for district_id, topic in (("taldykorgan", 11), ("tekeli", 12)):
        district = await db.get(District, district_id)
        assert district is not None
        district.chat_id, district.topic_id = forum, topic
    await db.flush()
    first = await dispatch.district_for_chat(db, forum, 11)
    second = await dispatch.district_for_chat(db, forum, 12)
    assert first is not None and first.id == "taldykorgan"
    assert second is not None and second.id == "tekeli"
    assert await dispatch.district_for_chat(db, forum, None) is None  # the General topic
    assert await dispatch.district_for_chat(db, forum, 13) is None


async def test_only_the_districts_dispatchers_and_admins_may_act(db: AsyncSession) -> None:
    assert await dispatch.is_dispatcher(db, "taldykorgan", 9001)
    assert not await dispatch.is_dispatcher(db, "tekeli", 9001)
    assert not await dispatch.is_dispatcher(db, "taldykorgan", 8001)
    assert await dispatch.is_dispatcher(db, "taldykorgan", 9999, admin_ids={9999})


async def test_admins_add_and_remove_dispatchers(db: AsyncSession) -> None:
    assert await dispatch.add_dispatcher(db, "taldykorgan", 8001, "Гульнара")
    assert await dispatch.is_dispatcher(db, "taldykorgan", 8001)
    assert not await dispatch.add_dispatcher(db, "taldykorgan", 8001, "Гульнара")
    names = [d.name for d in await dispatch.list_dispatchers(db, "taldykorgan")]
    assert "Гульнара" in names and "Айгүл" in names

    removed = await dispatch.remove_dispatcher(db, "taldykorgan", 8001)
    assert removed.removed and not removed.from_file
    assert not await dispatch.is_dispatcher(db, "taldykorgan", 8001)

    from_file = await dispatch.remove_dispatcher(db, "taldykorgan", 9002)
    assert from_file.removed and from_file.from_file
    assert not await dispatch.is_dispatcher(db, "taldykorgan", 9002)
    assert not (await dispatch.remove_dispatcher(db, "taldykorgan", 9002)).removed


async def test_a_dispatcher_added_in_the_chat_survives_the_districts_sync(
    db: AsyncSession,
) -> None:
    await dispatch.add_dispatcher(db, "taldykorgan", 8001, "Гульнара")
    await seed(db)
    assert await dispatch.is_dispatcher(db, "taldykorgan", 8001)


# -- vehicles -----------------------------------------------------------------------------------


async def test_a_wheelchair_ride_is_offered_only_cars_with_a_ramp_or_lift(
    db: AsyncSession,
) -> None:
    rider = await make_rider(db, wheelchair=True)
    ride = await make_ride(db, rider)
    district = await db.get(District, "taldykorgan")
    assert district is not None
    plates = [o.vehicle.plate for o in await dispatch.vehicle_options(db, ride, district)]
    assert plates == [VAN]

    walker = await make_rider(db, name="Пётр Ким", phone="+77017654321")
    plain = await make_ride(db, walker)
    plates = [o.vehicle.plate for o in await dispatch.vehicle_options(db, plain, district)]
    assert plates == [VAN, SEDAN]


async def test_a_car_with_too_few_seats_is_not_offered(db: AsyncSession) -> None:
    rider = await make_rider(db)
    ride = await make_ride(db, rider, assistant=True, companions=3)
    district = await db.get(District, "taldykorgan")
    assert district is not None
    plates = [o.vehicle.plate for o in await dispatch.vehicle_options(db, ride, district)]
    assert plates == [VAN]  # 1 + 1 + 3 passengers: the sedan has 4 seats


async def test_a_car_busy_in_an_overlapping_slot_is_marked(db: AsyncSession) -> None:
    district = await db.get(District, "taldykorgan")
    assert district is not None
    van = await vehicle(db, VAN)
    at = datetime.now(UTC) + timedelta(days=1)
    other_rider = await make_rider(db, name="Другой", phone="+77010000001")
    busy = await make_ride(
        db,
        other_rider,
        pickup_at=at + timedelta(minutes=40),
        status=RideStatus.SCHEDULED,
        vehicle_id=van.id,
    )
    await make_ride(
        db,
        other_rider,
        pickup_at=at + timedelta(hours=2),
        status=RideStatus.SCHEDULED,
        vehicle_id=van.id,
    )
    rider = await make_rider(db)
    ride = await make_ride(db, rider, pickup_at=at)
    options = {o.vehicle.plate: o for o in await dispatch.vehicle_options(db, ride, district)}
    assert [r.id for r in options[VAN].conflicts] == [busy.id]
    assert options[SEDAN].conflicts == ()

    # A cancelled ride frees its slot.
    busy.status = RideStatus.CANCELLED.value
    await db.flush()
    options = {o.vehicle.plate: o for o in await dispatch.vehicle_options(db, ride, district)}
    assert options[VAN].conflicts == ()


async def test_ride_duration_follows_the_districts_rules(db: AsyncSession) -> None:
    district = await db.get(District, "taldykorgan")
    assert district is not None
    assert dispatch.ride_minutes(district) == 60
    district.rules = {"ride_minutes": 120}
    assert dispatch.ride_minutes(district) == 120


# -- lists --------------------------------------------------------------------------------------


async def test_the_queue_holds_undecided_requests_oldest_first(db: AsyncSession) -> None:
    rider = await make_rider(db)
    now = datetime.now(UTC)
    newer = await make_ride(db, rider, created_at=now - timedelta(minutes=5))
    older = await make_ride(db, rider, created_at=now - timedelta(minutes=30))
    proposed = await make_ride(
        db, rider, status=RideStatus.TIME_PROPOSED, created_at=now - timedelta(minutes=10)
    )
    await make_ride(db, rider, status=RideStatus.SCHEDULED)
    await make_ride(db, rider, status=RideStatus.CANCELLED)
    tekeli = await make_rider(db, district_id="tekeli", name="Сәуле", phone="+77019999999")
    await make_ride(db, tekeli)
    queue = await dispatch.open_queue(db, "taldykorgan")
    assert [r.id for r in queue] == [older.id, proposed.id, newer.id]


async def test_the_manifest_groups_a_local_day_by_car(db: AsyncSession) -> None:
    van, sedan = await vehicle(db, VAN), await vehicle(db, SEDAN)
    rider = await make_rider(db)
    day = date(2026, 12, 1)

    def at(hour: int, minute: int = 0, days: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour, minute), ALMATY).astimezone(
            UTC
        )

    early = await make_ride(  # 00:30 local is still the previous day in UTC
        db, rider, pickup_at=at(0, 30), status=RideStatus.SCHEDULED, vehicle_id=sedan.id
    )
    late = await make_ride(
        db, rider, pickup_at=at(15), status=RideStatus.COMPLETED, vehicle_id=van.id
    )
    first = await make_ride(
        db, rider, pickup_at=at(9), status=RideStatus.SCHEDULED, vehicle_id=van.id
    )
    waiting = await make_ride(db, rider, pickup_at=at(11))
    await make_ride(db, rider, pickup_at=at(12), status=RideStatus.CANCELLED, vehicle_id=van.id)
    await make_ride(
        db, rider, pickup_at=at(9, days=1), status=RideStatus.SCHEDULED, vehicle_id=van.id
    )
    groups = await dispatch.manifest(db, "taldykorgan", day, ALMATY)
    assert [(g.vehicle.plate if g.vehicle else None) for g in groups] == [VAN, SEDAN, None]
    assert [r.id for r in groups[0].rides] == [first.id, late.id]
    assert [r.id for r in groups[1].rides] == [early.id]
    assert [r.id for r in groups[2].rides] == [waiting.id]


@pytest.mark.parametrize("query", ["+7 701 123 45 67", "87011234567", "701-123-45-67"])
async def test_riders_are_found_by_phone_however_it_is_written(
    db: AsyncSession, query: str
) -> None:
    rider = await make_rider(db)
    await make_ride(db, rider)
    found = await dispatch.find_riders(db, "taldykorgan", query)
    assert [f.rider.id for f in found] == [rider.id]
    assert len(found[0].rides) == 1


async def test_riders_are_found_by_part_of_the_name_in_any_case(db: AsyncSession) -> None:
    anna = await make_rider(db, name="Анна Иванова")
    await make_rider(db, name="Пётр Сидоров", phone="+77015550000")
    await make_rider(db, district_id="tekeli", name="Анна Ахметова", phone="+77015551111")
    found = await dispatch.find_riders(db, "taldykorgan", "ИВАНОВА анна")
    assert [f.rider.id for f in found] == [anna.id]
    assert await dispatch.find_riders(db, "taldykorgan", "Сергей") == []


# -- what a change tells people -----------------------------------------------------------------


async def queued(db: AsyncSession, ride_id: int) -> list[OutboxMessage]:
    await db.flush()
    rows = await db.scalars(
        select(OutboxMessage).where(OutboxMessage.ride_id == ride_id).order_by(OutboxMessage.id)
    )
    return list(rows)


async def test_scheduling_tells_rider_and_representative_each_in_their_language(
    db: AsyncSession,
) -> None:
    own = await make_account(db, 5001, language="kk", name="Анна")
    parent = await make_account(db, 5002, language="ru", name="Мама")
    rider = await make_rider(db, account=own, representative=parent)
    ride = await make_ride(db, rider, post_card=False)
    van = await vehicle(db, VAN)
    outcome = await change(
        db,
        ride.id,
        Action.ASSIGN,
        Actor("dispatcher", 9001, "Айгүл"),
        values={"vehicle_id": van.id},
    )
    assert outcome.ok
    rows = await queued(db, ride.id)
    cards = [r for r in rows if r.kind == "ride_card"]
    messages = {r.chat_id: r for r in rows if r.kind == "send"}
    assert len(cards) == 1 and cards[0].chat_id == -1001000000001
    assert set(messages) == {5001, 5002}
    assert messages[5001].payload["params"]["colour"] == "ақ"
    assert messages[5002].payload["params"]["colour"] == "белый"
    local = ride.pickup_at.astimezone(ALMATY)
    params = messages[5002].payload["params"]
    assert params["time"] == local.strftime("%H:%M") and params["plate"] == VAN
    assert params["driver_phone"] == van.driver_phone
    assert messages[5002].payload["msgid"] == notifications.SCHEDULED


async def test_a_proposal_carries_answer_buttons_and_both_times(db: AsyncSession) -> None:
    own = await make_account(db, 5011, language="ru")
    rider = await make_rider(db, account=own)
    ride = await make_ride(db, rider, post_card=False)
    new_time = ride.pickup_at + timedelta(hours=2)
    await change(
        db,
        ride.id,
        Action.PROPOSE,
        Actor("dispatcher", 9001, "Айгүл"),
        values={"proposed_at": new_time},
    )
    (message,) = [r for r in await queued(db, ride.id) if r.kind == "send"]
    assert message.payload["keyboard"] == "proposal"
    assert message.payload["keyboard_args"] == {"ride_id": ride.id}
    params = message.payload["params"]
    assert params["old_time"] == ride.pickup_at.astimezone(ALMATY).strftime("%H:%M")
    assert params["time"] == new_time.astimezone(ALMATY).strftime("%H:%M")


async def test_a_reason_from_the_list_is_translated_for_each_reader(db: AsyncSession) -> None:
    own = await make_account(db, 5021, language="kk")
    rider = await make_rider(db, account=own)
    listed = await make_ride(db, rider, post_card=False)
    typed = await make_ride(db, rider, post_card=False)
    dispatcher = Actor("dispatcher", 9001, "Айгүл")
    await change(db, listed.id, Action.REJECT, dispatcher, reason="no_car")
    await change(db, typed.id, Action.CANCEL, dispatcher, reason="Жүргізуші ауырып қалды")
    (first,) = [r for r in await queued(db, listed.id) if r.kind == "send"]
    (second,) = [r for r in await queued(db, typed.id) if r.kind == "send"]
    assert first.payload["params"]["reason"] == {"msgid": dispatch.REJECT_REASONS["no_car"]}
    assert second.payload["params"]["reason"] == "Жүргізуші ауырып қалды"


async def test_a_riders_own_cancellation_refreshes_the_card_and_tells_the_others(
    db: AsyncSession,
) -> None:
    own = await make_account(db, 5031, language="ru", name="Анна")
    parent = await make_account(db, 5032, language="kk", name="Айжан")
    rider = await make_rider(db, account=own, representative=parent)
    ride = await make_ride(db, rider, post_card=False)
    await change(db, ride.id, Action.RIDER_CANCEL, Actor("rider", 5031, "Анна"))
    rows = await queued(db, ride.id)
    assert [r.kind for r in rows].count("ride_card") == 1
    told = [r for r in rows if r.kind == "send"]
    assert [r.chat_id for r in told] == [5032]  # the rider was answered by the booking chat
    assert told[0].payload["params"]["who"] == "Анна"


async def test_completion_asks_for_a_rating_and_a_take_tells_nobody(db: AsyncSession) -> None:
    own = await make_account(db, 5041, language="ru")
    rider = await make_rider(db, account=own)
    ride = await make_ride(db, rider, post_card=False, status=RideStatus.REQUESTED)
    await change(db, ride.id, Action.TAKE, Actor("dispatcher", 9001, "Айгүл"))
    assert [r.kind for r in await queued(db, ride.id)] == ["ride_card"]
    ride.status = RideStatus.ON_BOARD.value
    await db.flush()
    await change(db, ride.id, Action.COMPLETE, Actor("dispatcher", 9001, "Айгүл"))
    (message,) = [r for r in await queued(db, ride.id) if r.kind == "send"]
    assert message.payload["keyboard"] == "rating"
    assert message.payload["msgid"] == notifications.COMPLETED
