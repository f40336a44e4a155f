"""The standing order's conversation, the rider's changes from /rides and the desk's typed
answers, each with a typed model over the FSM data."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class Regular(StatesGroup):
    rider = State()
    weekdays = State()
    time = State()
    return_trip = State()
    return_time = State()
    pickup = State()
    pickup_details = State()
    destination = State()
    purpose = State()
    first_date = State()
    end_date = State()
    party = State()
    wheelchair = State()
    comment = State()
    summary = State()


class OrderData(BaseModel):
    """The standing order as answered so far; None means "not asked yet".

    `editing` is set once the summary was reached: each answer then leads back to it.
    `key` belongs to the summary on screen, so an older summary's buttons do nothing.
    `latest_end` is the latest end date offered as a button after a refused one.
    """

    rider_id: int | None = None
    several_riders: bool = False
    weekdays: list[int] | None = None
    pickup_time: time | None = None
    want_return: bool | None = None
    return_time: time | None = None
    pickup_address: str | None = None
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    destination: str | None = None
    purpose: str | None = None
    first_date: date | None = None
    end_date: date | None = None
    latest_end: date | None = None
    assistant: bool | None = None
    companions: int | None = None
    wheelchair: bool | None = None
    comment: str | None = None
    key: str | None = None
    editing: bool = False


class MyOrder(StatesGroup):
    """The rider changes a running standing order from /rides, one question at a time."""

    cancel_date = State()
    pause_start = State()
    pause_end = State()
    change_from = State()
    change_pickup = State()
    change_back = State()


class MyOrderData(BaseModel):
    order_id: int
    start: date | None = None
    pickup: time | None = None


class OrderDesk(StatesGroup):
    """A dispatcher types another time or a reason for a standing order, as a plain message."""

    proposed_time = State()
    reject_reason = State()


class OrderDeskData(BaseModel):
    order_id: int
    card_message_id: int


async def load_order(state: FSMContext) -> OrderData:
    return OrderData.model_validate(await state.get_data())


async def save_order(state: FSMContext, data: OrderData) -> None:
    values: dict[str, Any] = data.model_dump(mode="json", exclude_defaults=True)
    await state.set_data(values)
