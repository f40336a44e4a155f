"""Writing messages the bot owes people into the outbox, inside the caller's transaction.

Nothing here talks to Telegram: the sender (`bot.delivery`) delivers rows after the commit, so a
change and the messages it causes are saved together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OutboxMessage


def enqueue_message(
    session: AsyncSession,
    *,
    chat_id: int,
    msgid: str | None = None,
    params: dict[str, Any] | None = None,
    text: str | None = None,
    lang: str | None = None,
    account_id: int | None = None,
    topic_id: int | None = None,
    keyboard: str | None = None,
    keyboard_args: dict[str, Any] | None = None,
    ride_id: int | None = None,
    reply_to_card: bool = False,
) -> OutboxMessage:
    """Queue a new message for one chat.

    Give `msgid` and `params` to have it rendered at send time in the recipient account's
    language (a param given as `{"msgid": "..."}` is translated too), or a ready `text` for a
    dispatcher chat. `keyboard` names a builder in `bot.keyboards.OUTBOX_KEYBOARDS` that turns
    `keyboard_args` and the recipient's language into buttons at send time. `lang` fixes the
    language for a chat with no account (a dispatcher group writes in its district's language).
    """
    if (msgid is None) == (text is None):
        raise ValueError("give exactly one of msgid and text")
    payload: dict[str, Any] = (
        {"text": text} if text is not None else {"msgid": msgid, "params": params or {}}
    )
    if keyboard:
        payload["keyboard"] = keyboard
        payload["keyboard_args"] = keyboard_args or {}
    if lang:
        payload["lang"] = lang
    row = OutboxMessage(
        chat_id=chat_id,
        topic_id=topic_id,
        account_id=account_id,
        kind="reply" if reply_to_card else "send",
        payload=payload,
        ride_id=ride_id,
    )
    session.add(row)
    return row


async def enqueue_card(
    session: AsyncSession,
    *,
    kind: str,
    subject_id: int,
    chat_id: int,
    topic_id: int | None,
    ride_id: int | None = None,
) -> None:
    """Queue posting or refreshing a card (ride or verification) in a dispatcher chat.

    The card is rendered from the database when it is sent, so any number of pending refreshes
    of one card are one message: a group takes only 20 bot messages a minute.
    """
    merge_key = f"{kind}:{subject_id}"
    pending = await session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.merge_key == merge_key, OutboxMessage.status == "pending"
        )
    )
    if pending is not None:
        return
    session.add(
        OutboxMessage(
            chat_id=chat_id,
            topic_id=topic_id,
            kind=kind,
            payload={"subject_id": subject_id},
            ride_id=ride_id,
            merge_key=merge_key,
        )
    )


def enqueue_document(
    session: AsyncSession,
    *,
    chat_id: int,
    renderer: str,
    args: dict[str, Any],
    lang: str | None = None,
    account_id: int | None = None,
    topic_id: int | None = None,
) -> OutboxMessage:
    """Queue files for one chat, built at send time by the named document renderer.

    `args` must be JSON (it is stored in the row); `lang` is the language the files are to be
    written in, passed to the renderer.
    """
    row = OutboxMessage(
        chat_id=chat_id,
        topic_id=topic_id,
        account_id=account_id,
        kind="document",
        payload={"renderer": renderer, "args": args, "lang": lang},
    )
    session.add(row)
    return row


LOCATION = "location"


def enqueue_location(
    session: AsyncSession,
    *,
    chat_id: int,
    latitude: float,
    longitude: float,
    topic_id: int | None = None,
    ride_id: int | None = None,
) -> OutboxMessage:
    """Queue a location pin for one chat; with `ride_id` it replies to that ride's card there,
    so a dispatcher opens the pickup in a map app with one tap."""
    row = OutboxMessage(
        chat_id=chat_id,
        topic_id=topic_id,
        kind=LOCATION,
        payload={"latitude": latitude, "longitude": longitude},
        ride_id=ride_id,
    )
    session.add(row)
    return row
