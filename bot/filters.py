"""Filters that recognise a reply-keyboard button in either language."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import Message

from bot.i18n import I18n


class Button(Filter):
    """Matches a message whose text is one of these buttons, in Kazakh or in Russian.

    A lazy `F.text == __("...")` would match only the current user's language; a person who
    switched language keeps old keyboards on screen, so both are accepted.
    """

    def __init__(self, *msgids: str) -> None:
        self.msgids = msgids

    async def __call__(self, message: Message, i18n: I18n) -> bool:
        text = (message.text or "").strip()
        return bool(text) and text in i18n.variants_of(self.msgids)

    def __str__(self) -> str:
        return f"Button{self.msgids}"
