"""The rider's side of a ride's news: answering another offered time, rating a finished ride.

The buttons come with messages queued by `bot.services.notifications`; a press re-reads the ride,
so a button left on screen after the ride moved on says so instead of acting.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from pydantic import ValidationError

from bot.callbacks.dispatch import ProposalAnswer, Rating
from bot.context import Context
from bot.filters import Button
from bot.i18n import N_
from bot.keyboards.common import BACK, SKIP, main_menu, step_keyboard
from bot.keyboards.dispatch import rating_keyboard
from bot.services import registration as reg
from bot.services import rides
from bot.services.district_cache import district_by_id
from bot.services.feedback import save_rating_comment
from bot.services.i18n_types import Reason
from bot.services.outbox import enqueue_card
from bot.services.ride_labels import status_label
from bot.services.rides import Action, Actor
from bot.states.dispatch import FeedbackData, RideFeedback
from models import Ride, RideStatus

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

MAX_COMMENT = 300
NOT_YOURS = N_("This button is out of date. Please use the latest message.")
NO_LONGER = N_("This offer is no longer valid: ride №{number} is now «{state}».")
ASK_COMMENT = N_(
    "Thank you! Your rating: {stars} of 5.\n"
    "Would you like to add a few words for the dispatchers? Type them, or press «Skip»."
)
BAD_COMMENT = N_("Please type your comment in words, up to 300 characters, or press «Skip».")
RATE_AGAIN = N_("Please rate ride №{number}: 1 is very bad, 5 is excellent.")
ALREADY_RATED = N_("Ride №{number} is already rated: {stars} of 5.")
# Conversation data (with no step) after «Back» at the comment: that ride may be rated again.
RERATE = "rerate"


async def relation(ctx: Context, ride: Ride) -> str | None:
    """ "rider" or "representative" when the ride is this person's to answer; None otherwise."""
    access = await reg.access_to(ctx.session, ctx.person, ride.rider_id)
    if access is None:
        return None
    return "rider" if access.own else "representative"


def drop_buttons(ctx: Context, query: CallbackQuery) -> None:
    if isinstance(query.message, Message) and query.message.reply_markup is not None:
        ctx.edit_markup(query.message, None)


@router.callback_query(ProposalAnswer.filter())
async def proposal_answered(
    query: CallbackQuery, callback_data: ProposalAnswer, ctx: Context
) -> None:
    t, account = ctx.t, ctx.person
    ride = await ctx.session.get(Ride, callback_data.ride, populate_existing=True)
    kind = await relation(ctx, ride) if ride is not None else None
    if ride is None or kind is None:
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    action = Action.ACCEPT if callback_data.accept else Action.DECLINE
    actor = Actor(kind, account.telegram_id, account.display_name or None)
    outcome = await rides.change(ctx.session, ride.id, action, actor, now=ctx.now)
    drop_buttons(ctx, query)
    if not outcome.ok:
        current = outcome.ride or ride
        ctx.toast(
            t(NO_LONGER, number=current.number, state=t(status_label(current.status))), alert=True
        )
        return
    ctx.toast(
        t("You accepted the new time.") if callback_data.accept else t("The ride is cancelled.")
    )


@router.callback_query(Rating.filter())
async def rated(query: CallbackQuery, callback_data: Rating, ctx: Context) -> None:
    t, state = ctx.t, ctx.fsm
    ride = await ctx.session.get(Ride, callback_data.ride, populate_existing=True)
    kind = await relation(ctx, ride) if ride is not None else None
    if (
        ride is None
        or kind is None
        or ride.status != RideStatus.COMPLETED
        or not 1 <= callback_data.stars <= 5
    ):
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    if ride.rating is not None and (await state.get_data()).get(RERATE) != ride.id:
        # An old rating button (or a second tap) does not change a rating already given.
        drop_buttons(ctx, query)
        ctx.toast(t(ALREADY_RATED, number=ride.number, stars=ride.rating), alert=True)
        return
    ride.rating = callback_data.stars
    await refresh_card(ctx, ride)
    drop_buttons(ctx, query)
    if await state.get_state() is not None:
        # In the middle of another conversation (a new booking): don't take its place.
        ctx.toast(t("Thank you for the rating!"))
        return
    await state.set_state(RideFeedback.comment)
    await state.set_data(FeedbackData(ride_id=ride.id).model_dump())
    if isinstance(query.message, Message):
        ctx.reply(t(ASK_COMMENT, stars=callback_data.stars), step_keyboard(t, skip=True))


async def refresh_card(ctx: Context, ride: Ride) -> None:
    district = await district_by_id(ctx.session, ride.district_id)
    if district is not None:
        await enqueue_card(
            ctx.session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )


async def feedback_ride(ctx: Context) -> Ride | None:
    try:
        data = FeedbackData.model_validate(await ctx.fsm.get_data())
    except ValidationError:
        return None
    return await ctx.session.get(Ride, data.ride_id)


@router.message(RideFeedback.comment, Button(SKIP))
async def comment_skipped(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    ctx.reply(ctx.t("Thank you for the rating!"), main_menu(ctx.t))


@router.message(RideFeedback.comment, Button(BACK))
async def comment_back(message: Message, ctx: Context) -> None:
    """Back to the rating: the buttons come again, so the rating can be changed."""
    t = ctx.t
    ride = await feedback_ride(ctx)
    await ctx.fsm.clear()
    ctx.reply(t("Main menu."), main_menu(t))
    if ride is not None:
        await ctx.fsm.set_data({RERATE: ride.id})
        ctx.reply(t(RATE_AGAIN, number=ride.number), rating_keyboard(t, {"ride_id": ride.id}))


@router.message(RideFeedback.comment)
async def comment_given(message: Message, ctx: Context) -> None:
    t = ctx.t
    text = (message.text or "").strip()
    words = bool(text) and not text.startswith("/") and any(ch.isalnum() for ch in text)
    if not words or len(text) > MAX_COMMENT:
        ctx.reply(t(BAD_COMMENT), step_keyboard(t, skip=True))
        return
    ride = await feedback_ride(ctx)
    if ride is None:
        await ctx.fsm.clear()
        ctx.reply(t("Thank you for the rating!"), main_menu(t))
        return
    # Whoever types is checked again: someone unlinked since the rating puts nothing on the card.
    saved = await save_rating_comment(ctx.session, ctx.person, ride.id, message.text)
    if isinstance(saved, Reason) and saved is not reg.NOT_ALLOWED:
        ctx.reply(t(BAD_COMMENT), step_keyboard(t, skip=True))
        return
    await ctx.fsm.clear()
    if saved is reg.NOT_ALLOWED:
        ctx.reply(reg.NOT_ALLOWED.render(t), main_menu(t))
        return
    ctx.reply(t("Thank you! The dispatchers will see your comment."), main_menu(t))
