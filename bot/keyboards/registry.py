"""Keyboards the outbox sender attaches to queued messages, looked up by name.

Services queue a message with a keyboard *name* and plain arguments (they can't import aiogram);
the sender builds the markup in the recipient's language when it sends.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup

from bot.i18n import Translator

# Buttons under the message, or (for a new message in a private chat) the reply keyboard.
OutboxMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup
OutboxKeyboard = Callable[[Translator, dict[str, Any]], OutboxMarkup]

OUTBOX_KEYBOARDS: dict[str, OutboxKeyboard] = {}


def outbox_keyboard(name: str) -> Callable[[OutboxKeyboard], OutboxKeyboard]:
    def register(builder: OutboxKeyboard) -> OutboxKeyboard:
        OUTBOX_KEYBOARDS[name] = builder
        return builder

    return register


def load_all() -> dict[str, OutboxKeyboard]:
    """Import every keyboards module so its builders register themselves."""
    import bot.keyboards as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"bot.keyboards.{info.name}")
    return OUTBOX_KEYBOARDS
