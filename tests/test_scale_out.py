"""Two bot processes behind one webhook, on PostgreSQL and Redis, one of them killed midway.

The stand-in spreads Telegram's POSTs round-robin over both processes (a reverse proxy's job)
and skips the dead one. Each person's answers must arrive in the order they wrote, each
notification exactly once. A direct answer may repeat only where the killed process was in the
middle of that person's update: it had answered but not committed, so the update is handled
again, which is at-least-once delivery working as designed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.db import create_engine, create_sessionmaker, transaction
from bot.i18n import I18n
from bot.services.outbox import enqueue_message
from models import InboundUpdate, OutboxMessage
from tests.e2e.harness import GROUPS, TEST_DISTRICTS

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

USERS = 30
NOTIFICATIONS = 60
ROUNDS = 4  # each round: /cancel then /help, sent without waiting
SECRET = "scale-out-secret"
ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_QUESTION = "Тілді таңдаңыз"
HELP = (
    "Commands:\n/book — book a ride\n/rides — my rides\n/profile — my profile\n"
    "/language — change language\n/cancel — stop the current step\n/mydata — what we store\n"
    "/forget — withdraw consent and erase my data"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`python -m bot run` with its own webhook port."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "WEBHOOK_PORT": str(self.port), "PROCESS_NAME": name}
        self.log = (workdir / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=self.env,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def owner(self) -> str:
        return f"{self.name}@{socket.gethostname()}:{self.proc.pid}"[:64]

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"bot process {self.name} exited: {self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise AssertionError(f"bot process {self.name} did not start: {self.tail()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def tail(self) -> str:
        self.log.flush()
        path = Path(self.log.name)
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def bot_env(stand_in: Any, database_url: str, redis_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "WEBHOOK_URL", "BOT_TOKEN"}
    }
    env.update(
        BOT_TOKEN=stand_in.token,
        TELEGRAM_API_URL=stand_in.base_url,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WEBHOOK_URL="http://127.0.0.1:8443/hook",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_HOST="127.0.0.1",
        DISTRICTS_FILE=str(TEST_DISTRICTS),
        DATA_KEY="scale-out-data-key-0123456789abcdef0123456789abcdef",
        DEFAULT_LANGUAGE="kk",
        SWEEP_INTERVAL_SECONDS="5",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def sent_texts(stand_in: Any, chat_id: int) -> list[str]:
    """Every message the bot sent to a chat, in order, duplicates included."""
    return [
        str(call.params.get("text"))
        for call in stand_in.calls("sendMessage", chat_id=chat_id)
        if call.ok
    ]


def conversation_texts(stand_in: Any, chat_id: int) -> list[str]:
    """The bot's answers to a person, without the notifications queued by the test."""
    return [x for x in sent_texts(stand_in, chat_id) if not x.startswith("Уведомление")]


def collapse(texts: list[str]) -> list[str]:
    """A message repeated right after itself counts once."""
    return [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t]


async def held_by(sessions: Any, owner: str) -> tuple[set[str], set[str]]:
    """What a killed process held: order keys of updates, texts of outbox messages."""
    async with sessions() as session:
        keys = set(
            await session.scalars(
                select(InboundUpdate.order_key).where(
                    InboundUpdate.status == "claimed", InboundUpdate.claimed_by == owner
                )
            )
        )
        payloads = await session.scalars(
            select(OutboxMessage.payload).where(
                OutboxMessage.status == "sending", OutboxMessage.claimed_by == owner
            )
        )
        return keys, {str(p.get("text")) for p in payloads}


