"""/chatid in a group: tells whoever sets up the districts file what to write there."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.context import Context

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))


@router.message(Command("chatid"))
async def chat_id(message: Message, ctx: Context) -> None:
    """Ids only, no texts to translate: the answer is for the districts file."""
    lines = [f"chat_id = {message.chat.id}"]
    if message.is_topic_message and message.message_thread_id:
        lines.append(f"topic_id = {message.message_thread_id}")
    ctx.reply_to(message.message_id, "\n".join(lines))
