"""When a ride can be booked: the booking window, service hours, party size, caps, overlaps.

Defaults are DOMAIN.md's; every district may override them from the districts file. All window
reasoning happens in the district's local time (`tz`); `now` and pickups are aware datetimes in
any zone. Every refusal is a Reason that says why and what is possible instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.services.eligibility import ELIGIBILITY_RULE_KEYS
from bot.services.i18n_types import N_, Msg, Reason

ALL_DAYS: Final = frozenset(range(1, 8))
WEEKDAYS: Final = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
_HHMM: Final = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_MINUTES_PER_DAY: Final = 24 * 60

# Integer rules and their sane ranges: a typo in the districts file fails at start.
_INT_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "max_days_ahead": (1, 366),
    "max_rides_per_day": (1, 50),
    "max_rides_per_month": (1, 1000),
    "max_assistants": (0, 10),
    "max_companions": (0, 10),
    "late_cancel_minutes": (0, 7 * _MINUTES_PER_DAY),
    "ride_minutes": (1, _MINUTES_PER_DAY),
    "escalation_minutes": (1, _MINUTES_PER_DAY),
    "slot_minutes": (5, 12 * 60),
}
_TIME_KEYS: Final = frozenset({"cutoff_time", "service_start", "service_end"})


@dataclass(frozen=True, slots=True)
class BookingRules:
    """One district's booking rules (DOMAIN.md defaults).

    Service hours are local pickup times, both ends included; `service_start == service_end`
    means around the clock, and a start later than the end is a night shift across midnight.
    With `same_day_allowed` there is no cut-off: any future time in the window can be booked.
    """

    cutoff_time: time = time(18, 0)  # latest booking for a date: this time the day before
    max_days_ahead: int = 14
    service_start: time = time(8, 0)
    service_end: time = time(20, 0)  # the last pickup slot
    service_days: frozenset[int] = field(default=ALL_DAYS)  # ISO weekdays, 1 is Monday
    max_rides_per_day: int = 2
    max_rides_per_month: int | None = None
    max_assistants: int = 1
    max_companions: int = 1
    late_cancel_minutes: int = 120
    ride_minutes: int = 60
    escalation_minutes: int = 15
    same_day_allowed: bool = False
    slot_minutes: int = 30

    @property
    def around_the_clock(self) -> bool:
        return self.service_start == self.service_end

    def within_service_hours(self, at: time) -> bool:
        """Whether a local pickup time falls in service hours (both ends included)."""
        start, end = self.service_start, self.service_end
        if start == end:
            return True
        if start < end:
            return start <= at <= end
        return at >= start or at <= end

    def with_overrides(self, overrides: Mapping[str, object]) -> BookingRules:
        """These rules with a district's overrides; raises ValueError naming a bad key.

        Times are "HH:MM" strings (or TOML times), `service_days` a list of ISO weekdays.
        Eligibility keys (`elderly_age`, …) share the district's table and are skipped here.
        """
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in ELIGIBILITY_RULE_KEYS:
                continue
            if key not in known:
                raise ValueError(f"{key}: unknown booking rule")
            changes[key] = _parse(key, value)
        return replace(self, **changes)


def _parse(key: str, value: object) -> object:
    if key in _TIME_KEYS:
        return _parse_time(key, value)
    if key == "service_days":
        return _parse_days(value)
    if key == "same_day_allowed":
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        return value
    if key == "max_rides_per_month" and value is None:
        return None
    low, high = _INT_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def _parse_time(key: str, value: object) -> time:
    if isinstance(value, time) and value.tzinfo is None:
        return value.replace(second=0, microsecond=0)
    if isinstance(value, str) and (match := _HHMM.fullmatch(value.strip())):
        return time(int(match[1]), int(match[2]))
    raise ValueError(f'{key}: expected a time such as "18:00", got {value!r}')


def _parse_days(value: object) -> frozenset[int]:
    if (
        isinstance(value, list | tuple | set | frozenset)
        and value
        and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in value)
    ):
        return frozenset(value)
    raise ValueError(f"service_days: expected a list of weekdays 1 (Monday) to 7, got {value!r}")


@dataclass(frozen=True, slots=True)
class ExistingRide:
    """One of the rider's other rides; only active ones count for caps and overlaps."""

    pickup_at: datetime
    active: bool


# ---- formatting for Reason params --------------------------------------------------------


def fmt_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def fmt_time(at: time) -> str:
    return at.strftime("%H:%M")


def weekday_msg(day: date) -> Msg:
    """The weekday as a message id, translated when the Reason is rendered."""
    return Msg(WEEKDAYS[day.isoweekday() - 1])


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


