"""Receiving updates by webhook: stored first, answered 200 after, handled by the inbox worker.

Telegram forgets an update once the webhook answers 2xx, so the answer waits for the update to
be in the database; a process killed a moment later loses nothing, because any process sharing
the database claims the stored update. Several processes can sit behind one reverse proxy: each
stores what it receives, and the inbox claims decide who handles it (see `bot.inbox`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.inbox import store_updates

if TYPE_CHECKING:
    from bot.app import App
    from bot.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_PATH = "/healthz"
# Telegram sends one update per request; its size is bounded well below this.
MAX_BODY_BYTES = 2 * 1024 * 1024

Cleanup = Callable[[], Awaitable[None]]


def webhook_secret(settings: Settings) -> str:
    """The secret Telegram sends with every POST; derived from the token when not configured.

    Every process of one bot derives the same value, so a proxy may send a request to any of
    them, and nobody who lacks the token can inject updates.
    """
    configured = settings.webhook_secret.get_secret_value().strip()
    if configured:
        return configured
    token = settings.bot_token.get_secret_value().encode()
    return hmac.new(token, b"invataxi-webhook", hashlib.sha256).hexdigest()


def webhook_path(settings: Settings) -> str:
    """The path part of the public URL; the reverse proxy passes it through unchanged."""
    return urlsplit(settings.webhook_url).path or "/"


def parse_update(body: bytes) -> dict[str, Any] | None:
    """A JSON object with an integer update_id, or None for anything else."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    update_id = raw.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        return None
    return raw


def build_web_app(
    app: App,
    wakeup: asyncio.Event,
    *,
    status: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
) -> web.Application:
    """The aiohttp application: the webhook path and the health check."""
    secret = webhook_secret(app.settings).encode()
    accepting = {"open": True}

    async def receive(request: web.Request) -> web.Response:
        if not accepting["open"]:
            # Shutting down: Telegram retries, and the proxy moves on to another process.
            return web.Response(status=503)
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            log.warning("webhook request with a wrong secret", extra={"remote": request.remote})
            return web.Response(status=403)
        raw = parse_update(await request.read())
        if raw is None:
            return web.Response(status=400)
        try:
            await store_updates(app.sessions, [raw])
        except Exception:
            log.exception("storing an update failed", extra={"update_id": raw["update_id"]})
            return web.Response(status=500)
        wakeup.set()
        return web.Response(status=200)

    async def health(_request: web.Request) -> web.Response:
        if status is None:
            from bot.status import collect_status

            report: Any = await collect_status(app.sessions)
        else:
            report = await status()
        payload = _jsonable(report)
        return web.json_response(payload, dumps=lambda v: json.dumps(v, default=str))

    async def closing(_web_app: web.Application) -> None:
        accepting["open"] = False

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(webhook_path(app.settings), receive)
    web_app.router.add_get(HEALTH_PATH, health)
    web_app.on_shutdown.append(closing)
    return web_app


def _jsonable(report: Any) -> Any:
    """A status report as plain JSON: dataclasses and pydantic models are turned into dicts."""
    import dataclasses

    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return dataclasses.asdict(report)
    dump = getattr(report, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return report


async def start_webhook(app: App, allowed_updates: list[str], wakeup: asyncio.Event) -> Cleanup:
    """Listen on WEBHOOK_HOST:WEBHOOK_PORT, tell Telegram where to send, return the cleanup.

    The server listens before setWebhook, so the first update Telegram pushes finds it. The
    webhook is left registered at shutdown: other processes may still be serving it, and while
    none is, Telegram keeps the updates and retries.
    """
    settings = app.settings
    web_app = build_web_app(app, wakeup)
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    try:
        await app.bot.set_webhook(
            url=settings.webhook_url,
            secret_token=webhook_secret(settings),
            allowed_updates=allowed_updates,
            drop_pending_updates=False,
        )
    except BaseException:
        await runner.cleanup()
        raise
    log.info(
        "webhook listening",
        extra={"host": settings.webhook_host, "port": settings.webhook_port},
    )

    async def cleanup() -> None:
        await runner.cleanup()

    return cleanup
