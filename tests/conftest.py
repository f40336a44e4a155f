"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable), Redis, the Bot API
stand-in, and a running bot wired to it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DISTRICTS = ROOT / "tests" / "data" / "districts.toml"
PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip visibly on a developer machine without the service; fail in CI, where it must run."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if in_ci():
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(message)


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require_service("Redis", "127.0.0.1", 6379)


TEST_DATA_KEY = "test-data-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's .env or real settings."""
    for name in list(os.environ):
        if name in {
            "BOT_TOKEN",
            "TELEGRAM_API_URL",
            "DATABASE_URL",
            "REDIS_URL",
            "WEBHOOK_URL",
            "DATA_KEY",
            "ADMIN_IDS",
            "DISTRICTS_FILE",
        }:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Sealed columns need a key even in tests that build no app (an app sets its own).
    from bot.services.crypto import DataKey
    from models.sealed import use_cipher

    use_cipher(DataKey.from_secret(TEST_DATA_KEY).cipher)
    yield
    use_cipher(None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"


async def create_pg_database() -> str:
    import asyncpg

    name = f"invataxi_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    require_postgres()
    name = await create_pg_database()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every database test runs on the SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        return
    require_postgres()
    name = await create_pg_database()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    require_redis()
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_TEST_URL)
    await client.flushdb()
    try:
        yield REDIS_TEST_URL
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def migrated_db(db_url: str) -> AsyncIterator[str]:
    """A database of either kind with the real migrations applied."""
    from bot.migrate import upgrade_async

    await upgrade_async(db_url)
    yield db_url


@pytest.fixture
async def sessions(migrated_db: str):
    from bot.db import create_engine, create_sessionmaker

    engine = create_engine(migrated_db)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def stand_in():
    from tests.stand_in import BotApiStandIn

    server = BotApiStandIn()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def bot(stand_in, sqlite_url: str, tmp_path: Path):
    """The real app, polling the stand-in, on SQLite; see tests/e2e/harness.py."""
    from tests.e2e.harness import running_bot

    async with running_bot(stand_in, sqlite_url, tmp_path) as harness:
        yield harness


@pytest.fixture
async def pg_bot(stand_in, postgres_url: str, tmp_path: Path):
    """The same on PostgreSQL, for the end-to-end paths that must hold on both databases."""
    from tests.e2e.harness import running_bot

    async with running_bot(stand_in, postgres_url, tmp_path) as harness:
        yield harness
