"""First contact, the language choice, /cancel and /help: what works at any step.

After the language is chosen, a person without consent goes on to onboarding (handlers.onboarding);
a deep link `/start inv_<code>` opens a relative's invite (handlers.representatives).

/start, or a menu button, in the middle of a registration or a booking drops nothing unasked:
the person chooses to continue where they were or to start over. This router comes first, so it
sees those words before the conversations read them as an answer.
"""

from __future__ import annotations

from dataclasses import replace

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.callbacks.common import LanguageChoice
from bot.context import Context
from bot.filters import Button
from bot.i18n import N_, Translator
from bot.keyboards.common import (
    BOOK,
    CANCEL,
    CONTINUE,
    HELP,
    LANGUAGE,
    MY_RIDES,
    PROFILE,
    START_OVER,
    language_keyboard,
    main_menu,
    resume_keyboard,
)
from bot.keyboards.registration import FULL_PROFILE_PREFIX, read_again_keyboard
from bot.profile_view import full_profile_lines
from bot.services import full_profile
from bot.services import help as help_texts
from bot.services import registration as reg
from bot.services.booking import rules_of
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import Reason
from bot.services.language_choice import language_named
from bot.states.booking import Booking, BookingData, load_booking
from bot.states.registration import Draft, Invitation, Onboarding, Registration, load_draft
from handlers import booking as booking_steps
from handlers import registration as registration_steps
from handlers.my_rides import ride_stands
from handlers.onboarding import ask_role
from handlers.onboarding import begin as begin_onboarding
from handlers.registration import data_key
from handlers.representatives import show_invite
from models import District

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
    if args.startswith(FULL_PROFILE_PREFIX):
        await open_full_profile(ctx, args.removeprefix(FULL_PROFILE_PREFIX))
        return
    if not args.startswith(reg.INVITE_PREFIX):
        await start(message, ctx)
        return
    code = args.removeprefix(reg.INVITE_PREFIX)
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


RESUME_REGISTRATION = N_(
    "You were filling in a profile, and nothing is lost. Continue where you were, or start over?"
)
RESUME_BOOKING = N_(
    "You were booking a ride, and nothing is lost. Continue where you were, or start over?"
)


@router.message(CommandStart(), StateFilter(Registration, Booking))
@router.message(Button(BOOK, MY_RIDES, PROFILE), StateFilter(Registration, Booking))
async def offer_resume(message: Message, ctx: Context) -> None:
    """/start or a menu word in the middle of a conversation: ask, never drop the draft."""
    t = ctx.t
    current = await ctx.fsm.get_state() or ""
    text = RESUME_BOOKING if current in booking_steps.BY_STATE else RESUME_REGISTRATION
    ctx.reply(t(text), resume_keyboard(t))


@router.message(Button(CONTINUE), StateFilter(Registration, Booking))
async def resume(message: Message, ctx: Context) -> None:
    """The current question again, with its buttons."""
    current = await ctx.fsm.get_state() or ""
    booking_step = booking_steps.BY_STATE.get(current)
    if booking_step is not None:
        data = await load_booking(ctx.fsm)
        rider = await booking_steps.rider_of(ctx, data)
        await booking_steps.go_to(ctx, data, booking_step.state, rider)
        return
    if current == Registration.companions.state:  # now asked with the needs
        current = Registration.needs.state or ""
    step = registration_steps.BY_STATE.get(current)
    draft = await load_draft(ctx.fsm)
    if step is None:
        await ctx.fsm.clear()
        ctx.reply(ctx.t("Main menu."), main_menu(ctx.t))
        return
    draft.telegram_name = message.from_user.full_name if message.from_user else ""
    await registration_steps.go_to(ctx, draft, step)


@router.message(Button(START_OVER), StateFilter(Registration, Booking))
async def start_over(message: Message, ctx: Context) -> None:
    """The same conversation from its first question; an edit of a profile is just left."""
    current = await ctx.fsm.get_state() or ""
    name = message.from_user.full_name if message.from_user else ""
    if current in booking_steps.BY_STATE:
        await ctx.fsm.clear()
        await booking_steps.begin(ctx, BookingData())
        return
    draft = await load_draft(ctx.fsm)
    await ctx.fsm.clear()
    if draft.mode == "edit":
        ctx.reply(ctx.t("Nothing was changed."), main_menu(ctx.t))
        return
    await registration_steps.begin_registration(
        ctx, Draft(for_other=draft.for_other, telegram_name=name)
    )


