"""The webhook: an update is stored before Telegram hears 200, and nothing else gets in."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.inbox import open_update
from bot.runner import prepare
from bot.webhook import SECRET_HEADER, start_webhook, webhook_secret
from models import InboundUpdate
from tests.e2e.harness import make_settings as make_settings
from tests.e2e.harness import running_bot
from tests.factories import message_update

SECRET = "test-secret_42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def update_body(update_id: int, user_id: int = 555, text: str = "/start") -> dict[str, Any]:
    """A command as Telegram posts it to the webhook."""
    body = message_update(update_id, user_id, text)
    body["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return body


async def stored(app: Any) -> list[InboundUpdate]:
    async with app.sessions() as session:
        return list(await session.scalars(select(InboundUpdate).order_by(InboundUpdate.update_id)))


@pytest.fixture
async def webhook_app(stand_in, sqlite_url: str, tmp_path: Path):
    port = free_port()
    settings = make_settings(
        sqlite_url,
        stand_in.base_url,
        tmp_path,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        webhook_port=port,
        webhook_secret=SECRET,
    )
    app = await prepare(settings)
    wakeup = asyncio.Event()
    cleanup = await start_webhook(app, ["message", "callback_query"], wakeup)
    try:
        yield app, wakeup, f"http://127.0.0.1:{port}"
    finally:
        await cleanup()
        await app.close()


async def test_registers_the_webhook_with_secret_and_update_types(webhook_app, stand_in) -> None:
    _app, _wakeup, base = webhook_app
    assert stand_in.webhook_url == f"{base}/telegram/hook"
    assert stand_in.webhook.secret_token == SECRET
    assert stand_in.queue.allowed_updates == ["message", "callback_query"]


async def test_an_update_is_stored_once_and_the_worker_woken(webhook_app) -> None:
    app, wakeup, base = webhook_app
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # Telegram redelivers when it missed our answer
            async with http.post(
                f"{base}/telegram/hook", json=update_body(41), headers={SECRET_HEADER: SECRET}
            ) as response:
                assert response.status == 200
    rows = await stored(app)
    assert [(r.update_id, r.status, r.order_key) for r in rows] == [(41, "pending", "555:555")]
    assert rows[0].payload is not None and "/start" not in str(rows[0].payload)
    assert open_update(rows[0].payload)["message"]["text"] == "/start"
    assert wakeup.is_set()


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "guessed"}])
async def test_a_request_without_the_secret_is_refused(webhook_app, headers) -> None:
    app, wakeup, base = webhook_app
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/telegram/hook", json=update_body(7), headers=headers) as response,
    ):
        assert response.status == 403
    assert await stored(app) == []
    assert not wakeup.is_set()


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "12"}']
)
async def test_a_malformed_body_is_refused_without_storing(webhook_app, body: bytes) -> None:
    app, _wakeup, base = webhook_app
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/telegram/hook", data=body, headers={SECRET_HEADER: SECRET}) as response,
    ):
        assert response.status == 400
    assert await stored(app) == []


async def test_health_check_answers_json(webhook_app) -> None:
    _app, _wakeup, base = webhook_app
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
        assert response.status == 200
        body = json.loads(await response.text())
    assert isinstance(body, dict) and body


async def test_after_cleanup_the_port_no_longer_accepts(stand_in, sqlite_url, tmp_path) -> None:
    port = free_port()
    settings = make_settings(
        sqlite_url,
        stand_in.base_url,
        tmp_path,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_port=port,
        webhook_secret=SECRET,
    )
    app = await prepare(settings)
    try:
        cleanup = await start_webhook(app, ["message"], asyncio.Event())
        await cleanup()
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.post(
                    f"http://127.0.0.1:{port}/hook",
                    json=update_body(1),
                    headers={SECRET_HEADER: SECRET},
                )
    finally:
        await app.close()


def test_without_a_configured_secret_every_process_derives_the_same_one(tmp_path) -> None:
    one = make_settings("sqlite+aiosqlite:///x.sqlite3", "http://127.0.0.1:1", tmp_path)
    two = make_settings("sqlite+aiosqlite:///y.sqlite3", "http://127.0.0.1:2", tmp_path)
    assert webhook_secret(one) == webhook_secret(two)
    assert len(webhook_secret(one)) >= 32
    other = make_settings(
        "sqlite+aiosqlite:///x.sqlite3", "http://127.0.0.1:1", tmp_path, bot_token="42:other"
    )
    assert webhook_secret(other) != webhook_secret(one)


async def test_a_person_talks_to_the_bot_in_webhook_mode(stand_in, sqlite_url, tmp_path) -> None:
    """The whole bot behind the webhook: Telegram pushes, the bot stores, handles and answers."""
    port = free_port()
    async with running_bot(
        stand_in,
        sqlite_url,
        tmp_path,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_port=port,
    ) as harness:
        await stand_in.wait_call("setWebhook", timeout=10)
        assert stand_in.webhook_url == f"http://127.0.0.1:{port}/hook"
        person = harness.person(3101, name="Асем", lang="kk")
        person.send_text("/start")
        question = await person.wait_for("Тілді таңдаңыз", timeout=10)
        assert question.reply_markup is not None
        assert [(d.update_id, d.ok) for d in stand_in.webhook.attempts][-1][1] is True
        async with harness.sessions() as session:
            stored_count = await session.scalar(select(func.count()).select_from(InboundUpdate))
        assert stored_count == 1
