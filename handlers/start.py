"""First contact, the language choice, /cancel and /help: what works at any step.

After the language is chosen, a person without consent goes on to onboarding (handlers.onboarding);
a deep link `/start inv_<code>` opens a relative's invite (handlers.representatives).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.common import LanguageChoice
from bot.filters import Button
from bot.i18n import I18n, Translator
from bot.keyboards.common import CANCEL, HELP, LANGUAGE, language_keyboard, main_menu
from bot.keyboards.registration import read_again_keyboard
from bot.services.registration import INVITE_PREFIX
from bot.settings import Settings
from bot.states.registration import Invitation, Onboarding
from handlers.onboarding import ask_role
from handlers.onboarding import begin as begin_onboarding
from handlers.representatives import show_invite
from models import Account

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")


@router.message(CommandStart(deep_link=True))
async def start_with_link(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
    language_chosen: bool,
) -> None:
    """A deep link (a relative's invite); registered before the plain /start, which it precedes.

    A new person first chooses the language and accepts the consent; the code waits in the
    conversation meanwhile.
    """
    args = command.args or ""
    if not args.startswith(INVITE_PREFIX):
        await start(message, state, account, t, bot, settings, language_chosen)
        return
    code = args.removeprefix(INVITE_PREFIX)
    await state.clear()
    if not language_chosen:
        await state.set_state(Invitation.pending)
        await state.set_data({"invite": code})
        await ask_language(message, account)
        return
    if account.consent_version is None:
        await begin_onboarding(bot, message.chat.id, state, t, settings, invite=code)
        return
    await show_invite(message.chat.id, bot, state, session, account, t, settings, code)


@router.message(CommandStart())
async def start(
    message: Message,
    state: FSMContext,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
    language_chosen: bool,
) -> None:
    await state.clear()
    if not language_chosen:
        await ask_language(message, account)
        return
    if account.consent_version is None:
        await begin_onboarding(bot, message.chat.id, state, t, settings)
        return
    await message.answer(
        t("Welcome back. Choose what to do from the menu."), reply_markup=main_menu(t)
    )


@router.message(Command("language"))
@router.message(Button(LANGUAGE))
async def language_command(message: Message, account: Account) -> None:
    await ask_language(message, account)


async def ask_language(message: Message, account: Account) -> None:
    """Both languages are always offered; Telegram's own setting only pre-selects one."""
    code = message.from_user.language_code if message.from_user else None
    selected = account.language or ("kk" if code == "kk" else "ru" if code == "ru" else None)
    await message.answer(
        "Тілді таңдаңыз.\nВыберите язык.", reply_markup=language_keyboard(selected)
    )


ONBOARDING_STATES = frozenset(
    {Invitation.pending.state, Onboarding.consent.state, Onboarding.role.state}
)


@router.callback_query(LanguageChoice.filter())
async def language_chosen(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    account: Account,
    i18n: I18n,
    state: FSMContext,
    session: AsyncSession,
    bot: Bot,
    settings: Settings,
) -> None:
    """Store the language; a newcomer goes on to the consent, anyone else where they were."""
    if callback_data.lang not in ("kk", "ru"):
        return
    account.language = callback_data.lang
    t = i18n.translator(callback_data.lang)
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    await bot.send_message(
        account.telegram_id,
        t("Language: Kazakh.") if callback_data.lang == "kk" else t("Language: Russian."),
    )
    current = await state.get_state()
    invite = (await state.get_data()).get("invite") if current in ONBOARDING_STATES else None
    if account.consent_version is None and (current is None or current in ONBOARDING_STATES):
        await begin_onboarding(
            bot, account.telegram_id, state, t, settings, invite=str(invite) if invite else None
        )
    elif current == Invitation.pending.state and invite:
        await state.clear()
        await show_invite(
            account.telegram_id, bot, state, session, account, t, settings, str(invite)
        )
    elif current == Onboarding.role.state:
        await ask_role(bot, account.telegram_id, state, t)
    elif current is None:
        await show_home(bot, account, t)


async def show_home(bot: Bot, account: Account, t: Translator) -> None:
    """The main menu with a one-line reminder of what the bot does."""
    await bot.send_message(
        account.telegram_id,
        t("Invataxi: free rides for people with disabilities. Choose what to do."),
        reply_markup=main_menu(t),
    )


@router.message(Command("cancel"), StateFilter("*"))
@router.message(Button(CANCEL), StateFilter("*"))
async def cancel(message: Message, state: FSMContext, account: Account, t: Translator) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    text = t("Cancelled. Nothing was saved.") if had_state else t("Main menu.")
    if account.consent_version is None:
        # Without consent the menu leads nowhere: keep the way back to the consent open.
        await message.answer(text, reply_markup=read_again_keyboard(t))
        return
    await message.answer(text, reply_markup=main_menu(t))


@router.message(Command("help"))
@router.message(Button(HELP))
async def help_command(message: Message, t: Translator) -> None:
    await message.answer(
        t(
            "Commands:\n/book — book a ride\n/rides — my rides\n/profile — my profile\n"
            "/language — change language\n/cancel — stop the current step\n"
            "/mydata — what we store\n"
            "/forget — withdraw consent and erase my data"
        ),
        reply_markup=main_menu(t),
    )


@router.message(Command("hide"))
async def hide_keyboard(message: Message, t: Translator) -> None:
    await message.answer(
        t("Keyboard hidden. Send /start to show the menu."), reply_markup=ReplyKeyboardRemove()
    )
