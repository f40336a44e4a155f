"""The rider-profile conversation: one question per step, Back and Cancel on every step.

The steps are a table (`STEPS`): each has a question, a hint with an example, and a parser that
returns the updated draft or a problem. One handler drives them all, so every step validates
its input, answers stickers or photos with the same hint, and keeps its place on bad input.
Back walks to the previous step that applies to this draft; `/cancel` (handlers.start) drops
the draft, and nothing is saved before the summary is confirmed.

The same steps edit one part of an existing profile (`GROUPS`), started from /profile.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup

from bot import forms
from bot.callbacks.registration import NeedToggle, SummaryChange
from bot.context import Context
from bot.forms import Answer, Form, Question
from bot.i18n import N_, I18n
from bot.keyboards import registration as kb
from bot.keyboards.common import BACK, main_menu
from bot.profile_view import (
    NEED_ORDER,
    ProfileView,
    profile_lines,
    send_rider_page,
    view_of_draft,
)
from bot.services import iin_check, limits
from bot.services import registration as reg
from bot.services.crypto import DataKey, SealedIin, seal_iin
from bot.services.district_cache import district_by_id
from bot.services.eligibility import birth_date_for
from bot.services.i18n_types import Reason
from bot.services.iin import check_iin, iin_digits
from bot.services.phone import normalize_phone
from bot.services.text import strip_hostile
from bot.states.registration import Draft, Registration, load_draft, save_draft
from models import District

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

MAX_TEXT = 300
MAX_NAME = 200
MAX_NUMBER = 64
DATE_RE = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*$")
NAME_RE = re.compile(r"^[^\W\d_]+(?:[ \-'’.][^\W\d_]*)*$")
EXAMPLE_IIN = "900101300017"

TOO_LONG = N_("This is too long: please keep it under {limit} characters.")
NO_WORDS = N_("Please use letters and digits, not only symbols or emoji.")
PICK_BUTTON = N_("Please choose one of the buttons below.")
DATE_FORMAT = N_("Please type the date as day.month.year, for example: {example}.")
DATE_PASSED = N_("The date {date} has already passed.")
VKK_PASSED = N_("The date {date} has already passed: rides need a conclusion that is still valid.")


@dataclass(frozen=True)
class Problem:
    """Bad input: what is wrong (optional), then the step's hint with an example."""

    reason: Reason | None = None


def problem(msgid: str, **params: object) -> Problem:
    return Problem(Reason(msgid, msgid, params))


@dataclass(frozen=True)
class Stay:
    """Valid input that keeps the step open (a need toggled): ask again with the new draft."""

    draft: Draft


Parsed = Draft | Problem | Stay
Wants = Literal["text", "choice", "contact", "location"]


@dataclass(frozen=True)
class Step:
    state: State
    prompt: Callable[[Context, Draft, bool], Awaitable[tuple[str, ReplyKeyboardMarkup]]]
    hint: Callable[[Context, Draft], str]
    parse: Callable[[Message, Context, Draft], Awaitable[Parsed]]
    applies: Callable[[Draft], bool]
    wants: Wants = "text"
    # A second message after the question, with inline buttons (the needs to tick, the
    # summary's "Change" buttons): a tap there edits that message, never re-sends the question.
    extra: Callable[[Context, Draft], Awaitable[tuple[str, InlineKeyboardMarkup]]] | None = None


def _always(_: Draft) -> bool:
    return True


# -- input helpers ------------------------------------------------------------------------------


def words(text: str | None, limit: int) -> str | Problem:
    """Typed words: control and direction-override characters dropped first (a NUL fails the
    save on PostgreSQL, an override can spoof a card's line), then trimmed, spaces collapsed,
    not too long, not only emoji or punctuation."""
    value = " ".join(strip_hostile(text or "").split())
    if not value:
        return Problem()
    if len(value) > limit:
        return problem(TOO_LONG, limit=limit)
    if not any(ch.isalnum() for ch in value):
        return problem(NO_WORDS)
    return value


def parse_date(text: str | None) -> date | None:
    match = DATE_RE.match(text or "")
    if match is None:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def chosen(i18n: I18n, text: str | None, msgid: str) -> bool:
    value = (text or "").strip()
    return bool(value) and value in i18n.variants(msgid)


def typed_numbers(text: str) -> list[int] | None:
    """'1 3', '1,3', '1, 3' -> [1, 3]; None when anything else is in the text."""
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


# -- the steps ----------------------------------------------------------------------------------


def own(draft: Draft) -> bool:
    return not draft.for_other


async def relationship_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    options = [t(msgid) for msgid in RELATIONSHIPS.values()]
    return t("Who are you to the person you are registering?"), kb.reply(t, options, back=back)


def pick_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t(PICK_BUTTON)


# Who registers someone else, as people are: a daughter, a son, a spouse, any relative, not only a
# parent, a guardian or someone holding a power of attorney.
RELATIONSHIPS = {
    "parent": kb.PARENT,
    "child": kb.CHILD_OF,
    "spouse": kb.SPOUSE,
    # Not "relative": that is a relative linked by the rider's invite, whom the card leaves out.
    "other_relative": kb.OTHER_RELATIVE,
    "guardian": kb.GUARDIAN,
    "attorney": kb.ATTORNEY,
}
# Typed instead of pressed («Дочь», «қызымын», «жена»…): folded stems, in both languages.
TYPED_RELATIONSHIPS = {
    "child": ("доч", "сын", "қыз", "ұл", "бала"),
    "spouse": ("жена", "муж", "супруг", "әйел", "күйеу", "жұбай"),
    "parent": ("мать", "мама", "отец", "папа", "родител", "ана", "әке", "ата-ана"),
    "other_relative": (
        "родствен",
        "брат",
        "сестр",
        "внук",
        "туыс",
        "немере",
        "аға",
        "апа",
    ),
}


