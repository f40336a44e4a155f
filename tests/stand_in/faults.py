"""Fault injection and flood control: the failures real Telegram produces under load.

A bot that only ever sees ``{"ok": true}`` in tests will lose messages in production the first
time Telegram answers 429, hiccups with a 500 or drops a connection. These helpers let tests
provoke each of those on purpose, deterministically (``inject``) or statistically (``fail_rate``
with a seed), and optionally enforce Telegram's documented rate limits.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["429", "500", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "500", "drop")

#: fail_rate() without ``methods`` spares getUpdates: aiogram's polling backs off for seconds
#: after an error, which would only slow tests down without exercising the bot's own code.
_SPARED_BY_DEFAULT = frozenset({"getupdates"})


def _check_kind(kind: str) -> FaultKind:
    if kind not in FAULT_KINDS:
        msg = f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}"
        raise ValueError(msg)
    return kind


def _same_chat(expected: int | str, actual: Any) -> bool:
    if actual is None:
        return False
    return str(expected) == str(actual)


@dataclass
class Fault:
    """A fault armed by ``inject``: fires on the next ``remaining`` matching calls."""

    kind: FaultKind
    method: str | None
    chat_id: int | str | None
    remaining: int | None
    retry_after: int

    def matches(self, method: str, chat_id: Any) -> bool:
        if self.method is not None and self.method != method.lower():
            return False
        return self.chat_id is None or _same_chat(self.chat_id, chat_id)


@dataclass
class _RandomFaults:
    share: float
    kinds: tuple[FaultKind, ...]
    methods: frozenset[str] | None
    rng: random.Random
    retry_after: int

    def matches(self, method: str) -> bool:
        if self.methods is None:
            return method.lower() not in _SPARED_BY_DEFAULT
        return method.lower() in self.methods


class FaultInjector:
    """Decides, before a call touches any state, whether it fails and how."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._random: _RandomFaults | None = None
        #: how many faults fired, per kind.
        self.fired: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
        count: int | None = 1,
        retry_after: int = 1,
    ) -> Fault:
        """Arm a fault for the next ``count`` matching calls (None: until ``clear``)."""
        fault = Fault(
            kind=_check_kind(kind),
            method=method.lower() if method else None,
            chat_id=chat_id,
            remaining=count,
            retry_after=retry_after,
        )
        self.faults.append(fault)
        return fault

    def fail_rate(
        self,
        share: float,
        kinds: Iterable[str] = FAULT_KINDS,
        methods: Collection[str] | None = None,
        seed: int = 0,
        retry_after: int = 1,
    ) -> None:
        """Fail a ``share`` (0..1) of matching calls at random, reproducibly for a ``seed``."""
        if not 0.0 <= share <= 1.0:
            msg = f"share must be within [0, 1], got {share}"
            raise ValueError(msg)
        if share == 0.0:
            self._random = None
            return
        checked = tuple(_check_kind(kind) for kind in kinds)
        if not checked:
            msg = "fail_rate needs at least one fault kind"
            raise ValueError(msg)
        self._random = _RandomFaults(
            share=share,
            kinds=checked,
            methods=frozenset(m.lower() for m in methods) if methods is not None else None,
            rng=random.Random(seed),
            retry_after=retry_after,
        )

    def clear(self) -> None:
        """Disarm every fault and stop random failures."""
        self.faults.clear()
        self._random = None

    def pick(self, method: str, chat_id: Any) -> tuple[FaultKind, int] | None:
        """The fault (kind, retry_after) this call suffers, consuming one armed use."""
        for fault in self.faults:
            if fault.matches(method, chat_id):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                self.fired[fault.kind] += 1
                return fault.kind, fault.retry_after
        chance = self._random
        if chance is not None and chance.matches(method) and chance.rng.random() < chance.share:
            kind = chance.rng.choice(chance.kinds)
            self.fired[kind] += 1
            return kind, chance.retry_after
        return None


@dataclass(frozen=True)
class RateLimits:
    """Telegram's published limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits).

    Private chats are kept lenient on purpose — Telegram tolerates short bursts there, and a
    strict 1/s would make every multi-message reply fail in tests.
    """

    global_per_second: int = 30
    group_per_minute: int = 20
    private_per_second: float = 1.0
    private_burst: int = 3


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Sliding windows (global, per group) and a token bucket per private chat."""

    limits: RateLimits = field(default_factory=RateLimits)
    clock: Callable[[], float] = time.monotonic
    _global: deque[float] = field(default_factory=deque)
    _groups: dict[int, deque[float]] = field(default_factory=dict)
    _private: dict[int, _Bucket] = field(default_factory=dict)

    def check(self, chat_id: int, *, is_group: bool) -> int | None:
        """Seconds to wait when this send would exceed a limit; else record it and None."""
        now = self.clock()
        waits: list[float] = []
        _expire(self._global, now - 1.0)
        if len(self._global) >= self.limits.global_per_second:
            waits.append(self._global[0] + 1.0 - now)
        group_window: deque[float] | None = None
        bucket: _Bucket | None = None
        if is_group:
            group_window = self._groups.setdefault(chat_id, deque())
            _expire(group_window, now - 60.0)
            if len(group_window) >= self.limits.group_per_minute:
                waits.append(group_window[0] + 60.0 - now)
        else:
            bucket = self._private.setdefault(
                chat_id, _Bucket(float(self.limits.private_burst), now)
            )
            rate = self.limits.private_per_second
            bucket.tokens = min(
                float(self.limits.private_burst), bucket.tokens + (now - bucket.updated) * rate
            )
            bucket.updated = now
            if bucket.tokens < 1.0:
                waits.append((1.0 - bucket.tokens) / rate)
        if waits:
            return max(1, math.ceil(max(waits)))
        self._global.append(now)
        if group_window is not None:
            group_window.append(now)
        if bucket is not None:
            bucket.tokens -= 1.0
        return None


def _expire(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()
