"""First contact after the language choice: what the service is, the consent, and the role.

The consent text is versioned and rendered in the person's language; what is stored on "I agree"
is exactly the text that was shown (kept in the conversation until the answer). Declining leaves
the way back open: one button shows the consent again.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import Message, ReplyKeyboardMarkup

from bot.context import Context
from bot.filters import Button
from bot.i18n import N_, Translator
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
from bot.states.registration import Draft, Onboarding
from handlers.registration import begin_registration
from handlers.representatives import show_invite

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

INTRO = N_(
    "Invataxi is a free door-to-door ride in a specially equipped car for people with "
    "disabilities, paid from the district's budget. Here you register once and book rides in "
    "your language, without phone calls."
)


async def begin(ctx: Context, *, invite: str | None = None) -> None:
    """Show the two sentences and the consent; the text shown is kept for the answer."""
    t = ctx.t
    text = reg.consent_text(t, ctx.settings.retention_days)
    await ctx.fsm.set_state(Onboarding.consent)
    data: dict[str, str] = {"consent_text": text, "consent_lang": t.lang}
    if invite:
        data["invite"] = invite
    await ctx.fsm.set_data(data)
    ctx.reply(t(INTRO))
    ctx.reply(text, consent_keyboard(t))


async def ask_role(ctx: Context) -> None:
    await ctx.fsm.set_state(Onboarding.role)
    await ctx.fsm.set_data({})
    t = ctx.t
    ctx.reply(
        t("Who will ride? Choose one. You can register other people later in /profile."),
        _role_keyboard(t),
    )


def _role_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return reply(t, [t(ROLE_SELF), t(ROLE_OTHER)], back=False)


@router.message(Onboarding.consent, Button(AGREE))
async def agreed(message: Message, ctx: Context) -> None:
    t, state = ctx.t, ctx.fsm
    data = await state.get_data()
    text = str(data.get("consent_text") or reg.consent_text(t, ctx.settings.retention_days))
    lang = str(data.get("consent_lang") or t.lang)
    await reg.give_consent(ctx.session, ctx.person, language=lang, text=text, now=ctx.now)
    ctx.reply(t("Thank you. Your consent is saved."))
    invite = data.get("invite")
    if invite:
        await state.clear()
        await show_invite(ctx, str(invite))
        return
    await ask_role(ctx)


@router.message(Onboarding.consent, Button(DISAGREE))
async def declined(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    t = ctx.t
    ctx.reply(
        t(
            "Without your consent the bot can't keep your data, so it can't book rides for you. "
            "You can still call the dispatcher. If you change your mind, press “Read the consent "
            "again” or send /start."
        ),
        read_again_keyboard(t),
    )


@router.message(Onboarding.consent)
async def consent_unclear(message: Message, ctx: Context) -> None:
    t = ctx.t
    ctx.reply(t("Please press “I agree” or “I do not agree” below."), consent_keyboard(t))


@router.message(StateFilter(None), Button(READ_CONSENT))
async def read_again(message: Message, ctx: Context) -> None:
    await begin(ctx)


@router.message(Onboarding.role, Button(ROLE_SELF))
async def role_self(message: Message, ctx: Context) -> None:
    account = ctx.person
    account.role = "rider"
    if await reg.own_rider(ctx.session, account) is not None:
        await ctx.fsm.clear()
        ctx.reply(ctx.t(reg.OWN_EXISTS.msgid), main_menu(ctx.t))
        return
    name = message.from_user.full_name if message.from_user else ""
    await begin_registration(ctx, Draft(for_other=False, telegram_name=name))


@router.message(Onboarding.role, Button(ROLE_OTHER))
async def role_other(message: Message, ctx: Context) -> None:
    ctx.person.role = "representative"
    await begin_registration(ctx, Draft(for_other=True))


@router.message(Onboarding.role)
async def role_unclear(message: Message, ctx: Context) -> None:
    t = ctx.t
    ctx.reply(t("Please choose one of the buttons below."), _role_keyboard(t))
