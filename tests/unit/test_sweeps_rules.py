"""When reminders, escalations, expiries and ВКК letters fall due (pure rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.services.sweeps import (
    ServiceHours,
    VkkNotice,
    age_parts,
    before_reminder_due,
    escalation_due,
    evening_reminder_at,
    evening_reminder_due,
    expiry_due,
    notice_hours,
    retention_cutoffs,
    vkk_notice_due,
    vkk_notice_window_start,
)

TZ = ZoneInfo("Asia/Almaty")  # UTC+5
DAY_DESK = ServiceHours(time(8, 0), time(20, 0))


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


PICKUP = local(2026, 3, 10, 9, 30)


def evening_due(now: datetime, *, scheduled: datetime, pickup: datetime = PICKUP) -> bool:
    return evening_reminder_due(
        pickup_at=pickup,
        scheduled_at=scheduled,
        now=now,
        evening_at=time(19, 0),
        before_minutes=60,
        tz=TZ,
    )


def escalates(
    now: datetime,
    created: datetime,
    *,
    pickup: datetime = PICKUP,
    hours: ServiceHours = DAY_DESK,
) -> bool:
    return escalation_due(
        created_at=created, pickup_at=pickup, now=now, minutes=15, hours=hours, tz=TZ
    )


def test_evening_reminder_is_the_local_evening_before() -> None:
    assert evening_reminder_at(PICKUP, time(19, 0), TZ) == local(2026, 3, 9, 19, 0)
    # 00:30 local is still the previous day in UTC: the local day counts.
    early = local(2026, 3, 10, 0, 30)
    assert evening_reminder_at(early, time(19, 0), TZ) == local(2026, 3, 9, 19, 0)


def test_evening_reminder_window() -> None:
    booked = local(2026, 3, 8, 12)

    def due(now: datetime) -> bool:
        return evening_due(now, scheduled=booked)

    assert not due(local(2026, 3, 9, 18, 59))
    assert due(local(2026, 3, 9, 19, 0))
    assert due(local(2026, 3, 9, 21, 59))
    # The bot was down all evening: nobody is woken at night for it.
    assert not due(local(2026, 3, 9, 22, 0))
    assert not due(local(2026, 3, 10, 9, 0))


def test_no_evening_reminder_for_a_ride_scheduled_after_the_hour() -> None:
    assert not evening_due(local(2026, 3, 9, 19, 31), scheduled=local(2026, 3, 9, 19, 30))


def test_no_evening_reminder_once_the_reminder_before_pickup_is_due() -> None:
    late_night = local(2026, 3, 9, 21, 0)
    pickup = late_night + timedelta(minutes=50)
    assert not evening_due(late_night, scheduled=local(2026, 3, 8, 12), pickup=pickup)


def test_reminder_before_pickup() -> None:
    booked = local(2026, 3, 8, 12)

    def due(now: datetime) -> bool:
        return before_reminder_due(
            pickup_at=PICKUP, scheduled_at=booked, now=now, before_minutes=60
        )

    assert not due(local(2026, 3, 10, 8, 29))
    assert due(local(2026, 3, 10, 8, 30))
    assert due(local(2026, 3, 10, 9, 29))
    assert not due(PICKUP)


def test_no_reminder_before_pickup_when_scheduled_inside_that_hour() -> None:
    assert not before_reminder_due(
        pickup_at=PICKUP,
        scheduled_at=local(2026, 3, 10, 9, 0),
        now=local(2026, 3, 10, 9, 1),
        before_minutes=60,
    )


def test_escalation_counts_only_the_desks_open_time() -> None:
    created = local(2026, 3, 9, 19, 55)  # five minutes before closing
    assert not escalates(local(2026, 3, 9, 20, 30), created)  # closed
    assert not escalates(local(2026, 3, 10, 8, 5), created)  # 10 open minutes
    assert escalates(local(2026, 3, 10, 8, 10), created)


def test_escalation_during_the_day() -> None:
    created = local(2026, 3, 9, 10, 0)
    assert not escalates(local(2026, 3, 9, 10, 14), created)
    assert escalates(local(2026, 3, 9, 10, 15), created)


def test_escalation_not_after_pickup_time() -> None:
    assert not escalates(PICKUP, local(2026, 3, 10, 8, 0))


def test_around_the_clock_and_night_desks() -> None:
    always = ServiceHours(time(0, 0), time(0, 0))
    assert always.is_open(local(2026, 3, 9, 3, 0), TZ)
    assert escalates(local(2026, 3, 9, 2, 15), local(2026, 3, 9, 2, 0), hours=always)
    night = ServiceHours(time(20, 0), time(8, 0))
    assert night.is_open(local(2026, 3, 9, 23, 0), TZ)
    assert night.is_open(local(2026, 3, 9, 7, 59), TZ)
    assert not night.is_open(local(2026, 3, 9, 12, 0), TZ)
    span = night.open_time_between(local(2026, 3, 9, 7, 0), local(2026, 3, 9, 21, 0), TZ)
    assert span == timedelta(hours=2)


def test_no_escalation_on_the_desks_day_off() -> None:
    weekdays = ServiceHours(time(8, 0), time(20, 0), frozenset(range(1, 6)))
    saturday_noon = local(2026, 3, 14, 12, 0)
    assert not weekdays.is_open(saturday_noon, TZ)
    # Asked on Friday at 19:55: five open minutes on Friday, ten more on Monday morning.
    created = local(2026, 3, 13, 19, 55)
    pickup = local(2026, 3, 17, 9)
    assert not escalates(local(2026, 3, 16, 8, 9), created, pickup=pickup, hours=weekdays)
    assert escalates(local(2026, 3, 16, 8, 10), created, pickup=pickup, hours=weekdays)


def test_expiry_at_pickup_time() -> None:
    assert not expiry_due(pickup_at=PICKUP, now=PICKUP - timedelta(seconds=1))
    assert expiry_due(pickup_at=PICKUP, now=PICKUP)


def test_vkk_letters() -> None:
    expires = date(2026, 6, 30)
    assert vkk_notice_due(None, date(2026, 6, 1)) is None
    assert vkk_notice_due(expires, date(2026, 5, 30)) is None
    assert vkk_notice_due(expires, date(2026, 5, 31)) is VkkNotice.DAYS_30
    assert vkk_notice_due(expires, date(2026, 6, 22)) is VkkNotice.DAYS_30
    assert vkk_notice_due(expires, date(2026, 6, 23)) is VkkNotice.DAYS_7
    # Valid through its last day: rides that day are still allowed.
    assert vkk_notice_due(expires, date(2026, 6, 30)) is VkkNotice.DAYS_7
    assert vkk_notice_due(expires, date(2026, 7, 1)) is VkkNotice.EXPIRED


def test_vkk_letter_windows_start_at_local_midnight() -> None:
    expires = date(2026, 6, 30)
    assert vkk_notice_window_start(VkkNotice.DAYS_30, expires, TZ) == local(2026, 5, 31, 0)
    assert vkk_notice_window_start(VkkNotice.DAYS_7, expires, TZ) == local(2026, 6, 23, 0)
    assert vkk_notice_window_start(VkkNotice.EXPIRED, expires, TZ) == local(2026, 7, 1, 0)


def test_letters_go_out_in_the_daytime() -> None:
    assert not notice_hours(local(2026, 3, 9, 8, 59), TZ)
    assert notice_hours(local(2026, 3, 9, 9, 0), TZ)
    assert not notice_hours(local(2026, 3, 9, 21, 0), TZ)


def test_retention_cutoffs() -> None:
    now = local(2026, 3, 9, 12)
    cut = retention_cutoffs(now, 365)
    assert cut.rides == now - timedelta(days=365)
    assert cut.conversations == now - timedelta(days=7)
    # A handled update is remembered long enough to recognise a late redelivery.
    assert cut.inbound_done <= now - timedelta(days=1)


def test_age_parts() -> None:
    assert age_parts(timedelta(minutes=125, seconds=59)) == (2, 5)
    assert age_parts(timedelta(seconds=-5)) == (0, 0)
