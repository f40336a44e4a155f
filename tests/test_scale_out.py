"""Two bot processes behind one webhook, on PostgreSQL and Redis, one of them killed midway.

The stand-in spreads Telegram's POSTs round-robin over both processes (a reverse proxy's job)
and skips the dead one. Each person's answers must arrive in the order they wrote, each
notification exactly once. A direct answer may repeat only where the killed process was in the
middle of that person's update: it had answered but not committed, so the update is handled
again, which is at-least-once delivery working as designed.

The second test does the same with real work: riders book rides through the whole conversation
(its state in the shared database, committed with each step by one process and read by the
other; Redis holds only the per-person lock) and dispatchers take them from their cards, and
the process is killed as it answers a rider's step.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import signal
import socket
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.callbacks.dispatch import Act
from bot.cards.ride import desk_status
from bot.clock import DEFAULT_TIMEZONE
from bot.db import create_engine, create_sessionmaker, transaction
from bot.i18n import I18n, Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import SKIP
from bot.keyboards.dispatch import LABELS
from bot.services import booking_rules as br
from bot.services.booking import BOOKED_FOR_YOU
from bot.services.crypto import DataKey
from bot.services.dates import parse_day
from bot.services.notifications import SCHEDULED, vehicle_params
from bot.services.outbox import enqueue_message
from bot.services.ride_labels import PURPOSE_LABELS
from handlers.booking import day_text, party_text
from handlers.start import help_message
from models import (
    ConversationState,
    InboundUpdate,
    OutboxMessage,
    Ride,
    Rider,
    RideStatus,
    Vehicle,
)
from models.sealed import use_cipher
from tests.e2e.harness import DISPATCHERS, GROUPS, TEST_DISTRICTS, backlog
from tests.factories import HOME, HOSPITAL, Q, quick_pacing_env, seed_rider
from tests.programs import Program

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

S = RideStatus
ZONE = ZoneInfo(DEFAULT_TIMEZONE)

USERS = 30
NOTIFICATIONS = 60
ROUNDS = 4  # each round: /cancel then /help, sent without waiting
SECRET = "scale-out-secret"
ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_QUESTION = "Тілді таңдаңыз"


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
        self.log = workdir / f"{name}.log"
        self.proc = Program(["run"], self.env, workdir, self.log)

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
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except TimeoutError:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def stop_all(processes: list[BotProcess]) -> None:
    """SIGTERM to every process first, so they shut down together, then wait for each."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop()


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
        **quick_pacing_env(),
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


