"""The one source of "now" and the one time zone, injected into every update, sweep and sender.

Tests and the benchmark pass a `FixedClock` to move time without sleeping; the bot runs on the
`SystemClock`. Times are aware and in UTC; the configured zone turns them into local dates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from models import utcnow

# Kazakhstan has one zone (UTC+5) since 1 March 2024: the TIMEZONE setting's default, and the
# only place its name is written.
DEFAULT_TIMEZONE = "Asia/Almaty"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The computer's clock: `models.utcnow`, which column defaults and claims use too."""

    def now(self) -> datetime:
        return utcnow()


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        assert at.tzinfo is not None, "a clock tells aware time"
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by
