"""The full profile a dispatcher opens in a private chat with the bot to check documents.

The group card shows only whom to call (see `bot.cards.verification`); the category, the ВКК
conclusion, the IIN and the needs are shown to one dispatcher at a time, privately, and only to
a dispatcher of the rider's district. Every opening is audited with who opened which profile,
so a breach can be traced (ids only, never the data shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.crypto import DataKey, DataKeyError
from bot.services.i18n_types import N_, Reason
from bot.services.registration import audit, needs_of
from models import Dispatcher, Representation, Rider, Verification

NOT_THIS_DISTRICT = Reason(
    "not_district_dispatcher",
    N_("Only a dispatcher of this rider's district can open the profile."),
)
PROFILE_GONE = Reason("profile_gone", N_("This profile is no longer kept."))


@dataclass(frozen=True)
class FullProfile:
    """Everything a dispatcher checks against the documents; shown only in a private chat."""

    rider_id: int
    district_id: str
    full_name: str
    phone: str
    iin: str | None  # None when the data key can't read it
    birth_date: date | None
    home_address: str
    category: str
    centre_name: str | None
    disability_group: int | None
    vkk_number: str
    vkk_expires_on: date | None
    needs: frozenset[str]
    verification: str
    representatives: tuple[tuple[str, str | None, date | None], ...]


async def is_district_dispatcher(
    session: AsyncSession, telegram_id: int, district_id: str
) -> bool:
    return (
        await session.scalar(
            select(Dispatcher.id).where(
                Dispatcher.telegram_id == telegram_id,
                Dispatcher.district_id == district_id,
                Dispatcher.active.is_(True),
            )
        )
        is not None
    )


async def open_full_profile(
    session: AsyncSession,
    key: DataKey,
    *,
    dispatcher_telegram_id: int,
    verification_id: int | None = None,
    rider_id: int | None = None,
) -> FullProfile | Reason:
    """The rider's full profile for a dispatcher of their district; audited when opened.

    Give the verification the card is about, or the rider. Refused (and the refusal audited
    too) for anyone who is not an active dispatcher of the rider's current district.
    """
    if verification_id is not None:
        verification = await session.get(Verification, verification_id)
        rider_id = verification.rider_id if verification is not None else None
    rider = await session.get(Rider, rider_id) if rider_id is not None else None
    if rider is None:
        return PROFILE_GONE
    if not await is_district_dispatcher(session, dispatcher_telegram_id, rider.district_id):
        audit(
            session,
            "full_profile_refused",
            subject=f"rider:{rider.id}",
            actor_id=dispatcher_telegram_id,
        )
        return NOT_THIS_DISTRICT
    try:
        iin: str | None = key.decrypt(rider.iin_encrypted)
    except DataKeyError:
        iin = None
    reps = await session.scalars(
        select(Representation)
        .where(Representation.rider_id == rider.id)
        .order_by(Representation.id)
    )
    audit(
        session,
        "full_profile_opened",
        subject=f"rider:{rider.id}",
        actor_id=dispatcher_telegram_id,
        details={"district": rider.district_id, "verification": verification_id},
    )
    return FullProfile(
        rider_id=rider.id,
        district_id=rider.district_id,
        full_name=rider.full_name,
        phone=rider.phone,
        iin=iin,
        birth_date=rider.birth_date,
        home_address=rider.home_address,
        category=rider.category,
        centre_name=rider.centre_name,
        disability_group=rider.disability_group,
        vkk_number=rider.vkk_number,
        vkk_expires_on=rider.vkk_expires_on,
        needs=needs_of(rider),
        verification=rider.verification,
        representatives=tuple((r.relationship_kind, r.poa_number, r.poa_expires_on) for r in reps),
    )
