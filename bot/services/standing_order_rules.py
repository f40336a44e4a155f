"""The arithmetic of standing orders, with no database: which dates, at what times, until when.

A standing order repeats on some weekdays between a first and an end date. Its dates are the
weekdays in that range, minus pauses, minus the days the rider cancelled or the rules refused,
minus Kazakhstan's public holidays where the district skips them. Typed weekdays are read in
Russian, Kazakh (with or without the Kazakh letters) and English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import lru_cache
from typing import Final

import holidays as holiday_calendars

from bot.services.booking_rules import BookingRules, fmt_date, weekday_msg
from bot.services.i18n_types import N_, Msg, Reason

WORKDAYS: Final = frozenset({1, 2, 3, 4, 5})
EVERY_DAY: Final = frozenset(range(1, 8))
# The district's furthest end date, in days after the first date (about three months).
DEFAULT_MAX_DAYS: Final = 92
DEFAULT_CAPACITY_SHARE: Final = 0.6
# The rider is told this long before the ВКК conclusion runs out that the order stops then.
VKK_NOTICE_DAYS: Final = 30
SHORT_WEEKDAYS: Final = (
    N_("Mon"),
    N_("Tue"),
    N_("Wed"),
    N_("Thu"),
    N_("Fri"),
    N_("Sat"),
    N_("Sun"),
)

# ---- typed weekdays --------------------------------------------------------------------------

# Kazakh letters typed on a Russian keyboard come out as their look-alikes: read them so.
_FOLD: Final = str.maketrans("әіңғүұқөһё", "аингуукохе")
# Full names (folded) and the day they name; shortened and inflected forms are read too.
_NAMES: Final[Mapping[str, int]] = {
    # Russian, nominative and accusative ("в среду")
    "понедельник": 1,
    "вторник": 2,
    "среда": 3,
    "среду": 3,
    "четверг": 4,
    "пятница": 5,
    "пятницу": 5,
    "суббота": 6,
    "субботу": 6,
    "воскресенье": 7,
    # Kazakh
    "дуйсенби": 1,
    "сейсенби": 2,
    "сарсенби": 3,
    "бейсенби": 4,
    "жума": 5,
    "сенби": 6,
    "жексенби": 7,
    # English
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
    "sunday": 7,
}
# The two-letter abbreviations of both calendars; "ср" and "сб" mean the same day in both.
_ABBREVIATIONS: Final[Mapping[str, int]] = {
    "пн": 1,
    "вт": 2,
    "ср": 3,
    "чт": 4,
    "пт": 5,
    "сб": 6,
    "вс": 7,
    "дс": 1,
    "сс": 2,
    "бс": 4,
    "жм": 5,
    "жс": 7,
    "mo": 1,
    "tu": 2,
    "we": 3,
    "th": 4,
    "fr": 5,
    "sa": 6,
    "su": 7,
}
# Whole phrases, matched before single words.
_PHRASES: Final[Sequence[tuple[str, frozenset[int]]]] = (
    ("жумыс кундери", WORKDAYS),
    ("жумыс куни", WORKDAYS),
    ("демалыс кундери", frozenset({6, 7})),
    ("по будням", WORKDAYS),
    ("будние дни", WORKDAYS),
    ("рабочие дни", WORKDAYS),
    ("по рабочим дням", WORKDAYS),
    ("каждый день", EVERY_DAY),
    ("ар кун", EVERY_DAY),
    ("кун сайын", EVERY_DAY),
    ("every day", EVERY_DAY),
)
_GROUPS: Final[Mapping[str, frozenset[int]]] = {
    "будни": WORKDAYS,
    "будням": WORKDAYS,
    "выходные": frozenset({6, 7}),
    "ежедневно": EVERY_DAY,
    "weekdays": WORKDAYS,
    "weekends": frozenset({6, 7}),
    "daily": EVERY_DAY,
}
# Words that join days and mean nothing themselves.
_FILLER: Final = frozenset(
    {"и", "по", "в", "во", "каждый", "каждую", "каждое", "мен", "жане", "and", "on", "every", "ар"}
)
_RANGE: Final = re.compile(r"^(\w+)\s*[-–—]\s*(\w+)$")


def _fold(text: str) -> str:
    return text.casefold().translate(_FOLD)


def _day_of(word: str) -> int | None:
    if word in _ABBREVIATIONS:
        return _ABBREVIATIONS[word]
    if word in _NAMES:
        return _NAMES[word]
    # A shortened name ("сәр", "пят") or an inflected one ("средам", "жұмада", "mondays"):
    # the longest start of the word, three letters or more, that names one day only.
    for length in range(len(word), 2, -1):
        stem = word[:length]
        days = {day for name, day in _NAMES.items() if name.startswith(stem)}
        if len(days) == 1:
            return days.pop()
        if days:
            return None
    return None


def parse_weekdays(text: str) -> frozenset[int] | None:
    """ISO weekdays (1 is Monday) named in the text, or None when a word is not understood.

    "пн ср пт", "дс сәр жм", "дс, сс, жм", "пн-пт", "будни", "жұмыс күндері", "weekdays",
    "понедельник и среда", "Monday, Friday".
    """
    folded = " ".join(_fold(text).replace(",", " ").replace(";", " ").split())
    folded = re.sub(r"\s*([-–—])\s*", r"\1", folded)
    days: set[int] = set()
    for phrase, named in _PHRASES:
        if phrase in folded:
            days |= named
            folded = folded.replace(phrase, " ")
    for word in folded.split():
        word = word.strip(".!?")
        if not word or word in _FILLER:
            continue
        if word in _GROUPS:
            days |= _GROUPS[word]
            continue
        if (match := _RANGE.match(word)) is not None:
            start, end = _day_of(match[1]), _day_of(match[2])
            if start is None or end is None:
                return None
            span = (
                range(start, end + 1) if start <= end else [*range(start, 8), *range(1, end + 1)]
            )
            days.update(span)
            continue
        day = _day_of(word)
        if day is None:
            return None
        days.add(day)
    return frozenset(days) or None


def weekday_labels(days: Iterable[int]) -> list[Msg]:
    """Short weekday names in week order, as message ids ("Mon", "Wed", "Fri")."""
    return [Msg(SHORT_WEEKDAYS[d - 1]) for d in sorted(set(days))]


# ---- dates and times -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pause:
    """No rides from `start` to `end`, both included (a hospital stay)."""

    start: date
    end: date

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class TimeChange:
    """From `start` on, the pickup (and way back) are at these times."""

    start: date
    pickup: time
    back: time | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """What the order's row says about dates and times, read into plain values."""

    weekdays: frozenset[int]
    first_date: date
    end_date: date
    pickup: time
    back: time | None
    pauses: tuple[Pause, ...] = ()
    time_changes: tuple[TimeChange, ...] = ()
    # Dates that have no ride: cancelled by the rider or refused by the rules.
    skipped: frozenset[date] = field(default_factory=frozenset)

    def times_on(self, day: date) -> tuple[time, time | None]:
        """The pickup and way-back times on a date: the latest change that started by then."""
        pickup, back = self.pickup, self.back
        for change in sorted(self.time_changes, key=lambda c: c.start):
            if change.start <= day:
                pickup, back = change.pickup, change.back
        return pickup, back

    def paused_on(self, day: date) -> bool:
        return any(p.covers(day) for p in self.pauses)


