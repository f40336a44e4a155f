"""The outbox sender against the Bot API stand-in: every Telegram answer a real bot meets.

Each test queues what a change would queue, lets the real sender deliver it, and checks what the
person or the dispatcher chat shows, and the request log Telegram would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cards import ride as ride_card  # noqa: F401  (registers the ride card)
from bot.cards.registry import CARD_RENDERERS, CardRenderer, CardView, register_card
from bot.delivery import Limits, OutboxSender, Pace
from bot.i18n import I18n
from bot.inbox import SORRY
from bot.services.outbox import enqueue_card, enqueue_message
from models import (
    Account,
    District,
    OutboxMessage,
    Ride,
    Rider,
    utcnow,
)
from tests.factories import (
    DISPATCHERS,
    GROUP,
    GROUP_KK,
    add_ride,
    add_rider,
    link_representative,
    seed_districts,
    sessions_on,
    unfinished,
)


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@contextlib.asynccontextmanager
async def sending(sender: OutboxSender) -> AsyncIterator[asyncio.Event]:
    """The sender's loop running in the background for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def delivered(
    sessions: async_sessionmaker[AsyncSession], sender: OutboxSender, seconds: float = 15.0
) -> None:
    """Run the sender until every queued row is sent or given up."""
    async with sending(sender):
        deadline = time.monotonic() + seconds
        while await unfinished(sessions):
            assert time.monotonic() < deadline, "the outbox was not delivered in time"
            await asyncio.sleep(0.05)


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    stand_in: Any
    sender: OutboxSender
    i18n: I18n


# Group pace compressed for speed; the group window itself is tested on its own below.
QUICK = Limits(group_spacing=0.05)


@contextlib.asynccontextmanager
async def make_world(
    sessions: async_sessionmaker[AsyncSession], stand_in: Any
) -> AsyncIterator[World]:
    await seed_districts(sessions)
    stand_in.group(GROUP, "Диспетчеры Талдыкорган")
    stand_in.group(GROUP_KK, "Текелі диспетчерлері")
    bot = stand_in.make_bot()
    i18n = I18n()
    owner = f"test@{socket.gethostname()}:{os.getpid()}"
    sender = OutboxSender(bot, sessions, i18n, owner, limits=QUICK)
    try:
        yield World(sessions, stand_in, sender, i18n)
    finally:
        await bot.session.close()


