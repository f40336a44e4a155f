"""The bot killed at the worst moments: as a separate process, with SIGKILL, three times.

`python -m bot run` (forked from `tests.programs`, its imports done) runs against the Bot API
stand-in (in this test's process) on a SQLite file.
A step talks to Telegram only after its commit, so there are three moments to kill it:
- before the commit: on PostgreSQL the test holds a lock the step needs, so the step waits with
  its transaction open (`test_killed_before_the_commit`);
- after the commit, before the send: the test holds a Bot API call unanswered, Telegram having
  received it but done nothing yet;
- after the send, before it is recorded: Telegram applied the call, the answer never arrives.
After each restart the rider goes on where she was; in the end there is one request, applied
once, and every message arrived once (the last kind at most twice: Telegram gave no answer).
Last, SIGTERM while a message is in flight: it is sent and recorded before the bot exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import create_engine, create_sessionmaker
from bot.i18n import I18n, Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import SKIP
from bot.services.crypto import DataKey, seal_iin
from bot.services.notifications import SCHEDULED
from bot.services.ride_labels import PURPOSE_LABELS
from handlers.booking import CALENDAR, PARTY_ALONE
from models import Account, InboundUpdate, Ride, RideEvent, Rider
from tests.e2e.harness import backlog
from tests.factories import quick_pacing_env
from tests.programs import Program

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DISTRICTS = ROOT / "tests" / "data" / "districts.toml"
GROUP = -1001000000001
RIDER = 5001
NAME = "Гульнара Сейтова"
ZONE_HOURS = 5  # Asia/Almaty
DATA_KEY = "crash-test-data-key-0123456789abcdef0123456789"


class Hold:
    """Telegram receives a matching call and says nothing until released (or the caller dies).

    The stand-in has no "slow answer" switch, so the hold wraps its method handler: a call held
    here changed nothing yet, exactly like a request still on its way to Telegram.
    """

    def __init__(
        self, stand_in: Any, method: str, match: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True
        handlers = stand_in._handlers  # the stand-in's method table, wrapped for this test only
        original = handlers[method]

        async def held(params: dict[str, Any], bot: dict[str, Any]) -> Any:
            if self.armed and match(params):
                self.armed = False
                self.entered.set()
                await self.release.wait()
            result = original(params, bot)
            return await result if inspect.isawaitable(result) else result

        handlers[method] = held
        self._restore = lambda: handlers.__setitem__(method, original)

    async def reached(self, seconds: float = 15.0) -> None:
        await asyncio.wait_for(self.entered.wait(), seconds)

    def close(self) -> None:
        self.release.set()
        self._restore()


class HoldAnswer(Hold):
    """Telegram applies a matching call, then its answer never comes back (until released)."""

    def __init__(
        self, stand_in: Any, method: str, match: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True
        handlers = stand_in._handlers
        original = handlers[method]

        async def applied_then_held(params: dict[str, Any], bot: dict[str, Any]) -> Any:
            result = original(params, bot)
            result = await result if inspect.isawaitable(result) else result
            if self.armed and match(params):
                self.armed = False
                self.entered.set()
                await self.release.wait()
            return result

        handlers[method] = applied_then_held
        self._restore = lambda: handlers.__setitem__(method, original)


class BotProcess:
    """`python -m bot run` as an operator starts it, configured only by the environment."""

    def __init__(self, stand_in: Any, workdir: Path, url: str | None = None) -> None:
        self.stand_in = stand_in
        self.workdir = workdir
        self.url = url or f"sqlite+aiosqlite:///{workdir / 'bot.sqlite3'}"
        self.proc: Program | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_"))}
        env.update(
            BOT_TOKEN=self.stand_in.token,
            TELEGRAM_API_URL=self.stand_in.base_url,
            DATABASE_URL=self.url,
            DISTRICTS_FILE=str(DISTRICTS),
            DATA_KEY=DATA_KEY,
            DEFAULT_LANGUAGE="kk",
            SWEEP_INTERVAL_SECONDS="3600",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            **quick_pacing_env(),
        )
        for name in ("REDIS_URL", "WEBHOOK_URL", "ADMIN_IDS"):
            env.pop(name, None)
        return env

    async def start(self) -> None:
        polls = len(self.stand_in.calls("getUpdates"))
        self.starts += 1
        self.proc = Program(
            ["run"], self.env(), self.workdir, self.workdir / f"bot-{self.starts}.log"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # Ready when it polls: schema migrated, districts synced, commands registered.
        while len(self.stand_in.calls("getUpdates")) <= polls:
            assert self.proc.returncode is None, self.output()
            assert loop.time() < deadline, "the bot did not start:\n" + self.output()
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.until_exit()

    async def terminate(self, seconds: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.proc.until_exit(seconds)

    def output(self) -> str:
        return (self.workdir / f"bot-{self.starts}.log").read_text(errors="replace")[-4000:]


@contextlib.asynccontextmanager
async def running_bot(
    stand_in: Any, workdir: Path, url: str | None = None
) -> AsyncIterator[BotProcess]:
    stand_in.group(GROUP, "Диспетчеры Талдыкорган")
    stand_in.group(-1001000000002, "Текелі диспетчерлері")
    for user_id, name in ((9001, "Айгүл"), (9002, "Марат")):
        stand_in.add_member(GROUP, stand_in.private_chat(user_id, name))
    bot = BotProcess(stand_in, workdir, url)
    await bot.start()
    try:
        yield bot
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def registered_rider(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A verified rider who gave consent, as registration leaves her."""
    sealed = seal_iin(DataKey.from_secret(DATA_KEY), "880315400123")
    async with sessions() as session, session.begin():
        account = Account(
            telegram_id=RIDER,
            language="ru",
            display_name="Гульнара",
            consent_version="1",
            consent_at=datetime.now(UTC),
            role="rider",
        )
        session.add(account)
        await session.flush()
        session.add(
            Rider(
                account_id=account.id,
                district_id="taldykorgan",
                full_name=NAME,
                phone="+77011234567",
                iin_encrypted=sealed.encrypted,
                iin_hash=sealed.lookup_hash,
                home_address="ул. Абая, 10",
                category="group1_mobility",
                disability_group=1,
                vkk_number="ВКК-77",
                verification="verified",
                verified_at=datetime.now(UTC),
            )
        )