async def wait_until(check: Any, within: float, what: str, explain: Any = lambda: "") -> None:
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
                held_keys, held_rows = await held_work(sessions, first.owner)
                held_notes = {text for *_, text in held_rows}
                # systemd restarts a killed unit; the new process takes back the dead one's work
                # at start. Until it listens, the proxy (the stand-in) sends everything to "b".
                restarted = BotProcess("a", env, tmp_path)
                processes.append(restarted)
                stand_in.webhook_targets = [restarted.url, second.url]

        def expected(person: Any) -> list[str]:
            t = kk if languages[person.id] == "kk" else ru
            return [t("Main menu."), help_message(t, None, registered=False)] * ROUNDS

        def answered_in_order(person: Any, texts: list[str]) -> bool:
            """The bursts' answers, last in the chat: the first /cancel may have left a step."""
            t = kk if languages[person.id] == "kk" else ru
            tail = texts[-2 * ROUNDS :]
            want = expected(person)
            return (
                len(tail) == len(want)
                and tail[0] in (t("Main menu."), t("Stopped. Nothing was saved."))
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
            help_text = help_message(t, None, registered=False)
            assert visible.count(help_text) == ROUNDS, (person.id, visible)

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
        stop_all(processes)
        await engine.dispose()


# -- booking and dispatch across two processes ------------------------------------------------

RIDERS = 12
BOOKING_UPDATES = 11  # /book, Home, destination, purpose, day, time, way back, party,
#                       wheelchair, skip the comment, confirm
DISPATCH_UPDATES = 2  # Take, then the car
STEP_WAIT = 60.0  # a step may wait out the killed process's Redis lock (20 s) and the restart
STAGGER = 0.3  # riders start a little apart, so the kill finds them at different steps
# A dispatcher reads a card before pressing it. A press in the instant between the card
# appearing in the group and the bot recording its message id is refused as "out of date".
REACTION = 1.0
DISTRICTS = {d["id"]: d for d in tomllib.loads(TEST_DISTRICTS.read_text("utf-8"))["districts"]}
NAMES = {
    "kk": ["Айгерім Сейітова", "Ерлан Қасымов", "Динара Әбенова", "Нұрлан Жақсыбеков"],
    "ru": ["Анна Иванова", "Пётр Смирнов", "Ольга Ким", "Дмитрий Ли"],
}
WHICH_DAY = (
    "Which day? You can book from {first} to {last}. Choose below, or type a date, "
    "for example: {example}."
)
ALMOST_DONE = "Almost done. Check the request and press “Confirm the request”."
SENT = "Request №{number} is sent: {day} at {time}, for {name}."
CARD_TITLE = "Request №{number} — {state}"
TOOK = "You took request №{number}. Choose a car on the card."
DONE = "Request №{number}: {state}."


@dataclass
class Seat:
    """One rider of the scenario: who they are, whom the bot also tells, what they book."""

    index: int
    name: str
    lang: str
    district: str
    user: Any
    at: str  # the pickup time typed; one hour apart for everyone, so no car is double-booked
    car: str  # the plate the dispatcher picks
    dispatcher: Any
    rep: Any = None  # a parent who reads the other language
    rep_lang: str = ""
    rider_id: int = 0
    phone: str = ""
    day: date | None = None
    number: int | None = None  # the ride, as its card in the group names it
    presses: list[tuple[Any, str]] = field(default_factory=list)  # (press, answer expected)

    @property
    def key(self) -> str:
        """The inbox order key of the rider's private chat."""
        return f"{self.user.id}:{self.user.id}"

    @property
    def people(self) -> list[tuple[int, str]]:
        """Everyone told about the ride: (chat, language)."""
        told = [(self.user.id, self.lang)]
        if self.rep is not None:
            told.append((self.rep.id, self.rep_lang))
        return told


def collapse_replayed(texts: list[str], longest: int = 3) -> list[str]:
    """An answer (one or a few messages) repeated right after itself counts once: what a
    person reads when a step was handled again after its first handling was cut short."""
    out: list[str] = []
    for text in texts:
        out.append(text)
        for size in range(1, longest + 1):
            if len(out) >= 2 * size and out[-size:] == out[-2 * size : -size]:
                del out[-size:]
                break
    return out


def number_pattern(text: str) -> re.Pattern[str]:
    """A translated text with `\\x00` where the number goes, as a pattern capturing it."""
    before, _, after = text.partition("\x00")
    return re.compile(re.escape(before) + r"(\d+)" + re.escape(after))


def confirmation(t: Translator, seat: Seat) -> re.Pattern[str]:
    """The first line of "Request N is sent: ...", any N."""
    assert seat.day is not None
    return number_pattern(
        t(SENT, number="\x00", day=day_text(t, seat.day), time=seat.at, name=seat.name)
    )


def conversation_steps(t: Translator, seat: Seat) -> list[str | re.Pattern[str]]:
    """What the rider reads, message by message: a text each contains, or a first line."""
    assert seat.day is not None
    q = Q(t)
    return [
        q.pickup(seat.name),
        q.destination,
        q.purpose,
        t(WHICH_DAY, first="\x00", last="\x00", example="\x00").split("\x00")[0],
        q.time(seat.day),
        q.way_back,
        q.party(seat.name),
        q.wheelchair(seat.name),
        q.comment,
        t(ALMOST_DONE),
        q.summary,
        confirmation(t, seat),
    ]


def fits(step: str | re.Pattern[str], text: str) -> bool:
    if isinstance(step, str):
        return step in text
    return step.match(text.splitlines()[0]) is not None


async def seat_riders(
    stand_in: Any, sessions: Any, vehicles: dict[str, Vehicle], key: DataKey
) -> list[Seat]:
    """Verified riders, half writing Kazakh and half Russian, in both districts, a third of
    them with a representative; each district's dispatchers in its group."""
    cars = {
        district: sorted(p for p, v in vehicles.items() if v.district_id == district)
        for district in GROUPS
    }
    seats: list[Seat] = []
    for n in range(RIDERS):
        lang = "kk" if n % 2 == 0 else "ru"
        district = "taldykorgan" if n % 4 < 2 else "tekeli"
        nth = sum(1 for s in seats if s.district == district)
        user_id, dispatcher_name = DISPATCHERS[district][nth % len(DISPATCHERS[district])]
        dispatcher = stand_in.user(user_id, dispatcher_name)
        stand_in.add_member(GROUPS[district], dispatcher)
        name = NAMES[lang][(n // 2) % len(NAMES[lang])]
        if n >= 2 * len(NAMES[lang]):
            name = f"{name} {n}"
        seat = Seat(
            index=n,
            name=name,
            lang=lang,
            district=district,
            user=stand_in.private_chat(7500 + n, name.split()[0], language_code=lang),
            at=f"{8 + n:02d}:00",
            car=cars[district][nth % len(cars[district])],
            dispatcher=dispatcher,
        )
        if n % 3 == 0:
            seat.rep_lang = "ru" if lang == "kk" else "kk"
            seat.rep = stand_in.private_chat(7600 + n, f"Parent{n}", language_code=seat.rep_lang)
        seat.rider_id = await seed_rider(
            SimpleNamespace(sessions=sessions),
            name=seat.name,
            account_tid=seat.user.id,
            lang=lang,
            representative_tid=seat.rep.id if seat.rep else None,
            rep_lang=seat.rep_lang or "ru",
        )
        seats.append(seat)
    # The factory's placeholder IIN would stop a restarted process at its data key check: seal
    # a made-up one with the processes' key. And half of the riders live in Tekeli.
    async with transaction(sessions) as session:
        for seat in seats:
            await session.execute(
                update(Rider)
                .where(Rider.id == seat.rider_id)
                .values(
                    district_id=seat.district,
                    iin_encrypted=key.encrypt(f"9001013{seat.index:05d}"),
                )
            )
            phone = await session.scalar(select(Rider.phone).where(Rider.id == seat.rider_id))
            seat.phone = str(phone)
    return seats


async def conversations_in_database(sessions: Any, chats: set[int]) -> set[int]:
    """Whose booking is half-way, as the shared database has it."""
    async with sessions() as session:
        rows = await session.execute(
            select(ConversationState.key, ConversationState.state).where(
                ConversationState.state.is_not(None)
            )
        )
        keys = [key for key, _ in rows.all()]
    return {chat for chat in chats for key in keys if f":{chat}:{chat}:" in key}


async def conversations_in_redis(url: str, chats: set[int]) -> set[int]:
    """Whose conversation state is in Redis right now (aiogram's RedisStorage keys)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key.decode() async for key in client.scan_iter(match="fsm:*:state")]
    finally:
        await client.aclose()
    return {chat for chat in chats for key in keys if f":{chat}:{chat}:" in key}


Held = tuple[int, int | None, str, str]


async def held_work(sessions: Any, owner: str) -> tuple[set[str], set[Held]]:
    """What a killed process held: order keys of updates; (chat, ride, kind, text) of messages."""
    async with sessions() as session:
        keys = set(
            await session.scalars(
                select(InboundUpdate.order_key).where(
                    InboundUpdate.status == "claimed", InboundUpdate.claimed_by == owner
                )
            )
        )
        rows = await session.execute(
            select(
                OutboxMessage.chat_id,
                OutboxMessage.ride_id,
                OutboxMessage.kind,
                OutboxMessage.payload,
            ).where(OutboxMessage.status == "sending", OutboxMessage.claimed_by == owner)
        )
        return keys, {(int(c), r, str(k), str(p.get("text"))) for c, r, k, p in rows.all()}


async def current_card(sessions: Any, stand_in: Any, group: int, ride_id: int) -> Any:
    """The message the ride's card lives in now, once the sender has recorded it."""
    async with sessions() as session:
        message_id = await session.scalar(select(Ride.card_message_id).where(Ride.id == ride_id))
    return stand_in.message(group, int(message_id)) if message_id else None


async def sending_for(sessions: Any, owner: str, chat_id: int) -> bool:
    """Is this process sending something to this chat right now?"""
    async with sessions() as session:
        found = await session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "sending",
                OutboxMessage.claimed_by == owner,
                OutboxMessage.chat_id == chat_id,
            )
            .limit(1)
        )
    return found is not None


class AnswerHold:
    """Telegram has carried out a matching call (the person sees the message) but not answered.

    Like the hold in `tests/test_crash.py` it wraps the stand-in's method table, for this test
    only; here the call is carried out first, so a process killed while it waits has answered
    the person and not recorded that it did.
    """

    def __init__(self, stand_in: Any, method: str) -> None:
        self.handlers = stand_in._handlers
        self.method = method
        self.original = self.handlers[method]
        self.match: Any = None
        self.entered: asyncio.Future[dict[str, Any]] | None = None
        self.release = asyncio.Event()

    def __enter__(self) -> AnswerHold:
        async def held(params: dict[str, Any], bot: dict[str, Any]) -> Any:
            result = self.original(params, bot)
            if inspect.isawaitable(result):
                result = await result
            entered, release = self.entered, self.release
            if entered is not None and not entered.done() and self.match(params):
                entered.set_result(params)
                await release.wait()
            return result

        self.handlers[self.method] = held
        return self

    def __exit__(self, *exc: object) -> None:
        self.handlers[self.method] = self.original
        self.release.set()

    async def next(self, match: Any, within: float) -> dict[str, Any] | None:
        """Hold the next matching call; its parameters, or None if none came in time."""
        self.match = match
        self.entered = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(self.entered), max(within, 0.01))
        except TimeoutError:
            self.entered.cancel()
            return None

    def let_go(self) -> None:
        """Answer the held call; hold nothing until `next`."""
        self.release.set()
        self.release = asyncio.Event()


