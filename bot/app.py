"""The app factory: Bot, Dispatcher, engine, storage and scheduler, built in functions."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from bot.context import Replies
from bot.db import create_engine, create_sessionmaker
from bot.i18n import I18n
from bot.middlewares import (
    DatabaseMiddleware,
    ForgiveStaleCallbackAnswers,
    PersonMiddleware,
    ThrottleMiddleware,
)
from bot.services.crypto import load_data_key
from bot.services.throttle import PersonThrottle
from bot.settings import Settings
from bot.storage.fsm import SqlStorage

log = logging.getLogger(__name__)


# Parametrized aiogram `Response[...]` models, kept alive; see `keep_response_models`.
_RESPONSE_MODELS: dict[Any, Any] = {}


async def _keep_response_model(
    make_request: NextRequestMiddlewareType[TelegramType],
    bot: Bot,
    method: TelegramMethod[TelegramType],
) -> Response[TelegramType]:
    returning = method.__returning__
    if returning not in _RESPONSE_MODELS:
        _RESPONSE_MODELS[returning] = Response[returning]  # type: ignore[valid-type]
    return await make_request(bot, method)


def keep_response_models(session: BaseSession) -> None:
    """Stop aiogram from rebuilding a pydantic model on every Bot API call.

    aiogram decodes each answer with `Response[method.__returning__]`; pydantic caches such
    parametrized models only weakly, so every garbage collection drops them and the next call
    rebuilds one: about 7 ms of CPU per call (README, "Speed"). Holding each one used
    makes it a dictionary lookup.
    """
    session.middleware(_keep_response_model)


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    keep_response_models(session)
    session.middleware(ForgiveStaleCallbackAnswers())
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )


def create_storage(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> tuple[BaseStorage, BaseEventIsolation]:
    """Conversation state on the database, always; the per-person lock on Redis when set.

    The state must commit with the step that changed it. On Redis it was written the moment a
    handler set it, before the database commit: a process killed in between left Redis one
    step ahead, and the replayed update took the person's answer for the next question.
    Several processes share the state through the database they already share; Redis gives
    them one lock per person, so two quick taps on two processes still run one after the other.
    """
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisEventIsolation
        from redis.asyncio import Redis

        # A process killed while handling someone's update leaves its lock behind; it runs out
        # after this long instead of aiogram's 60 s. The inbox already applies one person's
        # updates one at a time, so the lock is a second guard, not the only one.
        isolation = RedisEventIsolation(
            Redis.from_url(settings.redis_url), lock_kwargs={"timeout": 20}
        )
        return SqlStorage(sessions), isolation
    return SqlStorage(sessions), SimpleEventIsolation()


def create_scheduler(settings: Settings) -> AsyncIOScheduler:
    """In-process jobs only: every job re-derives its work from database rows (see bot.sweeps)."""
    return AsyncIOScheduler(
        timezone=settings.tz,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )


@dataclass
class App:
    settings: Settings
    bot: Bot
    dp: Dispatcher
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    i18n: I18n
    owner: str
    replies: Replies = field(default_factory=Replies)
    clock: Clock = field(default_factory=SystemClock)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def outbox_wakeup(self) -> asyncio.Event:
        """Set to make the sender look at the outbox now rather than at its next round."""
        return self.replies.wakeup

    async def close(self) -> None:
        release_routers(self.dp)
        await self.dp.storage.close()
        await self.dp.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()


def release_routers(dp: Dispatcher) -> None:
    """Detach the feature routers so a later app in the same process (tests, the benchmark)
    can include them again; aiogram allows a router one parent for its lifetime otherwise."""
    for router in list(dp.sub_routers):
        router._parent_router = None
    dp.sub_routers.clear()


async def _resolve_inline(resolve: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return resolve(*args, **kwargs)


def check_filters_inline(router: Router) -> None:
    """Evaluate synchronous filters in the event loop, not in a worker thread per check.

    aiogram hands every synchronous filter (`F...`, a `State`, a plain function) to
    `asyncio.to_thread`: a text message that passes through every feature router cost a couple
    of dozen thread hand-offs that way, and since filters run inside the update's transaction,
    on SQLite each hand-off let the loop run other work while this update held the single
    writer (README, "Speed"). The project's filters only read the update and the context.
    """
    for sub in router.chain_tail:
        for observer in sub.observers.values():
            filters = list(observer._handler.filters or [])
            for handler in observer.handlers:
                filters.extend(handler.filters or [])
            for item in filters:
                if not item.awaitable:
                    item.callback = functools.partial(_resolve_inline, item.callback)
                    item.awaitable = True


def create_dispatcher(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    i18n: I18n,
    replies: Replies,
    clock: Clock | None = None,
    owner: str | None = None,
) -> Dispatcher:
    from handlers import get_routers

    storage, isolation = create_storage(settings, sessions)
    dp = Dispatcher(
        storage=storage,
        events_isolation=isolation,
        # DatabaseMiddleware does the FSM middleware's work inside the update's transaction.
        disable_fsm=True,
        settings=settings,
        i18n=i18n,
        sessions=sessions,
        outbox_wakeup=replies.wakeup,
    )
    turns = DatabaseMiddleware(
        sessions, dp.fsm, replies, turns=settings.database_pool_size, owner=owner
    )
    dp.update.outer_middleware(turns)
    dp.update.outer_middleware(
        PersonMiddleware(i18n, settings.default_language, clock or SystemClock())
    )
    # One bucket per person per process: a storm can't eat the sending budget ride news needs.
    dp.update.outer_middleware(
        ThrottleMiddleware(
            PersonThrottle(burst=settings.throttle_burst, per_minute=settings.throttle_per_minute)
        )
    )
    dp.include_routers(*get_routers(settings))
    check_filters_inline(dp)
    return dp


def process_owner(settings: Settings) -> str:
    """A name for this process in claims and leases: host, pid and an optional label."""
    label = settings.process_name or "bot"
    return f"{label}@{socket.gethostname()}:{os.getpid()}"[:64]


def create_app(settings: Settings, clock: Clock | None = None) -> App:
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = create_sessionmaker(engine)
    i18n = I18n(default_language=settings.default_language, tz=settings.tz)
    replies = Replies()
    owner = process_owner(settings)
    dp = create_dispatcher(settings, sessions, i18n, replies, clock, owner)
    # The key for IINs at rest, handed to handlers as `data_key` (see bot.services.crypto).
    dp["data_key"] = load_data_key(settings.data_key.get_secret_value(), settings.database_url)
    bot = create_bot(settings)
    return App(
        settings=settings,
        bot=bot,
        dp=dp,
        engine=engine,
        sessions=sessions,
        i18n=i18n,
        owner=owner,
        replies=replies,
        clock=clock,
    )
