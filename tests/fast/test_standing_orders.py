"""Standing orders' buttons refuse whoever they don't belong to, through the real Dispatcher.

A stranger who forges the rider's buttons (end the order, take the offered time) and a group
member who is not a dispatcher pressing the desk's card are told no, and the order is as it was.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import select

from bot.callbacks.standing_orders import (
    MyOrderAct,
    MyStandingOrder,
    OrderAct,
    StandingOrderAct,
    StandingOrderAnswer,
)
from bot.services import standing_orders as so
from models import OrderStatus, StandingOrder
from tests.factories import make_account, make_rider
from tests.fast.harness import FastBot, fast_bot

OWNER, STRANGER, OUTSIDER = 7101, 7109, 8101
GROUP = -1001000000001


async def pending_order(fast: FastBot) -> int:
    async with fast.app.sessions() as session:
        own = await make_account(session, OWNER, language="ru", name="Гульнара")
        await make_account(session, STRANGER, language="kk", name="Бөгде")
        rider = await make_rider(session, account=own, name="Гульнара Сейтова")
        rider.category = "group1_mobility"
        draft = so.OrderDraft(
            rider_id=rider.id,
            weekdays=frozenset({1, 3, 5}),
            pickup_time=time(9, 0),
            pickup_address="ул. Абая, 1",
            destination="Областная больница",
            purpose="procedure",
            first_date=date(2026, 12, 7),
            end_date=date(2027, 1, 6),
        )
        result = await so.create_order(
            session, own, draft, fast.app.clock.now(), tz=fast.app.settings.tz
        )
        assert result.ok and result.order is not None
        order = result.order
        # As if the card had been posted: the desk's presses are checked against it.
        order.card_chat_id, order.card_message_id = GROUP, 50
        await session.commit()
        return order.id


def group_press(fast: FastBot, user_id: int, data: str) -> dict[str, Any]:
    return fast.press(user_id, data, group=GROUP)


def toasts(fast: FastBot) -> list[str]:
    return [str(c.text) for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]


async def status_of(fast: FastBot, order_id: int) -> str:
    async with fast.app.sessions() as session:
        status = await session.scalar(
            select(StandingOrder.status).where(StandingOrder.id == order_id)
        )
    return str(status)


async def test_forged_buttons_of_someone_elses_order_change_nothing(
    migrated_db: str, tmp_path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        order_id = await pending_order(fast)
        kk = fast.app.i18n.translator("kk")
        end = MyStandingOrder(order=order_id, act=MyOrderAct.END_CONFIRM).pack()
        await fast.feed(fast.press(STRANGER, end))
        take = StandingOrderAnswer(order=order_id, accept=True).pack()
        await fast.feed(fast.press(STRANGER, take))
        assert toasts(fast) == [so.ORDER_NOT_FOUND.render(kk)] * 2
        assert await status_of(fast, order_id) == OrderStatus.PENDING.value

        approve = StandingOrderAct(order=order_id, act=OrderAct.APPROVE).pack()
        await fast.feed(group_press(fast, OUTSIDER, approve))
        ru = fast.app.i18n.translator("ru")  # the district's desk writes Russian
        assert toasts(fast)[-1] == ru("Only this district's dispatchers can do this.")
        assert await status_of(fast, order_id) == OrderStatus.PENDING.value

        # The district's dispatcher, pressing the same button on the card, approves it.
        await fast.feed(group_press(fast, 9001, approve))
        assert toasts(fast)[-1] == ru("Standing order №{number} is approved.", number=order_id)
        assert await status_of(fast, order_id) == OrderStatus.APPROVED.value
