"""The dispatcher's side in the fast tier: the desk's people, a ride with its card, a press on
the card, and what the rider is told; shared by the fast tests."""

from __future__ import annotations

import itertools
from typing import Any

from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import select

from bot.callbacks.dispatch import Act, RideAct
from bot.delivery import shown_params
from models import OutboxMessage, Ride, Rider, RideStatus, Vehicle
from tests.factories import make_account, make_ride, make_rider
from tests.fast.harness import FastBot

GROUP = -1001000000001
TEKELI_GROUP = -1001000000002
AIGUL = 9001  # a Taldykorgan dispatcher in the test districts file
NURLAN = 9101  # the Tekeli dispatcher
RIDER = 5001
CARD_IDS = itertools.count(700)
S = RideStatus


def group_press(fast: FastBot, user_id: int, chat_id: int, message_id: int, data: str) -> Any:
    return fast.press(user_id, data, message_id, group=chat_id, name="Айгүл")


async def press(fast: FastBot, ride: Ride, act: Act, arg: int = 0, *, user: int = AIGUL) -> str:
    """Press a button on the ride's card; returns what the button's answer said."""
    data = RideAct(ride=ride.id, act=act, arg=arg).pack()
    chat = ride.card_chat_id or GROUP
    await fast.feed(group_press(fast, user, chat, ride.card_message_id or 0, data))
    answers = [c for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]
    return answers[-1].text or "" if answers else ""


async def seed_ride(fast: FastBot, *, district: str = "taldykorgan", **values: Any) -> Ride:
    async with fast.app.sessions() as session:
        account = await make_account(session, RIDER, language="ru", name="Анна")
        rider = await session.scalar(select(Rider).where(Rider.account_id == account.id))
        if rider is None:
            rider = await make_rider(session, account=account, district_id=district)
        chat = GROUP if district == "taldykorgan" else TEKELI_GROUP
        ride = await make_ride(
            session,
            rider,
            post_card=False,
            card_chat_id=chat,
            card_message_id=next(CARD_IDS),
            **values,
        )
        await session.commit()
        return ride


async def status_of(fast: FastBot, ride_id: int) -> str:
    async with fast.app.sessions() as session:
        ride = await session.get(Ride, ride_id)
        assert ride is not None
        return ride.status


async def texts_for(fast: FastBot, chat_id: int) -> list[str]:
    """New messages queued for a chat, as the sender will render them (times local, listed
    reasons and button names translated)."""
    async with fast.app.sessions() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id, OutboxMessage.kind.in_(("send", "reply")))
                .order_by(OutboxMessage.id)
            )
        )
    out = []
    for row in rows:
        payload = row.payload
        if "msgid" not in payload:
            out.append(str(payload.get("text", "")))
            continue
        t = fast.app.i18n.translator(payload.get("lang") or "kk")
        out.append(t(payload["msgid"], **shown_params(t, payload.get("params", {}))))
    return out


async def rider_texts(fast: FastBot) -> list[str]:
    return await texts_for(fast, RIDER)


async def first_vehicle(fast: FastBot) -> int:
    async with fast.app.sessions() as session:
        vehicle = await session.scalar(
            Vehicle.__table__.select().where(Vehicle.district_id == "taldykorgan").limit(1)
        )
        assert vehicle is not None
        return int(vehicle)
