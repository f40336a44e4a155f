# Waits take a ``timeout`` argument on purpose (ASYNC109): on expiry they raise an
# AssertionError describing what the user saw, which a caller-side asyncio.timeout cannot do.
"""The queue of updates waiting for the bot, and the wake-up signal tests and long polls share.

Telegram keeps undelivered updates until getUpdates confirms them with a higher ``offset`` (or
the webhook answers 2xx). The stand-in reproduces that exactly, because offset bugs — updates
handled twice after a restart, or lost — are what these tests exist to catch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from .models import JsonDict, PendingUpdate

T = TypeVar("T")

#: Update types Telegram leaves out unless the bot asks for them explicitly.
NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class Notifier:
    """Wakes every waiter whenever the stand-in's state changes.

    A fresh ``asyncio.Event`` per generation avoids lost wake-ups: a waiter takes the event
    *before* checking its condition, so a change between the check and the wait still wakes it.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    def event(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    async def wait_until(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """Poll ``check`` on every change until it returns non-None or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self.event()
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)


class UpdateQueue:
    """Pending updates in update_id order, with Telegram's ``allowed_updates`` filter."""

    def __init__(self, notifier: Notifier, first_update_id: int = 1) -> None:
        self._notifier = notifier
        self.next_update_id = first_update_id
        self.pending: list[PendingUpdate] = []
        #: every update ever created, including confirmed ones, for debugging.
        self.history: list[PendingUpdate] = []
        #: updates Telegram would not have sent because of ``allowed_updates``.
        self.filtered: list[PendingUpdate] = []
        #: as last set by getUpdates/setWebhook; None means Telegram's default.
        self.allowed_updates: list[str] | None = None

    def accepts(self, update_type: str) -> bool:
        if self.allowed_updates:
            return update_type in self.allowed_updates
        return update_type not in NOT_DELIVERED_BY_DEFAULT

    def put(self, update_type: str, payload: JsonDict, key: int) -> PendingUpdate:
        """Create an update (``{"update_id": n, update_type: payload}``) and queue it."""
        update_id = self.next_update_id
        self.next_update_id += 1
        update = PendingUpdate(
            update_id=update_id,
            type=update_type,
            body={"update_id": update_id, update_type: payload},
            key=key,
            created=time.monotonic(),
        )
        self.history.append(update)
        if self.accepts(update_type):
            self.pending.append(update)
        else:
            self.filtered.append(update)
        self._notifier.notify()
        return update

    def confirm_below(self, offset: int) -> None:
        """getUpdates with ``offset``: every update with a smaller id is confirmed and gone."""
        if offset < 0:
            # A negative offset keeps only the last -offset updates; the rest are forgotten.
            keep = -offset
            self.pending = self.pending[-keep:] if keep else []
        else:
            self.pending = [u for u in self.pending if u.update_id >= offset]
        self._notifier.notify()

    def peek(self, limit: int) -> list[PendingUpdate]:
        return self.pending[:limit]

    def remove(self, update: PendingUpdate) -> None:
        if update in self.pending:
            self.pending.remove(update)
            self._notifier.notify()

    def clear(self) -> None:
        self.pending.clear()
        self._notifier.notify()

    def set_allowed(self, allowed: Iterable[str] | None) -> None:
        self.allowed_updates = list(allowed) if allowed is not None else None