def typed_relationship(text: str | None) -> str | None:
    words = re.findall(r"[^\W\d_][\w-]*", (text or "").casefold())
    for word in words:
        for kind, stems in TYPED_RELATIONSHIPS.items():
            if any(word.startswith(stem) for stem in stems):
                return kind
    return None


async def relationship_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    kind = next(
        (k for k, msgid in RELATIONSHIPS.items() if chosen(ctx.i18n, message.text, msgid)),
        None,
    ) or typed_relationship(message.text)
    if kind is None:
        return Problem()
    update: dict[str, object] = {"relationship": kind}
    if kind != "attorney":
        update.update(poa_number=None, poa_expires_on=None)
    return draft.model_copy(update=update)


# -- the representative's own name and phone ------------------------------------------------


def rep_name_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t(N_("Type your name in letters, for example: Aigerim Seitova."))


async def rep_name_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = t(N_("Your own name: the dispatcher will call you about the rider's rides."))
    suggestion = valid_name(draft.telegram_name)
    options = [suggestion] if suggestion else []
    return text + "\n" + rep_name_hint(ctx, draft), kb.reply(t, options, back=back)


async def rep_name_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = valid_name(message.text)
    if value is None:
        return Problem()
    return draft.model_copy(update={"rep_name": value})


async def rep_phone_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = t(N_("Your own phone number: press “Share my number” below, or type it."))
    return text + "\n" + phone_hint(ctx, draft), kb.phone_keyboard(t, own=True, back=back)


async def rep_phone_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    raw = message.contact.phone_number if message.contact else message.text
    phone = normalize_phone(raw or "")
    if phone is None:
        return problem(NOT_A_PHONE)
    return draft.model_copy(update={"rep_phone": phone})


async def poa_number_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    return ctx.t(
        "The number of the power of attorney, as written on it."
    ) + "\n" + poa_number_hint(ctx, draft), kb.reply(ctx.t, [], back=back)


def poa_number_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the number, for example: 02-1234.")


async def number_parse(message: Message, ctx: Context) -> str | Problem:
    value = words(message.text, MAX_NUMBER)
    if isinstance(value, Problem):
        return value
    if not any(ch.isdigit() for ch in value):
        return problem(N_("A document number has digits in it."))
    return value


async def poa_number_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = await number_parse(message, ctx)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"poa_number": value})


def date_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t(DATE_FORMAT, example=f"31.12.{ctx.today.year + 1}")


async def poa_expiry_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    text = ctx.t("Until what date is the power of attorney valid?") + "\n" + date_hint(ctx, draft)
    return text, kb.reply(ctx.t, [], back=back)


async def future_date(message: Message, ctx: Context) -> date | Problem:
    value = parse_date(message.text)
    if value is None:
        return Problem()
    if value < ctx.today:
        return problem(DATE_PASSED, date=ctx.t.date(value))
    return value


async def poa_expiry_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = await future_date(message, ctx)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"poa_expires_on": value})


def name_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the full name in letters, for example: Aigerim Nurlanqyzy Seitova.")


def valid_name(text: str | None) -> str | None:
    value = " ".join((text or "").split())
    if not 2 <= len(value) <= MAX_NAME or not NAME_RE.match(value):
        return None
    return value if sum(ch.isalpha() for ch in value) >= 2 else None


async def name_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    if own(draft):
        text = t("Your full name, as in your ID card.")
        # Telegram's name is offered only when it looks like a full name: a first name
        # alone pressed here would go to the dispatcher as the name on the ID card.
        suggestion = valid_name(draft.telegram_name)
        full = suggestion is not None and len(suggestion.split()) >= 2
        options = [suggestion] if suggestion and full else []
    else:
        text = t("The rider's full name, as in their ID card or birth certificate.")
        options = []
    return text + "\n" + name_hint(ctx, draft), kb.reply(t, options, back=back)


async def name_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = valid_name(message.text)
    if value is None:
        if len(" ".join((message.text or "").split())) > MAX_NAME:
            return problem(TOO_LONG, limit=MAX_NAME)
        return Problem()
    return draft.model_copy(update={"full_name": value})


# The rule accepts a Kazakhstan landline too (the desk can call it), so the words say "phone".
NOT_A_PHONE = N_("This is not a Kazakhstan phone number.")


def phone_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t(N_("Type a Kazakhstan phone number, for example: +7 701 123 45 67."))


async def phone_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    if own(draft):
        text = t(N_("Your phone number: press “Share my number” below, or type it."))
    else:
        text = t(
            N_(
                "The rider's phone number. If the rider has no phone, press “Use my own "
                "number”: the driver will call you."
            )
        )
    keyboard = kb.phone_keyboard(t, own=own(draft), back=back)
    return text + "\n" + phone_hint(ctx, draft), keyboard


async def phone_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    raw = message.contact.phone_number if message.contact else message.text
    phone = normalize_phone(raw or "")
    if phone is None:
        return problem(NOT_A_PHONE)
    return draft.model_copy(update={"phone": phone})


def iin_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the 12 digits of the IIN, for example: {example}.", example=EXAMPLE_IIN)


async def iin_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = (
        t("Your IIN, from your ID card.")
        if own(draft)
        else t("The rider's IIN, from their ID card or birth certificate.")
    )
    return text + "\n" + iin_hint(ctx, draft), kb.reply(t, [], back=back)


IIN_ERRORS = {
    "format": N_("An IIN is exactly 12 digits."),
    "checksum": N_(
        "This IIN has a mistake: its last digit does not match the others. "
        "Please check each digit."
    ),
    "never_issued": N_("No IIN is ever issued with these digits. Please check each digit."),
}


