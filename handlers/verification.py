"""The verification card's buttons in the district's dispatcher chat, and a typed reason.

Only the district's active dispatchers (and the administrators) may decide; anyone else gets a
short alert and nothing changes. A decision is one conditional update from "pending", so of two
dispatchers pressing at once one wins and the other is told who did. With privacy mode on, the
bot sees only replies to its own messages: a typed reason is a reply to the card itself.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message, User
from pydantic import BaseModel, ValidationError

from bot.callbacks.registration import VerifyAction, VerifyPress
from bot.context import Context
from bot.i18n import N_, Translator
from bot.keyboards import registration as kb
from bot.services import dispatch
from bot.services import registration as reg
from bot.services.district_cache import district_by_id
from bot.services.outbox import enqueue_card
from bot.services.people import rider_circle
from bot.services.text import strip_hostile
from bot.states.registration import VerificationReason
from models import District, Rider, Verification

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))
router.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

MAX_REASON = 300
NOT_A_DISPATCHER = N_("Only this district's dispatchers can check profiles.")
GONE = N_("This profile no longer exists.")
ALREADY = N_("This profile check is already closed: {status}.")
APPROVED = N_("Approved. The rider is told.")
REJECTED = N_("Rejected. The rider is told.")
# The rider has no Telegram of their own (a child, an elderly parent): the people who book for
# them were told, and the dispatcher must not believe the rider read it.
APPROVED_REPRESENTATIVE = N_("Approved. The rider's representative is told.")
REJECTED_REPRESENTATIVE = N_("Rejected. The rider's representative is told.")
APPROVED_NOBODY = N_("Approved. Nobody could be told in Telegram: please call the rider.")
REJECTED_NOBODY = N_("Rejected. Nobody could be told in Telegram: please call the rider.")
# A plain message in the chat counts as well as a reply to the card (B10), when the bot reads
# plain group messages at all (see handlers/dispatch.py).
TYPE_REASON = N_(
    "Type the reason for not approving in words: a message in this chat, or a reply to this card."
)
TYPE_REASON_REPLY = N_("Reply to this card with the reason for rejecting, in words.")
BAD_REASON = N_("Please write the reason in words, up to 300 characters.")
STALE = N_("This button is out of date.")
STATUS_WORDS = {
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "superseded": N_("the profile was changed, see the newer card"),
}


class ReasonData(BaseModel):
    """Which profile check a dispatcher's typed reason is for, and the card to reply to."""

    verification_id: int
    card_message_id: int


async def _decider_name(ctx: Context, district_id: str, user: User) -> str:
    return await dispatch.dispatcher_name(ctx.session, district_id, user.id) or user.full_name


