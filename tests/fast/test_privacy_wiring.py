"""Issue 12, phase 2: the personal-data and abuse services wired into the handlers, fed
through the real Dispatcher; what people would read is asserted on the queued outbox rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.callbacks.common import LanguageChoice
from bot.callbacks.dispatch import Act
from bot.callbacks.registration import ProfileAction, ProfilePress
from bot.i18n import Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import BACK
from bot.services import limits
from bot.services import registration as reg
from models import AuditLog, ConversationState, OutboxMessage
from tests.factories import account, register, rider_input, valid_iin
from tests.fast.harness import FastBot, Said, fast_bot
from tests.fast.test_dispatcher_side import (
    GROUP,
    S,
    first_vehicle,
    press,
    rider_texts,
    seed_ride,
)

SPAMMER = 6601


async def rows_for(fast, chat_id: int) -> int:
    async with fast.app.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id)
            )
            or 0
        )


async def test_a_storm_of_200_messages_gets_a_few_answers_and_a_ride_notice_still_goes_out(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path, throttle_burst=10, throttle_per_minute=30) as fast:
        for n in range(200):
            await fast.feed(fast.text(SPAMMER, f"привет {n}"))
        answers = await fast.said(SPAMMER)
        assert 1 <= len(answers) <= 15
        assert any("тым көп хабарлама" in (a.text or "") for a in answers)
        ride = await seed_ride(
            fast,
            status=S.SCHEDULED,
            vehicle_id=await first_vehicle(fast),
            pickup_at=datetime.now(UTC) + timedelta(minutes=40),
        )
        await press(fast, ride, Act.EN_ROUTE)
        assert any("машина выехала к вам" in t for t in await rider_texts(fast))
        # Nothing of the storm's is left waiting in the queue ahead of the ride's news.
        assert await rows_for(fast, SPAMMER) == len(answers)


# -- registration: the IIN oracle, the limits, nothing of the IIN in the draft in clear ---------

IIN = "900101300017"
OTHER_IIN = valid_iin("85031540001")


def ru(fast: FastBot) -> Translator:
    return fast.app.i18n.translator("ru")


async def step(fast: FastBot, user: int, text: str) -> list[Said]:
    seen = len(await fast.said(user))
    await fast.feed(fast.text(user, text))
    return (await fast.said(user))[seen:]


async def to_the_iin_question(fast: FastBot, user: int, agree: str = kb.AGREE_SELF) -> None:
    t = ru(fast)
    await fast.feed(fast.text(user, "/start"))
    await fast.feed(fast.press(user, LanguageChoice(lang="ru").pack()))
    await step(fast, user, t(agree))
    if agree == kb.AGREE_OTHER:
        said = await step(fast, user, t(reg.RELATIONSHIP_LABELS["parent"]))
    said = await step(fast, user, "Иван Петров")
    said = await step(fast, user, "87011234567")
    assert said[-1].text == t("Which city or district do you live in?"), said
    said = await step(fast, user, "город Талдыкорган")
    assert said[-1].text and "ИИН" in said[-1].text, said


async def to_the_summary(fast: FastBot, user: int, iin: str) -> list[Said]:
    t = ru(fast)
    said = await step(fast, user, iin)
    assert said[-1].text and said[-1].text.startswith(
        t(
            "Home address, where the car picks up. If you are at that home now, you can send "
            "a location pin instead."
        )
    ), said
    await step(fast, user, "Абай көшесі, 12")
    await step(fast, user, t(reg.CATEGORY_LABELS["group1_mobility"]))
    await step(fast, user, "123/45")
    await step(fast, user, "31.12.2030")
    said = await step(fast, user, t(kb.NO_NEEDS))
    assert any(s.text and s.text.startswith(t("Please check the profile:")) for s in said), said
    return said


async def draft_data(fast: FastBot, user: int) -> dict[str, object]:
    async with fast.app.sessions() as session:
        row = await session.scalar(
            select(ConversationState).where(ConversationState.key.like(f"%{user}%"))
        )
        return dict(row.data or {}) if row is not None else {}


async def test_a_registered_iin_is_answered_like_any_other_and_the_desk_is_asked_to_call(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t, user = ru(fast), 6611
        async with fast.app.sessions() as session:
            owner = await account(session, 6610)
            await register(session, owner, rider_input(IIN))
            await session.commit()
        await to_the_iin_question(fast, user)
        said = await to_the_summary(fast, user, IIN)
        summary = next(s.text for s in said if s.text and "ИИН" in s.text)
        assert "••••••••0017" in summary and "01.01.1990" in summary
        # The draft waiting in the conversation state has neither in clear.
        data = await draft_data(fast, user)
        assert data.get("iin_encrypted") and "iin_last4" not in data
        assert "birth_date" not in data and "0017" not in str(data)
        said = await step(fast, user, t(kb.CONFIRM))
        answer = said[-1].text or ""
        assert answer.startswith("Спасибо. Чтобы завершить регистрацию, вам позвонит диспетчер.")
        assert "зарегистрирован" not in answer
        desk = [s.text or "" for s in await fast.said(GROUP)]
        assert any("профиль с таким же ИИН уже есть" in d and "+77011234567" in d for d in desk)
        assert await draft_data(fast, user) == {}


async def test_iins_typed_past_the_days_tries_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        user = 6612
        await to_the_iin_question(fast, user)
        said = await step(fast, user, OTHER_IIN)
        assert "ИИН" not in (said[-1].text or "")  # on to the address
        async with fast.app.sessions() as session:
            person = await account(session, user)
            # Four more tries today (the limit is five), as if typed and gone back from.
            for _ in range(4):
                session.add(AuditLog(action="iin_tried", subject=f"account:{person.id}"))
            await session.commit()
        await step(fast, user, ru(fast)(BACK))
        said = await step(fast, user, IIN)
        assert any(ru(fast)(limits.TOO_MANY_IIN_TRIES) in (s.text or "") for s in said), said


async def test_registering_others_stops_at_the_pending_limit(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t, user = ru(fast), 6613
        async with fast.app.sessions() as session:
            parent = await account(session, user)
            for n, iin in enumerate((OTHER_IIN, IIN)):
                await register(
                    session,
                    parent,
                    rider_input(iin, name=f"Ребёнок {n}"),
                    reg.Relationship(kind="parent"),
                )
            await session.commit()
        await fast.feed(fast.press(user, ProfilePress(action=ProfileAction.REGISTER_OTHER).pack()))
        said = await fast.said(user)
        assert said[-1].text == t(limits.TOO_MANY_PENDING, limit=2)