async def iin_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    digits = iin_digits(message.text or "").replace("-", "")
    checked = check_iin(digits)
    if not checked.valid:
        return problem(IIN_ERRORS[checked.error or "format"])
    # Every valid IIN is answered alike and never looked up here (that told anyone whether a
    # person is registered); only the tries are counted. A duplicate shows when it is saved.
    refused = await iin_check.iin_step(
        ctx.session, ctx.person, limits.limits_of(None), now=ctx.now
    )
    if refused is not None:
        return Problem(refused)
    sealed = seal_iin(data_key(ctx), digits)
    born = birth_date_for(checked, None, on=ctx.today)
    # Neither the last digits nor the birth date from the IIN stay in the draft in clear (it
    # sits in the conversation state for days): both are read from the sealed IIN when needed.
    return draft.model_copy(
        update={
            "iin_encrypted": sealed.encrypted,
            "iin_hash": sealed.lookup_hash,
            "needs_birth_date": born is None,
            "birth_date": None,
        }
    )


def iin_facts(ctx: Context, draft: Draft) -> tuple[str | None, date | None]:
    """The IIN's last four digits and the birth date (from the IIN's digits, else the one
    typed), read from the draft's sealed IIN."""
    if not draft.iin_encrypted:
        return None, draft.birth_date
    digits = data_key(ctx).decrypt(draft.iin_encrypted)
    return digits[-4:], birth_date_for(check_iin(digits), draft.birth_date, on=ctx.today)


async def duplicate_answer(ctx: Context, district: District | None, phone: str) -> str:
    """Saving found the IIN taken: the desk is asked to call; the person hears only that a
    dispatcher will call (as anyone whose registration needs a call would)."""
    if district is None:
        return ctx.t(iin_check.DUPLICATE_ANSWER, district="—", phone=phone)
    answer = await iin_check.answer_duplicate(ctx.session, ctx.person, district, phone)
    return answer.render(ctx.t)


def birth_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t(DATE_FORMAT, example="05.03.1958")


async def birth_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    text = ctx.t(
        "The date digits of this IIN are not a birth date, so please type the date of birth."
    )
    return text + "\n" + birth_hint(ctx, draft), kb.reply(ctx.t, [], back=back)


async def birth_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = parse_date(message.text)
    if value is None:
        return Problem()
    if value >= ctx.today or value.year < 1900:
        return problem(N_("This can't be a date of birth."))
    return draft.model_copy(update={"birth_date": value})


def district_name(district: District, lang: str) -> str:
    return district.name(lang)


async def district_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    districts = await reg.active_districts(ctx.session)
    text = (
        t("Which city or district do you live in?")
        if own(draft)
        else t("Which city or district does the rider live in?")
    )
    return text, kb.reply(t, [district_name(d, t.lang) for d in districts], back=back)


async def district_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = (message.text or "").strip().casefold()
    for district in await reg.active_districts(ctx.session):
        if value in (district.name_kk.casefold(), district.name_ru.casefold()):
            update: dict[str, object] = {"district_id": district.id}
            if draft.category and draft.category not in _categories(district):
                update["category"] = None
            return draft.model_copy(update=update)
    return Problem()


def address_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the street, house and flat, for example: Abai street 12, flat 5.")


async def address_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = t(
        "Home address, where the car picks up. If you are at that home now, you can send a "
        "location pin instead."
    )
    return text + "\n" + address_hint(ctx, draft), kb.address_keyboard(t, back=back)


async def address_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    if message.location is not None:
        return draft.model_copy(
            update={
                "home_lat": message.location.latitude,
                "home_lon": message.location.longitude,
                "home_address": None,
            }
        )
    value = words(message.text, MAX_TEXT)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"home_address": value, "home_lat": None, "home_lon": None})


async def address_text_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = t("The pin is saved. Now describe the address in words for the driver.")
    return text + "\n" + address_hint(ctx, draft), kb.reply(t, [], back=back)


async def address_text_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = words(message.text, MAX_TEXT)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"home_address": value})


def _categories(district: District | None) -> list[str]:
    extra = list(reg.extra_categories(district)) if district is not None else []
    return [*reg.CATEGORY_LABELS, *extra]


async def _district(ctx: Context, draft: Draft) -> District | None:
    return await district_by_id(ctx.session, draft.district_id) if draft.district_id else None


async def category_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    district = await _district(ctx, draft)
    options = [reg.category_label(t, t.lang, code, district) for code in _categories(district)]
    text = (
        t("Which of these describes you? It decides the right to the service.")
        if own(draft)
        else t("Which of these describes the rider? It decides the right to the service.")
    )
    return text, kb.reply(t, options, back=back)


async def category_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = (message.text or "").strip()
    district = await _district(ctx, draft)
    for code in _categories(district):
        labels = (
            ctx.i18n.variants(reg.CATEGORY_LABELS[code])
            if code in reg.CATEGORY_LABELS
            else {reg.category_label(ctx.t, lang, code, district) for lang in ("kk", "ru")}
        )
        if value in labels:
            update: dict[str, object] = {"category": code}
            if code != reg.CHILD:
                update["centre_name"] = None
            if code == reg.GROUP1:
                update["disability_group"] = 1
            return draft.model_copy(update=update)
    return Problem()


def centre_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the centre's name, for example: Umit rehabilitation centre.")


async def centre_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    text = ctx.t("Which rehabilitation or day-care centre does the child attend?")
    return text + "\n" + centre_hint(ctx, draft), kb.reply(ctx.t, [], back=back)


async def centre_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = words(message.text, MAX_NAME)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"centre_name": value})