def weekday_dates(weekdays: Iterable[int], start: date, end: date) -> list[date]:
    """Every date from `start` to `end` (both included) that falls on one of the weekdays."""
    wanted = frozenset(weekdays)
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [d for d in days if d.isoweekday() in wanted]


@lru_cache(maxsize=16)
def _holidays_of(year: int) -> Mapping[date, str]:
    return dict(holiday_calendars.country_holidays("KZ", years=year))


def kz_holidays(start: date, end: date) -> frozenset[date]:
    """Kazakhstan's public holidays and the days off moved for them, from `start` to `end`."""
    found: set[date] = set()
    for year in range(start.year, end.year + 1):
        found.update(d for d in _holidays_of(year) if start <= d <= end)
    return frozenset(found)


def occurrence_dates(
    schedule: Schedule,
    start: date | None = None,
    end: date | None = None,
    *,
    holidays: Iterable[date] = (),
) -> list[date]:
    """The order's ride dates between `start` and `end` (default: its whole range).

    Paused, skipped and holiday dates are left out; pass `holidays=()` where the district keeps
    them.
    """
    low = max(schedule.first_date, start or schedule.first_date)
    high = min(schedule.end_date, end or schedule.end_date)
    if high < low:
        return []
    off = frozenset(holidays)
    return [
        d
        for d in weekday_dates(schedule.weekdays, low, high)
        if d not in off and d not in schedule.skipped and not schedule.paused_on(d)
    ]


