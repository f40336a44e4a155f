"""The dispatcher side of issue 13: presses on a ride card in the group, fed through the real
Dispatcher with no HTTP; what people would read is asserted on the queued outbox rows and the
button's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import select, update

from bot.callbacks.dispatch import Act, RideAct
from models import OutboxMessage, Rider, Vehicle
from tests.factories import make_account, make_rider
from tests.fast.desk_steps import (
    AIGUL,
    GROUP,
    NURLAN,
    RIDER,
    TEKELI_GROUP,
    S,
    first_vehicle,
    group_press,
    press,
    rider_texts,
    seed_ride,
    status_of,
    texts_for,
)
from tests.fast.harness import FastBot, fast_bot


async def test_car_on_its_way_two_days_ahead_is_refused_and_the_rider_is_told_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(
            fast,
            status=S.SCHEDULED,
            vehicle_id=await first_vehicle(fast),
            pickup_at=datetime.now(UTC) + timedelta(days=2),
        )
        answer = await press(fast, ride, Act.EN_ROUTE)
        assert f"Поездка №{ride.id}" in answer and "ещё рано" in answer
        assert await status_of(fast, ride.id) == S.SCHEDULED
        answer = await press(fast, ride, Act.ARRIVED)
        assert "ещё рано" in answer
        assert await status_of(fast, ride.id) == S.SCHEDULED
        assert not any("выехала" in t or "ждёт" in t for t in await rider_texts(fast))


async def test_car_on_its_way_within_the_hour_is_told_to_the_rider(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(
            fast,
            status=S.SCHEDULED,
            vehicle_id=await first_vehicle(fast),
            pickup_at=datetime.now(UTC) + timedelta(minutes=40),
        )
        await press(fast, ride, Act.EN_ROUTE)
        assert await status_of(fast, ride.id) == S.EN_ROUTE
        assert any("машина выехала к вам" in t for t in await rider_texts(fast))


async def test_cancelling_the_way_back_asks_about_the_outbound_and_tells_the_rider(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        car = await first_vehicle(fast)
        pickup = datetime.now(UTC) + timedelta(days=2)
        there = await seed_ride(fast, status=S.SCHEDULED, vehicle_id=car, pickup_at=pickup)
        back = await seed_ride(
            fast,
            status=S.SCHEDULED,
            vehicle_id=car,
            pickup_at=pickup + timedelta(hours=3),
            return_of=there.id,
        )
        await press(fast, back, Act.CANCEL_REASON, 2)  # the car broke down
        assert await status_of(fast, back.id) == S.CANCELLED
        assert await status_of(fast, there.id) == S.SCHEDULED  # the desk decides, not the bot
        async with fast.app.sessions() as session:
            rows = list(
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.chat_id == GROUP, OutboxMessage.kind == "reply"
                    )
                )
            )
        asked = [r for r in rows if r.ride_id == there.id]
        assert len(asked) == 1  # a new message, replying to the outbound leg's card
        group = await texts_for(fast, GROUP)
        question = next(t for t in group if f"№{back.id}" in t and "в силе" in t)
        assert f"№{there.id}" in question and "отмените её на этой карточке" in question
        texts = await rider_texts(fast)
        assert any(f"отменил поездку №{back.id}" in t for t in texts)
        stands = next(t for t in texts if f"№{there.id}" in t and "остаётся в силе" in t)
        assert "«Мои поездки»" in stands


async def test_a_one_way_ride_refused_asks_nothing_more(sqlite_url: str, tmp_path: Path) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(fast, status=S.REQUESTED)
        await press(fast, ride, Act.REJECT_REASON, 0)
        assert await status_of(fast, ride.id) == S.REJECTED
        assert not any("в силе" in t for t in await texts_for(fast, GROUP))
        assert not any("в силе" in t for t in await rider_texts(fast))


async def test_a_no_show_gives_the_desk_phone(sqlite_url: str, tmp_path: Path) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(
            fast,
            status=S.ARRIVED,
            vehicle_id=await first_vehicle(fast),
            pickup_at=datetime.now(UTC) - timedelta(minutes=10),
        )
        await press(fast, ride, Act.NO_SHOW_CONFIRM)
        assert await status_of(fast, ride.id) == S.NO_SHOW
        no_show = next(t for t in await rider_texts(fast) if "никто не вышел" in t)
        assert no_show.endswith("позвоните диспетчеру: +7 728 224 11 22.")


async def test_a_district_without_cars_says_so(sqlite_url: str, tmp_path: Path) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        async with fast.app.sessions() as session:
            await session.execute(
                update(Vehicle).where(Vehicle.district_id == "tekeli").values(active=False)
            )
            await session.commit()
        ride = await seed_ride(fast, district="tekeli", status=S.TAKEN)
        answer = await press(fast, ride, Act.VEHICLES, user=NURLAN)
        assert "ботта әлі бірде-бір көлігі жоқ" in answer
        assert "сәйкес келмейді" not in answer


def group_text(fast: FastBot, user_id: int, text: str, reply_to: int | None = None) -> Any:
    message: dict[str, Any] = {
        "message_id": next(fast.message_ids),
        "date": 1_780_000_000,
        "chat": {"id": GROUP, "type": "supergroup", "title": "Диспетчеры"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Айгүл"},
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = {
            "message_id": reply_to,
            "date": 1_780_000_000,
            "chat": {"id": GROUP, "type": "supergroup", "title": "Диспетчеры"},
            "from": {"id": 123456, "is_bot": True, "first_name": "Invataxi"},
            "text": "…",
        }
    return {"update_id": next(fast.ids), "message": message}


async def test_other_reason_is_taken_as_a_plain_message(sqlite_url: str, tmp_path: Path) -> None:
    from bot.services.dispatch import REJECT_REASONS

    async with fast_bot(sqlite_url, tmp_path) as fast:
        fast.app.dp["group_messages_seen"] = True  # privacy mode off, as getMe said at start
        ride = await seed_ride(fast, status=S.REQUESTED)
        hint = await press(fast, ride, Act.REJECT_REASON, len(REJECT_REASONS))
        assert "сообщением в этот чат" in hint
        # Someone else's chatter, replying to another message, is not the reason.
        await fast.feed(group_text(fast, AIGUL, "Коллеги, кто на смене?", reply_to=3))
        assert await status_of(fast, ride.id) == S.REQUESTED
        await fast.feed(group_text(fast, AIGUL, "Адрес за чертой города"))
        assert await status_of(fast, ride.id) == S.REJECTED
        refused = next(t for t in await rider_texts(fast) if "отклон" in t)
        assert "Адрес за чертой города" in refused


async def test_the_riders_answer_to_another_time_is_a_new_message_on_the_card(
    sqlite_url: str, tmp_path: Path
) -> None:
    from bot.callbacks.dispatch import ProposalAnswer

    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(
            fast,
            status=S.TIME_PROPOSED,
            proposed_at=datetime.now(UTC) + timedelta(days=1, hours=2),
        )
        await fast.feed(fast.press(RIDER, ProposalAnswer(ride=ride.id, accept=True).pack()))
        assert await status_of(fast, ride.id) == S.TAKEN
        async with fast.app.sessions() as session:
            replies = list(
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.chat_id == GROUP,
                        OutboxMessage.kind == "reply",
                        OutboxMessage.ride_id == ride.id,
                    )
                )
            )
        assert len(replies) == 1
        (said,) = [t for t in await texts_for(fast, GROUP) if f"№{ride.id}" in t]
        assert "новое время принял пассажир" in said and "Назначьте машину" in said


async def test_a_riders_cancellation_tells_the_desk_the_car_is_free(
    sqlite_url: str, tmp_path: Path
) -> None:
    from bot.services.rides import Action, Actor, change

    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(fast, status=S.SCHEDULED, vehicle_id=await first_vehicle(fast))
        async with fast.app.sessions() as session:
            await change(session, ride.id, Action.RIDER_CANCEL, Actor("rider", RIDER, "Анна"))
            await session.commit()
        (said,) = [t for t in await texts_for(fast, GROUP) if f"№{ride.id}" in t]
        assert said.startswith(f"Поездку №{ride.id}") and "отменил пассажир: Анна" in said
        assert "свободна" in said


async def test_with_privacy_mode_on_the_hint_asks_for_a_reply(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Telegram would not pass plain messages on: the hint must not promise they count."""
    from bot.services.dispatch import REJECT_REASONS

    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(fast, status=S.REQUESTED)
        hint = await press(fast, ride, Act.REJECT_REASON, len(REJECT_REASONS))
        assert hint == "Напишите причину словами — ответом на эту карточку."


