"""Catch-all for private chats; included last, so it sees only what no feature claimed."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message

from bot.context import Context
from bot.keyboards.common import main_menu

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")


@router.message(StateFilter(None))
async def not_understood(message: Message, ctx: Context) -> None:
    t = ctx.t
    ctx.reply(t("I did not understand. Please choose from the menu below."), main_menu(t))


@router.message()
async def unexpected_in_step(message: Message, ctx: Context) -> None:
    """A step that got something it does not expect keeps its place and says so."""
    ctx.reply(ctx.t("Please answer the question above, or press Back or Cancel."))


@router.callback_query()
async def stale_button(query: CallbackQuery, ctx: Context) -> None:
    """A button from an old message: say so instead of doing anything."""
    ctx.toast(ctx.t("This button is out of date. Please use the latest message."), alert=True)
