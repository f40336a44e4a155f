"""First contact, the language choice, /cancel and /help: what works at any step."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.common import LanguageChoice
from bot.filters import Button
from bot.i18n import I18n, Translator
from bot.keyboards.common import CANCEL, HELP, LANGUAGE, language_keyboard, main_menu
from models import Account

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")


@router.message(CommandStart())
async def start(
    message: Message, state: FSMContext, account: Account, t: Translator, language_chosen: bool
) -> None:
    await state.clear()
    if not language_chosen:
        await ask_language(message, account)
        return
    await message.answer(t("Welcome back. Choose what to do from the menu."), reply_markup=main_menu(t))


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


@router.callback_query(LanguageChoice.filter())
async def language_chosen(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    account: Account,
    i18n: I18n,
    state: FSMContext,
    session: AsyncSession,
) -> None:
    if callback_data.lang not in ("kk", "ru"):
        return
    first_time = account.language is None
    account.language = callback_data.lang
    t = i18n.translator(callback_data.lang)
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    await query.bot.send_message(  # type: ignore[union-attr]
        account.telegram_id, t("Language: Kazakh.") if callback_data.lang == "kk" else t("Language: Russian.")
    )
    if first_time or await state.get_state() is None:
        await state.clear()
        await show_home(query.bot, account, t)  # type: ignore[arg-type]


async def show_home(bot: object, account: Account, t: Translator) -> None:
    """The main menu with a one-line reminder of what the bot does."""
    from aiogram import Bot

    assert isinstance(bot, Bot)
    await bot.send_message(
        account.telegram_id,
        t("Invataxi: free rides for people with disabilities. Choose what to do."),
        reply_markup=main_menu(t),
    )


@router.message(Command("cancel"), StateFilter("*"))
@router.message(Button(CANCEL), StateFilter("*"))
async def cancel(message: Message, state: FSMContext, t: Translator) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    text = t("Cancelled. Nothing was saved.") if had_state else t("Main menu.")
    await message.answer(text, reply_markup=main_menu(t))


@router.message(Command("help"))
@router.message(Button(HELP))
async def help_command(message: Message, t: Translator) -> None:
    await message.answer(
        t(
            "Commands:\n/book — book a ride\n/rides — my rides\n/profile — my profile\n"
            "/language — change language\n/cancel — stop the current step\n/mydata — what we store\n"
            "/forget — withdraw consent and erase my data"
        ),
        reply_markup=main_menu(t),
    )


@router.message(Command("hide"))
async def hide_keyboard(message: Message, t: Translator) -> None:
    await message.answer(t("Keyboard hidden. Send /start to show the menu."), reply_markup=ReplyKeyboardRemove())
