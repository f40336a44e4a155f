"""Telegram unreachable at start: one warning per attempt and a retry, never a traceback and an
exit; a refused token is one line and exit 2. No network: an unused local port and the stand-in."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.methods import GetMe

from bot import cli
from bot.runner import TokenRefused, until_reachable
from tests.stand_in import BotApiStandIn
from tests.stand_in.server import DEFAULT_TOKEN


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OnWarning(logging.Handler):
    """Keeps the runner's warnings and calls `then` after the first one."""

    def __init__(self, then: object) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.then = then

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if len(self.lines) == 1 and callable(self.then):
            self.then()


def bot_at(url: str) -> Bot:
    return Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))


async def test_unreachable_is_one_warning_then_stop_returns() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    bot = bot_at(url)
    stop = asyncio.Event()
    handler = OnWarning(stop.set)
    logger = logging.getLogger("bot.runner")
    logger.addHandler(handler)
    try:
        result = await until_reachable(lambda: bot.get_me(), stop, url)
    finally:
        logger.removeHandler(handler)
        await bot.session.close()
    assert result is None
    assert handler.lines == [
        f"Telegram unreachable at {url}: TelegramNetworkError; retrying in 1s"
    ]


async def test_started_later_the_call_goes_through() -> None:
    port = unused_port()
    stand_in = BotApiStandIn(port=port)
    url = f"http://127.0.0.1:{port}"
    bot = bot_at(url)
    started: list[asyncio.Task[None]] = []
    handler = OnWarning(lambda: started.append(asyncio.ensure_future(stand_in.start())))
    logger = logging.getLogger("bot.runner")
    logger.addHandler(handler)
    try:
        me = await asyncio.wait_for(
            until_reachable(lambda: bot(GetMe()), asyncio.Event(), url), 30
        )
    finally:
        logger.removeHandler(handler)
        await bot.session.close()
        await stand_in.stop()
    assert me is not None and me.id == stand_in.bot_id
    assert len(handler.lines) >= 1
    assert all(line.startswith(f"Telegram unreachable at {url}") for line in handler.lines)


async def test_refused_token_is_not_retried() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise TelegramUnauthorizedError(method=GetMe(), message="Unauthorized")

    with pytest.raises(TokenRefused):
        await until_reachable(refused, asyncio.Event(), "http://127.0.0.1:1")
    assert calls == 1


def test_cli_says_the_token_was_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    import bot.runner
    from bot.settings import TOKEN_HELP

    async def refusing(settings: object) -> None:
        raise TokenRefused("Unauthorized")

    monkeypatch.setattr(bot.runner, "serve", refusing)
    monkeypatch.setenv("BOT_TOKEN", "123456789:AAbcdefghijklmnopqrstuvwxyz0123456789")
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    monkeypatch.setenv("DATA_KEY", "test-data-key-0123456789abcdef0123456789abcdef")
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"Telegram refused BOT_TOKEN: {TOKEN_HELP}"


class FlakyBot:
    """A bot whose getUpdates fails `failures` times, then answers empty and ends the test."""

    def __init__(self, url: str, failures: int, stop: asyncio.Event) -> None:
        self.session = AiohttpSession(api=TelegramAPIServer.from_base(url))
        self.failures = failures
        self.calls = 0
        self.stop = stop

    async def __call__(self, method: object, request_timeout: int | None = None) -> list[object]:
        from aiogram.exceptions import TelegramNetworkError

        self.calls += 1
        if self.calls <= self.failures:
            raise TelegramNetworkError(method=GetMe(), message="Cannot connect")
        self.stop.set()
        return []


async def test_polling_logs_the_outage_and_the_recovery_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.inbox
    from bot.inbox import poll_updates

    monkeypatch.setattr(bot.inbox, "POLL_BACKOFF_FIRST", 0.001)
    monkeypatch.setattr(bot.inbox, "POLL_BACKOFF_MAX", 0.002)
    stop = asyncio.Event()
    flaky = FlakyBot("http://127.0.0.1:1", failures=5, stop=stop)
    handler = OnWarning(None)
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("bot.inbox")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await asyncio.wait_for(
            poll_updates(flaky, None, [], stop, asyncio.Event()),  # type: ignore[arg-type]
            30,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        await flaky.session.close()
    assert flaky.calls == 6
    assert len(handler.lines) == 2
    assert handler.lines[0].startswith(
        "Telegram unreachable at http://127.0.0.1:1: TelegramNetworkError"
    )
    assert handler.lines[1].startswith("Telegram reachable again at http://127.0.0.1:1")


async def test_the_bot_waits_for_telegram_and_stops_cleanly(
    sqlite_url: str, tmp_path: object
) -> None:
    """The whole start: no traceback and no exit while Telegram is away; a stop still works."""
    from pathlib import Path

    from bot.runner import prepare, run_app
    from tests.e2e.harness import make_settings

    url = f"http://127.0.0.1:{unused_port()}"
    settings = make_settings(sqlite_url, url, Path(str(tmp_path)))
    app = await prepare(settings)
    stop = asyncio.Event()
    handler = OnWarning(stop.set)
    logger = logging.getLogger("bot.runner")
    logger.addHandler(handler)
    try:
        await asyncio.wait_for(run_app(app, stop), 30)
    finally:
        logger.removeHandler(handler)
        await app.close()
    assert handler.lines == [
        f"Telegram unreachable at {url}: TelegramNetworkError; retrying in 1s"
    ]
