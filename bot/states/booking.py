"""The booking conversation and the "my rides" cancellation, with a typed model over FSM data."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class Booking(StatesGroup):
    rider = State()
    pickup = State()
    pickup_details = State()
    destination = State()
    purpose = State()
    date = State()
    time = State()
    return_trip = State()
    return_time = State()
    party = State()
    wheelchair = State()
    comment = State()
    summary = State()


class MyRides(StatesGroup):
    cancel_reason = State()
    other_leg = State()  # one leg of a round trip was cancelled: and the other one?


class BookingData(BaseModel):
    """The request as answered so far; None means "not asked yet".

    `editing` is set once the summary was reached (or the request was prefilled from an earlier
    ride): each answer then leads to the next unanswered question, or back to the summary.
    `request_key` belongs to the summary on screen: confirming it twice books once.
    """

    rider_id: int | None = None
    several_riders: bool = False
    pickup_address: str | None = None
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    destination: str | None = None
    purpose: str | None = None
    day: date | None = None
    pickup_time: time | None = None
    want_return: bool | None = None
    return_time: time | None = None
    assistant: bool | None = None
    companions: int | None = None
    wheelchair: bool | None = None
    comment: str | None = None
    return_of: int | None = None
    request_key: str | None = None
    editing: bool = False


class CancelData(BaseModel):
    """The ride being cancelled; at the other-leg question, that leg and the reason given."""

    ride_id: int
    why: str = ""


async def load_booking(state: FSMContext) -> BookingData:
    return BookingData.model_validate(await state.get_data())


async def save_booking(state: FSMContext, data: BookingData) -> None:
    values: dict[str, Any] = data.model_dump(mode="json", exclude_defaults=True)
    await state.set_data(values)