GROUP_TYPED = {"1": 1, "i": 1, "2": 2, "ii": 2, "3": 3, "iii": 3}


async def group_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    options = [t(kb.GROUP_LABELS[n]) for n in (1, 2, 3)] + [t(kb.NO_GROUP)]
    text = t("Disability group? For an elderly person or a child without one, choose the last.")
    return text, kb.reply(t, options, back=back)


async def group_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    text = (message.text or "").strip()
    if chosen(ctx.i18n, text, kb.NO_GROUP):
        return draft.model_copy(update={"disability_group": None})
    for number, msgid in kb.GROUP_LABELS.items():
        if chosen(ctx.i18n, text, msgid):
            return draft.model_copy(update={"disability_group": number})
    typed = GROUP_TYPED.get(text.casefold())
    if typed is not None:
        return draft.model_copy(update={"disability_group": typed})
    return Problem()


def vkk_number_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Type the number as written on the conclusion, for example: 123/45.")


async def vkk_number_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    text = ctx.t("The number of the VKK conclusion (the medical advisory commission).")
    return text + "\n" + vkk_number_hint(ctx, draft), kb.reply(ctx.t, [], back=back)


async def vkk_number_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    value = await number_parse(message, ctx)
    if isinstance(value, Problem):
        return value
    return draft.model_copy(update={"vkk_number": value})


def vkk_expiry_hint(ctx: Context, draft: Draft) -> str:
    return date_hint(ctx, draft) + " " + ctx.t("Or press “Indefinite”.")


async def vkk_expiry_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    text = ctx.t("Until what date is the VKK conclusion valid?")
    return text + "\n" + vkk_expiry_hint(ctx, draft), kb.reply(
        ctx.t, [ctx.t(kb.INDEFINITE)], back=back
    )


async def vkk_expiry_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    if chosen(ctx.i18n, message.text, kb.INDEFINITE):
        return draft.model_copy(update={"vkk_expires_on": None, "vkk_indefinite": True})
    value = parse_date(message.text)
    if value is None:
        return Problem()
    if value < ctx.today:
        return problem(VKK_PASSED, date=ctx.t.date(value))
    return draft.model_copy(update={"vkk_expires_on": value, "vkk_indefinite": False})


def needs_hint(ctx: Context, draft: Draft) -> str:
    return ctx.t("Tap each that applies, then “Done”. Or type the numbers, for example: 1 3.")


# Needs and who rides along are one question: "needs an assistant" is who rides along, too.
ASKED_NEEDS = [*NEED_ORDER, "companion"]


def need_label(code: str) -> str:
    return kb.COMPANION_NEED if code == "companion" else reg.NEED_LABELS[code]


def needs_chosen(draft: Draft) -> set[str]:
    return set(draft.needs) | ({"companion"} if draft.usual_companion else set())


def with_needs(draft: Draft, codes: set[str]) -> Draft:
    """The ticked codes as the draft keeps them: needs, and who usually rides along."""
    return draft.model_copy(
        update={
            "needs": [c for c in NEED_ORDER if c in codes],
            "usual_assistant": "assistant" in codes,
            "usual_companion": "companion" in codes,
        }
    )


async def needs_prompt(ctx: Context, draft: Draft, back: bool) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    head = (
        t("What do you need on the way?")
        if own(draft)
        else t("What does the rider need on the way?")
    )
    return f"{head}\n{needs_hint(ctx, draft)}", kb.needs_done_keyboard(t, back=back)


