"""Onboarding, the rider-profile conversation and its edits, and the dispatcher's typed reason.

`Draft` is the typed model over the conversation's data: every step reads and writes it, never
loose dict keys. The IIN is kept in it only sealed (encrypted, hashed, last four digits), so a
half-finished conversation in the database or Redis holds no IIN in clear.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from pydantic import BaseModel, ConfigDict, Field


class Onboarding(StatesGroup):
    consent = State()
    role = State()


class Registration(StatesGroup):
    relationship = State()
    poa_number = State()
    poa_expiry = State()
    rep_name = State()
    rep_phone = State()
    full_name = State()
    phone = State()
    iin = State()
    birth_date = State()
    district = State()
    address = State()
    address_text = State()
    category = State()
    centre = State()
    group = State()
    vkk_number = State()
    vkk_expiry = State()
    needs = State()
    companions = State()
    summary = State()


class Invitation(StatesGroup):
    """A relative who opened an invite link before choosing a language or giving consent."""

    pending = State()


class VerificationReason(StatesGroup):
    """A dispatcher asked to reply with the reason for rejecting a profile."""

    typed = State()


class Draft(BaseModel):
    """What the registration (or an edit of one part of a profile) has collected so far."""

    model_config = ConfigDict(extra="ignore")

    mode: Literal["new", "edit"] = "new"
    for_other: bool = False
    # Edit mode: which rider, and which part of the profile (see handlers.registration.GROUPS).
    rider_id: int | None = None
    edit_group: str | None = None

    relationship: str | None = None
    poa_number: str | None = None
    poa_expires_on: date | None = None
    # The representative's own name and phone (someone else's profile): whom the dispatcher
    # calls about the rider.
    rep_name: str | None = None
    rep_phone: str | None = None
    full_name: str | None = None
    phone: str | None = None
    iin_encrypted: str | None = None
    iin_hash: str | None = None
    # Nothing from which the IIN follows is kept here in clear (a draft waits up to 7 days):
    # the last digits and the IIN's birth date are read from the sealed IIN when needed.
    # The IIN's date digits don't make a plausible birth date: the person is asked for it,
    # and only that typed date is kept.
    needs_birth_date: bool = False
    birth_date: date | None = None
    district_id: str | None = None
    home_address: str | None = None
    home_lat: float | None = None
    home_lon: float | None = None
    category: str | None = None
    centre_name: str | None = None
    disability_group: int | None = None
    vkk_number: str | None = None
    vkk_expires_on: date | None = None
    vkk_indefinite: bool = False
    needs: list[str] = []
    usual_assistant: bool = False
    usual_companion: bool = False

    # A "Change" button of the summary: the part being changed; its answers lead back to the
    # summary instead of through the rest of the questions.
    change_group: str | None = None

    # An invite code the person opened before registering (kept through onboarding).
    invite: str | None = None

    # The name Telegram shows for the person, offered as a button at the question of their own
    # name: taken from the update being answered, never stored with the conversation.
    telegram_name: str | None = Field(default=None, exclude=True)


async def load_draft(state: FSMContext) -> Draft:
    return Draft.model_validate(await state.get_data())


async def save_draft(state: FSMContext, draft: Draft) -> None:
    data: dict[str, Any] = draft.model_dump(mode="json", exclude_defaults=True)
    await state.set_data(data)
