"""Booking rules at their boundaries, in the district's time zone (UTC+5).

`now` and pickups are given in UTC on purpose: the rules must reason in local time.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from bot.services import eligibility as elig
from bot.services.booking_rules import (
    NO_DATES_OPEN,
    WEEKDAYS,
    BookingRules,
    ExistingRide,
    bookable_dates,
    check_booking,
    check_caps,
    check_date,
    check_party,
    check_pickup,
    is_late_cancellation,
    service_slots,
    time_slots,
)
from bot.services.i18n_types import Msg, Reason

TZ = ZoneInfo("Asia/Almaty")
RULES = BookingRules()
ROOT = Path(__file__).resolve().parents[2]


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time, returned in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


# Tuesday 10 March 2026; 17:59 local is 12:59 UTC.
BEFORE_CUTOFF = local(2026, 3, 10, 17, 59)
AT_CUTOFF = local(2026, 3, 10, 18, 0)
TOMORROW = date(2026, 3, 11)


def code(reason: Reason | None) -> str | None:
    return None if reason is None else reason.code


# ---- defaults and overrides ----------------------------------------------------------------


def test_defaults_are_domain_md() -> None:
    assert RULES.cutoff_time == time(18, 0)
    assert RULES.max_days_ahead == 14
    assert (RULES.service_start, RULES.service_end) == (time(8, 0), time(20, 0))
    assert RULES.service_days == frozenset(range(1, 8))
    assert RULES.max_rides_per_day == 2
    assert RULES.max_rides_per_month is None
    assert (RULES.max_assistants, RULES.max_companions) == (1, 1)
    assert RULES.late_cancel_minutes == 120
    assert RULES.ride_minutes == 60
    assert RULES.escalation_minutes == 15
    assert RULES.same_day_allowed is False
    assert RULES.slot_minutes == 30


def test_overrides_from_toml() -> None:
    table = tomllib.loads(
        """
        cutoff_time = "20:00"
        service_start = 09:00:00
        service_end = "18:30"
        service_days = [1, 2, 3, 4, 5, 6]
        max_rides_per_month = 20
        same_day_allowed = true
        elderly_age = 60
        """
    )
    rules = RULES.with_overrides(table)
    assert rules.cutoff_time == time(20, 0)
    assert rules.service_start == time(9, 0)
    assert rules.service_end == time(18, 30)
    assert rules.service_days == frozenset({1, 2, 3, 4, 5, 6})
    assert rules.max_rides_per_month == 20
    assert rules.same_day_allowed is True
    assert rules.max_days_ahead == 14  # untouched keys keep the default
    assert RULES.cutoff_time == time(18, 0)  # the defaults are not changed
    assert RULES.with_overrides({}) == RULES


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cut_off", "18:00"),
        ("cutoff_time", "25:00"),
        ("cutoff_time", "6pm"),
        ("cutoff_time", 18),
        ("service_start", "8"),
        ("service_end", "20:60"),
        ("service_days", []),
        ("service_days", [0, 1]),
        ("service_days", [8]),
        ("service_days", [True]),
        ("service_days", "1,2,3"),
        ("max_days_ahead", 0),
        ("max_days_ahead", "14"),
        ("max_rides_per_day", True),
        ("max_rides_per_day", 0),
        ("max_rides_per_day", 2.0),
        ("max_rides_per_month", 0),
        ("max_assistants", -1),
        ("ride_minutes", 0),
        ("slot_minutes", 0),
        ("same_day_allowed", "yes"),
        ("same_day_allowed", 1),
    ],
)
def test_with_overrides_names_the_bad_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{key}: "):
        RULES.with_overrides({key: value})


# ---- the cut-off, in local time --------------------------------------------------------------


def test_cutoff_is_local_1800_the_day_before() -> None:
    assert BEFORE_CUTOFF.tzinfo is UTC and BEFORE_CUTOFF.hour == 12
    assert check_date(RULES, TOMORROW, BEFORE_CUTOFF, TZ) is None
    reason = check_date(RULES, TOMORROW, AT_CUTOFF, TZ)
    assert reason is not None
    assert reason.code == "cutoff_passed"
    assert reason.params == {"cutoff": "18:00", "weekday": "Thursday", "date": "12.03.2026"}
    assert isinstance(reason.params["weekday"], Msg)
    # The day after tomorrow is still open at 18:00.
    assert check_date(RULES, date(2026, 3, 12), AT_CUTOFF, TZ) is None


def test_bookable_dates_move_at_the_cutoff() -> None:
    before = bookable_dates(RULES, BEFORE_CUTOFF, TZ)
    assert before[0] == TOMORROW
    assert before[-1] == date(2026, 3, 24)
    assert len(before) == 14
    after = bookable_dates(RULES, AT_CUTOFF, TZ)
    assert after[0] == date(2026, 3, 12)
    assert after[-1] == date(2026, 3, 24)


def test_local_midnight_is_a_new_day_while_utc_is_still_yesterday() -> None:
    now = local(2026, 3, 11, 0, 30)  # 19:30 UTC on 10 March
    assert now.date() == date(2026, 3, 10)
    assert code(check_date(RULES, TOMORROW, now, TZ)) == "same_day_not_allowed"
    assert code(check_date(RULES, date(2026, 3, 10), now, TZ)) == "date_in_past"
    assert check_date(RULES, date(2026, 3, 12), now, TZ) is None


def test_same_day_is_refused_by_default() -> None:
    now = local(2026, 3, 10, 7, 0)
    reason = check_date(RULES, date(2026, 3, 10), now, TZ)
    assert reason is not None
    assert reason.code == "same_day_not_allowed"
    assert reason.params == {"cutoff": "18:00", "weekday": "Wednesday", "date": "11.03.2026"}


def test_date_in_past() -> None:
    reason = check_date(RULES, date(2026, 3, 1), BEFORE_CUTOFF, TZ)
    assert reason is not None
    assert reason.code == "date_in_past"
    assert reason.params["date"] == "11.03.2026"


def test_last_bookable_day_is_14_days_ahead() -> None:
    assert check_date(RULES, date(2026, 3, 24), BEFORE_CUTOFF, TZ) is None
    reason = check_date(RULES, date(2026, 3, 25), BEFORE_CUTOFF, TZ)
    assert reason is not None
    assert reason.code == "too_far_ahead"
    assert reason.params == {"weekday": "Tuesday", "date": "24.03.2026"}
    # The window opens a day further at local midnight, not at UTC midnight.
    assert code(check_date(RULES, date(2026, 3, 25), local(2026, 3, 10, 23, 59), TZ)) == (
        "too_far_ahead"
    )
    assert check_date(RULES, date(2026, 3, 25), local(2026, 3, 11, 0, 0), TZ) is None


def test_not_a_service_day_offers_the_next_one() -> None:
    rules = RULES.with_overrides({"service_days": [1, 2, 3, 4, 5, 6]})
    reason = check_date(rules, date(2026, 3, 15), BEFORE_CUTOFF, TZ)
    assert reason is not None
    assert reason.code == "not_a_service_day"
    assert reason.params == {
        "day_weekday": "Sunday",
        "day": "15.03.2026",
        "weekday": "Monday",
        "date": "16.03.2026",
    }
    assert date(2026, 3, 15) not in bookable_dates(rules, BEFORE_CUTOFF, TZ)
    assert time_slots(rules, date(2026, 3, 15), BEFORE_CUTOFF, TZ) == []


def test_no_dates_open() -> None:
    rules = RULES.with_overrides({"service_days": [7], "max_days_ahead": 1})
    assert bookable_dates(rules, BEFORE_CUTOFF, TZ) == []
    assert check_date(rules, TOMORROW, BEFORE_CUTOFF, TZ) == NO_DATES_OPEN


# ---- service hours ---------------------------------------------------------------------------

PICKUP_DAY = (2026, 3, 12)


@pytest.mark.parametrize(
    ("hour", "minute", "ok"),
    [(8, 0, True), (7, 59, False), (20, 0, True), (20, 1, False), (13, 17, True), (0, 0, False)],
)
def test_service_hour_edges(hour: int, minute: int, ok: bool) -> None:
    reason = check_pickup(RULES, local(*PICKUP_DAY, hour, minute), BEFORE_CUTOFF, TZ)
    if ok:
        assert reason is None
    else:
        assert reason is not None
        assert reason.code == "outside_service_hours"
        assert reason.params == {"start": "08:00", "end": "20:00"}


def test_time_slots_from_start_to_end_inclusive() -> None:
    slots = time_slots(RULES, date(2026, 3, 12), BEFORE_CUTOFF, TZ)
    assert slots[0] == time(8, 0) and slots[1] == time(8, 30)
    assert slots[-1] == time(20, 0)
    assert len(slots) == 25
    assert time_slots(RULES, TOMORROW, AT_CUTOFF, TZ) == []


def test_slots_follow_the_slot_length() -> None:
    rules = RULES.with_overrides({"slot_minutes": 45, "service_start": "08:15"})
    slots = service_slots(rules)
    assert slots[:3] == [time(8, 15), time(9, 0), time(9, 45)]
    assert slots[-1] == time(19, 30)


def test_pickup_date_checks_use_the_local_date() -> None:
    # 23:30 UTC on 11 March is 04:30 local on 12 March: a date check passes, the hours don't.
    pickup = datetime(2026, 3, 11, 23, 30, tzinfo=UTC)
    assert code(check_pickup(RULES, pickup, BEFORE_CUTOFF, TZ)) == "outside_service_hours"
    assert code(check_pickup(RULES, local(2026, 3, 11, 9), AT_CUTOFF, TZ)) == "cutoff_passed"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        check_pickup(RULES, datetime(2026, 3, 12, 9, 0), BEFORE_CUTOFF, TZ)
    with pytest.raises(ValueError, match="aware"):
        bookable_dates(RULES, datetime(2026, 3, 10, 9, 0), TZ)


# ---- district overrides beat the defaults ------------------------------------------------------


def test_later_cutoff() -> None:
    rules = RULES.with_overrides({"cutoff_time": "20:00"})
    assert check_date(rules, TOMORROW, AT_CUTOFF, TZ) is None
    assert check_date(rules, TOMORROW, local(2026, 3, 10, 19, 59), TZ) is None
    reason = check_date(rules, TOMORROW, local(2026, 3, 10, 20, 0), TZ)
    assert reason is not None
    assert reason.code == "cutoff_passed"
    assert reason.params["cutoff"] == "20:00"


def test_same_day_allowed() -> None:
    rules = RULES.with_overrides({"same_day_allowed": True})
    now = local(2026, 3, 10, 10, 10)
    today = date(2026, 3, 10)
    assert bookable_dates(rules, now, TZ)[0] == today
    slots = time_slots(rules, today, now, TZ)
    assert slots[0] == time(10, 30)
    assert check_pickup(rules, local(2026, 3, 10, 10, 30), now, TZ) is None
    assert code(check_pickup(rules, local(2026, 3, 10, 10, 10), now, TZ)) == "in_past"
    assert code(check_pickup(rules, local(2026, 3, 10, 9, 0), now, TZ)) == "in_past"
    # No cut-off: tomorrow stays open late in the evening.
    assert check_date(rules, TOMORROW, local(2026, 3, 10, 23, 0), TZ) is None


def test_same_day_after_the_last_slot() -> None:
    rules = RULES.with_overrides({"same_day_allowed": True})
    now = local(2026, 3, 10, 20, 0)
    reason = check_date(rules, date(2026, 3, 10), now, TZ)
    assert reason is not None
    assert reason.code == "no_times_left"
    assert reason.params == {"weekday": "Wednesday", "date": "11.03.2026"}
    assert bookable_dates(rules, now, TZ)[0] == TOMORROW


def test_around_the_clock() -> None:
    rules = RULES.with_overrides({"service_start": "00:00", "service_end": "00:00"})
    assert rules.around_the_clock
    assert len(service_slots(rules)) == 48
    for hour, minute in ((0, 0), (3, 0), (7, 59), (20, 1), (23, 59)):
        assert check_pickup(rules, local(*PICKUP_DAY, hour, minute), BEFORE_CUTOFF, TZ) is None
    assert not RULES.around_the_clock


def test_night_shift_across_midnight() -> None:
    rules = RULES.with_overrides({"service_start": "20:00", "service_end": "02:00"})
    assert rules.within_service_hours(time(23, 0))
    assert rules.within_service_hours(time(2, 0))
    assert not rules.within_service_hours(time(2, 1))
    assert not rules.within_service_hours(time(19, 59))
    assert service_slots(rules)[0] == time(0, 0)
    assert service_slots(rules)[-1] == time(23, 30)


# ---- party, caps, overlap --------------------------------------------------------------------


def test_party() -> None:
    assert check_party(RULES, 1, 1) is None
    assert check_party(RULES, 0, 0) is None
    reason = check_party(RULES, 2, 0)
    assert reason is not None and reason.code == "too_many_assistants"
    assert reason.params == {"limit": 1}
    assert code(check_party(RULES, 1, 2)) == "too_many_companions"
    no_one = RULES.with_overrides({"max_assistants": 0, "max_companions": 0})
    assert code(check_party(no_one, 1, 0)) == "too_many_assistants"
    assert code(check_party(no_one, 0, 1)) == "too_many_companions"
    with pytest.raises(ValueError):
        check_party(RULES, -1, 0)


def ride(year: int, month: int, day: int, hour: int, active: bool = True) -> ExistingRide:
    return ExistingRide(local(year, month, day, hour), active)


def test_daily_cap() -> None:
    pickup = local(*PICKUP_DAY, 16)
    one = [ride(*PICKUP_DAY, 9)]
    two = [*one, ride(*PICKUP_DAY, 12)]
    assert check_caps(RULES, pickup, one, TZ) is None
    reason = check_caps(RULES, pickup, two, TZ)
    assert reason is not None
    assert reason.code == "daily_cap"
    assert reason.params == {"date": "12.03.2026", "limit": 2}
    cancelled = [ride(*PICKUP_DAY, 9), ride(*PICKUP_DAY, 12, active=False)]
    assert check_caps(RULES, pickup, cancelled, TZ) is None
    # Other days don't count, including a ride on the same UTC day but the next local day.
    next_local_day = ExistingRide(datetime(2026, 3, 12, 19, 30, tzinfo=UTC), True)
    assert check_caps(RULES, pickup, [*one, next_local_day], TZ) is None


def test_monthly_cap() -> None:
    rules = RULES.with_overrides({"max_rides_per_month": 3})
    march = [ride(2026, 3, 2, 9), ride(2026, 3, 5, 9), ride(2026, 3, 20, 9)]
    assert check_caps(rules, local(2026, 3, 25, 9), march[:2], TZ) is None
    reason = check_caps(rules, local(2026, 3, 25, 9), march, TZ)
    assert reason is not None
    assert reason.code == "monthly_cap"
    assert reason.params == {"limit": 3, "date": "01.04.2026"}
    assert check_caps(rules, local(2026, 4, 1, 9), march, TZ) is None
    march[0] = ExistingRide(march[0].pickup_at, active=False)
    assert check_caps(rules, local(2026, 3, 25, 9), march, TZ) is None
    december = [ride(2026, 12, d, 9) for d in (1, 2, 3)]
    reason = check_caps(rules, local(2026, 12, 31, 9), december, TZ)
    assert reason is not None and reason.params["date"] == "01.01.2027"
    # No monthly cap by default.
    many = [ride(2026, 3, d, 9) for d in range(1, 25)]
    assert check_caps(RULES, local(2026, 3, 25, 9), many, TZ) is None


@pytest.mark.parametrize(
    ("hour", "minute", "clash"),
    [(10, 0, True), (10, 59, True), (11, 0, False), (9, 1, True), (9, 0, False)],
)
def test_overlap_within_the_ride_length(hour: int, minute: int, clash: bool) -> None:
    existing = [ride(*PICKUP_DAY, 10)]
    reason = check_caps(RULES, local(*PICKUP_DAY, hour, minute), existing, TZ)
    if clash:
        assert reason is not None
        assert reason.code == "overlap"
        assert reason.params == {"date": "12.03.2026", "time": "10:00", "minutes": 60}
    else:
        assert reason is None
    cancelled = [ride(*PICKUP_DAY, 10, active=False)]
    assert check_caps(RULES, local(*PICKUP_DAY, hour, minute), cancelled, TZ) is None


def test_late_cancellation_window() -> None:
    pickup = local(*PICKUP_DAY, 10)
    assert not is_late_cancellation(RULES, pickup, pickup - timedelta(minutes=120))
    assert is_late_cancellation(RULES, pickup, pickup - timedelta(minutes=119))
    assert is_late_cancellation(RULES, pickup, pickup + timedelta(minutes=5))
    relaxed = RULES.with_overrides({"late_cancel_minutes": 30})
    assert not is_late_cancellation(relaxed, pickup, pickup - timedelta(minutes=60))


def test_check_booking_order() -> None:
    pickup = local(*PICKUP_DAY, 10)
    full = [ride(*PICKUP_DAY, 8), ride(*PICKUP_DAY, 14)]
    assert check_booking(RULES, pickup, BEFORE_CUTOFF, TZ) is None
    assert code(check_booking(RULES, pickup, AT_CUTOFF, TZ)) is None  # the 12th is open
    late = local(2026, 3, 11, 10)
    assert code(check_booking(RULES, late, AT_CUTOFF, TZ, assistants=5)) == "cutoff_passed"
    assert code(check_booking(RULES, pickup, BEFORE_CUTOFF, TZ, assistants=2, existing=full)) == (
        "too_many_assistants"
    )
    assert code(check_booking(RULES, pickup, BEFORE_CUTOFF, TZ, existing=full)) == "daily_cap"
    assert (
        check_booking(RULES, pickup, BEFORE_CUTOFF, TZ, assistants=1, companions=1, existing=[])
        is None
    )


RULE_SETS = [
    RULES,
    RULES.with_overrides({"same_day_allowed": True}),
    RULES.with_overrides({"cutoff_time": "00:00", "max_days_ahead": 3}),
    RULES.with_overrides({"service_days": [1, 3, 5], "service_start": "00:00"}),
    RULES.with_overrides({"service_start": "00:00", "service_end": "00:00"}),
]
NOWS = [local(2026, 3, 10, h, m) for h, m in ((0, 0), (7, 59), (17, 59), (18, 0), (23, 59))]


@pytest.mark.parametrize("rules", RULE_SETS)
@pytest.mark.parametrize("now", NOWS)
def test_check_date_agrees_with_bookable_dates(rules: BookingRules, now: datetime) -> None:
    dates = set(bookable_dates(rules, now, TZ))
    for offset in range(-2, rules.max_days_ahead + 3):
        day = date(2026, 3, 10) + timedelta(days=offset)
        assert (check_date(rules, day, now, TZ) is None) == (day in dates), day
        assert bool(time_slots(rules, day, now, TZ)) == (day in dates), day


# ---- every Reason renders in every language ----------------------------------------------------


def all_reasons() -> Iterator[Reason]:
    """At least one Reason of every code the rule modules produce."""
    same_day = RULES.with_overrides({"same_day_allowed": True})
    sundays_off = RULES.with_overrides({"service_days": [1, 2, 3, 4, 5, 6]})
    no_one = RULES.with_overrides({"max_assistants": 0, "max_companions": 0})
    monthly = RULES.with_overrides({"max_rides_per_month": 1})
    nobody = RULES.with_overrides({"service_days": [7], "max_days_ahead": 1})
    candidates = [
        check_date(RULES, date(2026, 3, 1), BEFORE_CUTOFF, TZ),
        check_date(RULES, date(2026, 3, 10), BEFORE_CUTOFF, TZ),
        check_date(RULES, TOMORROW, AT_CUTOFF, TZ),
        check_date(RULES, date(2026, 4, 30), BEFORE_CUTOFF, TZ),
        check_date(sundays_off, date(2026, 3, 15), BEFORE_CUTOFF, TZ),
        check_date(same_day, date(2026, 3, 10), local(2026, 3, 10, 21), TZ),
        check_date(nobody, TOMORROW, BEFORE_CUTOFF, TZ),
        check_pickup(same_day, local(2026, 3, 10, 9), local(2026, 3, 10, 10), TZ),
        check_pickup(RULES, local(*PICKUP_DAY, 21), BEFORE_CUTOFF, TZ),
        check_party(RULES, 2, 0),
        check_party(RULES, 0, 2),
        check_party(no_one, 1, 0),
        check_party(no_one, 0, 1),
        check_caps(RULES, local(*PICKUP_DAY, 10), [ride(*PICKUP_DAY, 10)], TZ),
        check_caps(RULES, local(*PICKUP_DAY, 16), [ride(*PICKUP_DAY, 9)] * 2, TZ),
        check_caps(monthly, local(*PICKUP_DAY, 16), [ride(2026, 3, 1, 9)], TZ),
    ]
    yield from (r for r in candidates if r is not None)
    facts = elig.RiderFacts("elderly", "verified", None, date(1990, 1, 1), None)
    rules = elig.EligibilityRules()
    on = date(2026, 3, 12)
    variants = [
        facts,
        elig.RiderFacts("nope", "verified", None, None, None),
        elig.RiderFacts("elderly", "verified", None, None, None),
        elig.RiderFacts("child_rehab", "verified", None, date(1990, 1, 1), None),
        elig.RiderFacts("group1_mobility", "verified", None, None, 3),
        elig.RiderFacts("group1_mobility", "verified", date(2026, 1, 1), None, 1),
        elig.RiderFacts("group1_mobility", "pending", None, None, 1),
        elig.RiderFacts("group1_mobility", "rejected", None, None, 1),
    ]
    for variant in variants:
        reason = elig.check_eligibility(variant, rules, on).reason
        if reason is not None:
            yield reason


EXPECTED_CODES = {
    "date_in_past",
    "same_day_not_allowed",
    "cutoff_passed",
    "too_far_ahead",
    "not_a_service_day",
    "no_times_left",
    "no_dates_open",
    "in_past",
    "outside_service_hours",
    "too_many_assistants",
    "too_many_companions",
    "overlap",
    "daily_cap",
    "monthly_cap",
    "category_not_allowed",
    "vkk_expired",
    "child_too_old",
    "elderly_too_young",
    "birth_date_unknown",
    "verification_pending",
    "verification_rejected",
    "disability_group_mismatch",
}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_reason_code_is_produced() -> None:
    assert {r.code for r in all_reasons()} == EXPECTED_CODES


def test_params_fill_every_placeholder() -> None:
    seen: list[str] = []

    def fake(msgid: str, /, **params: object) -> str:
        seen.append(msgid)
        assert placeholders(msgid) == set(params), msgid
        return "<" + msgid.format_map(params) + ">"

    for reason in all_reasons():
        text = reason.render(fake)
        assert "{" not in text, text
        for value in reason.params.values():
            if isinstance(value, Msg):
                assert value in WEEKDAYS
                assert f"<{value}>" in text  # translated before formatting
    assert set(WEEKDAYS) & set(seen)


def catalog(lang: str) -> dict[str, str]:
    with (ROOT / "locales" / lang / "LC_MESSAGES" / "rules.po").open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh, locale=lang) if m.id}


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_every_reason_is_translated(lang: str) -> None:
    texts = catalog(lang)
    for msgid, text in texts.items():
        assert text, msgid
        assert placeholders(text) == placeholders(msgid), msgid
    assert set(WEEKDAYS) <= set(texts)

    def translate(msgid: str, /, **params: object) -> str:
        return texts[msgid].format_map(params)

    for reason in all_reasons():
        text = reason.render(translate)
        assert "{" not in text and "Monday" not in text and "Thursday" not in text, text


def test_catalogs_hold_the_same_ids() -> None:
    assert set(catalog("kk")) == set(catalog("ru"))
