"""People who blocked the bot: stop writing to them and ask dispatchers to phone them instead."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outbox import enqueue_message
from models import Account, District, Representation, Rider, utcnow


async def mark_unreachable(session: AsyncSession, account_id: int, ride_id: int | None) -> None:
    account = await session.get(Account, account_id)
    if account is None or account.unreachable_since is not None:
        return
    account.unreachable_since = utcnow()
    riders = list(
        await session.scalars(
            select(Rider).where(
                (Rider.account_id == account_id)
                | Rider.id.in_(
                    select(Representation.rider_id).where(Representation.account_id == account_id)
                )
            )
        )
    )
    for rider in riders:
        district = await session.get(District, rider.district_id)
        if district is None:
            continue
        enqueue_message(
            session,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            msgid="{name} no longer receives messages from the bot (blocked it). Please phone: {phone}.",
            params={"name": rider.full_name, "phone": rider.phone},
            lang=district.language,
            ride_id=ride_id,
        )
