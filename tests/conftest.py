"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable), Redis, the Bot API
stand-in, and a running bot wired to it."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

# Where PYTHONDONTWRITEBYTECODE is set, every worker and every run would compile the project
# and rewrite the test modules' asserts again (seconds of CPU each on a 2-core machine).
sys.dont_write_bytecode = False

ROOT = Path(__file__).resolve().parent.parent
TEST_DISTRICTS = ROOT / "tests" / "data" / "districts.toml"
PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
T = TypeVar("T")


def worker_index() -> int:
    """0 for a plain run, N for pytest-xdist's worker gwN: what workers must not share."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


# Redis has databases 0..15: each xdist worker flushes its own, counting down from 15.
REDIS_TEST_URL = os.environ.get(
    "TEST_REDIS_URL", f"redis://127.0.0.1:6379/{max(15 - worker_index(), 1)}"
)


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


async def create_pg_database() -> str:
    """An empty database of its own, for one test or one xdist worker."""
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


def apart(work: Callable[[], T]) -> T:
    """Run blocking set-up in a thread of its own: a session fixture may first be asked for
    from inside a test's running event loop, where Alembic and asyncio.run cannot start theirs."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrations applied once per session (per xdist worker); tests copy the file."""
    from bot.migrate import upgrade

    path = tmp_path_factory.mktemp("schema") / "template.sqlite3"
    apart(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_worker_db() -> Iterator[str]:
    """A migrated PostgreSQL database per session (per xdist worker), emptied before each test
    that uses it (`reset_pg_database`): a TRUNCATE costs a tenth of a CREATE DATABASE from a
    template and its DROP, and the tests on PostgreSQL are a third of the suite."""
    import asyncio

    from bot.migrate import upgrade

    require_postgres()
    name = apart(lambda: asyncio.run(create_pg_database()))
    try:
        apart(lambda: upgrade(f"{PG_SERVER}/{name}"))
        yield name
    finally:
        apart(lambda: asyncio.run(drop_pg_database(name)))


_PG_TABLES: list[str] = []


async def reset_pg_database(name: str) -> str:
    """The worker's migrated database as a fresh copy would be: every table empty and every id
    counting from 1 again. Connections a previous test left behind (a killed bot's, a leaked
    pool's) are closed first, as DROP DATABASE ... WITH (FORCE) would."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        if not _PG_TABLES:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
            _PG_TABLES.extend(sorted(row["tablename"] for row in rows))
        tables = ", ".join(f'"{table}"' for table in _PG_TABLES)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return f"{PG_SERVER}/{name}"


def copy_sqlite_template(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite file: for what migrates by itself (the app, the migration test)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A SQLite file with the schema already in place (a copy of the session's template)."""
    return copy_sqlite_template(sqlite_template, tmp_path / "bot.sqlite3")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database of the test's own."""
    require_postgres()
    name = await create_pg_database()
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def migrated_postgres_url(pg_worker_db: str) -> str:
    """A PostgreSQL database with the schema and nothing in it, the test's alone while it runs."""
    return await reset_pg_database(pg_worker_db)


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of either kind: the migration test migrates it from scratch."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        return
    require_postgres()
    name = await create_pg_database()
    try:
        yield f"{PG_SERVER}/{name}"
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


@pytest.fixture(params=DATABASES)
async def migrated_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of either kind with the real migrations applied: every database test runs
    on the SQLite default and on PostgreSQL. A copy of the session's template, not a fresh
    migration, so a test pays for a file copy or a TRUNCATE, not for Alembic."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        yield copy_sqlite_template(template, tmp_path / "bot.sqlite3")
        return
    yield await reset_pg_database(request.getfixturevalue("pg_worker_db"))


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
async def bot(stand_in, migrated_sqlite_url: str, tmp_path: Path):
    """The real app, polling the stand-in, on SQLite; see tests/e2e/harness.py. The schema is
    copied in, so the app's own upgrade at start finds nothing to do."""
    from tests.e2e.harness import running_bot

    async with running_bot(stand_in, migrated_sqlite_url, tmp_path) as harness:
        yield harness


@pytest.fixture
async def pg_bot(stand_in, migrated_postgres_url: str, tmp_path: Path):
    """The same on PostgreSQL, for the end-to-end paths that must hold on both databases."""
    from tests.e2e.harness import running_bot

    async with running_bot(stand_in, migrated_postgres_url, tmp_path) as harness:
        yield harness


# The modules of slow tests, the longest first (`--durations` shows them).
LONGEST_FIRST = ("test_scale_out", "test_burst", "test_bench", "test_crash")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The bot-process tests take up to a minute each: each goes out early, one at a time and
    with a quick test beside it, so they run on different workers beside everything else.

    With `--maxschedchunk 1` (pyproject) xdist hands every worker two tests to begin with, then
    one at a time; without it, the first worker got the first quarter of the list, every slow
    test in one queue, and the suite waited minutes for that worker alone.
    """
    slow = sorted(
        (item for item in items if item.get_closest_marker("slow") is not None),
        key=lambda item: LONGEST_FIRST.index(item.path.stem),
    )
    quick = [item for item in items if item.get_closest_marker("slow") is None]
    paired = [item for pair in zip(slow, quick, strict=False) for item in pair]
    items[:] = paired + slow[len(quick) :] + quick[len(slow) :]


@pytest.fixture
async def db(sessions):
    """One session on a migrated database with the test districts synced; rolled back after."""
    from tests.factories import sync_test_districts

    async with sessions() as session:
        await sync_test_districts(session)
        yield session
        await session.rollback()


@pytest.fixture
async def env(migrated_db: str):
    """Sweeps run as several processes would, on a migrated database, with a clock to move."""
    from bot.db import create_engine, create_sessionmaker
    from bot.settings import load_settings
    from tests.factories import TODAY, Clock, Env, local, seed_districts

    settings = load_settings(
        bot_token="1:a",
        database_url=migrated_db,
        timezone="Asia/Almaty",
        default_language="kk",
        reminder_before_minutes=60,
    )
    engine = create_engine(migrated_db)
    sessions = create_sessionmaker(engine)
    await seed_districts(sessions)
    made = Env(migrated_db, sessions, settings, Clock(local(TODAY, 12)), [engine])
    try:
        yield made
    finally:
        for e in made.engines:
            await e.dispose()
