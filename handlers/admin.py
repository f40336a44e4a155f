"""Administrators (ADMIN_IDS) add and remove a district's dispatchers from inside its chat.

`/dispatcher_add` and `/dispatcher_remove` as a reply to the person's message, or with their
numeric Telegram id; `/dispatchers` lists who may act. Entries added here are kept when the
districts file is synced at start; people listed in the file come back at start.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.context import Context
from bot.i18n import N_, Translator
from bot.services import dispatch
from models import District

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))

ADMINS_ONLY = N_("Only an administrator can change the list of dispatchers.")
WHO = N_(
    "Send the command as a reply to the person's message, or with their numeric id: "
    "/dispatcher_add 123456789 Name"
)


async def desk_district(ctx: Context) -> District | None:
    """The district of the chat (and forum topic) the command came from."""
    assert ctx.chat_id is not None
    return await dispatch.district_for_chat(ctx.session, ctx.chat_id, ctx.topic_id)


async def admin_desk(message: Message, ctx: Context) -> tuple[District, Translator] | None:
    district = await desk_district(ctx)
    if district is None:
        t = ctx.i18n.translator(ctx.settings.default_language)
        ctx.reply_to(message.message_id, t("This chat is not linked to a district."))
        return None
    t = ctx.i18n.translator(district.language)
    if message.from_user is None or message.from_user.id not in ctx.settings.admin_ids:
        ctx.reply_to(message.message_id, t(ADMINS_ONLY))
        return None
    return district, t


def target_of(message: Message, command: CommandObject) -> tuple[int, str] | None:
    """The person meant: the author of the replied message, or an id (and a name) after it."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return replied.from_user.id, replied.from_user.full_name
    parts = (command.args or "").split(maxsplit=1)
    if parts and parts[0].isdigit() and 0 < int(parts[0]) < 10**15:
        return int(parts[0]), (parts[1].strip() if len(parts) > 1 else "")
    return None


@router.message(Command("dispatcher_add"))
async def add(message: Message, command: CommandObject, ctx: Context) -> None:
    found = await admin_desk(message, ctx)
    if found is None:
        return
    district, t = found
    target = target_of(message, command)
    if target is None:
        ctx.reply_to(message.message_id, t(WHO))
        return
    user_id, name = target
    label = name or str(user_id)
    if await dispatch.add_dispatcher(ctx.session, district.id, user_id, name):
        text = t(
            "{name} is now a dispatcher of {district}.", name=label, district=district.name(t.lang)
        )
    else:
        text = t("{name} is already a dispatcher here.", name=label)
    ctx.reply_to(message.message_id, text)


@router.message(Command("dispatcher_remove"))
async def remove(message: Message, command: CommandObject, ctx: Context) -> None:
    found = await admin_desk(message, ctx)
    if found is None:
        return
    district, t = found
    target = target_of(message, command)
    if target is None:
        ctx.reply_to(message.message_id, t(WHO))
        return
    user_id, name = target
    session = ctx.session
    label = name or await dispatch.dispatcher_name(session, district.id, user_id) or str(user_id)
    result = await dispatch.remove_dispatcher(session, district.id, user_id)
    if not result.removed:
        ctx.reply_to(message.message_id, t("{name} is not a dispatcher here.", name=label))
        return
    text = t("{name} can no longer act on this district's requests.", name=label)
    if result.from_file:
        text += "\n" + t(
            "They are listed in the districts file and come back when the bot restarts, "
            "unless they are removed from the file."
        )
    ctx.reply_to(message.message_id, text)


@router.message(Command("dispatchers"))
async def list_all(message: Message, ctx: Context) -> None:
    district = await desk_district(ctx)
    if district is None:
        return
    t = ctx.i18n.translator(district.language)
    user = message.from_user
    if user is None or not await dispatch.is_dispatcher(
        ctx.session, district.id, user.id, ctx.settings.admin_ids
    ):
        ctx.reply_to(message.message_id, t("Only this district's dispatchers can do this."))
        return
    people = await dispatch.list_dispatchers(ctx.session, district.id)
    if not people:
        ctx.reply_to(message.message_id, t("This district has no dispatchers yet."))
        return
    lines = [t("Dispatchers of {district}:", district=district.name(t.lang))]
    lines += [f"{p.name or '—'} ({p.telegram_id})" for p in people]
    ctx.reply_to(message.message_id, "\n".join(lines))
