"""Administrators (ADMIN_IDS) add and remove a district's dispatchers from inside its chat.

`/dispatcher_add` and `/dispatcher_remove` as a reply to the person's message, or with their
numeric Telegram id; `/dispatchers` lists who may act. Entries added here are kept when the
districts file is synced at start; people listed in the file come back at start.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, I18n, Translator
from bot.services import dispatch
from bot.settings import Settings
from handlers.dispatch import topic_of
from models import District

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))

ADMINS_ONLY = N_("Only an administrator can change the list of dispatchers.")
WHO = N_(
    "Send the command as a reply to the person's message, or with their numeric id: "
    "/dispatcher_add 123456789 Name"
)


async def admin_desk(
    message: Message, session: AsyncSession, settings: Settings, i18n: I18n
) -> tuple[District, Translator] | None:
    district = await dispatch.district_for_chat(session, message.chat.id, topic_of(message))
    if district is None:
        t = i18n.translator(settings.default_language)
        await message.reply(t("This chat is not linked to a district."))
        return None
    t = i18n.translator(district.language)
    if message.from_user is None or message.from_user.id not in settings.admin_ids:
        await message.reply(t(ADMINS_ONLY))
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
async def add(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    i18n: I18n,
) -> None:
    found = await admin_desk(message, session, settings, i18n)
    if found is None:
        return
    district, t = found
    target = target_of(message, command)
    if target is None:
        await message.reply(t(WHO))
        return
    user_id, name = target
    label = name or str(user_id)
    if await dispatch.add_dispatcher(session, district.id, user_id, name):
        text = t(
            "{name} is now a dispatcher of {district}.", name=label, district=district.name(t.lang)
        )
    else:
        text = t("{name} is already a dispatcher here.", name=label)
    await message.reply(text)


@router.message(Command("dispatcher_remove"))
async def remove(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    i18n: I18n,
) -> None:
    found = await admin_desk(message, session, settings, i18n)
    if found is None:
        return
    district, t = found
    target = target_of(message, command)
    if target is None:
        await message.reply(t(WHO))
        return
    user_id, name = target
    label = name or await dispatch.dispatcher_name(session, district.id, user_id) or str(user_id)
    result = await dispatch.remove_dispatcher(session, district.id, user_id)
    if not result.removed:
        await message.reply(t("{name} is not a dispatcher here.", name=label))
        return
    text = t("{name} can no longer act on this district's requests.", name=label)
    if result.from_file:
        text += "\n" + t(
            "They are listed in the districts file and come back when the bot restarts, "
            "unless they are removed from the file."
        )
    await message.reply(text)


@router.message(Command("dispatchers"))
async def list_all(
    message: Message, session: AsyncSession, settings: Settings, i18n: I18n
) -> None:
    district = await dispatch.district_for_chat(session, message.chat.id, topic_of(message))
    if district is None:
        return
    t = i18n.translator(district.language)
    user = message.from_user
    if user is None or not await dispatch.is_dispatcher(
        session, district.id, user.id, settings.admin_ids
    ):
        await message.reply(t("Only this district's dispatchers can do this."))
        return
    people = await dispatch.list_dispatchers(session, district.id)
    if not people:
        await message.reply(t("This district has no dispatchers yet."))
        return
    lines = [t("Dispatchers of {district}:", district=district.name(t.lang))]
    lines += [f"{p.name or '—'} ({p.telegram_id})" for p in people]
    await message.reply("\n".join(lines))
