"""Conversations of the dispatcher desk and of the rider's answers, one state per question."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel


class DeskInput(StatesGroup):
    """A dispatcher types something as a reply to a ride's card (per person, per chat/topic)."""

    reject_reason = State()
    cancel_reason = State()
    proposed_time = State()


class RideFeedback(StatesGroup):
    """After rating a ride, the rider may add a comment."""

    comment = State()


class DeskInputData(BaseModel):
    """What a dispatcher's typed answer is for: the ride and the card they must reply to."""

    ride_id: int
    card_message_id: int


class FeedbackData(BaseModel):
    ride_id: int
