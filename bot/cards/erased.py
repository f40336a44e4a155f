"""A ride card or notice about a person whose data was erased: one line, no personal data.

The ride (or the outbox row of the notice) is gone with the person's data, so the subject is
an audit row that holds only where the message is (`bot.services.privacy.erase_group_messages`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.registry import CardRenderer, CardView, register_card
from bot.i18n import I18n
from bot.services.privacy import ERASED_MESSAGE, ERASED_MESSAGE_ACTION
from models import AuditLog


async def render(session: AsyncSession, trace_id: int, i18n: I18n) -> CardView | None:
    trace = await session.get(AuditLog, trace_id)
    if trace is None or trace.action != ERASED_MESSAGE_ACTION:
        return None
    details = trace.details or {}
    chat_id, message_id = details.get("chat_id"), details.get("message_id")
    if details.get("gone") or not chat_id or not message_id:
        return None
    t = i18n.translator(str(details.get("language") or "ru"))
    if details.get("what") == "ride":
        text = t("Request №{number}: the rider's data was erased.", number=details.get("number"))
    else:
        text = t("This notice was removed: the person's data was erased.")
    topic = details.get("topic_id")
    return CardView(
        text=text,
        markup=None,
        chat_id=int(chat_id),
        topic_id=int(topic) if topic else None,
        message_id=int(message_id),
    )


async def posted(session: AsyncSession, trace_id: int, chat_id: int, message_id: int) -> None:
    """Only ever edited: a message already gone from the chat needs nothing more."""
    if message_id:
        return
    trace = await session.get(AuditLog, trace_id)
    if trace is not None:
        trace.details = {**(trace.details or {}), "gone": True}


register_card(ERASED_MESSAGE, CardRenderer(render, posted))