# ---- how long an order may run ---------------------------------------------------------------


def latest_end_date(first_date: date, vkk_expires_on: date | None, max_days: int) -> date:
    """The furthest end date: the district's maximum after the first date, and never past the
    day the ВКК conclusion expires (a ride on that day is still allowed)."""
    latest = first_date + timedelta(days=max_days)
    if vkk_expires_on is not None:
        latest = min(latest, vkk_expires_on)
    return latest


def check_end_date(
    first_date: date, end_date: date, vkk_expires_on: date | None, max_days: int
) -> Reason | None:
    """Why the end date can't be, with the latest date allowed; None when it can."""
    if end_date < first_date:
        return Reason(
            "end_before_first",
            N_("The end date comes before the first date ({first}). Please give a later date."),
            {"first": fmt_date(first_date)},
        )
    latest = latest_end_date(first_date, vkk_expires_on, max_days)
    if end_date <= latest:
        return None
    params: dict[str, object] = {"weekday": weekday_msg(latest), "date": fmt_date(latest)}
    if vkk_expires_on is not None and latest == vkk_expires_on:
        return Reason(
            "past_vkk_expiry",
            N_(
                "The VKK conclusion is valid until: {date}, so the standing order can run until "
                "then at the latest: {weekday}, {date}."
            ),
            params,
        )
    return Reason(
        "past_district_maximum",
        N_(
            "In this district a standing order can run for at most {days} days. "
            "The latest end date is {weekday}, {date}."
        ),
        {**params, "days": max_days},
    )


# ---- the desk's capacity ---------------------------------------------------------------------


def service_minutes(rules: BookingRules) -> int:
    """How long one car works on a service day: the first pickup to the end of the last ride."""
    if rules.around_the_clock:
        return 24 * 60
    start = rules.service_start.hour * 60 + rules.service_start.minute
    end = rules.service_end.hour * 60 + rules.service_end.minute
    span = end - start if end > start else end + 24 * 60 - start
    return min(24 * 60, span + rules.ride_minutes)


def day_capacity_minutes(rules: BookingRules, vehicles: int) -> int:
    """The district's car-minutes on a service day."""
    return max(0, vehicles) * service_minutes(rules)


@dataclass(frozen=True, slots=True)
class CapacityVerdict:
    """The busiest date's share of car-hours taken by standing orders, with this one added."""

    over: bool
    share: float
    day: date | None


def capacity_check(
    new_rides: Mapping[date, int],
    other_rides: Mapping[date, int],
    *,
    ride_minutes: int,
    capacity_minutes: int,
    cap: float,
) -> CapacityVerdict:
    """Would the order push some date's standing-order share of car-hours past `cap`?

    `new_rides` and `other_rides` count rides (each leg is one) per date, of this order and of
    the district's other approved orders. A district with no cars is always over.
    """
    worst_day: date | None = None
    worst = 0.0
    for day, count in new_rides.items():
        minutes = (count + other_rides.get(day, 0)) * ride_minutes
        share = minutes / capacity_minutes if capacity_minutes else float("inf")
        if worst_day is None or share > worst:
            worst_day, worst = day, share
    return CapacityVerdict(over=worst > cap, share=worst, day=worst_day)


def rides_per_day(
    schedule: Schedule, start: date, end: date, holidays: Iterable[date]
) -> dict[date, int]:
    """How many rides (legs) the order makes on each of its dates in the range."""
    result: dict[date, int] = {}
    for day in occurrence_dates(schedule, start, end, holidays=holidays):
        _, back = schedule.times_on(day)
        result[day] = 2 if back is not None else 1
    return result


def vkk_notice_due(
    end_date: date, vkk_expires_on: date | None, today: date, days: int = VKK_NOTICE_DAYS
) -> bool:
    """The order runs into the ВКК expiry, which is at most `days` away (and not yet past)."""
    if vkk_expires_on is None or end_date < vkk_expires_on:
        return False
    return vkk_expires_on - timedelta(days=days) <= today <= vkk_expires_on
