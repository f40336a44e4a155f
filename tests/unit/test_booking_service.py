"""The booking service: typed input, the district's rules at confirm time, one ride per summary,
the way back, the queue position, and a rider's cancellation."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import I18n, Translator
from bot.services import booking
from bot.services.i18n_types import Reason
from bot.services.rides import Actor, history
from models import (
    Account,
    District,
    OutboxMessage,
    Ride,
    RideEvent,
    RideStatus,
)
from tests.factories import BOOKING_NOW, BOOKING_TOMORROW, sync_test_districts
from tests.factories import booking_account as make_account
from tests.factories import booking_draft as draft
from tests.factories import booking_rider as make_rider

seed = sync_test_districts

TZ = ZoneInfo("Asia/Almaty")
NOW = BOOKING_NOW
TOMORROW = BOOKING_TOMORROW
_serial = itertools.count(1)


# -- factories ----------------------------------------------------------------------------------


def actor(account: Account, kind: str = "rider") -> Actor:
    return Actor(kind, account.telegram_id, account.display_name)


@pytest.fixture
def ru() -> Translator:
    return I18n().translator("ru")


# -- typed input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:30", time(9, 30)),
        ("9:30", time(9, 30)),
        ("0930", time(9, 30)),
        ("930", time(9, 30)),
        ("9.30", time(9, 30)),
        (" 14 ", time(14, 0)),
        ("24:00", None),
        ("9:75", None),
        ("утром", None),
    ],
)
def test_typed_times(text: str, expected: time | None) -> None:
    assert booking.parse_time(text) == expected


def test_text_checks_say_what_is_wrong(ru: Translator) -> None:
    assert booking.clean_text("  ул.   Абая,  1 ") == "ул. Абая, 1"
    empty = booking.clean_text("   ")
    emoji = booking.clean_text("🚕🏥")
    long = booking.clean_text("а" * 301)
    assert isinstance(empty, Reason) and empty.code == "empty_text"
    assert isinstance(emoji, Reason) and emoji.code == "no_words"
    assert isinstance(long, Reason) and long.code == "too_long"
    assert "301" in long.render(ru) and "300" in long.render(ru)
    assert booking.clean_text("а" * 300) == "а" * 300


# -- confirming ---------------------------------------------------------------------------------


async def test_round_trip_creates_two_linked_rides_with_cards_and_events(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5001)
        rider = await make_rider(session, me)
        result = await booking.create_booking(
            session, draft(rider, return_time=time(12, 0), companions=1), actor(me), NOW, tz=TZ
        )
        await session.commit()
    assert result.ok and not result.duplicate and result.position == 1
    ride, back = result.ride, result.return_ride
    assert ride is not None and back is not None
    async with sessions() as session:
        rows = list(await session.scalars(select(Ride).order_by(Ride.id)))
        assert [r.status for r in rows] == ["requested", "requested"]
        assert rows[0].district_id == "taldykorgan" and rows[0].companions == 1
        assert rows[0].pickup_at == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
        assert rows[1].return_of == rows[0].id
        assert (rows[1].pickup_address, rows[1].destination) == (
            "Областная больница",
            "ул. Абая, 1",
        )
        assert rows[1].pickup_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
        cards = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ride_card"))
        )
        assert sorted(c.ride_id or 0 for c in cards) == [ride.id, back.id]
        assert all(c.chat_id == -1001000000001 for c in cards)
        events = await history(session, ride.id)
        assert [(e.from_status, e.to_status, e.actor_kind) for e in events] == [
            (None, "requested", "rider")
        ]


async def test_queue_position_counts_earlier_requests_of_the_same_district(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        a, b, c = [await make_account(session, 5100 + i) for i in range(3)]
        first = await make_rider(session, a)
        other_district = await make_rider(session, b, district_id="tekeli")
        third = await make_rider(session, c)
        one = await booking.create_booking(session, draft(first), actor(a), NOW, tz=TZ)
        two = await booking.create_booking(session, draft(other_district), actor(b), NOW, tz=TZ)
        three = await booking.create_booking(
            session, draft(third, pickup_time=time(15, 0)), actor(c), NOW, tz=TZ
        )
        await session.commit()
    assert (one.position, two.position, three.position) == (1, 1, 2)


async def test_second_confirmation_of_a_summary_returns_the_first_ride(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5200)
        rider = await make_rider(session, me)
        summary = draft(rider, return_time=time(13, 0))
        first = await booking.create_booking(session, summary, actor(me), NOW, tz=TZ)
        again = await booking.create_booking(session, summary, actor(me), NOW, tz=TZ)
        await session.commit()
        count = await session.scalar(select(func.count()).select_from(Ride))
    assert again.duplicate and again.ride is not None and first.ride is not None
    assert again.ride.id == first.ride.id
    assert again.return_ride is not None and first.return_ride is not None
    assert again.return_ride.id == first.return_ride.id
    assert count == 2


async def test_two_concurrent_confirmations_create_exactly_one_ride(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5300)
        rider = await make_rider(session, me)
        await session.commit()
    summary = draft(rider)

    async def confirm() -> booking.BookingResult:
        async with sessions() as session:
            result = await booking.create_booking(session, summary, actor(me), NOW, tz=TZ)
            await session.commit()
            return result

    results = await asyncio.gather(confirm(), confirm())
    async with sessions() as session:
        rides = list(await session.scalars(select(Ride)))
        events = await session.scalar(select(func.count()).select_from(RideEvent))
        cards = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "ride_card")
        )
    assert len(rides) == 1 and events == 1 and cards == 1
    assert sorted(r.duplicate for r in results) == [False, True]
    assert {r.ride.id for r in results if r.ride is not None} == {rides[0].id}


async def test_rules_are_checked_again_at_confirm_time(
    sessions: async_sessionmaker[AsyncSession], ru: Translator
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5400)
        rider = await make_rider(session, me)
        late = datetime(2026, 11, 23, 18, 0, tzinfo=TZ)
        cutoff = await booking.create_booking(session, draft(rider), actor(me), late, tz=TZ)
        early = await booking.create_booking(
            session, draft(rider, pickup_time=time(7, 30)), actor(me), NOW, tz=TZ
        )
        crowd = await booking.create_booking(
            session, draft(rider, assistant=True, companions=2), actor(me), NOW, tz=TZ
        )
        back = await booking.create_booking(
            session, draft(rider, return_time=time(9, 30)), actor(me), NOW, tz=TZ
        )
        count = await session.scalar(select(func.count()).select_from(Ride))
    assert cutoff.reason is not None and cutoff.reason.code == "cutoff_passed"
    assert "18:00" in cutoff.reason.render(ru)
    assert "25.11.2026" in cutoff.reason.render(ru)
    assert early.reason is not None and early.reason.code == "outside_service_hours"
    assert crowd.reason is not None and crowd.reason.code == "too_many_companions"
    assert back.reason is not None and back.reason.code == "return_too_early"
    assert "10:00" in back.reason.render(ru)
    assert count == 0


async def test_daily_cap_and_overlap_count_only_active_rides(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5500)
        rider = await make_rider(session, me)
        first = await booking.create_booking(session, draft(rider), actor(me), NOW, tz=TZ)
        overlap = await booking.create_booking(
            session, draft(rider, pickup_time=time(9, 30)), actor(me), NOW, tz=TZ
        )
        second = await booking.create_booking(
            session, draft(rider, pickup_time=time(12, 0)), actor(me), NOW, tz=TZ
        )
        third = await booking.create_booking(
            session, draft(rider, pickup_time=time(16, 0)), actor(me), NOW, tz=TZ
        )
        assert first.ride is not None
        cancelled = await booking.cancel_ride(session, me, first.ride.id, "Plans changed", NOW)
        fourth = await booking.create_booking(
            session, draft(rider, pickup_time=time(16, 0)), actor(me), NOW, tz=TZ
        )
    assert first.ok and second.ok and cancelled.ok
    assert overlap.reason is not None and overlap.reason.code == "overlap"
    assert third.reason is not None and third.reason.code == "daily_cap"
    assert fourth.ok


async def test_district_override_takes_precedence(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Tekeli takes bookings until 20:00 the day before and three rides a day."""
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5600)
        rider = await make_rider(session, me, district_id="tekeli")
        evening = datetime(2026, 11, 23, 19, 0, tzinfo=TZ)
        results = [
            await booking.create_booking(
                session, draft(rider, pickup_time=time(h, 0)), actor(me), evening, tz=TZ
            )
            for h in (9, 12, 15)
        ]
    assert all(r.ok for r in results)


