"""How the outbox sender finds the renderer of a card kind.

A card row in the outbox says only "card `kind` of subject `id` needs refreshing"; the renderer
reads the subject as it is now, so merged refreshes always show the latest state.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import I18n


@dataclass(frozen=True)
class CardView:
    text: str
    markup: InlineKeyboardMarkup | None
    chat_id: int
    topic_id: int | None
    # None: not posted yet, so the sender posts it and calls `CardRenderer.posted`.
    message_id: int | None


@dataclass(frozen=True)
class CardRenderer:
    render: Callable[[AsyncSession, int, I18n], Awaitable[CardView | None]]
    posted: Callable[[AsyncSession, int, int, int], Awaitable[None]]
    """Remember where the card was posted: (session, subject_id, chat_id, message_id).

    A message_id of 0 means the card is gone from the chat and must be posted again."""


CARD_RENDERERS: dict[str, CardRenderer] = {}


def register_card(kind: str, renderer: CardRenderer) -> None:
    CARD_RENDERERS[kind] = renderer


def load_all() -> dict[str, CardRenderer]:
    import bot.cards as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"bot.cards.{info.name}")
    return CARD_RENDERERS
