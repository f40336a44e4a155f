"""Linking relatives: the rider's one-time invite link, accepting it, and unlinking either way.

A rider with Telegram sends `/invite` (or the profile's button) and gets a deep link valid for
24 hours and one use. The relative who opens it chooses a language and gives consent if they are
new, then accepts and becomes a representative ("relative"): they book for the rider and get
the rider's ride messages. Either side can unlink; the other side is told.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.callbacks.registration import InviteAnswer, ProfileAction, ProfilePress
from bot.context import Context
from bot.i18n import N_
from bot.keyboards import registration as kb
from bot.keyboards.common import main_menu
from bot.profile_view import NOT_YOURS
from bot.services import registration as reg
from bot.services.i18n_types import Reason
from bot.services.rights import RIGHTS_LABELS, Act, Rights, may, parse_rights
from models import Account, Representation, Rider

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

ONLY_OWN = N_(
    "Only a rider with their own profile can invite a relative. Register yourself in /profile "
    "first."
)


INVITE_LEVEL = N_("What may the relative you invite do?")
INVITE_SENT = N_(
    "Send this link to your relative. When they open it and accept, they will be able to: "
    "{rights}. The link works once, until {until}."
)
INVITE_OFFER = N_(
    "{name} invites you to link to their rider profile as a relative. You will be able to: "
    "{rights}. Accept?"
)


def ask_invite_level(ctx: Context, rider: Rider) -> None:
    """The rider chooses what the relative will be able to do before a link is made."""
    ctx.reply(ctx.t(INVITE_LEVEL), kb.invite_level_keyboard(ctx.t, rider.id))


async def send_invite(ctx: Context, rider: Rider, level: Rights) -> None:
    """A new one-time link for the rider's relative, what it allows, and until when it works."""
    t = ctx.t
    invite = await reg.create_invite(ctx.session, rider, ctx.person, rights=level, now=ctx.now)
    until = invite.expires_at.astimezone(ctx.settings.tz).strftime("%d.%m.%Y %H:%M")
    rights = t(RIGHTS_LABELS[parse_rights(invite.rights)])
    ctx.reply(t(INVITE_SENT, rights=rights, until=until))
    ctx.reply_start_link(f"{reg.INVITE_PREFIX}{invite.code}")


@router.message(Command("invite"))
async def invite_command(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    rider = await reg.own_rider(ctx.session, ctx.person)
    if rider is None:
        ctx.reply(ctx.t(ONLY_OWN), main_menu(ctx.t))
        return
    ask_invite_level(ctx, rider)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.INVITE))
async def invite_pressed(query: CallbackQuery, callback_data: ProfilePress, ctx: Context) -> None:
    access = await reg.access_to(ctx.session, ctx.person, callback_data.rider)
    if access is None:
        ctx.toast(ctx.t(NOT_YOURS), alert=True)
        return
    # The rider, or someone the rider gave the whole profile to, may invite.
    if not may(await reg.rights_of(ctx.session, access.rider, ctx.person), Act.INVITE):
        ctx.toast(ctx.t(reg.NOT_ALLOWED.msgid), alert=True)
        return
    if not callback_data.field:
        ask_invite_level(ctx, access.rider)
        return
    await send_invite(ctx, access.rider, parse_rights(callback_data.field))


# -- opening an invite ----------------------------------------------------------------------------


async def show_invite(ctx: Context, code: str) -> None:
    """Ask the person who opened the link to accept, or say why the link can't be used."""
    t = ctx.t
    found = await reg.check_invite(ctx.session, code, ctx.person, tz=ctx.settings.tz, now=ctx.now)
    if isinstance(found, Reason):
        ctx.reply(found.render(t), main_menu(t))
        return
    invite, rider = found
    rights = t(RIGHTS_LABELS[parse_rights(invite.rights)])
    ctx.reply(
        t(INVITE_OFFER, name=rider.full_name, rights=rights), kb.invite_answer_keyboard(t, code)
    )


@router.callback_query(InviteAnswer.filter())
async def invite_answered(query: CallbackQuery, callback_data: InviteAnswer, ctx: Context) -> None:
    t, account = ctx.t, ctx.person
    if not callback_data.accept:
        ctx.edit(query.message, t("You declined the invitation. Nothing was linked."))
        return
    if account.consent_version is None:
        ctx.toast(t("Please send /start and accept the consent first."), alert=True)
        return
    result = await reg.accept_invite(
        ctx.session, callback_data.code, account, tz=ctx.settings.tz, now=ctx.now
    )
    if isinstance(result, Reason):
        ctx.edit(query.message, result.render(t))
        return
    rider = await ctx.session.get(Rider, result.rider_id)
    ctx.edit(
        query.message,
        t(
            "You are now linked to {name}. Book rides for them with /book; their ride messages "
            "will come here too.",
            name=rider.full_name if rider else "—",
        ),
    )
    ctx.reply(t("Choose what to do from the menu."), main_menu(t))


# -- relatives and unlinking --------------------------------------------------------------------


async def relatives_page(ctx: Context, rider: Rider) -> tuple[str, InlineKeyboardMarkup]:
    t = ctx.t
    relatives = await reg.relatives_of(ctx.session, rider.id)
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
    query: CallbackQuery, callback_data: ProfilePress, ctx: Context
) -> None:
    access = await reg.access_to(ctx.session, ctx.person, callback_data.rider)
    if access is None or not access.own:
        ctx.toast(ctx.t(NOT_YOURS), alert=True)
        return
    ctx.edit(query.message, *(await relatives_page(ctx, access.rider)))


async def _link(
    ctx: Context, rider_id: int, rep_id: int
) -> tuple[Rider, Representation, Account, bool] | None:
    """The link a press names, if the presser is its rider or its representative."""
    session, account = ctx.session, ctx.person
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
async def unlink_pressed(query: CallbackQuery, callback_data: ProfilePress, ctx: Context) -> None:
    t = ctx.t
    found = await _link(ctx, callback_data.rider, callback_data.arg)
    if found is None:
        ctx.toast(t(NOT_YOURS), alert=True)
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
    ctx.edit(query.message, text, kb.confirm_keyboard(t, t(N_("Yes, unlink")), yes, rider.id))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.UNLINK_CONFIRM))
async def unlink_confirmed(
    query: CallbackQuery, callback_data: ProfilePress, ctx: Context
) -> None:
    t = ctx.t
    found = await _link(ctx, callback_data.rider, callback_data.arg)
    if found is None:
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    rider, _, other, by_rider = found
    result = await reg.unlink(ctx.session, callback_data.arg, ctx.person)
    if isinstance(result, Reason):
        ctx.toast(result.render(t), alert=True)
        return
    if by_rider:
        text, markup = await relatives_page(ctx, rider)
        done = t("{name} is unlinked.", name=other.display_name or "—")
        ctx.edit(query.message, f"{done}\n\n{text}", markup)
        return
    ctx.edit(query.message, t("You are unlinked from {name}.", name=rider.full_name))