@pytest.fixture
async def sqlite_sessions(
    migrated_sqlite_url: str,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Most sender behaviour does not depend on the database: SQLite keeps these quick."""
    async with sessions_on(migrated_sqlite_url) as made:
        yield made


@pytest.fixture
async def world(
    sqlite_sessions: async_sessionmaker[AsyncSession], stand_in: Any
) -> AsyncIterator[World]:
    async with make_world(sqlite_sessions, stand_in) as made:
        yield made


@pytest.fixture
async def any_world(
    sessions: async_sessionmaker[AsyncSession], stand_in: Any
) -> AsyncIterator[World]:
    """Claims are where the databases differ: these tests run on SQLite and PostgreSQL."""
    async with make_world(sessions, stand_in) as made:
        yield made


async def queue_sorry(world: World, chat_id: int, **kwargs: Any) -> None:
    async with world.sessions() as session, session.begin():
        account = await session.scalar(select(Account).where(Account.telegram_id == chat_id))
        enqueue_message(
            session,
            chat_id=chat_id,
            account_id=account.id if account else None,
            msgid=SORRY,
            **kwargs,
        )


async def person(world: World, user_id: int, lang: str = "ru") -> Rider:
    world.stand_in.private_chat(user_id, "Гульнара", language_code=lang)
    async with world.sessions() as session, session.begin():
        return await add_rider(session, user_id, lang=lang)


def sends(stand_in: Any, chat_id: int) -> list[Any]:
    return list(stand_in.calls("sendMessage", chat_id=chat_id))


# -- errors -------------------------------------------------------------------------------------


async def test_429_pauses_the_chat_then_delivers_once(world: World) -> None:
    await person(world, 5001)
    world.stand_in.inject("429", method="sendMessage", chat_id=5001, retry_after=1)
    await queue_sorry(world, 5001)
    await delivered(world.sessions, world.sender)
    shown = world.stand_in.messages(5001)
    assert [m.text for m in shown] == [world.i18n.gettext("ru", SORRY)]
    first, second = sends(world.stand_in, 5001)
    assert first.status == 429 and second.ok
    # Telegram said "retry after 1": the sender waited at least that long.
    assert second.time - first.time >= 1.0
    row = (await outbox_rows(world.sessions))[0]
    assert row.status == "sent" and row.attempts == 1


async def test_server_error_is_retried(world: World) -> None:
    await person(world, 5002, lang="kk")
    world.stand_in.inject("500", method="sendMessage", chat_id=5002)
    await queue_sorry(world, 5002)
    await delivered(world.sessions, world.sender)
    assert [m.text for m in world.stand_in.messages(5002)] == [world.i18n.gettext("kk", SORRY)]
    assert [r.status for r in sends(world.stand_in, 5002)] == [500, 200]


async def test_dropped_connection_is_retried(world: World) -> None:
    await person(world, 5003)
    world.stand_in.inject("drop", method="sendMessage", chat_id=5003)
    await queue_sorry(world, 5003)
    await delivered(world.sessions, world.sender)
    assert len(world.stand_in.messages(5003)) == 1
    assert [r.fault for r in sends(world.stand_in, 5003)] == ["drop", None]


async def test_a_chats_messages_keep_their_order_through_a_retry(world: World) -> None:
    await person(world, 5004)
    world.stand_in.inject("500", method="sendMessage", chat_id=5004)
    async with world.sessions() as session, session.begin():
        for n in range(3):
            enqueue_message(session, chat_id=5004, text=f"шаг {n}")
    await delivered(world.sessions, world.sender)
    assert [m.text for m in world.stand_in.messages(5004)] == ["шаг 0", "шаг 1", "шаг 2"]


async def test_an_answer_does_not_overtake_an_older_message_sent_back_to_the_table(
    world: World,
) -> None:
    """A step's order check counts the rows this process holds as in order. If one of them goes
    back to the table before the step's answer is handed over (its send failed, or its chat had
    to wait out Telegram's pace), the answer follows it instead of arriving first (seen in the
    scale-out test: a question repeated after the rider had already answered it)."""
    await person(world, 5005)
    replies = world.sender.replies
    checked = replies.mark()  # the step's order check: the older row is held by this process
    async with world.sessions() as session, session.begin():
        older = enqueue_message(session, chat_id=5005, text="Во сколько подать машину?")
        answer = enqueue_message(session, chat_id=5005, text="Нужна ли обратная поездка?")
        await session.flush()
        for row in (older, answer):
            row.status, row.claimed_by = "sending", world.sender.owner
            row.claimed_until = utcnow() + timedelta(seconds=30)
    # The sender sends the older row back to the table to wait out the chat's pace, and only
    # then takes the step's answer.
    async with world.sessions() as session, session.begin():
        back = await session.get(OutboxMessage, older.id)
        assert back is not None
        back.status, back.claimed_by, back.claimed_until = "pending", None, None
        back.next_attempt_at = utcnow() + timedelta(seconds=0.5)
    replies.handed_back(5005)
    replies.committed([answer], mark=checked)
    await delivered(world.sessions, world.sender)
    assert [m.text for m in world.stand_in.messages(5005)] == [
        "Во сколько подать машину?",
        "Нужна ли обратная поездка?",
    ]


async def test_an_answer_goes_out_while_the_senders_round_waits_for_the_database(
    world: World,
) -> None:
    """The person who is waiting gets the answer as the step commits, not after the sender's
    claim round (on SQLite it may queue for the writer behind other steps)."""
    await person(world, 5006)
    sender = world.sender
    round_began, round_may_end = asyncio.Event(), asyncio.Event()
    claim_round = sender.claim_round

    async def slow_round() -> int:
        round_began.set()
        await round_may_end.wait()
        return await claim_round()

    sender.claim_round = slow_round  # type: ignore[method-assign]
    async with sending(sender):
        await asyncio.wait_for(round_began.wait(), 10)
        async with world.sessions() as session, session.begin():
            answer = enqueue_message(session, chat_id=5006, text="Куда поедем?")
            await session.flush()
            answer.status, answer.claimed_by = "sending", sender.owner
            answer.claimed_until = utcnow() + timedelta(seconds=30)
        sender.replies.committed([answer], queued=False)
        for _ in range(500):
            if world.stand_in.messages(5006):
                break
            await asyncio.sleep(0.01)
        assert [m.text for m in world.stand_in.messages(5006)] == ["Куда поедем?"]
        assert not round_may_end.is_set(), "the round was still waiting"
        round_may_end.set()


class FixedCard:
    """A card whose text the test sets: enough to see posts, edits and merges."""

    def __init__(self) -> None:
        self.text = "Заявка 1: ожидает"
        self.message_id: int | None = None
        self.renders = 0

    async def render(self, session: AsyncSession, subject_id: int, i18n: I18n) -> CardView:
        self.renders += 1
        return CardView(
            text=self.text, markup=None, chat_id=GROUP, topic_id=None, message_id=self.message_id
        )

    async def posted(
        self, session: AsyncSession, subject_id: int, chat_id: int, message_id: int
    ) -> None:
        self.message_id = message_id or None


@pytest.fixture
def card() -> Any:
    fixed = FixedCard()
    register_card("test_card", CardRenderer(fixed.render, fixed.posted))
    yield fixed
    CARD_RENDERERS.pop("test_card", None)


async def refresh(world: World) -> None:
    async with world.sessions() as session, session.begin():
        await enqueue_card(session, kind="test_card", subject_id=1, chat_id=GROUP, topic_id=None)


async def test_card_posted_then_edited_in_place(world: World, card: FixedCard) -> None:
    await refresh(world)
    await delivered(world.sessions, world.sender)
    card.text = "Заявка 1: назначена машина"
    await refresh(world)
    await delivered(world.sessions, world.sender)
    shown = world.stand_in.messages(GROUP)
    assert len(shown) == 1
    assert shown[0].text == "Заявка 1: назначена машина" and len(shown[0].edits) == 1


async def test_not_modified_counts_as_done(world: World, card: FixedCard) -> None:
    await refresh(world)
    await delivered(world.sessions, world.sender)
    await refresh(world)  # nothing changed: Telegram answers "message is not modified"
    await delivered(world.sessions, world.sender)
    assert world.stand_in.errors("editMessageText")[0].status == 400
    rows = await outbox_rows(world.sessions)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert rows[1].last_error == "not modified"
    assert not world.stand_in.messages(GROUP)[0].edited


async def test_pending_refreshes_of_one_card_are_one_edit(world: World, card: FixedCard) -> None:
    await refresh(world)
    await delivered(world.sessions, world.sender)
    for state in ("взята", "предложено время", "назначена машина"):
        card.text = f"Заявка 1: {state}"
        await refresh(world)
    await delivered(world.sessions, world.sender)
    assert len(world.stand_in.calls("editMessageText")) == 1
    assert world.stand_in.messages(GROUP)[0].text == "Заявка 1: назначена машина"


async def test_a_deleted_card_is_posted_again(world: World, card: FixedCard) -> None:
    await refresh(world)
    await delivered(world.sessions, world.sender)
    card.message_id = 999  # the dispatcher deleted the card: Telegram can't find it
    card.text = "Заявка 1: взята"
    await refresh(world)
    await delivered(world.sessions, world.sender)
    assert [m.text for m in world.stand_in.messages(GROUP)] == [
        "Заявка 1: ожидает",
        "Заявка 1: взята",
    ]


async def test_blocked_rider_is_marked_and_dispatchers_asked_to_phone(world: World) -> None:
    rider = await person(world, 5005)
    async with world.sessions() as session, session.begin():
        ride = await add_ride(session, rider, card_chat_id=GROUP, card_message_id=None)
    world.stand_in.block(5005)
    await queue_sorry(world, 5005, ride_id=ride.id)
    await delivered(world.sessions, world.sender)
    async with world.sessions() as session:
        account = await session.scalar(select(Account).where(Account.telegram_id == 5005))
        assert account is not None and account.unreachable_since is not None
    notice = world.stand_in.messages(GROUP)
    assert len(notice) == 1
    assert "+77011234567" in notice[0].text and f"№{ride.id}" in notice[0].text
    assert "Позвоните" in notice[0].text  # the district's language: Russian

    # Further messages to them are not attempted, and dispatchers are not told twice.
    await queue_sorry(world, 5005)
    await delivered(world.sessions, world.sender)
    assert len(sends(world.stand_in, 5005)) == 1
    assert len(world.stand_in.messages(GROUP)) == 1
    assert (await outbox_rows(world.sessions))[-1].status == "dead"


async def test_blocked_representative_names_the_rider(world: World) -> None:
    world.stand_in.private_chat(5007, "Асан", language_code="kk")
    async with world.sessions() as session, session.begin():
        rider = await add_rider(session, None, name="Айша Асанова", district="tekeli")
        await link_representative(session, rider, 5007)
    world.stand_in.block(5007)
    await queue_sorry(world, 5007)
    await delivered(world.sessions, world.sender)
    (notice,) = world.stand_in.messages(GROUP_KK)
    assert "Айша Асанова" in notice.text and "Асан" in notice.text
    assert "қоңырау шалыңыз" in notice.text  # Tekeli's desk works in Kazakh


async def test_group_migrated_to_a_supergroup_is_followed(world: World) -> None:
    old, new = -4001, -1004001
    world.stand_in.group(old, "Диспетчеры", type="group")
    rider = await person(world, 5006)
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(District).where(District.id == "taldykorgan").values(chat_id=old)
        )
        ride = await add_ride(session, rider, card_chat_id=old, card_message_id=7)
        enqueue_message(session, chat_id=old, text="первое")
        enqueue_message(session, chat_id=old, text="второе")
    world.stand_in.migrate(old, new)
    await delivered(world.sessions, world.sender)
    assert [m.text for m in world.stand_in.messages(new)] == ["первое", "второе"]
    async with world.sessions() as session:
        district = await session.get(District, "taldykorgan")
        moved = await session.get(Ride, ride.id)
        assert district is not None and district.chat_id == new
        assert moved is not None and moved.card_chat_id == new
    assert {r.chat_id for r in await outbox_rows(world.sessions)} == {new}


# -- pace ---------------------------------------------------------------------------------------


async def test_private_chat_gets_a_short_burst_then_one_message_a_second(world: World) -> None:
    """A step's answer and its next question arrive together; a longer run is paced to 1/s,
    and the message after a burst waits one second, not the whole burst's window."""
    await person(world, 5008)
    async with world.sessions() as session, session.begin():
        for n in range(5):
            enqueue_message(session, chat_id=5008, text=f"сообщение {n}")
    await delivered(world.sessions, world.sender)
    times = [r.time for r in sends(world.stand_in, 5008)]
    assert len(times) == 5
    burst = world.sender.limits.private_burst
    assert burst == 3
    interval = world.sender.limits.private_interval
    assert interval == 1.0
    assert times[burst - 1] - times[0] < 0.5, "the first messages are not made to wait"
    # After the burst, one a second: in any stretch of T seconds at most burst + T messages.
    for k in range(burst, len(times)):
        assert times[k] - times[k - 1] >= interval * 0.95
    assert times[burst] - times[0] < interval * 1.5, "the fourth waits a second, not three"
    assert not world.stand_in.errors("sendMessage"), "Telegram never had to say slow down"