async def test_a_stale_card_button_is_answered_once(sqlite_url: str, tmp_path: Path) -> None:
    """Telegram takes one answer per press: a second would fail (B17, the group side)."""
    async with fast_bot(sqlite_url, tmp_path) as fast:
        ride = await seed_ride(fast, status=S.REQUESTED)
        data = RideAct(ride=ride.id, act=Act.TAKE).pack()
        old_card = (ride.card_message_id or 0) - 50  # a card posted before, since replaced
        for user, chat in ((AIGUL, GROUP), (NURLAN, GROUP), (AIGUL, TEKELI_GROUP)):
            before = len(fast.api.calls)
            await fast.feed(group_press(fast, user, chat, old_card, data))
            answers = [c for c in fast.api.calls[before:] if isinstance(c, AnswerCallbackQuery)]
            assert len(answers) == 1 and answers[0].show_alert
        assert await status_of(fast, ride.id) == S.REQUESTED


async def approve_toast(fast: FastBot, *, own: bool, representative: bool) -> str:
    from bot.callbacks.registration import VerifyAction, VerifyPress
    from models import Verification

    async with fast.app.sessions() as session:
        account = await make_account(session, RIDER, name="Анна") if own else None
        rep = await make_account(session, 5002, name="Ольга") if representative else None
        rider = await make_rider(session, account=account, representative=rep)
        rider.verification = "pending"
        check = Verification(rider_id=rider.id, district_id="taldykorgan", card_chat_id=GROUP)
        session.add(check)
        await session.commit()
        check_id = check.id
    data = VerifyPress(verification=check_id, action=VerifyAction.APPROVE).pack()
    await fast.feed(group_press(fast, AIGUL, GROUP, 600, data))
    answers = [c for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]
    return answers[-1].text or ""