# ---- the booking window ------------------------------------------------------------------


def _date_problem(rules: BookingRules, day: date, now: datetime, tz: ZoneInfo) -> str | None:
    """The code of what's wrong with the date itself (no hints; those need bookable_dates)."""
    today = _aware(now, "now").astimezone(tz).date()
    if day < today:
        return "date_in_past"
    if day == today and not rules.same_day_allowed:
        return "same_day_not_allowed"
    if day > today + timedelta(days=rules.max_days_ahead):
        return "too_far_ahead"
    if day.isoweekday() not in rules.service_days:
        return "not_a_service_day"
    if not rules.same_day_allowed:
        deadline = datetime.combine(day - timedelta(days=1), rules.cutoff_time, tzinfo=tz)
        if now >= deadline:
            return "cutoff_passed"
    return None


def service_slots(rules: BookingRules) -> list[time]:
    """Every pickup slot of a service day, from the start in `slot_minutes` steps."""
    first = rules.service_start.hour * 60 + rules.service_start.minute
    minutes = {
        (first + k * rules.slot_minutes) % _MINUTES_PER_DAY
        for k in range(-(-_MINUTES_PER_DAY // rules.slot_minutes))
    }
    slots = (time(m // 60, m % 60) for m in sorted(minutes))
    return [s for s in slots if rules.within_service_hours(s)]


def time_slots(rules: BookingRules, day: date, now: datetime, tz: ZoneInfo) -> list[time]:
    """The pickup times still bookable on a date (local), empty when the date isn't."""
    if _date_problem(rules, day, now, tz) is not None:
        return []
    return [s for s in service_slots(rules) if datetime.combine(day, s, tzinfo=tz) > now]


def bookable_dates(rules: BookingRules, now: datetime, tz: ZoneInfo) -> list[date]:
    """The dates a rider can still pick, in order (each has at least one free time)."""
    today = _aware(now, "now").astimezone(tz).date()
    window = (today + timedelta(days=n) for n in range(rules.max_days_ahead + 1))
    return [day for day in window if time_slots(rules, day, now, tz)]


NO_DATES_OPEN: Final = Reason(
    "no_dates_open",
    N_("No dates are open for booking right now. Please call the dispatcher."),
)
_DATE_MSGIDS: Final = {
    "date_in_past": N_(
        "That date has already passed. The earliest date you can book is {weekday}, {date}."
    ),
    "same_day_not_allowed": N_(
        "Rides for today can't be booked: bookings close at {cutoff} the day before. "
        "The earliest date you can book is {weekday}, {date}."
    ),
    "too_far_ahead": N_(
        "That date is too far ahead. The last date you can book now is {weekday}, {date}."
    ),
    "not_a_service_day": N_(
        "Cars don't run on {day_weekday}, {day}. "
        "The nearest date you can book is {weekday}, {date}."
    ),
    "cutoff_passed": N_(
        "Bookings for tomorrow closed at {cutoff}. "
        "The earliest date you can book is {weekday}, {date}."
    ),
    "no_times_left": N_(
        "There are no more pickup times today. "
        "The earliest date you can book is {weekday}, {date}."
    ),
}


def _date_reason(rules: BookingRules, code: str, day: date, now: datetime, tz: ZoneInfo) -> Reason:
    dates = bookable_dates(rules, now, tz)
    if not dates:
        return NO_DATES_OPEN
    if code == "too_far_ahead":
        instead = dates[-1]
    elif code == "not_a_service_day":
        later = [d for d in dates if d > day]
        instead = later[0] if later else dates[-1]
    else:
        instead = dates[0]
    params: dict[str, object] = {"weekday": weekday_msg(instead), "date": fmt_date(instead)}
    if code in ("same_day_not_allowed", "cutoff_passed"):
        params["cutoff"] = fmt_time(rules.cutoff_time)
    if code == "not_a_service_day":
        params["day_weekday"] = weekday_msg(day)
        params["day"] = fmt_date(day)
    return Reason(code, _DATE_MSGIDS[code], params)


def check_date(rules: BookingRules, day: date, now: datetime, tz: ZoneInfo) -> Reason | None:
    """None when the date (local) can be booked now; else why not and the date to pick instead.

    Codes: date_in_past, same_day_not_allowed, too_far_ahead, not_a_service_day,
    cutoff_passed, no_times_left (today, all times gone), no_dates_open.
    """
    code = _date_problem(rules, day, now, tz)
    if code is None:
        if time_slots(rules, day, now, tz):
            return None
        code = "no_times_left"
    return _date_reason(rules, code, day, now, tz)


# ---- one pickup ------------------------------------------------------------------------------

IN_PAST: Final = Reason("in_past", N_("That time has already passed. Please choose a later time."))


def outside_service_hours(rules: BookingRules) -> Reason:
    return Reason(
        "outside_service_hours",
        N_("Cars pick riders up between {start}–{end}. Please choose a time within these hours."),
        {"start": fmt_time(rules.service_start), "end": fmt_time(rules.service_end)},
    )


def check_pickup(
    rules: BookingRules, pickup: datetime, now: datetime, tz: ZoneInfo
) -> Reason | None:
    """Date checks for the pickup's local date, then in_past, then outside_service_hours.

    Pickups need not sit on a slot: a dispatcher may propose any time within the hours.
    """
    local = _aware(pickup, "pickup").astimezone(tz)
    code = _date_problem(rules, local.date(), now, tz)
    if code is not None:
        return _date_reason(rules, code, local.date(), now, tz)
    if pickup <= now:
        return IN_PAST
    if not rules.within_service_hours(local.time()):
        return outside_service_hours(rules)
    return None


def check_party(rules: BookingRules, assistants: int, companions: int) -> Reason | None:
    """How many people ride along with the rider: an assistant and companions are capped."""
    if assistants < 0 or companions < 0:
        raise ValueError("assistants and companions can't be negative")
    if assistants > rules.max_assistants:
        if rules.max_assistants == 0:
            return Reason(
                "too_many_assistants", N_("In this district an assistant can't ride along.")
            )
        return Reason(
            "too_many_assistants",
            N_("At most {limit} assistants can ride along."),
            {"limit": rules.max_assistants},
        )
    if companions > rules.max_companions:
        if rules.max_companions == 0:
            return Reason(
                "too_many_companions", N_("In this district companions can't ride along.")
            )
        return Reason(
            "too_many_companions",
            N_("At most {limit} companions can ride along."),
            {"limit": rules.max_companions},
        )
    return None


# ---- the rider's other rides -------------------------------------------------------------


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def check_caps(
    rules: BookingRules, pickup: datetime, existing: Sequence[ExistingRide], tz: ZoneInfo
) -> Reason | None:
    """Overlap with another active ride, then the daily and monthly caps (local days/months).

    `existing` is the same rider's rides, without the one being booked or moved.
    """
    local = _aware(pickup, "pickup").astimezone(tz)
    active = sorted(_aware(r.pickup_at, "pickup_at") for r in existing if r.active)
    span = timedelta(minutes=rules.ride_minutes)
    for other in active:
        if abs(other - pickup) < span:
            other_local = other.astimezone(tz)
            return Reason(
                "overlap",
                N_(
                    "You already have a ride on {date} at {time}. Please choose a time at "
                    "least {minutes} min before or after it."
                ),
                {
                    "date": fmt_date(other_local.date()),
                    "time": fmt_time(other_local.time()),
                    "minutes": rules.ride_minutes,
                },
            )
    days = [other.astimezone(tz).date() for other in active]
    if sum(d == local.date() for d in days) >= rules.max_rides_per_day:
        return Reason(
            "daily_cap",
            N_(
                "You already have the most rides allowed on {date}: {limit} a day. "
                "Please choose another date."
            ),
            {"date": fmt_date(local.date()), "limit": rules.max_rides_per_day},
        )
    monthly = rules.max_rides_per_month
    month = (local.year, local.month)
    if monthly is not None and sum((d.year, d.month) == month for d in days) >= monthly:
        return Reason(
            "monthly_cap",
            N_(
                "You already have the most rides allowed in that month: {limit} a month. "
                "You can book rides from {date}."
            ),
            {"limit": monthly, "date": fmt_date(_first_of_next_month(local.date()))},
        )
    return None


def is_late_cancellation(rules: BookingRules, pickup: datetime, now: datetime) -> bool:
    """A cancellation less than `late_cancel_minutes` before pickup (or after it) is late."""
    return pickup - now < timedelta(minutes=rules.late_cancel_minutes)


def check_booking(
    rules: BookingRules,
    pickup: datetime,
    now: datetime,
    tz: ZoneInfo,
    *,
    assistants: int = 0,
    companions: int = 0,
    existing: Sequence[ExistingRide] = (),
) -> Reason | None:
    """Every booking rule in the order a rider fixes them: date and time, party, other rides."""
    return (
        check_pickup(rules, pickup, now, tz)
        or check_party(rules, assistants, companions)
        or check_caps(rules, pickup, existing, tz)
    )
