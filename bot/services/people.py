"""Who hears about a rider: the rider (if on Telegram) and every linked representative."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outbox import enqueue_message
from models import Account, Representation, Rider


async def rider_circle(session: AsyncSession, rider_id: int) -> list[Account]:
    """The rider's own account first, then representatives in the order they were linked."""
    rider = await session.get(Rider, rider_id)
    if rider is None:
        return []
    accounts: list[Account] = []
    if rider.account_id is not None:
        own = await session.get(Account, rider.account_id)
        if own is not None:
            accounts.append(own)
    reps = await session.scalars(
        select(Account)
        .join(Representation, Representation.account_id == Account.id)
        .where(Representation.rider_id == rider_id)
        .order_by(Representation.id)
    )
    accounts.extend(a for a in reps if all(a.id != b.id for b in accounts))
    return accounts


async def notify_rider(
    session: AsyncSession,
    rider_id: int,
    msgid: str,
    params: dict[str, Any] | None = None,
    *,
    keyboard: str | None = None,
    keyboard_args: dict[str, Any] | None = None,
    ride_id: int | None = None,
) -> int:
    """Queue one message to everyone in the rider's circle, each rendered in their language."""
    circle = await rider_circle(session, rider_id)
    for account in circle:
        enqueue_message(
            session,
            chat_id=account.telegram_id,
            account_id=account.id,
            msgid=msgid,
            params=params,
            keyboard=keyboard,
            keyboard_args=keyboard_args,
            ride_id=ride_id,
        )
    return len(circle)