@pytest.mark.parametrize(
    ("own", "toast"),
    [
        (False, "Одобрено. Представителю пассажира сообщено."),
        (True, "Одобрено. Пассажиру сообщено."),
    ],
)
async def test_approval_says_who_was_told(
    sqlite_url: str, tmp_path: Path, own: bool, toast: str
) -> None:
    """A child or an elderly parent without Telegram was not told: their relative was."""
    async with fast_bot(sqlite_url, tmp_path) as fast:
        assert await approve_toast(fast, own=own, representative=True) == toast


async def test_ride_details_show_the_car_and_the_drivers_phone(
    sqlite_url: str, tmp_path: Path
) -> None:
    from bot.callbacks.booking import RideAction, RidePress

    async with fast_bot(sqlite_url, tmp_path) as fast:
        car = await first_vehicle(fast)
        assigned = await seed_ride(fast, status=S.SCHEDULED, vehicle_id=car)
        waiting = await seed_ride(fast, status=S.REQUESTED)
        for ride in (assigned, waiting):
            data = RidePress(action=RideAction.OPEN, ride_id=ride.id).pack()
            await fast.feed(fast.press(RIDER, data))
        said = [s.text or "" for s in await fast.said(RIDER)]
        shown = next(t for t in said if t.startswith(f"Поездка №{assigned.id}"))
        async with fast.app.sessions() as session:
            vehicle = await session.get(Vehicle, car)
            assert vehicle is not None
        assert f"госномер {vehicle.plate}" in shown
        assert f"Водитель: {vehicle.driver_name}, {vehicle.driver_phone}." in shown
        other = next(t for t in said if t.startswith(f"Поездка №{waiting.id}"))
        assert "Водитель" not in other


async def test_a_profile_rejected_with_a_plain_message(sqlite_url: str, tmp_path: Path) -> None:
    from bot.callbacks.registration import VerifyAction, VerifyPress
    from models import Verification

    async with fast_bot(sqlite_url, tmp_path) as fast:
        fast.app.dp["group_messages_seen"] = True
        async with fast.app.sessions() as session:
            account = await make_account(session, RIDER, name="Анна")
            rider = await make_rider(session, account=account)
            rider.verification = "pending"
            check = Verification(rider_id=rider.id, district_id="taldykorgan", card_chat_id=GROUP)
            session.add(check)
            await session.commit()
            check_id, rider_id = check.id, rider.id
        typed = VerifyPress(verification=check_id, action=VerifyAction.TYPED).pack()
        await fast.feed(group_press(fast, AIGUL, GROUP, 600, typed))
        answers = [c for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]
        assert "сообщением в этот чат" in (answers[-1].text or "")
        await fast.feed(group_text(fast, AIGUL, "Фото заключения ВКК нечитаемое"))
        async with fast.app.sessions() as session:
            rider_now = await session.get(Rider, rider_id)
            assert rider_now is not None and rider_now.verification == "rejected"
        (told,) = await rider_texts(fast)
        assert "Фото заключения ВКК нечитаемое" in told
