"""First contact after the language choice: what the service is, the consent, and the role.

The consent text is versioned and rendered in the person's language; what is stored on "I agree"
is exactly the text that was shown (kept in the conversation until the answer). Declining leaves
the way back open: one button shows the consent again.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.filters import Button
from bot.i18n import N_, I18n, Translator
from bot.keyboards.common import main_menu
from bot.keyboards.registration import (
    AGREE,
    DISAGREE,
    READ_CONSENT,
    ROLE_OTHER,
    ROLE_SELF,
    consent_keyboard,
    read_again_keyboard,
    reply,
)
from bot.services import registration as reg
from bot.services.crypto import DataKey
from bot.settings import Settings
from bot.states.registration import Draft, Onboarding
from handlers.registration import begin_registration, make_ctx
from models import Account

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

INTRO = N_(
    "Invataxi is a free door-to-door ride in a specially equipped car for people with "
    "disabilities, paid from the district's budget. Here you register once and book rides in "
    "your language, without phone calls."
)


async def begin(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    t: Translator,
    settings: Settings,
    *,
    invite: str | None = None,
) -> None:
    """Show the two sentences and the consent; the text shown is kept for the answer."""
    text = reg.consent_text(t, settings.retention_days)
    await state.set_state(Onboarding.consent)
    data: dict[str, str] = {"consent_text": text, "consent_lang": t.lang}
    if invite:
        data["invite"] = invite
    await state.set_data(data)
    await bot.send_message(chat_id, t(INTRO))
    await bot.send_message(chat_id, text, reply_markup=consent_keyboard(t))


async def ask_role(bot: Bot, chat_id: int, state: FSMContext, t: Translator) -> None:
    await state.set_state(Onboarding.role)
    await state.set_data({})
    await bot.send_message(
        chat_id,
        t("Who will ride? Choose one. You can register other people later in /profile."),
        reply_markup=_role_keyboard(t),
    )


def _role_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return reply(t, [t(ROLE_SELF), t(ROLE_OTHER)], back=False)


@router.message(Onboarding.consent, Button(AGREE))
async def agreed(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
    i18n: I18n,
) -> None:
    data = await state.get_data()
    text = str(data.get("consent_text") or reg.consent_text(t, settings.retention_days))
    lang = str(data.get("consent_lang") or t.lang)
    await reg.give_consent(session, account, language=lang, text=text)
    await message.answer(t("Thank you. Your consent is saved."))
    invite = data.get("invite")
    if invite:
        from handlers.representatives import show_invite

        await state.clear()
        await show_invite(message.chat.id, bot, state, session, account, t, settings, str(invite))
        return
    await ask_role(bot, message.chat.id, state, t)


@router.message(Onboarding.consent, Button(DISAGREE))
async def declined(message: Message, state: FSMContext, t: Translator) -> None:
    await state.clear()
    await message.answer(
        t(
            "Without your consent the bot can't keep your data, so it can't book rides for you. "
            "You can still call the dispatcher. If you change your mind, press “Read the consent "
            "again” or send /start."
        ),
        reply_markup=read_again_keyboard(t),
    )


@router.message(Onboarding.consent)
async def consent_unclear(message: Message, t: Translator) -> None:
    await message.answer(
        t("Please press “I agree” or “I do not agree” below."), reply_markup=consent_keyboard(t)
    )


@router.message(StateFilter(None), Button(READ_CONSENT))
async def read_again(
    message: Message, state: FSMContext, t: Translator, bot: Bot, settings: Settings
) -> None:
    await begin(bot, message.chat.id, state, t, settings)


@router.message(Onboarding.role, Button(ROLE_SELF))
async def role_self(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    i18n: I18n,
    bot: Bot,
    settings: Settings,
    data_key: DataKey,
) -> None:
    account.role = "rider"
    if await reg.own_rider(session, account) is not None:
        await state.clear()
        await message.answer(t(reg.OWN_EXISTS.msgid), reply_markup=main_menu(t))
        return
    name = message.from_user.full_name if message.from_user else ""
    ctx = make_ctx(bot, message.chat.id, t, i18n, session, account, settings, data_key, name)
    await begin_registration(ctx, state, Draft(for_other=False))


@router.message(Onboarding.role, Button(ROLE_OTHER))
async def role_other(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    i18n: I18n,
    bot: Bot,
    settings: Settings,
    data_key: DataKey,
) -> None:
    account.role = "representative"
    ctx = make_ctx(bot, message.chat.id, t, i18n, session, account, settings, data_key)
    await begin_registration(ctx, state, Draft(for_other=True))


@router.message(Onboarding.role)
async def role_unclear(message: Message, t: Translator) -> None:
    await message.answer(
        t("Please choose one of the buttons below."), reply_markup=_role_keyboard(t)
    )