async def quiet(sessions: Any) -> bool:
    """Every stored update handled and every due outbox row sent (or given up)."""
    inbox, outbox = await backlog(sessions)
    return not inbox and not outbox


async def where_things_are(sessions: Any, stand_in: Any, seats: list[Seat]) -> str:
    """For a failure: unfinished updates and messages, the rides, what each person saw last."""
    lines = []
    async with sessions() as session:
        for u in await session.scalars(
            select(InboundUpdate).where(InboundUpdate.status != "done")
        ):
            lines.append(
                f"update {u.update_id} {u.order_key} {u.status} attempts={u.attempts} "
                f"by={u.claimed_by}"
            )
        for o in await session.scalars(
            select(OutboxMessage).where(OutboxMessage.status != "sent")
        ):
            lines.append(
                f"outbox {o.id} chat={o.chat_id} ride={o.ride_id} {o.kind} {o.status} "
                f"by={o.claimed_by} error={o.last_error}"
            )
        for r in await session.scalars(select(Ride).order_by(Ride.id)):
            lines.append(f"ride {r.id} rider={r.rider_id} {r.status} card={r.card_message_id}")
    for seat in seats:
        said = [x.splitlines()[0][:60] for x in sent_texts(stand_in, seat.user.id)[-3:]]
        lines.append(f"rider {seat.rider_id} chat {seat.user.id} card {seat.number}: {said}")
        for state in stand_in.callbacks.values():
            if state.user_id == seat.user.id:
                lines.append(f"  pressed {state.data} -> {state.answer}")
        for pressed, _ in seat.presses:
            state = stand_in.callbacks[pressed.id]
            lines.append(f"  dispatcher pressed {state.data} -> {state.answer}")
    return "\n".join(lines)


