"""What the periodic sweeps owe whom, and when: pure decisions, no database and no Telegram.

`bot.sweeps` reads rows, asks these functions whether something is due, and claims each ride or
rider with a conditional update. Keeping the arithmetic here lets it be tested on its own, with
the tricky cases spelled out: a ride scheduled after its reminder time, a request made just before
the dispatch desk closes, a new ВКК conclusion after a reminder about the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

# The evening reminder is sent within this long after its hour; a bot that was down all evening
# does not wake people at night, and the reminder before pickup still comes.
EVENING_WINDOW = timedelta(hours=3)
# Letters about documents (ВКК) go out in the daytime only, local time.
NOTICE_HOURS = (time(9, 0), time(21, 0))
# A half-finished conversation untouched this long is removed.
CONVERSATION_TTL = timedelta(days=7)
# Handled updates are kept this long so a redelivered one is still recognised as handled.
INBOUND_DONE_KEEP = timedelta(days=7)
# Updates that failed every attempt are kept a month for investigation (no payload is kept).
INBOUND_FAILED_KEEP = timedelta(days=30)
# Sent messages are kept a few days for the operator's view; undeliverable ones a month.
OUTBOX_SENT_KEEP = timedelta(days=3)
OUTBOX_DEAD_KEEP = timedelta(days=30)
# The previous month's report goes to the administrators on the 1st at this local time...
MONTHLY_REPORT_AT = time(9, 0)
# ...or, if the bot was down then, as soon as it is back within this long.
MONTHLY_REPORT_WINDOW = timedelta(days=7)


def local_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """The UTC instant of a local wall-clock time on a local day."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def local_day(instant: datetime, tz: tzinfo) -> date:
    return instant.astimezone(tz).date()


def evening_reminder_at(pickup_at: datetime, evening_at: time, tz: tzinfo) -> datetime:
    """The evening before the pickup's local day, at the configured hour."""
    return local_instant(local_day(pickup_at, tz) - timedelta(days=1), evening_at, tz)


def evening_reminder_due(
    *,
    pickup_at: datetime,
    scheduled_at: datetime,
    now: datetime,
    evening_at: time,
    before_minutes: int,
    tz: tzinfo,
) -> bool:
    """Due in the evening window before the pickup day.

    Not for a ride scheduled after that hour (the person was just told everything), and not once
    the reminder before pickup is due, so nobody gets two reminders in a row.
    """
    start = evening_reminder_at(pickup_at, evening_at, tz)
    before_start = pickup_at - timedelta(minutes=before_minutes)
    return scheduled_at < start <= now < min(start + EVENING_WINDOW, before_start)


def before_reminder_due(
    *, pickup_at: datetime, scheduled_at: datetime, now: datetime, before_minutes: int
) -> bool:
    """Due `before_minutes` before pickup, unless the ride was scheduled inside that time."""
    start = pickup_at - timedelta(minutes=before_minutes)
    return scheduled_at < start <= now < pickup_at


ALL_DAYS = frozenset(range(1, 8))


@dataclass(frozen=True)
class ServiceHours:
    """The dispatch desk's hours, local time, on the given ISO weekdays (1 is Monday).

    `opens == closes` means around the clock; `closes` earlier than `opens` is a night shift
    that ends the next morning.
    """

    opens: time
    closes: time
    days: frozenset[int] = ALL_DAYS

    def window(self, day: date, tz: tzinfo) -> tuple[datetime, datetime] | None:
        """The desk's open interval that starts on this local day, in UTC (None: a day off)."""
        if day.isoweekday() not in self.days:
            return None
        start = local_instant(day, self.opens, tz)
        end_day = day if self.closes > self.opens else day + timedelta(days=1)
        return start, local_instant(end_day, self.closes, tz)

    def is_open(self, instant: datetime, tz: tzinfo) -> bool:
        today = local_day(instant, tz)
        for day in (today - timedelta(days=1), today):
            window = self.window(day, tz)
            if window is not None and window[0] <= instant < window[1]:
                return True
        return False

    def open_time_between(self, start: datetime, end: datetime, tz: tzinfo) -> timedelta:
        """How much of [start, end) the desk was open: a request made at closing time waits
        for the morning before it counts as unanswered."""
        total = timedelta(0)
        if end <= start:
            return total
        day = local_day(start, tz) - timedelta(days=1)
        last = local_day(end, tz)
        while day <= last:
            window = self.window(day, tz)
            if window is not None:
                overlap = min(end, window[1]) - max(start, window[0])
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