async def test_group_pace_is_a_sliding_window(world: World) -> None:
    """The real window is 20 a minute; compressed here so the test is quick."""
    world.sender.pace.limits = Limits(group_per_window=3, group_window=1.0, group_spacing=0.05)
    async with world.sessions() as session, session.begin():
        for n in range(7):
            enqueue_message(session, chat_id=GROUP, text=f"карточка {n}")
    await delivered(world.sessions, world.sender)
    times = [r.time for r in sends(world.stand_in, GROUP)]
    assert len(times) == 7
    for start in times:
        assert sum(1 for x in times if start <= x < start + 1.0) <= 3
    assert [m.text for m in world.stand_in.messages(GROUP)] == [f"карточка {n}" for n in range(7)]


def test_429s_in_several_chats_at_once_pause_everything() -> None:
    pace = Pace()
    assert not pace.throttled(5010, 2, now=100.0)
    # One chat's 429 pauses that chat only.
    assert pace.wait_time(5010, 100.0) == 2.0
    assert pace.wait_time(5013, 100.0) == 0.0
    assert not pace.throttled(5011, 2, now=100.3)
    # A third chat throttled within a second: the bot as a whole is over its limit.
    assert pace.throttled(5012, 2, now=100.5)
    assert pace.wait_time(5013, 100.5) == 2.0
    assert pace.wait_time(5013, 102.5) == 0.0


