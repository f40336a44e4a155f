"""Message storms from one person: a token bucket per person, so one account can't use up the
bot's sending budget (about 30 messages a second for everyone, which ride news also needs).

Each update from a person in a private chat takes a token; tokens come back at a steady rate up
to a burst. Honest use never runs dry (a person answers a question every few seconds; a burst
of 10 covers quick taps). When the bucket is empty the first update gets one short answer
("too many messages, wait a minute") and the rest are dropped unanswered until tokens come
back: 200 messages bring at most a handful of answers, not 200 (and no Telegram 429s).

Pure and per process: memory is bounded (the least recently seen people are forgotten first),
nothing is written anywhere. With several processes each has its own buckets; the inbox keeps
one person's updates on one process at a time, so a person is still held to about one budget.
Where it sits: see `PersonThrottle.verdict` and the hook described in the module's users.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from bot.services.i18n_types import N_

SLOW_DOWN: Final = N_(
    "Too many messages in a short time. Please wait a minute, then send your answer again."
)


class Verdict(StrEnum):
    HANDLE = "handle"  # handle the update as usual
    WARN = "warn"  # the bucket just ran dry: answer SLOW_DOWN once, don't handle it
    DROP = "drop"  # still dry: mark the update handled and say nothing


@dataclass
class TokenBucket:
    """`capacity` tokens at most, `rate` tokens back per second; times are monotonic seconds."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    def refill(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        return self.tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.refill(now) >= cost:
            self.tokens -= cost
            return True
        return False


class PersonThrottle:
    """One bucket per Telegram user; `verdict` says what to do with their next update."""

    def __init__(self, *, burst: int = 10, per_minute: int = 30, max_people: int = 10_000) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.max_people = max_people
        self._buckets: OrderedDict[int, TokenBucket] = OrderedDict()
        self._warned: set[int] = set()

    def verdict(self, person_id: int, now: float) -> Verdict:
        bucket = self._buckets.pop(person_id, None)
        if bucket is None:
            bucket = TokenBucket(self.burst, self.rate, self.burst, now)
        self._buckets[person_id] = bucket
        while len(self._buckets) > self.max_people:
            forgotten, _ = self._buckets.popitem(last=False)
            self._warned.discard(forgotten)
        if person_id in self._warned:
            # Told to wait: nothing is answered until half the burst has come back, so a
            # storm does not get an answer for every token that trickles in.
            if bucket.refill(now) < self.burst / 2:
                return Verdict.DROP
            self._warned.discard(person_id)
        if bucket.take(now):
            return Verdict.HANDLE
        self._warned.add(person_id)
        return Verdict.WARN
