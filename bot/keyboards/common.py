"""The main menu, the language choice, and the Back/Cancel row every step has."""

from __future__ import annotations

from typing import Any

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.callbacks.common import LanguageChoice
from bot.i18n import N_, Translator
from bot.keyboards.registry import outbox_keyboard

BOOK = N_("Book a ride")
REGULAR = N_("Regular rides")
MY_RIDES = N_("My rides")
PROFILE = N_("My profile")
LANGUAGE = N_("Language")
HELP = N_("Help")
BACK = N_("Back")
CANCEL = N_("Stop")
SKIP = N_("Skip")
YES = N_("Yes")
NO = N_("No")
# /start or a menu word in the middle of a registration or a booking: nothing is dropped unasked.
CONTINUE = N_("Continue where I was")
START_OVER = N_("Start over")

LANGUAGE_NAMES = {"kk": "Қазақ тілі", "ru": "Русский язык"}


def language_keyboard(selected: str | None) -> InlineKeyboardMarkup:
    """Both names are written in their own language; the pre-selected one is marked in words."""
    rows = []
    for code in ("kk", "ru"):
        label = LANGUAGE_NAMES[code]
        if code == selected:
            label = f"✓ {label}"
        rows.append(
            [InlineKeyboardButton(text=label, callback_data=LanguageChoice(lang=code).pack())]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


@outbox_keyboard("main_menu")
def queued_main_menu(t: Translator, _args: dict[str, Any]) -> ReplyKeyboardMarkup:
    """The main menu under a queued message, such as the confirmation of a booking."""
    return main_menu(t)


def main_menu(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=t(BOOK)), KeyboardButton(text=t(REGULAR))],
            [KeyboardButton(text=t(MY_RIDES)), KeyboardButton(text=t(PROFILE))],
            [KeyboardButton(text=t(LANGUAGE)), KeyboardButton(text=t(HELP))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def step_keyboard(
    t: Translator, options: list[str] | None = None, *, back: bool = True, skip: bool = False
) -> ReplyKeyboardMarkup:
    """Big one-per-row buttons for a conversation step, then Back and Cancel."""
    rows = [[KeyboardButton(text=o)] for o in options or []]
    if skip:
        rows.append([KeyboardButton(text=t(SKIP))])
    nav = [KeyboardButton(text=t(CANCEL))]
    if back:
        nav.insert(0, KeyboardButton(text=t(BACK)))
    rows.append(nav)
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def resume_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    """Continue the registration or booking where it was, start over, or leave it (Cancel)."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=t(CONTINUE))],
            [KeyboardButton(text=t(START_OVER))],
            [KeyboardButton(text=t(CANCEL))],
        ],
        resize_keyboard=True,
    )