async def test_riders_book_and_dispatchers_take_across_a_kill(
    stand_in: Any, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Twelve riders book at once, in Kazakh and in Russian, while the proxy alternates their
    updates between two processes, so each step's conversation state is committed by one
    process and read by the other, through the database. Half-way through, process "a" is
    killed while it handles a rider's step, and restarted. Each ride is then taken and given a
    car from its card in the district's group (Taldykorgan's writes Russian, Tekeli's Kazakh).
    In the end there is one ride per rider, one card per ride, and every rider and
    representative was told once, in their own language."""
    from tests.conftest import require_postgres, require_redis

    require_postgres()
    require_redis()
    for district, chat_id in GROUPS.items():
        stand_in.group(chat_id, f"Диспетчеры {district}")
    env = bot_env(stand_in, postgres_url, redis_url)
    first = BotProcess("a", env, tmp_path)
    processes = [first]
    engine = create_engine(postgres_url)
    sessions = create_sessionmaker(engine)
    i18n = I18n()
    tr = {lang: i18n.translator(lang) for lang in ("kk", "ru")}
    desk = {d: tr[DISTRICTS[d]["language"]] for d in GROUPS}  # each group's own language

    def logs() -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(tmp_path.glob("*.log"))
        )

    try:
        await first.ready()
        # Read what the bot processes sealed (stored updates) with their key.
        use_cipher(DataKey.from_secret(env["DATA_KEY"]).cipher)
        async with sessions() as session:
            vehicles = {v.plate: v for v in await session.scalars(select(Vehicle))}
        seats = await seat_riders(
            stand_in, sessions, vehicles, DataKey.from_secret(env["DATA_KEY"])
        )
        second = BotProcess("b", env, tmp_path)
        processes.append(second)
        await second.ready()
        stand_in.webhook_targets = [first.url, second.url]

        past_calendar = 0
        half_way = asyncio.Event()
        killed: dict[str, Any] = {}

        async def book(seat: Seat) -> None:
            """The whole conversation, as a person types and taps, then the dispatcher's turn."""
            nonlocal past_calendar
            await asyncio.sleep(seat.index * STAGGER)
            t, user = tr[seat.lang], seat.user
            q = Q(t)

            async def step(act: Any, expect: Any) -> Any:
                act()
                return await user.wait_for(expect, timeout=STEP_WAIT)

            await step(lambda: user.send_text("/book"), q.pickup(seat.name))
            await step(lambda: user.tap(t(kb.HOME)), q.destination)
            await step(lambda: user.send_text(HOSPITAL), q.purpose)
            which_day = t(WHICH_DAY, first="\x00", last="\x00", example="\x00").split("\x00")[0]
            await step(lambda: user.tap(t(PURPOSE_LABELS["clinic"])), which_day)
            today = datetime.now(ZONE).date()
            days = [b for b in user.keyboard_buttons if parse_day(b, today) is not None]
            # Not the first open day: its booking cut-off could pass while the test runs.
            label = days[min(1, len(days) - 1)]
            seat.day = parse_day(label, today)
            assert seat.day is not None
            await step(lambda: user.tap(label), q.time(seat.day))
            past_calendar += 1
            if past_calendar >= RIDERS // 2:
                half_way.set()
            await step(lambda: user.send_text(seat.at), q.way_back)
            await step(lambda: user.tap(t(kb.RETURN_NO)), q.party(seat.name))
            await step(lambda: user.tap(party_text(t, False, 0)), q.wheelchair(seat.name))
            await step(lambda: user.tap(t(kb.WHEELCHAIR_NO)), q.comment)
            await step(lambda: user.tap(t(SKIP)), q.summary)
            # Confirm on the newest summary, as a person would scroll to it.
            await step(lambda: user.press(t(kb.CONFIRM)), confirmation(t, seat))
            await dispatch(seat)

        async def dispatch(seat: Seat) -> None:
            """A dispatcher finds the rider's new card in the group, takes it, picks the car."""
            t, group = desk[seat.district], GROUPS[seat.district]
            rider_line = t("Rider: {name}, {phone}", name=seat.name, phone=seat.phone)
            requested = number_pattern(
                t(CARD_TITLE, number="\x00", state=t(desk_status(S.REQUESTED)))
            )
            take = t(LABELS[Act.TAKE])
            try:
                card = await stand_in.wait_for(
                    lambda m: (
                        rider_line in (m.text or "").splitlines()
                        and take in m.button_texts
                        and requested.match(m.text) is not None
                    ),
                    group,
                    after=0,
                    timeout=STEP_WAIT,
                )
            except AssertionError:
                told = sent_texts(stand_in, seat.user.id)[-1].splitlines()[0]
                raise AssertionError(
                    f"{seat.name} read {told!r}, but no card of theirs came to the group"
                ) from None
            match = requested.match(card.text)
            assert match is not None
            seat.number = number = int(match.group(1))
            # The card as the ride knows it: a card posted again after the kill is the live one.
            card = await current_card(sessions, stand_in, group, number) or card

            def card_shows(status: str) -> Any:
                title = t(CARD_TITLE, number=number, state=t(desk_status(status)))
                return lambda m: (
                    m.message_id == card.message_id and (m.text or "").startswith(title)
                )

            await asyncio.sleep(REACTION)
            pressed = seat.dispatcher.press(take, message=card)
            seat.presses.append((pressed, t(TOOK, number=number)))
            car = f"{vehicles[seat.car].make} {seat.car}"
            taken = card_shows(S.TAKEN)
            await stand_in.wait_for(
                lambda m: taken(m) and car in m.button_texts, group, after=0, timeout=STEP_WAIT
            )
            await asyncio.sleep(REACTION)
            pressed = seat.dispatcher.press(car, message=card)
            state = t(desk_status(S.SCHEDULED))
            seat.presses.append((pressed, t(DONE, number=number, state=state)))
            await stand_in.wait_for(card_shows(S.SCHEDULED), group, after=0, timeout=STEP_WAIT)

        async def kill_half_way() -> None:
            await half_way.wait()
            # Killed in the middle of a rider's step, after its commit: Telegram has received
            # the step's answer from process "a", and "a" has not heard back, so the answer is
            # not recorded as sent. Other answers are let through until one of "a"'s comes.
            riders = {s.user.id for s in seats}
            killed["mid-booking, in the database"] = await conversations_in_database(
                sessions, riders
            )
            killed["mid-booking, in Redis"] = await conversations_in_redis(redis_url, riders)
            deadline = time.monotonic() + 20
            with AnswerHold(stand_in, "sendMessage") as hold:
                while time.monotonic() < deadline:
                    held = await hold.next(
                        lambda p: int(p.get("chat_id", 0)) in riders, deadline - time.monotonic()
                    )
                    if held is None:
                        break
                    chat_id = int(held["chat_id"])
                    if await sending_for(sessions, first.owner, chat_id):
                        killed["answering"] = (chat_id, str(held.get("text")).split("\n")[0])
                        first.kill()
                        break
                    hold.let_go()
            if first.proc.poll() is None:
                first.kill()  # none of its answers came in time: wherever it is now
            killed["held"] = await held_work(sessions, first.owner)
            (tmp_path / "a.log").rename(tmp_path / "a-killed.log")  # the new "a" writes a.log
            # As in the first test: systemd restarts the unit, the proxy skips it until it
            # listens.
            restarted = BotProcess("a", env, tmp_path)
            processes.append(restarted)
            stand_in.webhook_targets = [restarted.url, second.url]
            await restarted.ready()

        try:
            await asyncio.wait_for(
                asyncio.gather(kill_half_way(), *(book(seat) for seat in seats)), 150
            )
        except (AssertionError, TimeoutError) as exc:
            report = await where_things_are(sessions, stand_in, seats)
            raise AssertionError(f"{exc!r}\nkilled: {killed}\n{report}\n{logs()}") from exc
        held_keys, held_messages = killed["held"]
        held_rows = {(chat, ride, kind) for chat, ride, kind, _ in held_messages}

        def scheduled(seat: Seat, lang: str) -> str:
            assert seat.day is not None
            return tr[lang](
                SCHEDULED,
                number=seat.number,
                date=br.fmt_date(seat.day),
                time=seat.at,
                **vehicle_params(vehicles[seat.car], lang),
            )

        def booked_for(seat: Seat, lang: str) -> str:
            assert seat.day is not None
            return tr[lang](
                BOOKED_FOR_YOU,
                who=f"User {seat.user.id}",  # the rider's account, as the factory names it
                number=seat.number,
                name=seat.name,
                date=br.fmt_date(seat.day),
                time=seat.at,
                pickup=HOME,
                destination=HOSPITAL,
            )

        def expected_news(seat: Seat, chat_id: int, lang: str) -> list[str]:
            """The rider hears of the car; a representative also of the booking."""
            news = [scheduled(seat, lang)]
            if chat_id != seat.user.id:
                news.append(booked_for(seat, lang))
            return news

        def everyone_told() -> bool:
            return all(
                set(expected_news(seat, chat_id, lang)) <= set(sent_texts(stand_in, chat_id))
                for seat in seats
                for chat_id, lang in seat.people
            )

        await wait_until(everyone_told, 60, "every rider's and representative's news", logs)
        deadline = time.monotonic() + 60
        while not await quiet(sessions):
            assert time.monotonic() < deadline, f"the bots did not settle\n{logs()}"
            await asyncio.sleep(0.3)
        diagnosis = f"killed: {killed}\n{logs()}"

        # Half-way, riders' steps were in the database, where both processes read them and where
        # each step commits with what it changed; Redis held only locks, never a step.
        assert killed["mid-booking, in the database"], diagnosis
        assert killed["mid-booking, in Redis"] == set(), diagnosis

        # One ride per rider, none doubled and none lost, each taken and given its car.
        async with sessions() as session:
            rides = list(await session.scalars(select(Ride).order_by(Ride.id)))
            unhandled = await session.scalar(
                select(func.count())
                .select_from(InboundUpdate)
                .where(InboundUpdate.status != "done")
            )
            handled = await session.scalar(select(func.count()).select_from(InboundUpdate))
        rides_of = Counter(r.rider_id for r in rides)
        assert rides_of == Counter(s.rider_id for s in seats), (rides_of, diagnosis)
        for seat in seats:
            (ride,) = [r for r in rides if r.rider_id == seat.rider_id]
            local = ride.pickup_at.astimezone(ZONE)
            assert seat.number == ride.id, (seat.name, seat.number, ride.id)
            assert (ride.status, ride.vehicle_id) == (S.SCHEDULED, vehicles[seat.car].id)
            assert (ride.pickup_address, ride.destination) == (HOME, HOSPITAL), seat.name
            assert ride.return_of is None and ride.district_id == seat.district
            assert (local.date(), local.strftime("%H:%M")) == (seat.day, seat.at)
            assert ride.dispatcher_id == seat.dispatcher.id

        # Every update the proxy handed over was handled, both processes taking a share.
        delivered = {a.update_id for a in stand_in.webhook.attempts if a.ok}
        assert unhandled == 0
        assert handled == len(delivered) == RIDERS * (BOOKING_UPDATES + DISPATCH_UPDATES)
        assert {first.url, second.url} <= {a.url for a in stand_in.webhook.attempts if a.ok}

        # The conversation as each rider read it: each question once and in order, ending with
        # the confirmation, which names the ride that exists. An answer repeated right after
        # itself only for the rider whose step the killed process was in the middle of.
        for seat in seats:
            t = tr[seat.lang]
            texts = sent_texts(stand_in, seat.user.id)
            sent = confirmation(t, seat)
            told = [int(m.group(1)) for x in texts if (m := sent.match(x.splitlines()[0]))]
            assert told and set(told) == {seat.number}, (
                f"{seat.name} was told of request(s) {told}; the ride is {seat.number}",
                diagnosis,
            )
            conversation = texts[: max(i for i, x in enumerate(texts) if fits(sent, x)) + 1]
            # Or an answer twice, if the killed process was sending it to this rider.
            replayed = seat.key in held_keys or any(chat == seat.user.id for chat, *_ in held_rows)
            visible = collapse_replayed(conversation) if replayed else conversation
            steps = conversation_steps(t, seat)
            assert len(visible) == len(steps) and all(map(fits, steps, visible)), "\n---\n".join(
                [f"{seat.name}, held by the killed process: {replayed} ({killed})", *visible]
            )

        # The news afterwards: once for each person, in their own language only.
        for seat in seats:
            for chat_id, lang in seat.people:
                received = Counter(sent_texts(stand_in, chat_id))
                for text in expected_news(seat, chat_id, lang):
                    # Twice only if the killed process was sending it (sent, not yet recorded).
                    repeat = (chat_id, seat.number, "send") in held_rows
                    assert received[text] == 1 or (repeat and received[text] == 2), (
                        chat_id,
                        text,
                        received[text],
                    )
                other = "ru" if lang == "kk" else "kk"
                for text in (scheduled(seat, other), booked_for(seat, other)):
                    assert text not in received, (chat_id, text)
            assert booked_for(seat, seat.lang) not in sent_texts(stand_in, seat.user.id)

        # One card per ride in its district's group, edited in place from then on.
        for district, group in GROUPS.items():
            title = number_pattern(desk[district](CARD_TITLE, number="\x00", state=""))
            posts = [
                e.message.text
                for e in stand_in.events
                if e.kind == "new" and e.message.chat.id == group and e.message.from_bot
            ]
            cards = Counter(int(m.group(1)) for p in posts if (m := title.match(p)))
            mine = Counter(s.number for s in seats if s.district == district)
            # A card the killed process had posted without hearing back is posted once more.
            again = {ride for chat, ride, kind, _ in held_messages if kind == "ride_card"}
            assert set(cards) == set(mine), (district, posts)
            for number, count in cards.items():
                assert count == mine[number] + (1 if count > 1 and number in again else 0), (
                    district,
                    posts,
                )
            assert len(posts) == sum(cards.values()), (district, posts)

        # Each press was answered, in the group's language; a press the killed process was
        # handling may have been handled again too late to answer.
        for seat in seats:
            desk_key = f"{GROUPS[seat.district]}:{seat.dispatcher.id}"
            for pressed, text in seat.presses:
                answer = stand_in.callbacks[pressed.id].answer
                if answer is None and desk_key in held_keys:
                    continue
                assert answer is not None and answer.text == text, (seat.name, text, answer)
        assert not stand_in.internal_errors
    finally:
        stop_all(processes)
        await engine.dispose()