def test_a_call_still_in_flight_counts_until_it_is_answered() -> None:
    """A call whose request has not reached Telegram yet (its slot began, then a slow database
    read or a busy event loop held it) may arrive at any moment: it must keep its place in the
    overall window until it is answered, and then count from the answer."""
    pace = Pace(Limits(global_per_second=2))
    pace.record(5020, 0.0)
    pace.record(5021, 0.0)
    # 1.5 s on, neither call has been answered: a third may not start yet.
    assert pace.global_wait(1.5) > 0
    pace.completed(5020, 0.0, 1.6)
    pace.completed(5021, 0.0, 1.6)
    # Answered at 1.6 s: Telegram may have received them just before; the window runs from there.
    assert pace.global_wait(2.0) == pytest.approx(0.6)
    assert pace.global_wait(2.6) == 0.0


# -- claims -------------------------------------------------------------------------------------


async def test_two_senders_deliver_each_message_once(any_world: World) -> None:
    world = any_world
    users = list(range(5100, 5130))
    for user in users:
        await person(world, user)
    async with world.sessions() as session, session.begin():
        for user in users:
            for n in range(2):
                enqueue_message(session, chat_id=user, text=f"уведомление {n}")
    other = OutboxSender(
        world.sender.bot, world.sessions, world.i18n, f"other@{socket.gethostname()}:1"
    )
    async with sending(other):
        await delivered(world.sessions, world.sender)
    for user in users:
        assert [m.text for m in world.stand_in.messages(user)] == [
            "уведомление 0",
            "уведомление 1",
        ]


