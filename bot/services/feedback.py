"""A rider's comment on a finished ride, which the dispatchers see on the ride's card.

The comment is typed a step after the rating, so whoever types it is checked again when it is
saved: a representative unlinked in between (or never allowed to rate) must not put text on
the card in the rider's name.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.booking import clean_text
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import Reason
from bot.services.outbox import enqueue_card
from bot.services.registration import NOT_ALLOWED, access_to
from bot.services.rights import Act, may
from models import Account, Ride

MAX_COMMENT: Final = 300


async def may_act_for(session: AsyncSession, account: Account, rider_id: int, act: Act) -> bool:
    """Is this person the rider, or linked to them with a level that allows `act`, now?"""
    access = await access_to(session, account, rider_id)
    if access is None:
        return False
    rights = (
        None if access.own else (access.representation.rights if access.representation else "")
    )
    return may(rights, act)


async def save_rating_comment(
    session: AsyncSession, account: Account, ride_id: int, text: str | None
) -> Ride | Reason:
    """Clean and save the comment and refresh the card; refused for anyone not (still) allowed."""
    ride = await session.get(Ride, ride_id)
    if ride is None or not await may_act_for(session, account, ride.rider_id, Act.RATE):
        return NOT_ALLOWED
    value = clean_text(text, limit=MAX_COMMENT)
    if isinstance(value, Reason):
        return value
    ride.rating_comment = value
    district = await district_by_id(session, ride.district_id)
    if district is not None:
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )
    return ride