async def settled(sessions: async_sessionmaker[AsyncSession], seconds: float = 20.0) -> None:
    """Every stored update handled and every message sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        inbox, outbox = await backlog(sessions, due_only=False)
        if not inbox and not outbox:
            return
        assert loop.time() < deadline, f"not settled: {inbox} updates, {outbox} messages"
        await asyncio.sleep(0.1)


SENT = "Request №{number} is sent: {day} at {time}, for {name}."


def count(user: Any, text: str) -> int:
    return sum(1 for m in user.messages() if m.text and text in m.text)


async def test_killed_mid_booking_mid_dispatch_and_mid_delivery_then_stopped(
    stand_in: Any, tmp_path: Path
) -> None:
    ru: Translator = I18n().translator("ru")
    async with running_bot(stand_in, tmp_path) as bot, database(bot.url) as sessions:
        await registered_rider(sessions)
        rider = stand_in.private_chat(RIDER, "Гульнара", language_code="ru")
        aigul = stand_in.users[9001]

        # -- a booking, killed while the bot answers the destination --------------------------
        rider.send_text("/book")
        await rider.wait_for(ru("Where should the car pick {name} up?", name=NAME))
        rider.send_text(ru(kb.HOME))
        await rider.wait_for(
            ru("Where to? Type the address or the place, for example: Regional hospital.")
        )
        purpose_question = ru("What is the trip for?")
        hold = Hold(stand_in, "sendMessage", lambda p: str(p.get("text", "")) == purpose_question)
        rider.send_text("Областная больница")
        await hold.reached()
        await bot.kill()
        hold.close()
        await bot.start()
        # Her answer was kept: the next question comes, once, and she goes on from there.
        await rider.wait_for(purpose_question, timeout=15)
        rider.send_text(ru(PURPOSE_LABELS["clinic"]))
        day = (datetime.now(UTC) + timedelta(hours=ZONE_HOURS) + timedelta(days=3)).date()
        await rider.wait_for(lambda m: ru(CALENDAR) in rider.keyboard_buttons)
        rider.send_text(day.strftime("%d.%m"))
        await rider.wait_for(lambda m: "10:00" in rider.keyboard_buttons)
        rider.send_text("10:00")
        await rider.wait_for(ru("Do you need a ride back the same day?"))
        rider.send_text(ru(kb.RETURN_NO))
        await rider.wait_for(ru("Who rides along with {name}?", name=NAME))
        rider.send_text(ru(PARTY_ALONE))
        await rider.wait_for(lambda m: ru(kb.WHEELCHAIR_NO) in rider.keyboard_buttons)
        rider.send_text(ru(kb.WHEELCHAIR_NO))
        await rider.wait_for(lambda m: ru(SKIP) in rider.keyboard_buttons)
        rider.send_text(ru(SKIP))
        summary = await rider.wait_for(ru("Please check the request:"))
        # Killed after Telegram showed her the confirmation but before the bot heard back: the
        # booking is committed once, and the confirmation, which Telegram never acknowledged,
        # may come once more after the restart, with the number that exists.
        sent_prefix = ru(SENT).split("{")[0]
        confirming = HoldAnswer(
            stand_in, "sendMessage", lambda p: str(p.get("text", "")).startswith(sent_prefix)
        )
        rider.press(ru(kb.CONFIRM), message=summary)
        await confirming.reached()
        await bot.kill()
        confirming.close()
        await bot.start()
        await settled(sessions)
        assert count(rider, purpose_question) == 1
        async with sessions() as session:
            (ride,) = list(await session.scalars(select(Ride)))
        sent = [m.text for m in rider.messages() if m.text.startswith(sent_prefix)]
        numbered = ru(SENT, number=ride.id, day="", time="", name="").split(":")[0]
        assert 1 <= len(sent) <= 2 and all(t.startswith(numbered + ":") for t in sent), sent
        await stand_in.wait_for(f"{ride.id}", GROUP, timeout=10)
        # The card, sent while the bot was killed, may be posted once more too (its answer never
        # reached the bot); the dispatcher presses the newest, at the bottom of the chat.
        cards = [m for m in stand_in.messages(GROUP) if f"№{ride.id} " in m.text]
        assert 1 <= len(cards) <= 2, [c.text for c in cards]
        card = cards[-1]

        # -- the dispatcher takes it; the bot is killed before the press is answered -----------
        take = Hold(stand_in, "answerCallbackQuery", lambda p: True)
        aigul.press(ru("Take it myself"), message=card)
        await take.reached()
        await bot.kill()
        take.close()
        await bot.start()
        await settled(sessions)
        card = stand_in.message(GROUP, card.message_id)
        assert card is not None and card.buttons, "the card offers the cars after Take"

        # -- a car is assigned; the bot is killed while telling the rider -----------------------
        told = Hold(stand_in, "sendMessage", lambda p: str(p.get("chat_id")) == str(RIDER))
        aigul.press(lambda label: label.startswith("Ford Transit"), message=card)
        await told.reached()
        await bot.kill()
        told.close()
        await bot.start()
        await settled(sessions)

        # -- nothing lost, nothing doubled -----------------------------------------------------
        async with sessions() as session:
            rides = list(await session.scalars(select(Ride)))
            events = list(
                await session.scalars(select(RideEvent.to_status).order_by(RideEvent.id))
            )
            failed = await session.scalar(
                select(func.count())
                .select_from(InboundUpdate)
                .where(InboundUpdate.status == "failed")
            )
        assert [r.status for r in rides] == ["scheduled"]
        assert events == ["requested", "taken", "scheduled"]
        assert failed == 0
        confirmations = [m for m in rider.messages() if "Ford Transit" in (m.text or "")]
        assert len(confirmations) == 1, [m.text for m in rider.messages()]
        assert confirmations[0].text.startswith(ru(SCHEDULED).split("{")[0])
        group_cards = [m for m in stand_in.messages(GROUP) if str(ride.id) in (m.text or "")]
        # Posted once more at most (see above), and the ride's card is the newest.
        assert 1 <= len(group_cards) <= 2
        assert "Ford Transit" in group_cards[-1].text

        # -- and stopped with SIGTERM while a step's answer is in flight: it is sent first --
        first_question = ru("Where should the car pick {name} up?", name=NAME)
        asked = count(rider, first_question)
        hold = Hold(
            stand_in, "sendMessage", lambda p: str(p.get("text", "")).startswith(first_question)
        )
        rider.send_text("/book")
        await hold.reached()
        stopping = asyncio.create_task(bot.terminate())
        await asyncio.sleep(0.5)
        assert not stopping.done(), "the bot must wait for the answer in flight"
        hold.close()
        assert await stopping == 0, bot.output()
        async with sessions() as session:
            statuses = set(await session.scalars(select(InboundUpdate.status)))
        # Handled and committed: a later start has nothing to do again.
        assert statuses == {"done"}
        assert count(rider, first_question) == asked + 1
        assert stand_in.internal_errors == []


@pytest.mark.postgres
async def test_killed_before_the_commit(stand_in: Any, tmp_path: Path, postgres_url: str) -> None:
    """The step has decided and written, the commit has not happened: nothing of it is left,
    nothing was said, and after the restart the same update is applied once."""
    import asyncpg

    ru: Translator = I18n().translator("ru")
    async with running_bot(stand_in, tmp_path, postgres_url) as bot, database(bot.url) as sessions:
        await registered_rider(sessions)
        rider = stand_in.private_chat(RIDER, "Гульнара", language_code="ru")
        rider.send_text("/book")
        pickup_question = ru("Where should the car pick {name} up?", name=NAME)
        await rider.wait_for(pickup_question)
        destination_question = ru(
            "Where to? Type the address or the place, for example: Regional hospital."
        )
        dsn = postgres_url.replace("postgresql+asyncpg", "postgresql")
        blocker = await asyncpg.connect(dsn)
        try:
            lock = blocker.transaction()
            await lock.start()
            # The row of her conversation: the step's last write waits for it, transaction open.
            locked = await blocker.fetch(
                "SELECT key FROM conversation_states WHERE key LIKE $1 FOR UPDATE",
                f"%:{RIDER}:%",
            )
            assert locked, "her conversation has a state row"
            rider.send_text(ru(kb.HOME))
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while not await blocker.fetchval(waiting):
                assert loop.time() < deadline, "the step never reached its last write"
                await asyncio.sleep(0.05)
            await bot.kill()
            await lock.rollback()
        finally:
            await blocker.close()
        assert count(rider, destination_question) == 0, "nothing is said before the commit"
        await bot.start()
        await rider.wait_for(destination_question, timeout=15)
        await settled(sessions)
        assert count(rider, destination_question) == 1
        assert count(rider, pickup_question) == 1
        async with sessions() as session:
            statuses = list(await session.scalars(select(InboundUpdate.status)))
        assert statuses and set(statuses) == {"done"}
        assert stand_in.internal_errors == []