async def test_only_a_verified_and_eligible_rider_may_book(
    sessions: async_sessionmaker[AsyncSession], ru: Translator
) -> None:
    async with sessions() as session:
        await seed(session)
        a, b, c = [await make_account(session, 5700 + i) for i in range(3)]
        pending = await make_rider(session, a, verification="pending")
        rejected = await make_rider(session, b, verification="rejected")
        expiring = await make_rider(session, c, vkk_expires_on=date(2026, 11, 24))
        district = await session.get(District, "taldykorgan")
        assert district is not None
        refused_pending = await booking.create_booking(
            session, draft(pending), actor(a), NOW, tz=TZ
        )
        refused_rejected = await booking.create_booking(
            session, draft(rejected), actor(b), NOW, tz=TZ
        )
        after_expiry = await booking.create_booking(
            session, draft(expiring, day=date(2026, 11, 25)), actor(c), NOW, tz=TZ
        )
        on_expiry = await booking.create_booking(session, draft(expiring), actor(c), NOW, tz=TZ)
        days = booking.bookable_days(expiring, district, NOW, TZ)
        before = booking.check_rider(pending, district, NOW, TZ)
    assert refused_pending.reason is not None
    assert refused_pending.reason.code == "verification_pending"
    assert before is not None and before.code == "verification_pending"
    assert refused_rejected.reason is not None
    assert refused_rejected.reason.code == "verification_rejected"
    assert after_expiry.reason is not None and after_expiry.reason.code == "vkk_expired"
    assert "24.11.2026" in after_expiry.reason.render(ru)
    assert on_expiry.ok
    assert days == [TOMORROW]