async def needs_list(ctx: Context, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
    t = ctx.t
    ticked = needs_chosen(draft)
    options = [(code, t(need_label(code)), code in ticked) for code in ASKED_NEEDS]
    return t(N_("Tick what applies:")), kb.needs_inline(t, options)


async def needs_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    text = (message.text or "").strip()
    if chosen(ctx.i18n, text, kb.DONE):
        return with_needs(draft, needs_chosen(draft))
    if chosen(ctx.i18n, text, kb.NO_NEEDS) or text == "0":
        return with_needs(draft, set())
    label = text.removeprefix(kb.CHOSEN_MARK).strip()
    for code in ASKED_NEEDS:
        if chosen(ctx.i18n, label, need_label(code)):
            return Stay(with_needs(draft, needs_chosen(draft) ^ {code}))
    numbers = typed_numbers(text)
    if numbers is not None and all(1 <= n <= len(ASKED_NEEDS) for n in numbers):
        return with_needs(draft, {ASKED_NEEDS[n - 1] for n in numbers})
    return Problem()


@router.callback_query(Registration.needs, NeedToggle.filter())
async def need_toggled(query: CallbackQuery, callback_data: NeedToggle, ctx: Context) -> None:
    """A tick changes the buttons only: a screen reader does not read the question again."""
    t = ctx.t
    if callback_data.code not in ASKED_NEEDS:
        return
    draft = await load_draft(ctx.fsm)
    draft = with_needs(draft, needs_chosen(draft) ^ {callback_data.code})
    await save_draft(ctx.fsm, draft)
    _, markup = await needs_list(ctx, draft)
    ctx.edit_markup(query.message, markup)
    label = t(need_label(callback_data.code))
    ticked = callback_data.code in needs_chosen(draft)
    ctx.toast(
        t(N_("Chosen: {need}"), need=label) if ticked else t(N_("Not chosen: {need}"), need=label)
    )


@router.callback_query(NeedToggle.filter(), StateFilter("*"))
async def old_need_toggled(query: CallbackQuery, ctx: Context) -> None:
    ctx.toast(ctx.t(N_("This list is out of date: the question was answered.")), alert=True)


async def summary_prompt(
    ctx: Context, draft: Draft, back: bool
) -> tuple[str, ReplyKeyboardMarkup]:
    t = ctx.t
    text = t(
        N_(
            "Almost done. Check the profile and press “Confirm and send for checking”, or a "
            "“Change” button under it."
        )
    )
    return text, kb.reply(t, [t(kb.CONFIRM)], back=back)


async def summary_view(ctx: Context, draft: Draft) -> tuple[str, InlineKeyboardMarkup]:
    """The whole profile, with a "Change" button per part: no ten «Back» to fix the name."""
    t = ctx.t
    district = await _district(ctx, draft)
    lines = [t("Please check the profile:"), *profile_lines(t, draft_view(ctx, draft, district))]
    return "\n".join(lines), kb.summary_changes(t, summary_groups(draft))


def draft_view(ctx: Context, draft: Draft, district: District | None) -> ProfileView:
    last4, born = iin_facts(ctx, draft)
    return replace(view_of_draft(draft, district), iin_last4=last4, birth_date=born)


def summary_groups(draft: Draft) -> list[str]:
    groups = ["name", "phone", "district", "iin", "address", "category", "vkk", "needs"]
    if draft.for_other:
        groups = ["relationship", "contact", *groups]
    return groups


async def summary_parse(message: Message, ctx: Context, draft: Draft) -> Parsed:
    return Problem()


@router.callback_query(Registration.summary, SummaryChange.filter())
async def summary_change(query: CallbackQuery, callback_data: SummaryChange, ctx: Context) -> None:
    """Answer that part's questions again, then come back to the summary."""
    draft = await load_draft(ctx.fsm)
    if callback_data.group not in summary_groups(draft):
        ctx.toast(ctx.t(N_("This button is out of date.")), alert=True)
        return
    draft = draft.model_copy(update={"change_group": callback_data.group})
    first = next((s for s in group_steps(callback_data.group) if s.applies(draft)), None)
    if first is None:
        ctx.toast(ctx.t(N_("This button is out of date.")), alert=True)
        return
    ctx.edit_markup(query.message, None)
    await go_to(ctx, draft, first)


@router.callback_query(SummaryChange.filter(), StateFilter("*"))
async def old_summary_change(query: CallbackQuery, ctx: Context) -> None:
    ctx.toast(ctx.t(N_("This button is out of date.")), alert=True)


def _is_attorney(d: Draft) -> bool:
    return d.relationship == "attorney"


def _other(d: Draft) -> bool:
    """The representative's own contact: asked when registering someone else."""
    return d.for_other


STEPS: list[Step] = [
    Step(
        Registration.relationship,
        relationship_prompt,
        pick_hint,
        relationship_parse,
        lambda d: d.for_other and d.mode == "new",
        "choice",
    ),
    Step(
        Registration.poa_number, poa_number_prompt, poa_number_hint, poa_number_parse, _is_attorney
    ),
    Step(Registration.poa_expiry, poa_expiry_prompt, date_hint, poa_expiry_parse, _is_attorney),
    Step(Registration.rep_name, rep_name_prompt, rep_name_hint, rep_name_parse, _other),
    Step(Registration.rep_phone, rep_phone_prompt, phone_hint, rep_phone_parse, _other, "contact"),
    Step(Registration.full_name, name_prompt, name_hint, name_parse, _always),
    Step(Registration.phone, phone_prompt, phone_hint, phone_parse, _always, "contact"),
    # The district before the IIN: "this IIN is already registered" then gives its desk's phone.
    Step(Registration.district, district_prompt, pick_hint, district_parse, _always, "choice"),
    Step(Registration.iin, iin_prompt, iin_hint, iin_parse, _always),
    Step(
        Registration.birth_date,
        birth_prompt,
        birth_hint,
        birth_parse,
        lambda d: d.needs_birth_date,
    ),
    Step(Registration.address, address_prompt, address_hint, address_parse, _always, "location"),
    Step(
        Registration.address_text,
        address_text_prompt,
        address_hint,
        address_text_parse,
        lambda d: d.home_lat is not None,
    ),
    Step(Registration.category, category_prompt, pick_hint, category_parse, _always, "choice"),
    Step(
        Registration.centre,
        centre_prompt,
        centre_hint,
        centre_parse,
        lambda d: d.category == reg.CHILD,
    ),
    Step(
        Registration.group,
        group_prompt,
        pick_hint,
        group_parse,
        lambda d: d.category != reg.GROUP1,
        "choice",
    ),
    Step(Registration.vkk_number, vkk_number_prompt, vkk_number_hint, vkk_number_parse, _always),
    Step(Registration.vkk_expiry, vkk_expiry_prompt, vkk_expiry_hint, vkk_expiry_parse, _always),
    Step(
        Registration.needs,
        needs_prompt,
        needs_hint,
        needs_parse,
        _always,
        "choice",
        needs_list,
    ),
    Step(
        Registration.summary,
        summary_prompt,
        pick_hint,
        summary_parse,
        lambda d: d.mode == "new",
        "choice",
        summary_view,
    ),
]
BY_STATE = {step.state.state: step for step in STEPS}

# Parts of a profile that can be edited, and the steps each one asks.
GROUPS: dict[str, list[State]] = {
    "name": [Registration.full_name],
    "phone": [Registration.phone],
    "iin": [Registration.iin, Registration.birth_date],
    "district": [Registration.district],
    "address": [Registration.address, Registration.address_text],
    "category": [Registration.category, Registration.centre, Registration.group],
    "vkk": [Registration.vkk_number, Registration.vkk_expiry],
    "needs": [Registration.needs],
    "poa": [Registration.poa_number, Registration.poa_expiry],
    "relationship": [Registration.relationship, Registration.poa_number, Registration.poa_expiry],
    "contact": [Registration.rep_name, Registration.rep_phone],
}


def group_steps(group: str) -> list[Step]:
    wanted = {s.state for s in GROUPS.get(group, [])}
    return [s for s in STEPS if s.state in wanted]


def sequence(draft: Draft) -> list[Step]:
    if draft.mode == "edit" and draft.edit_group in GROUPS:
        return group_steps(draft.edit_group)
    return STEPS


def neighbour(draft: Draft, step: Step | None, direction: int) -> Step | None:
    """The next (1) or previous (-1) step that applies to this draft; None past either end."""
    steps = sequence(draft)
    index = steps.index(step) if step in steps else (-1 if direction > 0 else len(steps))
    index += direction
    while 0 <= index < len(steps):
        if steps[index].applies(draft):
            return steps[index]
        index += direction
    return None


def has_back(draft: Draft, step: Step) -> bool:
    """Editing: Back leaves to the profile. New: the first question has only Cancel."""
    return draft.mode == "edit" or neighbour(draft, step, -1) is not None


# -- driving the steps --------------------------------------------------------------------------


async def ask(ctx: Context, draft: Draft, step: Step, note: str | None = None) -> None:
    text, keyboard = await step.prompt(ctx, draft, has_back(draft, step))
    if note:
        text = f"{note}\n\n{text}"
    ctx.reply(text, keyboard)
    if step.extra is not None:
        ctx.reply(*(await step.extra(ctx, draft)))


async def go_to(ctx: Context, draft: Draft, step: Step, note: str | None = None) -> None:
    await ctx.fsm.set_state(step.state)
    await save_draft(ctx.fsm, draft)
    await ask(ctx, draft, step, note)


def data_key(ctx: Context) -> DataKey:
    """The key that seals IINs; the app always loads one before it takes updates."""
    assert ctx.data_key is not None, "the data key is loaded at start"
    return ctx.data_key


async def begin_registration(ctx: Context, draft: Draft) -> None:
    """Start a new profile: the person's own, or someone else's (`draft.for_other`)."""
    if draft.for_other:
        refused = await limits.may_register_someone(
            ctx.session, ctx.person, limits.limits_of(None), now=ctx.now
        )
        if refused is not None:
            await ctx.fsm.clear()
            ctx.reply(refused.render(ctx.t), main_menu(ctx.t))
            return
    first = neighbour(draft, None, 1)
    assert first is not None
    t = ctx.t
    intro = (
        t("Let's fill in the profile of the person you book for. It takes a few minutes.")
        if draft.for_other
        else t("Let's fill in your rider profile. It takes a few minutes.")
    )
    await go_to(ctx, draft, first, intro)


async def begin_edit(ctx: Context, access: reg.Access, group: str) -> bool:
    """Edit one part of a profile with the same steps; False when that part can't be edited."""
    rider, rep = access.rider, access.representation
    if group not in GROUPS or (
        group == "poa" and (rep is None or rep.relationship_kind != "attorney")
    ):
        return False
    if group == "relationship" or (group == "contact" and rep is None):
        return False
    draft = Draft(
        mode="edit",
        rider_id=rider.id,
        edit_group=group,
        for_other=not access.own,
        relationship=rep.relationship_kind if rep else None,
        poa_number=rep.poa_number if rep else None,
        poa_expires_on=rep.poa_expires_on if rep else None,
        rep_name=rep.contact_name if rep else None,
        rep_phone=rep.contact_phone if rep else None,
        full_name=rider.full_name,
        phone=rider.phone,
        district_id=rider.district_id,
        home_address=rider.home_address,
        category=rider.category,
        centre_name=rider.centre_name,
        disability_group=rider.disability_group,
        vkk_number=rider.vkk_number,
        vkk_expires_on=rider.vkk_expires_on,
        vkk_indefinite=rider.vkk_expires_on is None,
        needs=sorted(reg.needs_of(rider)),
        usual_assistant=rider.usual_assistant,
        usual_companion=rider.usual_companion,
    )
    first = neighbour(draft, None, 1)
    if first is None:
        return False
    await go_to(ctx, draft, first)
    return True


def question_of(step: Step) -> Question[Draft]:
    """A registration step as a question of the shared engine (`bot.forms`)."""

    async def asked(ctx: Context, draft: Draft) -> None:
        await ask(ctx, draft, step)

    async def parsed(message: Message, ctx: Context, draft: Draft) -> Answer[Draft]:
        result = await step.parse(message, ctx, draft)
        if isinstance(result, Problem):
            return result.reason  # None: not understood, the hint says what is expected
        if isinstance(result, Stay):
            return forms.Stay(result.draft)
        return result

    return Question(step.state, asked, parsed, step.hint, step.wants)


class RegistrationForm(Form[Draft]):
    """Registration and the edit of one part of a profile on the shared engine: what is its own
    is the subset of questions an edit asks, a "Change" from the summary that returns to it,
    Confirm on the summary, and a problem shown with the question's keyboard again."""

    def step(self, question: Question[Draft]) -> Step:
        return BY_STATE[question.state.state or ""]

    def question(self, step: Step) -> Question[Draft]:
        return self.by_state[step.state.state or ""]

    async def load(self, ctx: Context) -> Draft:
        return await load_draft(ctx.fsm)

    async def save(self, ctx: Context, draft: Draft) -> None:
        await save_draft(ctx.fsm, draft)

    async def go_to(self, ctx: Context, draft: Draft, question: Question[Draft]) -> None:
        await go_to(ctx, draft, self.step(question))

    def after(self, draft: Draft, question: Question[Draft]) -> Question[Draft] | None:
        following = neighbour(draft, self.step(question), 1)
        if draft.change_group is not None and (
            following is None or following.state not in GROUPS[draft.change_group]
        ):
            return None  # the changed part is done: back to the summary (`complete`)
        return self.question(following) if following is not None else None

    def before(self, draft: Draft, question: Question[Draft]) -> Question[Draft] | None:
        previous = neighbour(draft, self.step(question), -1)
        return self.question(previous) if previous is not None else None

    async def complete(self, ctx: Context, draft: Draft) -> None:
        if draft.change_group is not None:
            await back_to_summary(ctx, draft)
        else:
            await finish_edit(ctx, draft)

    async def back(self, ctx: Context, draft: Draft, question: Question[Draft]) -> None:
        if draft.change_group is not None:
            await back_to_summary(ctx, draft)
        else:
            await super().back(ctx, draft, question)

    async def back_at_start(self, ctx: Context, draft: Draft, question: Question[Draft]) -> None:
        if draft.mode == "edit" and draft.rider_id is not None:
            await ctx.fsm.clear()
            ctx.reply(ctx.t("Nothing was changed."), main_menu(ctx.t))
            await send_rider_page(ctx, draft.rider_id)
            return
        note = ctx.t("This is the first question. To stop, press Cancel.")
        await ask(ctx, draft, self.step(question), note)

    def is_back(self, ctx: Context, message: Message) -> bool:
        return chosen(ctx.i18n, message.text, BACK)

    async def desk_phone(self, ctx: Context, draft: Draft) -> str | None:
        district = await _district(ctx, draft)
        return district.desk_phone if district is not None else None

    async def lost(self, ctx: Context) -> None:
        if await ctx.fsm.get_state() == Registration.companions.state:
            # A conversation left at the old separate companions question: part of needs now.
            await go_to(ctx, await load_draft(ctx.fsm), BY_STATE[Registration.needs.state])
            return
        await ctx.fsm.clear()

    async def intercept(
        self, message: Message, ctx: Context, draft: Draft, question: Question[Draft]
    ) -> bool:
        # Offered again as a button if the own-name question comes up; never stored.
        draft.telegram_name = message.from_user.full_name if message.from_user else ""
        if question.state == Registration.summary and chosen(ctx.i18n, message.text, kb.CONFIRM):
            await finish_new(ctx, draft)
            return True
        return False

    async def explain(
        self, ctx: Context, draft: Draft, question: Question[Draft], issue: str | None
    ) -> None:
        """Say what is wrong and what is expected, with the step's keyboard again."""
        step = self.step(question)
        _, keyboard = await step.prompt(ctx, draft, has_back(draft, step))
        hint = step.hint(ctx, draft)
        ctx.reply(f"{issue}\n{hint}" if issue else hint, keyboard)


FORM = RegistrationForm([question_of(step) for step in STEPS])


@router.message(StateFilter(Registration))
async def on_answer(message: Message, ctx: Context) -> None:
    """Every answer of every step: Back, bad input, a toggle, or the next step."""
    await FORM.handle(message, ctx)


async def back_to_summary(ctx: Context, draft: Draft) -> None:
    """After a "Change" button's questions: the summary again, or a question a change left
    unanswered (a new district may not serve the category chosen before)."""
    draft = draft.model_copy(update={"change_group": None})
    missing = first_missing(draft)
    await go_to(ctx, draft, missing or BY_STATE[Registration.summary.state])


def first_missing(draft: Draft) -> Step | None:
    """The first question of a new profile whose answer is missing."""
    checks: dict[str | None, bool] = {
        Registration.full_name.state: draft.full_name is None,
        Registration.phone.state: draft.phone is None,
        Registration.district.state: draft.district_id is None,
        Registration.iin.state: draft.iin_hash is None,
        Registration.address.state: draft.home_address is None,
        Registration.category.state: draft.category is None,
        Registration.vkk_number.state: draft.vkk_number is None,
    }
    return next((s for s in STEPS if checks.get(s.state.state)), None)


def rider_input(ctx: Context, draft: Draft) -> reg.RiderInput | None:
    """The confirmed draft as the service's input; None if a step's answer is missing."""
    last4, born = iin_facts(ctx, draft)
    required = (
        draft.full_name,
        draft.phone,
        draft.iin_encrypted,
        draft.iin_hash,
        last4,
        draft.district_id,
        draft.home_address,
        draft.category,
        draft.vkk_number,
    )
    if any(value is None for value in required):
        return None
    assert draft.full_name and draft.phone and draft.district_id and draft.home_address
    assert draft.iin_encrypted and draft.iin_hash and last4
    assert draft.category and draft.vkk_number
    return reg.RiderInput(
        full_name=draft.full_name,
        phone=draft.phone,
        iin=SealedIin(draft.iin_encrypted, draft.iin_hash, last4),
        birth_date=born,
        district_id=draft.district_id,
        home_address=draft.home_address,
        home_lat=draft.home_lat,
        home_lon=draft.home_lon,
        category=draft.category,
        centre_name=draft.centre_name if draft.category == reg.CHILD else None,
        disability_group=draft.disability_group,
        vkk_number=draft.vkk_number,
        vkk_expires_on=draft.vkk_expires_on,
        needs=frozenset(draft.needs),
        usual_assistant="assistant" in draft.needs,
        usual_companion=draft.usual_companion,
    )


async def finish_new(ctx: Context, draft: Draft) -> None:
    t, state = ctx.t, ctx.fsm
    data = rider_input(ctx, draft)
    if data is None:
        first = neighbour(draft, None, 1)
        assert first is not None
        await go_to(
            ctx, draft, first, t("Some answers are missing. Let's go through the questions again.")
        )
        return
    relationship = (
        reg.Relationship(
            kind=draft.relationship or "parent",
            poa_number=draft.poa_number,
            poa_expires_on=draft.poa_expires_on,
            contact_name=draft.rep_name,
            contact_phone=draft.rep_phone,
        )
        if draft.for_other
        else None
    )
    district = await district_by_id(ctx.session, data.district_id)
    if draft.for_other:
        # Checked again at the save: the limits of the district chosen, and meanwhile others
        # may have been registered from this account.
        refused = await limits.may_register_someone(
            ctx.session, ctx.person, limits.limits_of(district), now=ctx.now
        )
        if refused is not None:
            await state.clear()
            ctx.reply(
                limits.refusal_text(t, refused, district.desk_phone if district else None),
                main_menu(t),
            )
            return
    result = await reg.register_rider(ctx.session, ctx.person, data, relationship, now=ctx.now)
    if result is reg.IIN_TAKEN:
        await state.clear()
        ctx.reply(await duplicate_answer(ctx, district, data.phone), main_menu(t))
        return
    if isinstance(result, Reason):
        await state.clear()
        ctx.reply(result.render(t), main_menu(t))
        return
    await state.clear()
    ctx.reply(
        t(
            "Thank you! The profile of {name} is sent to the dispatchers of {district} for "
            "checking. We will write to you here when they decide.",
            name=result.full_name,
            district=district.name(t.lang) if district else "—",
        ),
        main_menu(t),
    )


def changes_of(ctx: Context, draft: Draft) -> dict[str, object]:
    """The rider columns one edited part of the profile sets."""
    group = draft.edit_group
    if group == "name":
        return {"full_name": draft.full_name}
    if group == "phone":
        return {"phone": draft.phone}
    if group == "iin":
        last4, born = iin_facts(ctx, draft)
        if not (draft.iin_encrypted and draft.iin_hash and last4):
            return {}
        sealed = SealedIin(draft.iin_encrypted, draft.iin_hash, last4)
        return {"iin": sealed, "birth_date": born}
    if group == "district":
        return {"district_id": draft.district_id}
    if group == "address":
        return {
            "home_address": draft.home_address,
            "home_lat": draft.home_lat,
            "home_lon": draft.home_lon,
        }
    if group == "category":
        return {
            "category": draft.category,
            "centre_name": draft.centre_name if draft.category == reg.CHILD else None,
            "disability_group": draft.disability_group,
        }
    if group == "vkk":
        return {"vkk_number": draft.vkk_number, "vkk_expires_on": draft.vkk_expires_on}
    if group == "needs":
        return {
            "needs": frozenset(draft.needs),
            "usual_assistant": "assistant" in draft.needs,
            "usual_companion": draft.usual_companion,
        }
    return {}


def resubmits(access: reg.Access, draft: Draft, changes: dict[str, object]) -> bool:
    """Would saving this edit send the profile to the dispatchers again?"""
    rider, rep = access.rider, access.representation
    if draft.edit_group == "poa":
        return rep is not None and (
            rep.poa_number != draft.poa_number or rep.poa_expires_on != draft.poa_expires_on
        )
    really = {
        name
        for name, value in changes.items()
        if (
            value.lookup_hash != rider.iin_hash
            if isinstance(value, SealedIin)
            else name != "needs" and getattr(rider, name, None) != value
        )
    }
    return bool(really & reg.REVERIFY_FIELDS) or (
        bool(changes) and rider.verification == "rejected"
    )


async def finish_edit(ctx: Context, draft: Draft) -> None:
    t, state, account = ctx.t, ctx.fsm, ctx.person
    access = await reg.access_to(ctx.session, account, draft.rider_id or 0)
    if access is None:
        await state.clear()
        ctx.reply(t(reg.NOT_ALLOWED.msgid), main_menu(t))
        return
    changes = changes_of(ctx, draft) if draft.edit_group not in ("poa", "contact") else {}
    district = await district_by_id(ctx.session, access.rider.district_id)
    if resubmits(access, draft, changes):
        # Each resubmission costs the desk a card: so many a day per profile.
        refused = await limits.may_resubmit(
            ctx.session, access.rider, limits.limits_of(district), now=ctx.now
        )
        if refused is not None:
            await state.clear()
            ctx.reply(
                limits.refusal_text(t, refused, district.desk_phone if district else None),
                main_menu(t),
            )
            return
    if draft.edit_group == "poa":
        result: reg.Update | Reason = await reg.update_representation(
            ctx.session, access, draft.poa_number, draft.poa_expires_on, by=account, now=ctx.now
        )
    elif draft.edit_group == "contact":
        result = await reg.update_contact(
            ctx.session, access, draft.rep_name, draft.rep_phone, by=account
        )
    else:
        result = await reg.update_rider(
            ctx.session, access.rider, changes, by=account, now=ctx.now
        )
    if result is reg.IIN_TAKEN:
        await state.clear()
        phone = draft.phone or access.rider.phone
        ctx.reply(await duplicate_answer(ctx, district, phone), main_menu(t))
        return
    if result is reg.NOT_ALLOWED:
        await state.clear()
        ctx.reply(reg.NOT_ALLOWED.render(t), main_menu(t))
        return
    if isinstance(result, Reason):
        step = neighbour(draft, None, 1)
        assert step is not None
        await go_to(ctx, draft, step, result.render(t))
        return
    await state.clear()
    if not result.changed:
        text = t("Nothing was changed.")
    elif result.reverify:
        text = t(
            "Saved. The profile goes back to the dispatcher for checking; until it is "
            "approved again, rides can't be booked. We will write to you when they decide."
        )
    else:
        text = t("Saved.")
    ctx.reply(text, main_menu(t))
    await send_rider_page(ctx, access.rider.id)