async def wait_until(
    check: Any, within: float, what: str, explain: Any = lambda: ""
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{explain()}")


async def test_two_processes_share_one_bot_and_survive_a_kill(
    stand_in: Any, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    from tests.conftest import require_postgres, require_redis

    require_postgres()
    require_redis()
    for chat_id in GROUPS.values():
        stand_in.group(chat_id, "Диспетчеры")
    env = bot_env(stand_in, postgres_url, redis_url)
    # The first process upgrades the schema and syncs the districts; the second finds them.
    first = BotProcess("a", env, tmp_path)
    processes = [first]
    engine = create_engine(postgres_url)
    sessions = create_sessionmaker(engine)
    i18n = I18n()
    kk, ru = i18n.translator("kk"), i18n.translator("ru")
    try:
        await first.ready()
        second = BotProcess("b", env, tmp_path)
        processes.append(second)
        await second.ready()
        assert stand_in.webhook.secret_token == SECRET
        stand_in.webhook_targets = [first.url, second.url]

        people = [
            stand_in.private_chat(7000 + n, f"Person{n}", language_code="kk" if n % 2 else "ru")
            for n in range(USERS)
        ]
        languages = {p.id: ("kk" if p.id % 2 else "ru") for p in people}
        for person in people:
            person.send_text("/start")
        for person in people:
            await person.wait_for(LANGUAGE_QUESTION, timeout=30)
        for person in people:
            label = "Қазақ тілі" if languages[person.id] == "kk" else "Русский язык"
            person.press(lambda text, label=label: text.endswith(label))
        for person in people:
            t = kk if languages[person.id] == "kk" else ru
            chosen = "Language: Kazakh." if languages[person.id] == "kk" else "Language: Russian."
            await person.wait_for(t(chosen), timeout=30)

        async with transaction(sessions) as session:
            for n in range(NOTIFICATIONS):
                enqueue_message(session, chat_id=people[n % USERS].id, text=f"Уведомление №{n}")

        # Bursts: nobody waits for an answer before writing again.
        for round_no in range(ROUNDS):
            for person in people:
                person.send_text("/cancel")
                person.send_text("/help")
            if round_no == 1:
                await asyncio.sleep(0.3)
                first.kill()
                held_keys, held_notes = await held_by(sessions, first.owner)
                # systemd restarts a killed unit; the new process takes back the dead one's work
                # at start. Until it listens, the proxy (the stand-in) sends everything to "b".
                restarted = BotProcess("a", env, tmp_path)
                processes.append(restarted)
                stand_in.webhook_targets = [restarted.url, second.url]

        def expected(person: Any) -> list[str]:
            t = kk if languages[person.id] == "kk" else ru
            return [t("Main menu."), t(HELP)] * ROUNDS

        def answered_in_order(person: Any, texts: list[str]) -> bool:
            """The bursts' answers, last in the chat: the first /cancel may have left a step."""
            t = kk if languages[person.id] == "kk" else ru
            tail = texts[-2 * ROUNDS :]
            want = expected(person)
            return (
                len(tail) == len(want)
                and tail[0] in (t("Main menu."), t("Cancelled. Nothing was saved."))
                and tail[1:] == want[1:]
            )

        def conversation_of(person: Any) -> list[str]:
            """Answers as the person reads them: one replayed right after itself counts once."""
            return collapse(conversation_texts(stand_in, person.id))

        def finished() -> bool:
            for person in people:
                conversation = conversation_of(person)
                if not answered_in_order(person, conversation):
                    return False
            notes = [
                str(c.params.get("text"))
                for c in stand_in.calls("sendMessage")
                if c.ok and str(c.params.get("text", "")).startswith("Уведомление")
            ]
            return len(set(notes)) == NOTIFICATIONS

        def missing() -> str:
            """What has not arrived yet, and what the bot processes said, for a failure."""
            lines = []
            for person in people:
                conversation = conversation_of(person)
                if not answered_in_order(person, conversation):
                    lines.append(f"{person.id}: {conversation[-2 * ROUNDS :]}")
            logs = "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in processes)
            return "\n".join(lines[:5]) + "\n" + logs

        await wait_until(finished, 90, "every answer and notification", explain=missing)

        async with sessions() as session:
            unhandled = await session.scalar(
                select(func.count())
                .select_from(InboundUpdate)
                .where(InboundUpdate.status != "done")
            )
            handled = await session.scalar(select(func.count()).select_from(InboundUpdate))
        assert unhandled == 0
        assert handled == USERS * (2 + 2 * ROUNDS)

        for person in people:
            texts = conversation_texts(stand_in, person.id)
            key = f"{person.id}:{person.id}"
            visible = collapse(texts) if key in held_keys else texts
            # /start, the language, then the bursts, each answered once and in order.
            t = kk if languages[person.id] == "kk" else ru
            assert answered_in_order(person, visible), (person.id, visible)
            assert visible.count(t(HELP)) == ROUNDS, (person.id, visible)

        notes = Counter(
            str(c.params.get("text"))
            for c in stand_in.calls("sendMessage")
            if c.ok and str(c.params.get("text", "")).startswith("Уведомление")
        )
        assert set(notes) == {f"Уведомление №{n}" for n in range(NOTIFICATIONS)}
        # Sent once, except a message the killed process had sent but not yet marked as sent.
        repeated = {text for text, count in notes.items() if count > 1}
        assert repeated <= held_notes, repeated
        assert max(notes.values()) <= 2, notes

        delivered = Counter(a.update_id for a in stand_in.webhook.attempts if a.ok)
        assert {second.url} < {a.url for a in stand_in.webhook.attempts if a.ok}
        assert len(delivered) == USERS * (2 + 2 * ROUNDS)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        await engine.dispose()
