"""People who blocked the bot: stop writing to them and ask dispatchers to phone them instead.

A rider who blocked the bot (or whose representative did) would otherwise miss "the car is on
its way" without anyone knowing. The outbox sender calls `mark_unreachable` when Telegram answers
403; messages to that account are then not attempted until the person writes to the bot again
(`bot.middlewares.PersonMiddleware` clears the mark).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.district_cache import district_by_id
from bot.services.i18n_types import N_
from bot.services.outbox import enqueue_message
from models import Account, Representation, Ride, Rider, utcnow

RIDER_BLOCKED = N_(
    "A rider has blocked the bot and gets no messages from it.\nRider: {name}\n"
    "Please phone: {phone}"
)
RIDER_BLOCKED_RIDE = N_(
    "A rider has blocked the bot and did not get the news about ride №{number}.\n"
    "Rider: {name}\nPlease phone: {phone}"
)
REPRESENTATIVE_BLOCKED = N_(
    "A representative has blocked the bot and gets no messages from it.\n"
    "Representative: {representative}\nRider: {name}\nPlease phone the rider: {phone}"
)
REPRESENTATIVE_BLOCKED_RIDE = N_(
    "A representative has blocked the bot and did not get the news about ride №{number}.\n"
    "Representative: {representative}\nRider: {name}\nPlease phone the rider: {phone}"
)


async def mark_unreachable(session: AsyncSession, account_id: int, ride_id: int | None) -> int:
    """Mark the account unreachable and tell each linked rider's district; returns how many.

    Told once: while the mark stands, later failures add nothing. When the failed message was
    about a ride, the notice names the ride and answers its card in the dispatcher chat.
    """
    account = await session.get(Account, account_id)
    if account is None or account.unreachable_since is not None:
        return 0
    account.unreachable_since = utcnow()
    own = await session.scalars(select(Rider).where(Rider.account_id == account_id))
    represented = await session.scalars(
        select(Rider)
        .join(Representation, Representation.rider_id == Rider.id)
        .where(
            Representation.account_id == account_id,
            or_(Rider.account_id.is_(None), Rider.account_id != account_id),
        )
    )
    ride = await session.get(Ride, ride_id) if ride_id is not None else None
    riders = [(r, None) for r in own] + [(r, account) for r in represented]
    told = 0
    for rider, representative in riders:
        about = ride if ride is not None and ride.rider_id == rider.id else None
        district = await district_by_id(session, about.district_id if about else rider.district_id)
        if district is None:
            continue
        params: dict[str, object] = {"name": rider.full_name, "phone": rider.phone}
        if representative is not None:
            params["representative"] = representative.display_name or str(
                representative.telegram_id
            )
            msgid = REPRESENTATIVE_BLOCKED_RIDE if about else REPRESENTATIVE_BLOCKED
        else:
            msgid = RIDER_BLOCKED_RIDE if about else RIDER_BLOCKED
        if about is not None:
            params["number"] = about.number
        notice = enqueue_message(
            session,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            msgid=msgid,
            params=params,
            lang=district.language,
            ride_id=about.id if about else None,
            reply_to_card=about is not None,
        )
        # Found again when the rider's data is erased, to edit the notice out of the chat.
        notice.payload = {**notice.payload, "about_rider": rider.id}
        told += 1
    return told
