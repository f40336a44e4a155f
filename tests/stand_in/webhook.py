"""Webhook delivery the way Telegram does it: POST each update, retry until a 2xx.

Telegram keeps an update until the webhook answers 2xx; on errors it records
``last_error_message`` (visible in getWebhookInfo) and retries later. It may also execute a
method the bot returns in the response body — aiogram uses that for handlers that return a
method. For scale-out tests ``targets`` replaces the URL with several instances served
round-robin, skipping a failed one in favour of the next, which is what a reverse proxy in
front of several bot processes does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from .models import PendingUpdate, UploadedFile
from .updates import Notifier, UpdateQueue

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

ReplyHandler = Callable[[dict[str, object]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt of an update to one URL."""

    url: str
    update_id: int
    ok: bool
    status: int | None
    error: str | None
    time: float


class WebhookDelivery:
    """Pushes queued updates to the webhook with bounded concurrency and per-chat ordering.

    Up to ``max_connections`` updates are in flight at once, but never two for the same chat
    (or user): a later update of a chat waits while an earlier one is being delivered or is
    backing off after a failure, so handlers never see a chat's updates out of order.
    """

    def __init__(
        self,
        queue: UpdateQueue,
        notifier: Notifier,
        on_reply: ReplyHandler,
        *,
        retry_delay: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self._queue = queue
        self._notifier = notifier
        self._on_reply = on_reply
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.url: str | None = None
        self.secret_token: str | None = None
        self.max_connections = 40
        self.ip_address: str | None = None
        #: overrides ``url``: updates spread round-robin across these (a reverse proxy's job).
        self.targets: list[str] | None = None
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        #: every attempt, in order — tests use it to see which instance got which update.
        self.attempts: list[Delivery] = []
        self._round_robin = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        return self.url is not None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(force_close=True),
        )
        self._runner = asyncio.create_task(self._run(), name="stand-in webhook delivery")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._runner] if self._runner else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def configure(self, url: str | None, secret_token: str | None, max_connections: int) -> None:
        self.url = url
        self.secret_token = secret_token
        self.max_connections = max_connections
        self._notifier.notify()

    def delivered_to(self, url: str) -> list[int]:
        """Update ids ``url`` accepted (answered 2xx)."""
        return [a.update_id for a in self.attempts if a.ok and a.url == url]

    async def _run(self) -> None:
        while True:
            event = self._notifier.event()
            wake_in = self._launch_ready()
            if wake_in is None:
                await event.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), max(wake_in, 0.01))

    def _launch_ready(self) -> float | None:
        """Start deliveries that may go now; seconds until the next retry is due, if any."""
        if not self.active:
            return None
        now = time.monotonic()
        busy: set[int] = set()
        in_flight = sum(1 for update in self._queue.pending if update.in_flight)
        next_retry: float | None = None
        for update in list(self._queue.pending):
            if update.key in busy:
                continue
            busy.add(update.key)
            if update.in_flight:
                continue
            if update.next_attempt > now:
                wait = update.next_attempt - now
                next_retry = wait if next_retry is None else min(next_retry, wait)
                continue
            if in_flight >= self.max_connections:
                break
            update.in_flight = True
            in_flight += 1
            task = asyncio.create_task(self._deliver(update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return next_retry

    def _ordered_targets(self) -> list[str]:
        targets = list(self.targets) if self.targets else ([self.url] if self.url else [])
        if not targets:
            return []
        start = self._round_robin % len(targets)
        self._round_robin += 1
        return targets[start:] + targets[:start]

    async def _deliver(self, update: PendingUpdate) -> None:
        try:
            update.attempts += 1
            for url in self._ordered_targets():
                if await self._post(url, update):
                    self._queue.remove(update)
                    return
            update.next_attempt = time.monotonic() + self.retry_delay
        finally:
            update.in_flight = False
            self._notifier.notify()

    async def _post(self, url: str, update: PendingUpdate) -> bool:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if self.secret_token:
            headers[SECRET_HEADER] = self.secret_token
        status: int | None = None
        try:
            async with self._session.post(
                url, data=json.dumps(update.body), headers=headers
            ) as response:
                status = response.status
                if 200 <= response.status < 300:
                    reply = await _read_reply(response)
                    self._record(url, update, ok=True, status=status, error=None)
                    if reply.get("method"):
                        await self._on_reply(reply)
                    return True
                await response.read()
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = f"Connection failed: {type(exc).__name__}: {exc}"
        self._record(url, update, ok=False, status=status, error=error)
        self.last_error_date = int(time.time())
        self.last_error_message = error
        return False

    def _record(
        self, url: str, update: PendingUpdate, *, ok: bool, status: int | None, error: str | None
    ) -> None:
        self.attempts.append(Delivery(url, update.update_id, ok, status, error, time.monotonic()))


async def _read_reply(response: aiohttp.ClientResponse) -> dict[str, object]:
    """A method the bot returned in its webhook answer (JSON or multipart), or {}."""
    content_type = response.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        reply: dict[str, object] = {}
        reader = aiohttp.MultipartReader.from_response(response)
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.filename:
                data = await part.read()
                reply[part.name] = UploadedFile(part.name, part.filename, len(data))
            else:
                reply[part.name] = await part.text()
        return reply
    body = await response.read()
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
