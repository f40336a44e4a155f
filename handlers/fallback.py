"""Catch-all for private chats; included last, so it sees only what no feature claimed."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message
from sqlalchemy import select

from bot.context import Context
from bot.keyboards.common import main_menu
from bot.services import booking
from bot.services.district_cache import district_by_id
from bot.services.help import desk_phones, voice_reply
from models import District

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

SPOKEN = F.voice | F.audio | F.video_note


async def desk_phone_for(ctx: Context) -> str | None:
    """The desk of the person's district; a newcomer, whose district is not known yet, gets
    every district's desk, one per line."""
    riders = await booking.riders_for(ctx.session, ctx.person) if ctx.account else []
    for rider in riders:
        district = await district_by_id(ctx.session, rider.district_id)
        if district is not None and district.desk_phone:
            return district.desk_phone
    districts = await ctx.session.scalars(
        select(District).where(District.active.is_(True)).order_by(District.id)
    )
    lines = desk_phones([(d.name(ctx.lang), d.desk_phone or "") for d in districts])
    return "\n" + lines if lines else None


@router.message(SPOKEN)
async def spoken(message: Message, ctx: Context) -> None:
    """A voice message or a video note: say so, and give the number to call (review, item 12)."""
    t = ctx.t
    answer = voice_reply(await desk_phone_for(ctx)).render(t)
    if await ctx.fsm.get_state() is None:
        ctx.reply(answer, main_menu(t))
    else:
        ctx.reply(answer)


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
    """A button from an old message: say so instead of doing anything (answered once, after
    the commit, by the middleware)."""
    ctx.toast(ctx.t("This button is out of date. Please use the latest message."), alert=True)