async def _refresh(ctx: Context, verification: Verification, district: District) -> None:
    await enqueue_card(
        ctx.session,
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


@router.callback_query(VerifyPress.filter())
async def card_pressed(
    query: CallbackQuery,
    callback_data: VerifyPress,
    ctx: Context,
    group_messages_seen: bool = False,
) -> None:
    session, state = ctx.session, ctx.fsm
    verification = await session.get(
        Verification, callback_data.verification, populate_existing=True
    )
    district = await district_by_id(session, verification.district_id) if verification else None
    if verification is None or district is None:
        ctx.toast(ctx.i18n.translator(ctx.settings.default_language)(GONE), alert=True)
        return
    t = ctx.i18n.translator(district.language)
    user = query.from_user
    if not await dispatch.is_dispatcher(session, district.id, user.id, ctx.settings.admin_ids):
        ctx.toast(t(NOT_A_DISPATCHER), alert=True)
        return
    if verification.status != "pending":
        await _refresh(ctx, verification, district)
        ctx.toast(_closed(t, verification), alert=True)
        return
    card = query.message if isinstance(query.message, Message) else None
    if verification.card_message_id is None and card is not None and _just_posted(card, district):
        # The sender posted this card and has not recorded it yet: it is the check's card.
        verification.card_chat_id, verification.card_message_id = card.chat.id, card.message_id
    action = callback_data.action
    if action is VerifyAction.REJECT:
        ctx.edit_markup(card, kb.reject_reasons_keyboard(t, verification.id))
        return
    if action is VerifyAction.BACK:
        await state.clear()
        ctx.edit_markup(card, kb.verification_keyboard(t, verification.id))
        return
    if action is VerifyAction.TYPED:
        assert card is not None
        await state.set_state(VerificationReason.typed)
        await state.set_data(
            ReasonData(
                verification_id=verification.id, card_message_id=card.message_id
            ).model_dump()
        )
        ctx.toast(t(TYPE_REASON if group_messages_seen else TYPE_REASON_REPLY), alert=True)
        return
    if action is VerifyAction.REASON and callback_data.arg not in reg.REJECT_REASONS:
        ctx.toast(t(STALE), alert=True)
        return
    approve = action is VerifyAction.APPROVE
    decision = await reg.decide(
        session,
        verification.id,
        approve=approve,
        actor_id=user.id,
        actor_name=await _decider_name(ctx, district.id, user),
        reason=None if approve else reg.reason_code(callback_data.arg),
        # Counts only from this check's own card in its own chat (a forged press elsewhere
        # changes nothing).
        chat_id=card.chat.id if card is not None else None,
        message_id=card.message_id if card is not None else 0,
    )
    if decision.wrong_card:
        ctx.toast(t(STALE), alert=True)
        return
    if not decision.ok:
        assert decision.verification is not None
        ctx.toast(_closed(t, decision.verification), alert=True)
        return
    await state.clear()
    ctx.toast(t(await who_was_told(ctx, decision.rider, approve=approve)))


def _just_posted(message: Message, district: District) -> bool:
    """A message of the bot's own in the district's chat (and topic)."""
    return (
        message.chat.id == district.chat_id
        and message.from_user is not None
        and message.from_user.is_bot
        and (district.topic_id is None or message.message_thread_id == district.topic_id)
    )


async def who_was_told(ctx: Context, rider: Rider | None, *, approve: bool) -> str:
    """The toast's message id: the rider, their representative, or nobody was told."""
    if rider is not None and rider.account_id is not None:
        return APPROVED if approve else REJECTED
    circle = await rider_circle(ctx.session, rider.id) if rider is not None else []
    if circle:
        return APPROVED_REPRESENTATIVE if approve else REJECTED_REPRESENTATIVE
    return APPROVED_NOBODY if approve else REJECTED_NOBODY


@router.message(StateFilter(VerificationReason.typed), ~F.text.startswith("/"))
async def typed_reason(message: Message, ctx: Context) -> None:
    """A reason typed by the dispatcher who chose "another reason" on a card: a plain message
    in the chat, or a reply to that card (a reply to another message is talk, not the reason)."""
    session, state = ctx.session, ctx.fsm
    try:
        data = ReasonData.model_validate(await state.get_data())
    except ValidationError:
        await state.clear()
        return
    replied = message.reply_to_message
    user = message.from_user
    if user is None:
        return
    if replied is None or replied.message_id != data.card_message_id:
        # In a forum topic every message "replies" to the topic's first one: that is plain.
        in_topic = bool(message.is_topic_message) and replied is not None
        plain = replied is None or (in_topic and replied.message_id == message.message_thread_id)
        if not plain or not message.text:
            return  # a reply to something else, or a sticker dropped in the chat: talk
    verification = await session.get(Verification, data.verification_id, populate_existing=True)
    district = await district_by_id(session, verification.district_id) if verification else None
    if verification is None or district is None:
        await state.clear()
        return
    t = ctx.i18n.translator(district.language)
    if not await dispatch.is_dispatcher(session, district.id, user.id, ctx.settings.admin_ids):
        await state.clear()
        ctx.reply_to(message.message_id, t(NOT_A_DISPATCHER))
        return
    text = " ".join(strip_hostile(message.text or "").split())
    if not text or len(text) > MAX_REASON or not any(ch.isalnum() for ch in text):
        ctx.reply_to(message.message_id, t(BAD_REASON))
        return
    decision = await reg.decide(
        session,
        verification.id,
        approve=False,
        actor_id=user.id,
        actor_name=await _decider_name(ctx, district.id, user),
        reason=text,
        # The card where "another reason" was pressed, in this chat.
        chat_id=message.chat.id,
        message_id=data.card_message_id,
    )
    await state.clear()
    if decision.wrong_card:
        ctx.reply_to(message.message_id, t(STALE))
        return
    if not decision.ok and decision.verification is not None:
        ctx.reply_to(message.message_id, _closed(t, decision.verification))
