"""The daily ride limit, checked when the date is chosen, with what fits instead.

Checking it only at confirm time cost a rider ten answers and a refusal that did not say the
way back was the problem (review B7). Here the date step learns how many rides still fit on
that day and, when not all the wanted legs fit, offers what does: one leg instead of two, or
the nearest date with room for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from bot.services import booking_rules as br
from bot.services.i18n_types import N_, Reason

DAY_FULL: Final = N_(
    "On {date} there is no room for another ride: {limit} rides a day is the most, and they are "
    "booked. The nearest date with room: {weekday}, {other}."
)
DAY_FULL_NO_OTHER: Final = N_(
    "On {date} there is no room for another ride: {limit} rides a day is the most, and they are "
    "booked. Please choose another date."
)
ONE_LEG_LEFT: Final = N_(
    "On {date} only one more ride fits ({limit} a day at most), so there is no room for the way "
    "back. Book one way only, or choose another date: {weekday}, {other} has room for both."
)
ONE_LEG_LEFT_NO_OTHER: Final = N_(
    "On {date} only one more ride fits ({limit} a day at most), so there is no room for the way "
    "back. Book one way only, or choose another date."
)


@dataclass(frozen=True, slots=True)
class DayRoom:
    """How the wanted legs fit the daily limit on one date."""

    day: date
    rides_left: int  # more rides that fit on that day (0 or more)
    legs: int  # the legs wanted: 2 with the way back
    other_day: date | None  # the nearest bookable date with room for every wanted leg

    @property
    def fits(self) -> bool:
        return self.rides_left >= self.legs

    @property
    def one_way_fits(self) -> bool:
        """Two legs were wanted and one fits: offer "without the way back"."""
        return self.legs > 1 and self.rides_left >= 1 and not self.fits

    def reason(self, rules: br.BookingRules) -> Reason | None:
        """None when everything fits; else what to do instead, as the person reads it."""
        if self.fits:
            return None
        params: dict[str, object] = {
            "date": br.fmt_date(self.day),
            "limit": rules.max_rides_per_day,
        }
        if self.other_day is not None:
            params |= {
                "weekday": br.weekday_msg(self.other_day),
                "other": br.fmt_date(self.other_day),
            }
        if self.one_way_fits:
            msgid = ONE_LEG_LEFT if self.other_day else ONE_LEG_LEFT_NO_OTHER
            return Reason("one_leg_left", msgid, params)
        msgid = DAY_FULL if self.other_day else DAY_FULL_NO_OTHER
        return Reason("day_full", msgid, params)


def rides_on(day: date, existing: Sequence[br.ExistingRide], tz: ZoneInfo) -> int:
    """The rider's active rides whose pickup falls on that local date."""
    return sum(
        1 for ride in existing if ride.active and ride.pickup_at.astimezone(tz).date() == day
    )


def day_room(
    rules: br.BookingRules,
    day: date,
    existing: Sequence[br.ExistingRide],
    now: datetime,
    tz: ZoneInfo,
    *,
    legs: int = 1,
) -> DayRoom:
    """Whether `legs` more rides (2 with the way back) fit the daily limit on `day`.

    `existing` is the rider's other rides, as for `check_caps`. The other date offered is the
    nearest bookable one (after `day` first, else before it) where every wanted leg fits.
    """
    if legs < 1:
        raise ValueError("legs must be 1 or more")
    left = max(rules.max_rides_per_day - rides_on(day, existing, tz), 0)
    other = None
    if left < legs:
        dates = br.bookable_dates(rules, now, tz)
        fitting = [
            d
            for d in dates
            if d != day and rules.max_rides_per_day - rides_on(d, existing, tz) >= legs
        ]
        later = [d for d in fitting if d > day]
        other = later[0] if later else (fitting[-1] if fitting else None)
    return DayRoom(day=day, rides_left=left, legs=legs, other_day=other)
