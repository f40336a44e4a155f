"""First contact after the language choice: what the service is, the consent, and the role.

The consent is shown as a short summary with the full text one tap away; what is stored on
"I agree" is the full text in the version and language shown (kept in the conversation until the
answer). A newcomer agrees and says who will ride in one tap. Declining leaves the way back
open: one button shows the consent again, and the desk's phone is given.
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
    AGREE_OTHER,
    AGREE_SELF,
    DISAGREE,
    READ_CONSENT,
    ROLE_OTHER,
    ROLE_SELF,
    consent_keyboard,
    read_again_keyboard,
    reply,
)
from bot.services import registration as reg
from bot.services.consent_text import FULL_TEXT_BUTTON, consent_full, consent_summary
from bot.services.help import desk_phones, with_desk_phone
from bot.services.i18n_types import Reason
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
    """Show the two sentences and the consent's summary; the full text is kept for the answer."""
    t = ctx.t
    days = ctx.settings.retention_days
    await ctx.fsm.set_state(Onboarding.consent)
    data: dict[str, str] = {
        "consent_text": consent_full(t, reg.CONSENT_VERSION, days),
        "consent_lang": t.lang,
    }
    if invite:
        data["invite"] = invite
    await ctx.fsm.set_data(data)
    ctx.reply(t(INTRO))
    ctx.reply(consent_summary(t, reg.CONSENT_VERSION, days), await _consent_keyboard(ctx))


async def _consent_keyboard(ctx: Context) -> ReplyKeyboardMarkup:
    """A newcomer's «I agree» also says who will ride; someone with an invite just agrees."""
    data = await ctx.fsm.get_data()
    with_role = not data.get("invite") and await reg.own_rider(ctx.session, ctx.person) is None
    return consent_keyboard(ctx.t, with_role=with_role, full_text=ctx.t(FULL_TEXT_BUTTON))


@router.message(Onboarding.consent, Button(FULL_TEXT_BUTTON))
async def full_text(message: Message, ctx: Context) -> None:
    t = ctx.t
    text = consent_full(t, reg.CONSENT_VERSION, ctx.settings.retention_days)
    await ctx.fsm.update_data(consent_text=text, consent_lang=t.lang)
    ctx.reply(text, await _consent_keyboard(ctx))


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


@router.message(Onboarding.consent, Button(AGREE, AGREE_SELF, AGREE_OTHER))
async def agreed(message: Message, ctx: Context) -> None:
    t, state = ctx.t, ctx.fsm
    data = await state.get_data()
    days = ctx.settings.retention_days
    text = str(data.get("consent_text") or consent_full(t, reg.CONSENT_VERSION, days))
    lang = str(data.get("consent_lang") or t.lang)
    await reg.give_consent(ctx.session, ctx.person, language=lang, text=text, now=ctx.now)
    ctx.reply(t("Thank you. Your consent is saved."))
    invite = data.get("invite")
    if invite:
        await state.clear()
        await show_invite(ctx, str(invite))
        return
    pressed = (message.text or "").strip()
    if pressed in ctx.i18n.variants(AGREE_SELF):
        await state.set_data({})
        await role_self(message, ctx)
        return
    if pressed in ctx.i18n.variants(AGREE_OTHER):
        await state.set_data({})
        await role_other(message, ctx)
        return
    await ask_role(ctx)


@router.message(Onboarding.consent, Button(DISAGREE))
async def declined(message: Message, ctx: Context) -> None:
    await ctx.fsm.clear()
    t = ctx.t
    # The district is not known yet: every desk's phone, so nobody is left without a number.
    desks = [(d.name(t.lang), d.desk_phone or "") for d in await reg.active_districts(ctx.session)]
    refusal = with_desk_phone(Reason("no_consent", CONSENT_DECLINED), desk_phones(desks) or None)
    ctx.reply(refusal.render(t), read_again_keyboard(t))


CONSENT_DECLINED = N_(
    "Without your consent the bot can't keep your data, so it can't book rides for you. "
    "You can still call the dispatcher. If you change your mind, press “Read the consent "
    "again” or send /start."
)


@router.message(Onboarding.consent)
async def consent_unclear(message: Message, ctx: Context) -> None:
    t = ctx.t
    ctx.reply(t("Please press “I agree” or “I do not agree” below."), await _consent_keyboard(ctx))


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
