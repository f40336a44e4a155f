"""The full profile opens only for a dispatcher of the rider's district, and is audited."""

from __future__ import annotations

from sqlalchemy import select

from bot.services.full_profile import NOT_THIS_DISTRICT, FullProfile, open_full_profile
from bot.services.registration import pending_verification
from models import AuditLog, Dispatcher
from tests.factories import (
    IIN_ADULT,
    KEY,
    account,
    register,
)


async def test_a_district_dispatcher_opens_it_and_the_opening_is_audited(db) -> None:
    rider = await register(db, await account(db, 7001))
    check = await pending_verification(db, rider.id)
    assert check is not None
    # The test districts file makes 9001 a Taldykorgan dispatcher and 9101 a Tekeli one.
    desks = set(await db.execute(select(Dispatcher.telegram_id, Dispatcher.district_id)))
    assert {(9001, "taldykorgan"), (9101, "tekeli")} <= desks

    shown = await open_full_profile(db, KEY, dispatcher_telegram_id=9001, verification_id=check.id)
    assert isinstance(shown, FullProfile)
    assert shown.iin == IIN_ADULT and shown.vkk_number == "123/45"
    assert shown.category == "group1_mobility" and "wheelchair" in shown.needs

    # Another district's dispatcher and a stranger are refused, and that is audited too.
    for outsider in (9101, 5555):
        refused = await open_full_profile(
            db, KEY, dispatcher_telegram_id=outsider, rider_id=rider.id
        )
        assert refused is NOT_THIS_DISTRICT
    trail = list(
        await db.execute(
            select(AuditLog.action, AuditLog.actor_id, AuditLog.details).where(
                AuditLog.action.like("full_profile%")
            )
        )
    )
    assert [(a, who) for a, who, _ in trail] == [
        ("full_profile_opened", 9001),
        ("full_profile_refused", 9101),
        ("full_profile_refused", 5555),
    ]
    # The audit holds ids only, never what was shown.
    assert IIN_ADULT not in str(trail) and "Айгерім" not in str(trail)
