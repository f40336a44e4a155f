"""The rider's side of a ride's news: answering another offered time, rating a finished ride.

The buttons come with messages queued by `bot.services.notifications`; a press re-reads the ride,
so a button left on screen after the ride moved on says so instead of acting.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.dispatch import ProposalAnswer, Rating
from bot.filters import Button
from bot.i18n import N_, Translator
from bot.keyboards.common import BACK, SKIP, main_menu, step_keyboard
from bot.keyboards.dispatch import rating_keyboard
from bot.services import rides
from bot.services.outbox import enqueue_card
from bot.services.ride_labels import status_label
from bot.services.rides import Action, Actor
from bot.states.dispatch import FeedbackData, RideFeedback
from models import Account, District, Representation, Ride, Rider, RideStatus

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

MAX_COMMENT = 300
NOT_YOURS = N_("This button is out of date. Please use the latest message.")
NO_LONGER = N_("This offer is no longer valid: ride {number} is now «{state}».")
ASK_COMMENT = N_(
    "Thank you! Your rating: {stars} of 5.\n"
    "Would you like to add a few words for the dispatchers? Type them, or press «Skip»."
)
BAD_COMMENT = N_("Please type your comment in words, up to 300 characters, or press «Skip».")
RATE_AGAIN = N_("Please rate ride {number}: 1 is very bad, 5 is excellent.")


async def relation(session: AsyncSession, account: Account, ride: Ride) -> str | None:
    """ "rider" or "representative" when the ride is this person's to answer; None otherwise."""
    rider = await session.get(Rider, ride.rider_id)
    if rider is None:
        return None
    if rider.account_id == account.id:
        return "rider"
    linked = await session.scalar(
        select(Representation.id).where(
            Representation.rider_id == rider.id, Representation.account_id == account.id
        )
    )
    return "representative" if linked is not None else None


async def drop_buttons(query: CallbackQuery) -> None:
    if isinstance(query.message, Message) and query.message.reply_markup is not None:
        await query.message.edit_reply_markup(reply_markup=None)


@router.callback_query(ProposalAnswer.filter())
async def proposal_answered(
    query: CallbackQuery,
    callback_data: ProposalAnswer,
    callback_answer: CallbackAnswer,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    ride = await session.get(Ride, callback_data.ride, populate_existing=True)
    kind = await relation(session, account, ride) if ride is not None else None
    if ride is None or kind is None:
        callback_answer.text = t(NOT_YOURS)
        callback_answer.show_alert = True
        return
    action = Action.ACCEPT if callback_data.accept else Action.DECLINE
    actor = Actor(kind, account.telegram_id, account.display_name or None)
    outcome = await rides.change(session, ride.id, action, actor)
    await drop_buttons(query)
    if not outcome.ok:
        current = outcome.ride or ride
        callback_answer.text = t(
            NO_LONGER, number=current.number, state=t(status_label(current.status))
        )
        callback_answer.show_alert = True
        return
    callback_answer.text = (
        t("You accepted the new time.") if callback_data.accept else t("The ride is cancelled.")
    )


@router.callback_query(Rating.filter())
async def rated(
    query: CallbackQuery,
    callback_data: Rating,
    callback_answer: CallbackAnswer,
    session: AsyncSession,
    account: Account,
    t: Translator,
    state: FSMContext,
) -> None:
    ride = await session.get(Ride, callback_data.ride, populate_existing=True)
    kind = await relation(session, account, ride) if ride is not None else None
    if (
        ride is None
        or kind is None
        or ride.status != RideStatus.COMPLETED
        or not 1 <= callback_data.stars <= 5
    ):
        callback_answer.text = t(NOT_YOURS)
        callback_answer.show_alert = True
        return
    ride.rating = callback_data.stars
    await refresh_card(session, ride)
    await drop_buttons(query)
    if await state.get_state() is not None:
        # In the middle of another conversation (a new booking): don't take its place.
        callback_answer.text = t("Thank you for the rating!")
        return
    await state.set_state(RideFeedback.comment)
    await state.set_data(FeedbackData(ride_id=ride.id).model_dump())
    if isinstance(query.message, Message):
        await query.message.answer(
            t(ASK_COMMENT, stars=callback_data.stars),
            reply_markup=step_keyboard(t, skip=True),
        )


async def refresh_card(session: AsyncSession, ride: Ride) -> None:
    district = await session.get(District, ride.district_id)
    if district is not None:
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )


async def feedback_ride(session: AsyncSession, state: FSMContext) -> Ride | None:
    try:
        data = FeedbackData.model_validate(await state.get_data())
    except ValidationError:
        return None
    return await session.get(Ride, data.ride_id)


@router.message(RideFeedback.comment, Button(SKIP))
async def comment_skipped(message: Message, state: FSMContext, t: Translator) -> None:
    await state.clear()
    await message.answer(t("Thank you for the rating!"), reply_markup=main_menu(t))


@router.message(RideFeedback.comment, Button(BACK))
async def comment_back(
    message: Message, state: FSMContext, session: AsyncSession, t: Translator
) -> None:
    """Back to the rating: the buttons come again, so the rating can be changed."""
    ride = await feedback_ride(session, state)
    await state.clear()
    if ride is None:
        await message.answer(t("Main menu."), reply_markup=main_menu(t))
        return
    await message.answer(t("Main menu."), reply_markup=main_menu(t))
    await message.answer(
        t(RATE_AGAIN, number=ride.number), reply_markup=rating_keyboard(t, {"ride_id": ride.id})
    )


@router.message(RideFeedback.comment)
async def comment_given(
    message: Message, state: FSMContext, session: AsyncSession, t: Translator
) -> None:
    text = (message.text or "").strip()
    words = bool(text) and not text.startswith("/") and any(ch.isalnum() for ch in text)
    if not words or len(text) > MAX_COMMENT:
        await message.answer(t(BAD_COMMENT), reply_markup=step_keyboard(t, skip=True))
        return
    ride = await feedback_ride(session, state)
    await state.clear()
    if ride is not None:
        ride.rating_comment = text
        await refresh_card(session, ride)
    await message.answer(
        t("Thank you! The dispatchers will see your comment."), reply_markup=main_menu(t)
    )
