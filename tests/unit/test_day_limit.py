"""The daily limit is checked when the date is chosen, and the refusal says what fits instead."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import I18n
from bot.services.booking_rules import BookingRules, ExistingRide
from bot.services.day_limit import day_room

TZ = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=TZ)  # Wednesday noon
THURSDAY = date(2026, 12, 3)
FRIDAY = date(2026, 12, 4)


def ride(day: date, hour: int, *, active: bool = True) -> ExistingRide:
    return ExistingRide(
        pickup_at=datetime(day.year, day.month, day.day, hour, tzinfo=TZ), active=active
    )


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n()


def test_room_for_both_legs_needs_no_reason() -> None:
    room = day_room(BookingRules(), THURSDAY, [ride(FRIDAY, 9)], NOW, TZ, legs=2)
    assert room.fits and room.rides_left == 2
    assert room.reason(BookingRules()) is None


def test_one_ride_that_day_leaves_room_for_one_leg_and_names_the_way_back(i18n: I18n) -> None:
    """Review B7: one ride booked, a round trip asked: offer one way, or a day with room."""
    rules = BookingRules()
    room = day_room(rules, THURSDAY, [ride(THURSDAY, 9)], NOW, TZ, legs=2)
    assert not room.fits and room.one_way_fits
    assert room.other_day == FRIDAY
    reason = room.reason(rules)
    assert reason is not None and reason.code == "one_leg_left"
    text = reason.render(i18n.translator("ru"))
    assert "На 03.12.2026 поместится только ещё одна поездка" in text
    assert "в одну сторону" in text
    assert "пятница, 04.12.2026" in text
    kk = reason.render(i18n.translator("kk"))
    assert "кері сапарға орын жоқ" in kk and "жұма, 04.12.2026" in kk


def test_one_leg_fits_when_only_one_is_wanted() -> None:
    room = day_room(BookingRules(), THURSDAY, [ride(THURSDAY, 9)], NOW, TZ, legs=1)
    assert room.fits and room.reason(BookingRules()) is None


def test_full_day_offers_the_nearest_date_with_room(i18n: I18n) -> None:
    rules = BookingRules()
    existing = [ride(THURSDAY, 9), ride(THURSDAY, 13), ride(FRIDAY, 9)]
    room = day_room(rules, THURSDAY, existing, NOW, TZ, legs=2)
    assert room.rides_left == 0 and not room.one_way_fits
    # Friday has room for one ride only; Saturday for both.
    assert room.other_day == date(2026, 12, 5)
    reason = room.reason(rules)
    assert reason is not None and reason.code == "day_full"
    assert "сенбі, 05.12.2026" in reason.render(i18n.translator("kk"))


def test_cancelled_rides_do_not_count() -> None:
    existing = [ride(THURSDAY, 9, active=False), ride(THURSDAY, 13, active=False)]
    assert day_room(BookingRules(), THURSDAY, existing, NOW, TZ, legs=2).fits


def test_no_other_date_with_room_says_choose_another(i18n: I18n) -> None:
    rules = BookingRules(max_days_ahead=1)  # only Thursday is bookable
    room = day_room(rules, THURSDAY, [ride(THURSDAY, 9), ride(THURSDAY, 13)], NOW, TZ)
    assert room.other_day is None
    reason = room.reason(rules)
    assert reason is not None
    assert reason.render(i18n.translator("ru")).endswith("Выберите другую дату.")


def test_a_district_limit_of_three() -> None:
    rules = BookingRules(max_rides_per_day=3)
    room = day_room(rules, THURSDAY, [ride(THURSDAY, 9)], NOW, TZ, legs=2)
    assert room.fits and room.rides_left == 2
