"""Running the bot: migrate, sync districts, then receive, handle, send and sweep until a stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats

from bot.app import App, create_app
from bot.db import transaction
from bot.delivery import Limits, OutboxSender
from bot.districts import load_districts, sync_districts
from bot.i18n import LANGUAGES, N_, I18n
from bot.inbox import UpdateWorker, poll_updates
from bot.keyboards.common import REGULAR
from bot.migrate import upgrade_async
from bot.services.crypto import verify_data_key
from bot.settings import Settings
from handlers.standing_order_desk import REGULAR_COMMAND

log = logging.getLogger(__name__)

PRIVATE_COMMANDS = (
    ("book", N_("Book a ride")),
    ("regular", REGULAR),
    ("rides", N_("My rides")),
    ("profile", N_("My profile")),
    ("language", N_("Change language")),
    ("mydata", N_("What the bot stores about me")),
    ("help", N_("Help")),
    ("cancel", N_("Stop the current step")),
)
GROUP_COMMANDS = (
    ("queue", N_("Open requests, oldest first")),
    ("today", N_("Today's rides by vehicle")),
    ("tomorrow", N_("Tomorrow's rides by vehicle")),
    ("ride", N_("A ride by its number")),
    ("find", N_("Find a rider by phone or name")),
    ("report", N_("The district's report for a month, as files")),
    ("regular", REGULAR_COMMAND),
)
SHUTDOWN_GRACE_SECONDS = 20.0
# Waits between attempts while Telegram can't be reached: 1, 2, 4 ... then once a minute.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0

T = TypeVar("T")


class TokenRefused(Exception):
    """Telegram answered, and refused BOT_TOKEN: waiting will not help, the token must change."""


async def until_reachable(
    call: Callable[[], Awaitable[T]], stop: asyncio.Event, api_url: str
) -> T | None:
    """Run a start-up call to Telegram, retrying while Telegram can't be reached.

    A network blip or a Telegram outage at start is not the administrator's mistake: one
    warning per attempt, then a retry after 1, 2, 4 ... 60 s. A refused token is, and retrying
    can't fix it: `TokenRefused`. Returns None when `stop` is set before the call succeeded.
    """
    delay = RETRY_FIRST_SECONDS
    while not stop.is_set():
        try:
            return await call()
        except TelegramUnauthorizedError as exc:
            raise TokenRefused(str(exc)) from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning(
                "Telegram unreachable at %s: %s; retrying in %ds",
                api_url,
                type(exc).__name__,
                int(delay),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)
    return None


async def register_commands(bot: Bot, i18n: I18n, default_language: str) -> None:
    """The command menu in Kazakh and Russian, and the default for other Telegram languages."""
    for lang in (*LANGUAGES, None):
        t = i18n.translator(lang or default_language)
        private = [BotCommand(command=c, description=t(d)) for c, d in PRIVATE_COMMANDS]
        group = [BotCommand(command=c, description=t(d)) for c, d in GROUP_COMMANDS]
        await bot.set_my_commands(
            private, scope=BotCommandScopeAllPrivateChats(), language_code=lang
        )
        await bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats(), language_code=lang)


async def prepare(settings: Settings) -> App:
    """Everything before the first update: schema, districts, the app itself."""
    spec = load_districts(settings.districts_file)
    # The key seals what a migration must not leave in clear (the SQLite key file is read
    # by the migration itself when DATA_KEY is empty).
    await upgrade_async(settings.database_url, data_key=settings.data_key.get_secret_value())
    app = create_app(settings)
    try:
        async with transaction(app.sessions) as session:
            # A key that can't read the stored IINs stops here, before anything is written.
            await verify_data_key(session, app.dp["data_key"])
            await sync_districts(session, spec)
    except BaseException:
        await app.close()
        raise
    return app


# Collections of the middle generation between two full ones (Python's default: 10).
FULL_COLLECTION_EVERY = 100


def freeze_startup_objects() -> None:
    """Leave what startup built (modules, aiogram's models, the app) out of garbage collection.

    A full collection walks every object the process holds: about 0.4 s for a running bot, a
    pause for everyone (seen several times a minute at 40 updates/s, README "Speed"). What
    exists now lives as long as the process, so `gc.freeze` takes it out of those walks; what
    the updates make is collected as before. Once per process, at start: frozen objects are
    never collected, so an app built and dropped again and again (tests) must not call it.

    Full collections then come ten times less often (after 100 collections of the middle
    generation, not 10): what the updates leave behind is young and collected there, and each
    full collection still pauses everyone for about 0.1 s.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    app = await prepare(settings)
    freeze_startup_objects()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await run_app(app, stop)
    finally:
        await app.close()


async def run_app(app: App, stop: asyncio.Event) -> None:
    """Start every loop of a prepared app and stop them in order when `stop` is set.

    On stop (SIGTERM): receiving stops first (unconfirmed updates stay with Telegram, stored
    ones in the inbox); handlers in flight finish and commit; sweeps in progress finish; then
    the sender delivers what is in flight and records it. Whatever is left waits in the database
    for the next start.
    """
    from bot.sweeps import start_sweeps

    settings = app.settings
    api_url = settings.telegram_api_url

    async def commands() -> None:
        await register_commands(app.bot, app.i18n, settings.default_language)
        # Plain messages in a dispatcher group reach the bot only with privacy mode off: the
        # desk's hints say "type it in the chat" only then (handlers/dispatch.py).
        me = await app.bot.me()
        app.dp["group_messages_seen"] = bool(me.can_read_all_group_messages)

    await until_reachable(commands, stop, api_url)
    if stop.is_set():
        return
    worker = UpdateWorker(
        app.dp, app.bot, app.sessions, app.owner, on_enqueue=app.outbox_wakeup.set
    )
    sender = OutboxSender(
        app.bot,
        app.sessions,
        app.i18n,
        app.owner,
        replies=app.replies,
        limits=Limits.from_settings(settings),
    )
    app.extras.update(worker=worker, sender=sender)
    receive_stop = asyncio.Event()
    allowed = app.dp.resolve_used_update_types()
    receivers: list[asyncio.Task[None]] = []
    web_cleanup: Callable[[], Awaitable[None]] | None = None
    if settings.webhook_url:
        from bot.webhook import start_webhook

        async def listen() -> Callable[[], Awaitable[None]]:
            return await start_webhook(app, allowed, worker.wakeup)

        web_cleanup = await until_reachable(listen, stop, api_url)
        if web_cleanup is None:
            return
    else:

        async def no_webhook() -> bool:
            return await app.bot.delete_webhook(drop_pending_updates=False)

        if await until_reachable(no_webhook, stop, api_url) is None:
            return
        receivers.append(
            asyncio.create_task(
                poll_updates(app.bot, app.sessions, allowed, receive_stop, worker.wakeup)
            )
        )
    work_stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(work_stop))
    send_stop = asyncio.Event()
    sender_task = asyncio.create_task(sender.run(send_stop))
    sweeps = start_sweeps(app)
    app.extras.update(sweeps=sweeps)
    log.info("bot started", extra={"mode": "webhook" if settings.webhook_url else "polling"})
    await stop.wait()
    log.info("stopping: finishing in-flight work")
    receive_stop.set()
    if web_cleanup is not None:
        await web_cleanup()
    for task in receivers:
        task.cancel()
    work_stop.set()
    await worker.drain(SHUTDOWN_GRACE_SECONDS)
    await sweeps.stop(SHUTDOWN_GRACE_SECONDS)
    send_stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(sender_task), SHUTDOWN_GRACE_SECONDS)
    for task in (*receivers, worker_task, sender_task):
        task.cancel()
    await asyncio.gather(*receivers, worker_task, sender_task, return_exceptions=True)
    log.info("bot stopped")