def escalation_due(
    *,
    created_at: datetime,
    pickup_at: datetime,
    now: datetime,
    minutes: int,
    hours: ServiceHours,
    tz: tzinfo,
) -> bool:
    """A request nobody answered for `minutes` of the desk's open time, while it is open.

    A request whose pickup time has passed is left to the expiry sweep instead.
    """
    if now >= pickup_at or not hours.is_open(now, tz):
        return False
    return hours.open_time_between(created_at, now, tz) >= timedelta(minutes=minutes)


def expiry_due(*, pickup_at: datetime, now: datetime) -> bool:
    """Nobody decided before the car would have had to come: the request can't be served."""
    return now >= pickup_at


class VkkNotice(StrEnum):
    """The letters about a ВКК conclusion running out, in the order they come."""

    DAYS_30 = "30"
    DAYS_7 = "7"
    EXPIRED = "expired"


def vkk_notice_due(expires_on: date | None, today: date) -> VkkNotice | None:
    """Which letter the rider is due today; only the most urgent one.

    The conclusion is valid through its expiry date, so a ride on that day is still allowed.
    """
    if expires_on is None:
        return None
    if today > expires_on:
        return VkkNotice.EXPIRED
    if today >= expires_on - timedelta(days=7):
        return VkkNotice.DAYS_7
    if today >= expires_on - timedelta(days=30):
        return VkkNotice.DAYS_30
    return None


def vkk_notice_window_start(notice: VkkNotice, expires_on: date, tz: tzinfo) -> datetime:
    """When this letter's period began, in UTC.

    A letter stamped before this instant was about an earlier conclusion: the rider brought a new
    one since, and is due the letter again for the new expiry date.
    """
    offsets = {VkkNotice.DAYS_30: -30, VkkNotice.DAYS_7: -7, VkkNotice.EXPIRED: 1}
    return local_instant(expires_on + timedelta(days=offsets[notice]), time(0, 0), tz)


def notice_hours(now: datetime, tz: tzinfo) -> bool:
    """Daytime, when a letter that can wait may be sent."""
    local = now.astimezone(tz).time()
    return NOTICE_HOURS[0] <= local < NOTICE_HOURS[1]


@dataclass(frozen=True)
class RetentionCutoffs:
    """Rows older than these instants are deleted by the retention sweep."""

    rides: datetime
    conversations: datetime
    inbound_done: datetime
    inbound_failed: datetime
    outbox_sent: datetime
    outbox_dead: datetime


def retention_cutoffs(now: datetime, retention_days: int) -> RetentionCutoffs:
    """Finished rides go after the retention period; the plumbing much sooner."""
    return RetentionCutoffs(
        rides=now - timedelta(days=retention_days),
        conversations=now - CONVERSATION_TTL,
        inbound_done=now - INBOUND_DONE_KEEP,
        inbound_failed=now - INBOUND_FAILED_KEEP,
        outbox_sent=now - OUTBOX_SENT_KEEP,
        outbox_dead=now - OUTBOX_DEAD_KEEP,
    )


def monthly_report_due(now: datetime, tz: tzinfo) -> date | None:
    """The month (its first day) whose report is due now, or None.

    Due from 09:00 local time on the 1st of the next month, for a week: a bot that was down on
    the 1st still sends it, and an administrator added mid-month waits for the next report
    rather than getting an old one.
    """
    first = local_day(now, tz).replace(day=1)
    start = local_instant(first, MONTHLY_REPORT_AT, tz)
    if not start <= now < start + MONTHLY_REPORT_WINDOW:
        return None
    return (first - timedelta(days=1)).replace(day=1)


def age_parts(age: timedelta) -> tuple[int, int]:
    """Whole hours and remaining minutes, for "waiting 2 h 05 min"."""
    minutes = max(0, int(age.total_seconds() // 60))
    return divmod(minutes, 60)
