"""The IIN step without an oracle: nobody learns from the bot whether a person is registered.

"This IIN is already registered" told anyone, as often as they liked, whether a given person
uses a disability-transport service. Now the IIN step answers every valid IIN the same way and
counts the tries per account (`Limits.iin_tries_per_day`); a duplicate shows only when the
profile is saved, and then the person is told the same as anyone whose registration needs a
call, while the district's dispatchers are asked to phone them (they may see that a profile
exists: they serve it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.i18n_types import N_, Reason
from bot.services.limits import TOO_MANY_IIN_TRIES, Limits, iin_tries_left
from bot.services.outbox import enqueue_message
from bot.services.registration import audit
from models import Account, AuditLog, District, utcnow

DUPLICATE_ANSWER: Final = N_(
    "Thank you. To finish this registration a dispatcher will call you.\nDistrict: {district}\n"
    "Phone: {phone}\nYou don't need to do anything else now."
)
DUPLICATE_DESK: Final = N_(
    "A registration could not be saved: a profile with the same IIN already exists. Please "
    "call the person who sent it, check their documents and, if it is the same person, help "
    "them with the existing profile.\nPhone: {phone}"
)


async def iin_step(
    session: AsyncSession, account: Account, limits: Limits, *, now: datetime | None = None
) -> Reason | None:
    """Before a typed IIN is looked at: refused when the account used up its tries.

    Each call is one try (an audit row with ids only). The caller then goes on to the next
    question whatever the IIN is (no lookup here: that is the point).
    """
    now = now or utcnow()
    if await iin_tries_left(session, account, limits, now=now) <= 0:
        return Reason("limit_iin_tries", TOO_MANY_IIN_TRIES)
    session.add(AuditLog(action="iin_tried", subject=f"account:{account.id}", at=now))
    return None


async def answer_duplicate(
    session: AsyncSession, account: Account, district: District, phone: str
) -> Reason:
    """Saving found the IIN taken: ask the desk to call, and answer as for any call-back.

    `phone` is the number typed in this registration (the person's, or the one to reach them).
    Returns the answer to show the person, which does not say that a profile exists.
    """
    enqueue_message(
        session,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        msgid=DUPLICATE_DESK,
        params={"phone": phone},
        lang=district.language,
    )
    audit(
        session,
        "iin_duplicate",
        subject=f"account:{account.id}",
        details={"district": district.id},
    )
    return Reason(
        "call_back",
        DUPLICATE_ANSWER,
        {"district": district.name(account.language or "ru"), "phone": phone},
    )