async def test_rows_of_a_killed_process_are_taken_back_at_once(any_world: World) -> None:
    world = any_world
    await person(world, 5020)
    await queue_sorry(world, 5020)
    dead_pid = 2**22 + 12345  # above any pid this host hands out
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage).values(
                status="sending",
                claimed_by=f"bot@{socket.gethostname()}:{dead_pid}",
                claimed_until=utcnow() + timedelta(minutes=5),
            )
        )
    started = time.monotonic()
    await delivered(world.sessions, world.sender)
    assert time.monotonic() - started < 5
    assert len(world.stand_in.messages(5020)) == 1


async def test_rows_of_a_live_process_elsewhere_are_left_alone(any_world: World) -> None:
    world = any_world
    await person(world, 5021)
    await queue_sorry(world, 5021)
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage).values(
                status="sending",
                claimed_by="bot@another-host:1",
                claimed_until=utcnow() + timedelta(minutes=5),
            )
        )
    assert await world.sender.run_once() == 0
    assert world.stand_in.messages(5021) == []


# -- replies and mentions -----------------------------------------------------------------------


async def test_escalation_replies_to_the_card_and_mentions_dispatchers(
    world: World, card: FixedCard
) -> None:
    rider = await person(world, 5030)
    await refresh(world)
    await delivered(world.sessions, world.sender)
    card_id = world.stand_in.messages(GROUP)[0].message_id
    async with world.sessions() as session, session.begin():
        ride = await add_ride(session, rider, card_chat_id=GROUP, card_message_id=card_id)
        row = enqueue_message(
            session, chat_id=GROUP, text="Заявка без ответа", ride_id=ride.id, reply_to_card=True
        )
        row.payload = {
            **row.payload,
            "mentions": [{"telegram_id": i, "name": n} for i, n in DISPATCHERS],
        }
    await delivered(world.sessions, world.sender)
    reply = world.stand_in.messages(GROUP)[-1]
    assert reply.reply_to is not None and reply.reply_to.message_id == card_id
    assert reply.text.endswith("Айгүл, Марат, Светлана")
    mentioned = [e["user"]["id"] for e in reply.entities if e["type"] == "text_mention"]
    assert mentioned == [9001, 9002, 9003]
    for entity, (_, name) in zip(reply.entities, DISPATCHERS, strict=True):
        utf16 = reply.text.encode("utf-16-le")
        start, length = entity["offset"] * 2, entity["length"] * 2
        assert utf16[start : start + length].decode("utf-16-le") == name


# -- a step's own answers (bot.context.Outbox) ---------------------------------------------------


