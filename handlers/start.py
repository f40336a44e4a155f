"""First contact, the language choice, /cancel and /help: what works at any step.

After the language is chosen, a person without consent goes on to onboarding (handlers.onboarding);
a deep link `/start inv_<code>` opens a relative's invite (handlers.representatives).
"""

from __future__ import annotations

from dataclasses import replace

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.callbacks.common import LanguageChoice
from bot.context import Context
from bot.filters import Button
from bot.keyboards.common import CANCEL, HELP, LANGUAGE, language_keyboard, main_menu
from bot.keyboards.registration import read_again_keyboard
from bot.services.registration import INVITE_PREFIX
from bot.states.registration import Invitation, Onboarding
from handlers.onboarding import ask_role
from handlers.onboarding import begin as begin_onboarding
from handlers.representatives import show_invite

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")


@router.message(CommandStart(deep_link=True))
async def start_with_link(message: Message, command: CommandObject, ctx: Context) -> None:
    """A deep link (a relative's invite); registered before the plain /start, which it precedes.

    A new person first chooses the language and accepts the consent; the code waits in the
    conversation meanwhile.
    """
    args = command.args or ""
    if not args.startswith(INVITE_PREFIX):
        await start(message, ctx)
        return
    code = args.removeprefix(INVITE_PREFIX)
    state = ctx.fsm
    await state.clear()
    if not ctx.person.language:
        await state.set_state(Invitation.pending)
        await state.set_data({"invite": code})
        ask_language(ctx, message)
        return
    if ctx.person.consent_version is None:
        await begin_onboarding(ctx, invite=code)
        return
    await show_invite(ctx, code)


@router.message(CommandStart())
async def start(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    if not ctx.person.language:
        ask_language(ctx, message)
        return
    if ctx.person.consent_version is None:
        await begin_onboarding(ctx)
        return
    ctx.reply(ctx.t("Welcome back. Choose what to do from the menu."), main_menu(ctx.t))


@router.message(Command("language"))
@router.message(Button(LANGUAGE))
async def language_command(message: Message, ctx: Context) -> None:
    ask_language(ctx, message)


def ask_language(ctx: Context, message: Message) -> None:
    """Both languages are always offered; Telegram's own setting only pre-selects one."""
    code = message.from_user.language_code if message.from_user else None
    selected = ctx.person.language or ("kk" if code == "kk" else "ru" if code == "ru" else None)
    ctx.reply("Тілді таңдаңыз.\nВыберите язык.", language_keyboard(selected))


ONBOARDING_STATES = frozenset(
    {Invitation.pending.state, Onboarding.consent.state, Onboarding.role.state}
)


@router.callback_query(LanguageChoice.filter())
async def language_chosen(
    query: CallbackQuery, callback_data: LanguageChoice, ctx: Context
) -> None:
    """Store the language; a newcomer goes on to the consent, anyone else where they were."""
    if callback_data.lang not in ("kk", "ru"):
        return
    account = ctx.person
    account.language = callback_data.lang
    # From here on the step speaks the language just chosen.
    ctx = replace(ctx, lang=callback_data.lang, t=ctx.i18n.translator(callback_data.lang))
    t, state = ctx.t, ctx.fsm
    if isinstance(query.message, Message):
        ctx.edit_markup(query.message, None)
    ctx.reply(t("Language: Kazakh.") if callback_data.lang == "kk" else t("Language: Russian."))
    current = await state.get_state()
    invite = (await state.get_data()).get("invite") if current in ONBOARDING_STATES else None
    if account.consent_version is None and (current is None or current in ONBOARDING_STATES):
        await begin_onboarding(ctx, invite=str(invite) if invite else None)
    elif current == Invitation.pending.state and invite:
        await state.clear()
        await show_invite(ctx, str(invite))
    elif current == Onboarding.role.state:
        await ask_role(ctx)
    elif current is None:
        show_home(ctx)


def show_home(ctx: Context) -> None:
    """The main menu with a one-line reminder of what the bot does."""
    t = ctx.t
    ctx.reply(
        t("Invataxi: free rides for people with disabilities. Choose what to do."), main_menu(t)
    )


@router.message(Command("cancel"), StateFilter("*"))
@router.message(Button(CANCEL), StateFilter("*"))
async def cancel(message: Message, ctx: Context) -> None:
    t, state = ctx.t, ctx.fsm
    had_state = await state.get_state() is not None
    await state.clear()
    text = t("Cancelled. Nothing was saved.") if had_state else t("Main menu.")
    if ctx.person.consent_version is None:
        # Without consent the menu leads nowhere: keep the way back to the consent open.
        ctx.reply(text, read_again_keyboard(t))
        return
    ctx.reply(text, main_menu(t))


@router.message(Command("help"))
@router.message(Button(HELP))
async def help_command(message: Message, ctx: Context) -> None:
    t = ctx.t
    ctx.reply(
        t(
            "Commands:\n/book — book a ride\n/rides — my rides\n/profile — my profile\n"
            "/language — change language\n/cancel — stop the current step\n"
            "/mydata — what we store\n"
            "/forget — withdraw consent and erase my data"
        ),
        main_menu(t),
    )


@router.message(Command("hide"))
async def hide_keyboard(message: Message, ctx: Context) -> None:
    ctx.reply(ctx.t("Keyboard hidden. Send /start to show the menu."), ReplyKeyboardRemove())