async def test_step_checks_offer_only_what_can_be_booked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5800)
        rider = await make_rider(session, me)
        district = await session.get(District, "taldykorgan")
        assert district is not None
        days = booking.bookable_days(rider, district, NOW, TZ)
        slots = booking.pickup_slots(district, TOMORROW, NOW, TZ)
        backs = booking.return_slots(district, TOMORROW, time(9, 0), NOW, TZ)
        past = booking.check_day(rider, district, date(2026, 11, 20), NOW, TZ)
        far = booking.check_day(rider, district, date(2026, 12, 31), NOW, TZ)
        night = booking.check_time(district, TOMORROW, time(21, 0), NOW, TZ)
        choices = booking.party_choices(district)
    assert days[0] == TOMORROW and days[-1] == date(2026, 12, 7)
    assert slots[0] == time(8, 0) and slots[-1] == time(20, 0)
    assert backs[0] == time(10, 0)
    assert past is not None and past.code == "date_in_past"
    assert far is not None and far.code == "too_far_ahead"
    assert night is not None and night.code == "outside_service_hours"
    assert choices == [(False, 0), (False, 1), (True, 0), (True, 1)]


async def test_recent_destinations_are_distinct_and_newest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        me = await make_account(session, 5900)
        rider = await make_rider(session, me)
        places = ["Поликлиника №1", "Аптека", "Поликлиника №1", "ЦОН", "Школа", "Рынок", "Парк"]
        for i, place in enumerate(places):
            when = NOW + timedelta(seconds=i)
            made = await booking.create_booking(
                session,
                draft(
                    rider,
                    destination=place,
                    day=TOMORROW + timedelta(days=i // 2),
                    pickup_time=time(9 + 3 * (i % 2), 0),
                ),
                actor(me),
                when,
                tz=TZ,
            )
            assert made.ok, made.reason
        recent = await booking.recent_destinations(session, rider.id)
    assert recent == ["Парк", "Рынок", "Школа", "ЦОН", "Поликлиника №1"]


# -- my rides -----------------------------------------------------------------------------------


async def test_representative_sees_and_cancels_late_with_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await seed(session)
        parent = await make_account(session, 6000, name="Мама")
        stranger = await make_account(session, 6001)
        child = await make_rider(session, None, representative=parent, name="Ерасыл")
        made = await booking.create_booking(
            session,
            draft(child, booked_by=parent.id, return_time=time(11, 0)),
            actor(parent, "representative"),
            NOW,
            tz=TZ,
        )
        assert made.ride is not None
        listing = await booking.rides_of(session, parent)
        nobody = await booking.ride_of(session, stranger, made.ride.id)
        forged = await booking.cancel_ride(session, stranger, made.ride.id, "x", NOW)
        late_now = datetime(2026, 11, 24, 8, 0, tzinfo=TZ)
        done = await booking.cancel_ride(session, parent, made.ride.id, "Plans changed", late_now)
        again = await booking.cancel_ride(session, parent, made.ride.id, "Plans changed", late_now)
        await session.commit()
        ride = await session.get(Ride, made.ride.id)
        events = await history(session, made.ride.id)
    assert made.return_ride is not None
    assert [r.id for r in listing.upcoming] == [made.ride.id, made.return_ride.id]
    assert nobody is None
    assert forged.reason is not None and forged.reason.code == "ride_not_found"
    assert done.ok and done.late and done.open_return is not None
    assert again.reason is not None and again.reason.code == "not_cancellable"
    assert ride is not None and ride.status == RideStatus.CANCELLED and ride.cancelled_late
    assert [(e.to_status, e.actor_kind, e.reason) for e in events][-1] == (
        "cancelled",
        "representative",
        "Plans changed",
    )
