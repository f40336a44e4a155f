"""The verification card's buttons in the district's dispatcher chat, and a typed reason.

Only the district's active dispatchers (and the administrators) may decide; anyone else gets a
short alert and nothing changes. A decision is one conditional update from "pending", so of two
dispatchers pressing at once one wins and the other is told who did. With privacy mode on, the
bot sees only replies to its own messages: a typed reason is a reply to the card itself.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.registration import VerifyAction, VerifyPress
from bot.i18n import N_, I18n, Translator
from bot.keyboards import registration as kb
from bot.services import dispatch
from bot.services import registration as reg
from bot.services.outbox import enqueue_card
from bot.settings import Settings
from bot.states.registration import VerificationReason
from models import District, Verification


def alert(answer: CallbackAnswer, text: str) -> None:
    """A short alert in answer to the press (answered once, by the middleware)."""
    answer.text = text
    answer.show_alert = True


router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))
router.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

MAX_REASON = 300
NOT_A_DISPATCHER = N_("Only this district's dispatchers can check profiles.")
GONE = N_("This profile no longer exists.")
ALREADY = N_("This profile check is already closed: {status}.")
APPROVED = N_("Approved. The rider is told.")
REJECTED = N_("Rejected. The rider is told.")
TYPE_REASON = N_("Reply to this card with the reason for rejecting, in words.")
BAD_REASON = N_(
    "Please write the reason in words, up to 300 characters, as a reply to the profile card."
)
STATUS_WORDS = {
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "superseded": N_("the profile was changed, see the newer card"),
}


class ReasonData(BaseModel):
    """Which profile check a dispatcher's typed reason is for, and the card to reply to."""

    verification_id: int
    card_message_id: int


async def _decider_name(session: AsyncSession, district_id: str, user: User) -> str:
    return await dispatch.dispatcher_name(session, district_id, user.id) or user.full_name


async def _refresh(session: AsyncSession, verification: Verification, district: District) -> None:
    await enqueue_card(
        session,
        kind=reg.VERIFICATION_CARD,
        subject_id=verification.id,
        chat_id=verification.card_chat_id or district.chat_id,
        topic_id=district.topic_id,
    )


def _closed(t: Translator, verification: Verification) -> str:
    status = t(STATUS_WORDS.get(verification.status, N_("rejected")))
    if verification.decided_by_name and verification.status != "superseded":
        status = f"{status} ({verification.decided_by_name})"
    return t(ALREADY, status=status)


async def _set_markup(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=markup)


@router.callback_query(VerifyPress.filter())
async def card_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: VerifyPress,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    i18n: I18n,
) -> None:
    verification = await session.get(
        Verification, callback_data.verification, populate_existing=True
    )
    district = await session.get(District, verification.district_id) if verification else None
    if verification is None or district is None:
        alert(callback_answer, i18n.translator(settings.default_language)(GONE))
        return
    t = i18n.translator(district.language)
    user = query.from_user
    if not await dispatch.is_dispatcher(session, district.id, user.id, settings.admin_ids):
        alert(callback_answer, t(NOT_A_DISPATCHER))
        return
    if verification.status != "pending":
        await _refresh(session, verification, district)
        alert(callback_answer, _closed(t, verification))
        return
    action = callback_data.action
    if action is VerifyAction.REJECT:
        await _set_markup(query, kb.reject_reasons_keyboard(t, verification.id))
        return
    if action is VerifyAction.BACK:
        await state.clear()
        await _set_markup(query, kb.verification_keyboard(t, verification.id))
        return
    if action is VerifyAction.TYPED:
        assert isinstance(query.message, Message)
        await state.set_state(VerificationReason.typed)
        await state.set_data(
            ReasonData(
                verification_id=verification.id, card_message_id=query.message.message_id
            ).model_dump()
        )
        alert(callback_answer, t(TYPE_REASON))
        return
    if action is VerifyAction.REASON and callback_data.arg not in reg.REJECT_REASONS:
        alert(callback_answer, t(N_("This button is out of date.")))
        return
    approve = action is VerifyAction.APPROVE
    decision = await reg.decide(
        session,
        verification.id,
        approve=approve,
        actor_id=user.id,
        actor_name=await _decider_name(session, district.id, user),
        reason=None if approve else reg.reason_code(callback_data.arg),
    )
    if not decision.ok:
        assert decision.verification is not None
        alert(callback_answer, _closed(t, decision.verification))
        return
    await state.clear()
    callback_answer.text = t(APPROVED if approve else REJECTED)


@router.message(StateFilter(VerificationReason.typed), F.reply_to_message)
async def typed_reason(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    i18n: I18n,
) -> None:
    """A reason typed as a reply to the card on which the dispatcher chose "another reason"."""
    try:
        data = ReasonData.model_validate(await state.get_data())
    except ValidationError:
        await state.clear()
        return
    replied = message.reply_to_message
    user = message.from_user
    if replied is None or replied.message_id != data.card_message_id or user is None:
        return
    verification = await session.get(Verification, data.verification_id, populate_existing=True)
    district = await session.get(District, verification.district_id) if verification else None
    if verification is None or district is None:
        await state.clear()
        return
    t = i18n.translator(district.language)
    if not await dispatch.is_dispatcher(session, district.id, user.id, settings.admin_ids):
        await state.clear()
        await message.reply(t(NOT_A_DISPATCHER))
        return
    text = " ".join((message.text or "").split())
    if not text or len(text) > MAX_REASON or not any(ch.isalnum() for ch in text):
        await message.reply(t(BAD_REASON))
        return
    decision = await reg.decide(
        session,
        verification.id,
        approve=False,
        actor_id=user.id,
        actor_name=await _decider_name(session, district.id, user),
        reason=text,
    )
    await state.clear()
    if not decision.ok and decision.verification is not None:
        await message.reply(_closed(t, decision.verification))