async def open_full_profile(ctx: Context, check: str) -> None:
    """A dispatcher opened «Open the profile» on a check's card: the whole profile here, in
    their private chat, never in the group; the service checks the district and audits it."""
    await ctx.fsm.clear()
    if not check.isdigit() or len(check) > 12:
        ctx.reply(ctx.t(full_profile.PROFILE_GONE.msgid))
        return
    found = await full_profile.open_full_profile(
        ctx.session,
        data_key(ctx),
        dispatcher_telegram_id=ctx.person.telegram_id,
        verification_id=int(check),
    )
    if isinstance(found, Reason):
        ctx.reply(found.render(ctx.t))
        return
    district = await district_by_id(ctx.session, found.district_id)
    ctx.reply("\n".join(full_profile_lines(ctx.t, found, district)))


@router.message(CommandStart())
async def start(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    if not ctx.person.language:
        ask_language(ctx, message)
        return
    if ctx.person.consent_version is None:
        await begin_onboarding(ctx)
        return
    if not await reg.riders_of(ctx.session, ctx.person):
        # Nobody registered yet: the menu would only send them back here (B1). Registration.
        await ask_role(ctx)
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
    if callback_data.lang not in ("kk", "ru"):
        return
    if isinstance(query.message, Message):
        ctx.edit_markup(query.message, None)
    await choose_language(ctx, callback_data.lang)


def _language_typed(message: Message) -> dict[str, str] | bool:
    language = language_named(message.text or "")
    return {"typed_language": language} if language else False


@router.message(F.text, StateFilter(None, Invitation.pending), _language_typed)
async def language_typed(message: Message, ctx: Context, typed_language: str) -> None:
    """«қазақша», «русский», «на казахском» typed at the language step (or with no step open)
    choose it, as the buttons do."""
    await choose_language(ctx, typed_language)


async def choose_language(ctx: Context, lang: str) -> None:
    """Store the language; a newcomer goes on to the consent, anyone else where they were."""
    account = ctx.person
    account.language = lang
    # From here on the step speaks the language just chosen.
    ctx = replace(ctx, lang=lang, t=ctx.i18n.translator(lang))
    t, state = ctx.t, ctx.fsm
    ctx.reply(t("Language: Kazakh.") if lang == "kk" else t("Language: Russian."))
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
    elif current in booking_steps.BY_STATE or current in registration_steps.BY_STATE:
        # The language changed in the middle of a conversation: its question in the new
        # language is one tap away, and nothing is dropped.
        resume_text = RESUME_BOOKING if current in booking_steps.BY_STATE else RESUME_REGISTRATION
        ctx.reply(t(resume_text), resume_keyboard(t))


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
    stands = await ride_stands(ctx)  # inside cancelling a ride: say that it stays booked
    await state.clear()
    if stands is not None:
        text = stands
    else:
        text = t("Stopped. Nothing was saved.") if had_state else t("Main menu.")
    if ctx.person.consent_version is None:
        # Without consent the menu leads nowhere: keep the way back to the consent open.
        ctx.reply(text, read_again_keyboard(t))
        return
    ctx.reply(text, main_menu(t))


@router.message(Command("help"))
@router.message(Button(HELP))
async def help_command(message: Message, ctx: Context) -> None:
    """The rules in plain words for the person's district (the desk's phone among them), then
    the commands."""
    riders = await reg.riders_of(ctx.session, ctx.person)
    district = await district_by_id(ctx.session, riders[0].district_id) if riders else None
    text = help_message(ctx.t, district, registered=bool(riders))
    ctx.reply(text, main_menu(ctx.t) if ctx.person.consent_version else None)


def help_message(t: Translator, district: District | None, *, registered: bool) -> str:
    """/help's text: `help.help_texts` for the district (the defaults when none is known)."""
    paragraphs = help_texts.help_texts(
        rules_of(district) if district else None,
        help_texts.Desk(district.desk_phone, district.desk_hours) if district else None,
        registered=registered,
    )
    commands = t(
        "Commands:\n/book — book a ride\n/rides — my rides\n/profile — my profile\n"
        "/language — change language\n/cancel — stop the current step\n"
        "/mydata — what we store\n"
        "/forget — withdraw consent and erase my data"
    )
    return "\n\n".join([*(p.render(t) for p in paragraphs), commands])


@router.message(Command("hide"))
async def hide_keyboard(message: Message, ctx: Context) -> None:
    ctx.reply(ctx.t("Keyboard hidden. Send /start to show the menu."), ReplyKeyboardRemove())
