"""Standing orders' arithmetic: typed weekdays, dates, pauses, holidays, end dates, capacity."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from bot.services import standing_order_rules as so
from bot.services.booking_rules import BookingRules
from bot.services.i18n_types import Msg

MWF = frozenset({1, 3, 5})
WORKDAYS = frozenset({1, 2, 3, 4, 5})


# -- typed weekdays -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("пн ср пт", MWF),
        ("Пн, Ср, Пт", MWF),
        ("понедельник, среда и пятница", MWF),
        ("по понедельникам, средам и пятницам", MWF),
        ("в среду и пятницу", frozenset({3, 5})),
        ("будни", WORKDAYS),
        ("по будням", WORKDAYS),
        ("пн-пт", WORKDAYS),
        ("сб вс", frozenset({6, 7})),
        ("ежедневно", frozenset(range(1, 8))),
        # Kazakh: abbreviations, prefixes and full names, with or without the Kazakh letters.
        ("дс сәр жм", MWF),
        ("дс ср жм", MWF),
        ("Дс, Сс, Бс", frozenset({1, 2, 4})),
        ("дүйсенбі, сәрсенбі, жұма", MWF),
        ("дуйсенби сарсенби жума", MWF),
        ("жұмыс күндері", WORKDAYS),
        ("дс–жм", WORKDAYS),
        ("сенбі мен жексенбі", frozenset({6, 7})),
        ("дүйсенбіде және жұмада", frozenset({1, 5})),
        # English
        ("weekdays", WORKDAYS),
        ("Mon Wed Fri", MWF),
        ("monday, wednesday and friday", MWF),
        ("tue thu", frozenset({2, 4})),
        ("Mondays and Fridays", frozenset({1, 5})),
    ],
)
def test_weekdays_are_read_in_russian_kazakh_and_english(
    text: str, days: frozenset[int] | None
) -> None:
    assert so.parse_weekdays(text) == days


@pytest.mark.parametrize("text", ["", "завтра", "7:30", "с", "каждый", "пн и завтра", "се"])
def test_text_that_names_no_weekday_is_not_guessed(text: str) -> None:
    assert so.parse_weekdays(text) is None


def test_weekday_labels_come_in_week_order_as_message_ids() -> None:
    labels = so.weekday_labels([5, 1, 3, 1])
    assert labels == ["Mon", "Wed", "Fri"]
    assert all(isinstance(label, Msg) for label in labels)


# -- dates --------------------------------------------------------------------------------------

FIRST = date(2026, 12, 7)  # a Monday
END = date(2027, 1, 6)  # a Wednesday, a month later


def mwf(**extra: object) -> so.Schedule:
    return so.Schedule(
        weekdays=MWF,
        first_date=FIRST,
        end_date=END,
        pickup=time(7, 30),
        back=time(12, 0),
        **extra,  # type: ignore[arg-type]
    )


def test_occurrences_are_the_weekdays_between_the_first_and_end_dates() -> None:
    dates = so.occurrence_dates(mwf())
    assert dates[:4] == [
        date(2026, 12, 7),
        date(2026, 12, 9),
        date(2026, 12, 11),
        date(2026, 12, 14),
    ]
    assert dates[-1] == END
    assert {d.isoweekday() for d in dates} == {1, 3, 5}
    assert len(dates) == 14


def test_a_window_of_dates_is_cut_to_the_orders_range() -> None:
    assert so.occurrence_dates(mwf(), date(2026, 12, 1), date(2026, 12, 9)) == [
        date(2026, 12, 7),
        date(2026, 12, 9),
    ]
    assert so.occurrence_dates(mwf(), date(2027, 2, 1), date(2027, 2, 28)) == []


def test_a_pause_takes_out_its_dates_and_the_order_resumes_after_it() -> None:
    hospital = so.Pause(date(2026, 12, 9), date(2026, 12, 15))
    dates = so.occurrence_dates(mwf(pauses=(hospital,)), FIRST, date(2026, 12, 21))
    assert dates == [date(2026, 12, 7), date(2026, 12, 16), date(2026, 12, 18), date(2026, 12, 21)]


def test_skipped_and_holiday_dates_are_left_out() -> None:
    holidays = so.kz_holidays(FIRST, END)
    assert date(2026, 12, 16) in holidays  # Independence Day, a Wednesday
    assert date(2027, 1, 1) in holidays  # New Year, a Friday
    dates = so.occurrence_dates(mwf(skipped=frozenset({date(2026, 12, 9)})), holidays=holidays)
    assert date(2026, 12, 16) not in dates
    assert date(2027, 1, 1) not in dates
    assert date(2026, 12, 9) not in dates
    assert date(2026, 12, 11) in dates


def test_a_change_of_time_applies_from_its_date_on() -> None:
    schedule = mwf(time_changes=(so.TimeChange(date(2026, 12, 14), time(8, 0), time(13, 0)),))
    assert schedule.times_on(date(2026, 12, 11)) == (time(7, 30), time(12, 0))
    assert schedule.times_on(date(2026, 12, 14)) == (time(8, 0), time(13, 0))
    assert schedule.times_on(date(2027, 1, 6)) == (time(8, 0), time(13, 0))


# -- the end date -------------------------------------------------------------------------------


def test_the_end_date_stops_at_the_vkk_expiry_and_says_the_latest_date() -> None:
    vkk = date(2026, 12, 31)
    assert so.latest_end_date(FIRST, vkk, 92) == vkk
    assert so.check_end_date(FIRST, vkk, vkk, 92) is None
    reason = so.check_end_date(FIRST, END, vkk, 92)
    assert reason is not None and reason.code == "past_vkk_expiry"
    assert reason.params["date"] == "31.12.2026"
    assert reason.params["weekday"] == "Thursday"


def test_the_end_date_stops_at_the_districts_maximum() -> None:
    reason = so.check_end_date(FIRST, FIRST + timedelta(days=120), None, 92)
    assert reason is not None and reason.code == "past_district_maximum"
    assert reason.params["date"] == (FIRST + timedelta(days=92)).strftime("%d.%m.%Y")
    assert reason.params["days"] == 92
    assert so.check_end_date(FIRST, FIRST + timedelta(days=92), None, 92) is None


def test_an_end_date_before_the_first_date_is_refused() -> None:
    reason = so.check_end_date(FIRST, FIRST - timedelta(days=1), None, 92)
    assert reason is not None and reason.code == "end_before_first"


# -- capacity -----------------------------------------------------------------------------------


def test_a_service_day_is_counted_from_the_first_pickup_to_the_end_of_the_last_ride() -> None:
    assert so.service_minutes(BookingRules()) == 13 * 60  # 08:00–20:00 and a 60-min ride
    night = BookingRules(service_start=time(20, 0), service_end=time(6, 0))
    assert so.service_minutes(night) == 11 * 60
    assert so.service_minutes(BookingRules(service_start=time(0), service_end=time(0))) == 24 * 60
    assert so.day_capacity_minutes(BookingRules(), 2) == 26 * 60


def test_capacity_is_over_when_a_day_would_pass_the_share() -> None:
    day, other = date(2026, 12, 7), date(2026, 12, 9)
    capacity = 26 * 60  # two cars
    fine = so.capacity_check(
        {day: 2}, {day: 10}, ride_minutes=60, capacity_minutes=capacity, cap=0.6
    )
    assert not fine.over and fine.day == day and fine.share == pytest.approx(12 / 26)
    over = so.capacity_check(
        {day: 2, other: 2},
        {other: 14},
        ride_minutes=60,
        capacity_minutes=capacity,
        cap=0.6,
    )
    assert over.over and over.day == other and over.share == pytest.approx(16 / 26)
    no_cars = so.capacity_check({day: 1}, {}, ride_minutes=60, capacity_minutes=0, cap=0.6)
    assert no_cars.over


def test_rides_per_day_count_both_legs() -> None:
    counts = so.rides_per_day(mwf(), FIRST, date(2026, 12, 11), ())
    assert counts == {date(2026, 12, 7): 2, date(2026, 12, 9): 2, date(2026, 12, 11): 2}


def test_the_vkk_reminder_is_due_in_the_last_30_days_of_an_order_that_runs_into_it() -> None:
    vkk = date(2027, 1, 6)
    assert not so.vkk_notice_due(END, vkk, vkk - timedelta(days=31))
    assert so.vkk_notice_due(END, vkk, vkk - timedelta(days=30))
    assert so.vkk_notice_due(END, vkk, vkk)
    assert not so.vkk_notice_due(END, vkk, vkk + timedelta(days=1))
    # An order that ends well before the conclusion does not stop because of it.
    assert not so.vkk_notice_due(date(2026, 12, 20), vkk, vkk - timedelta(days=10))
    assert not so.vkk_notice_due(END, None, vkk)