async def test_an_edit_that_changes_nothing_or_finds_no_message_is_done(world: World) -> None:
    """A replayed step edits a message to what it already shows, or one the person deleted:
    each is an outcome, not a failure, and nothing is retried or given up."""
    from aiogram.utils.keyboard import InlineKeyboardBuilder

    from bot.context import Outbox

    await person(world, 5010)
    buttons = InlineKeyboardBuilder()
    buttons.button(text="3 декабря", callback_data="day:3")
    markup = buttons.as_markup()
    async with world.sessions() as session, session.begin():
        Outbox(session).send(5010, "Выберите день.", markup)
    await delivered(world.sessions, world.sender)
    (shown,) = world.stand_in.messages(5010)
    async with world.sessions() as session, session.begin():
        outbox = Outbox(session)
        outbox.edit(5010, shown.message_id, "Дата: 3 декабря")
        outbox.edit(5010, shown.message_id, "Дата: 3 декабря")  # the replay
        outbox.edit(5010, 999_999, "Дата: 4 декабря")  # a message she deleted
    await delivered(world.sessions, world.sender)
    rows = await outbox_rows(world.sessions)
    assert [r.status for r in rows] == ["sent"] * 4
    assert "not modified" in (rows[2].last_error or "")
    assert "not found" in (rows[3].last_error or "")
    assert all(r.attempts == 1 for r in rows), "nothing was retried"
    now = world.stand_in.message(5010, shown.message_id)
    assert now is not None and now.text == "Дата: 3 декабря" and not now.buttons


async def test_a_step_can_change_only_the_buttons(world: World) -> None:
    from aiogram.utils.keyboard import InlineKeyboardBuilder

    from bot.context import Outbox

    await person(world, 5011)
    first = InlineKeyboardBuilder()
    first.button(text="Декабрь", callback_data="m:12")
    second = InlineKeyboardBuilder()
    second.button(text="Январь", callback_data="m:1")
    async with world.sessions() as session, session.begin():
        Outbox(session).send(5011, "Выберите день в календаре.", first.as_markup())
    await delivered(world.sessions, world.sender)
    (shown,) = world.stand_in.messages(5011)
    async with world.sessions() as session, session.begin():
        Outbox(session).edit(5011, shown.message_id, None, second.as_markup())
    await delivered(world.sessions, world.sender)
    now = world.stand_in.message(5011, shown.message_id)
    assert now is not None and now.text == "Выберите день в календаре."
    assert [b["text"] for row in now.buttons for b in row] == ["Январь"]


# -- a pickup given as a location pin (B15) -----------------------------------------------------
# The card carries a map link, and when the card is first posted the pin itself follows as a
# reply to it, so a dispatcher opens it with one tap.

LAT, LON = 45.0156, 78.3739


async def post_card(world: World, **values: object) -> int:
    async with world.sessions() as session, session.begin():
        rider = await add_rider(session, None)
        ride = await add_ride(session, rider, **values)
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=GROUP,
            topic_id=None,
            ride_id=ride.id,
        )
        ride_id = ride.id
    await delivered(world.sessions, world.sender)
    return ride_id


async def test_a_pin_pickup_gets_a_map_link_and_the_pin_on_the_card(world: World) -> None:
    ride_id = await post_card(world, pickup_lat=LAT, pickup_lon=LON)
    card, pin = world.stand_in.messages(GROUP)
    assert "На карте: https://maps.google.com/?q=45.01560,78.37390" in card.text
    assert pin.extra["location"]["latitude"] == LAT
    assert pin.extra["location"]["longitude"] == LON
    assert pin.reply_to is not None and pin.reply_to.message_id == card.message_id
    # A later refresh of the card edits it; the pin is not sent again.
    async with world.sessions() as session, session.begin():
        ride = await session.scalar(select(Ride).where(Ride.id == ride_id))
        assert ride is not None and ride.card_message_id == card.message_id
        await enqueue_card(
            session, kind="ride_card", subject_id=ride_id, chat_id=GROUP, topic_id=None
        )
    await delivered(world.sessions, world.sender)
    assert len(world.stand_in.messages(GROUP)) == 2


async def test_a_typed_address_gets_no_pin(world: World) -> None:
    await post_card(world)
    (card,) = world.stand_in.messages(GROUP)
    assert "На карте" not in card.text
