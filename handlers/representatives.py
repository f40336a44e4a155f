"""Linking relatives: the rider's one-time invite link, accepting it, and unlinking either way.

A rider with Telegram sends `/invite` (or the profile's button) and gets a deep link valid for
24 hours and one use. The relative who opens it chooses a language and gives consent if they are
new, then accepts and becomes a representative ("relative"): they book for the rider and get
the rider's ride messages. Either side can unlink; the other side is told.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.registration import InviteAnswer, ProfileAction, ProfilePress
from bot.i18n import N_, Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import main_menu
from bot.services import registration as reg
from bot.services.i18n_types import Reason
from bot.settings import Settings
from models import Account, Representation, Rider


def alert(answer: CallbackAnswer, text: str) -> None:
    """A short alert in answer to the press (answered once, by the middleware)."""
    answer.text = text
    answer.show_alert = True


router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

NOT_YOURS = N_("This profile is not linked to you any more.")
ONLY_OWN = N_(
    "Only a rider with their own profile can invite a relative. Register yourself in /profile "
    "first."
)


async def invite_link(bot: Bot, code: str) -> str:
    me = await bot.me()
    return f"https://t.me/{me.username}?start={reg.INVITE_PREFIX}{code}"


async def send_invite(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    account: Account,
    rider: Rider,
    t: Translator,
    settings: Settings,
) -> None:
    invite = await reg.create_invite(session, rider, account)
    until = invite.expires_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")
    link = await invite_link(bot, invite.code)
    await bot.send_message(
        chat_id,
        t(
            "Send this link to your relative. When they open it and accept, they can book rides "
            "for you and will get your ride messages. The link works once, until {until}.",
            until=until,
        ),
    )
    await bot.send_message(chat_id, link)


@router.message(Command("invite"))
async def invite_command(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
) -> None:
    await state.clear()
    rider = await reg.own_rider(session, account)
    if rider is None:
        await message.answer(t(ONLY_OWN), reply_markup=main_menu(t))
        return
    await send_invite(bot, message.chat.id, session, account, rider, t, settings)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.INVITE))
async def invite_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
) -> None:
    access = await reg.access_to(session, account, callback_data.rider)
    if access is None or not access.own:
        alert(callback_answer, t(NOT_YOURS))
        return
    await send_invite(bot, account.telegram_id, session, account, access.rider, t, settings)


# -- opening an invite ----------------------------------------------------------------------------


async def show_invite(
    chat_id: int,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
    code: str,
) -> None:
    """Ask the person who opened the link to accept, or say why the link can't be used."""
    found = await reg.check_invite(session, code, account, tz=settings.tz)
    if isinstance(found, Reason):
        await bot.send_message(chat_id, found.render(t), reply_markup=main_menu(t))
        return
    _, rider = found
    await bot.send_message(
        chat_id,
        t(
            "{name} invites you to link to their rider profile as a relative. You will be able "
            "to book rides for them and will get their ride messages. Accept?",
            name=rider.full_name,
        ),
        reply_markup=kb.invite_answer_keyboard(t, code),
    )


async def edit(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


@router.callback_query(InviteAnswer.filter())
async def invite_answered(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: InviteAnswer,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
) -> None:
    if not callback_data.accept:
        await edit(query, t("You declined the invitation. Nothing was linked."))
        return
    if account.consent_version is None:
        alert(callback_answer, t("Please send /start and accept the consent first."))
        return
    result = await reg.accept_invite(session, callback_data.code, account, tz=settings.tz)
    if isinstance(result, Reason):
        await edit(query, result.render(t))
        return
    rider = await session.get(Rider, result.rider_id)
    await edit(
        query,
        t(
            "You are now linked to {name}. Book rides for them with /book; their ride messages "
            "will come here too.",
            name=rider.full_name if rider else "—",
        ),
    )
    if isinstance(query.message, Message):
        await query.message.answer(
            t("Choose what to do from the menu."), reply_markup=main_menu(t)
        )


# -- relatives and unlinking --------------------------------------------------------------------


async def relatives_page(
    session: AsyncSession, rider: Rider, t: Translator
) -> tuple[str, InlineKeyboardMarkup]:
    relatives = await reg.relatives_of(session, rider.id)
    if not relatives:
        text = t("No relatives are linked to your profile. Invite one with the button below.")
    else:
        lines = [t("Linked to your profile:")]
        for rep, other in relatives:
            kind = t(reg.RELATIONSHIP_LABELS.get(rep.relationship_kind, N_("relative")))
            lines.append(f"{other.display_name or '—'} — {kind}")
        text = "\n".join(lines)
    buttons = [(rep.id, other.display_name or "—") for rep, other in relatives]
    return text, kb.relatives_keyboard(t, rider.id, buttons)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.RELATIVES))
async def relatives_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    access = await reg.access_to(session, account, callback_data.rider)
    if access is None or not access.own:
        alert(callback_answer, t(NOT_YOURS))
        return
    await edit(query, *(await relatives_page(session, access.rider, t)))


async def _link(
    session: AsyncSession, account: Account, rider_id: int, rep_id: int
) -> tuple[Rider, Representation, Account, bool] | None:
    """The link a press names, if the presser is its rider or its representative."""
    access = await reg.access_to(session, account, rider_id)
    rep = await session.get(Representation, rep_id)
    if access is None or rep is None or rep.rider_id != rider_id:
        return None
    if not access.own and rep.account_id != account.id:
        return None
    other = await session.get(Account, rep.account_id)
    if other is None:
        return None
    return access.rider, rep, other, access.own


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.UNLINK))
async def unlink_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    found = await _link(session, account, callback_data.rider, callback_data.arg)
    if found is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    rider, rep, other, by_rider = found
    if by_rider:
        text = t(
            "Unlink {name}? They will no longer book for you or get your ride messages.",
            name=other.display_name or "—",
        )
    else:
        text = t(
            "Unlink yourself from {name}? You will no longer book for them or get their ride "
            "messages.",
            name=rider.full_name,
        )
    yes = ProfilePress(action=ProfileAction.UNLINK_CONFIRM, rider=rider.id, arg=rep.id)
    await edit(query, text, kb.confirm_keyboard(t, t(N_("Yes, unlink")), yes, rider.id))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.UNLINK_CONFIRM))
async def unlink_confirmed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    found = await _link(session, account, callback_data.rider, callback_data.arg)
    if found is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    rider, _, other, by_rider = found
    result = await reg.unlink(session, callback_data.arg, account)
    if isinstance(result, Reason):
        alert(callback_answer, result.render(t))
        return
    if by_rider:
        text, markup = await relatives_page(session, rider, t)
        done = t("{name} is unlinked.", name=other.display_name or "—")
        await edit(query, f"{done}\n\n{text}", markup)
        return
    await edit(query, t("You are unlinked from {name}.", name=rider.full_name))
