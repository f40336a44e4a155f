"""Per-person limits (12.1), representatives' rights (12.7) and the IIN oracle (12.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.services import iin_check, limits, privacy
from bot.services import registration as reg
from bot.services.limits import Limits
from bot.services.rights import Act, Rights, may
from models import District, Representation, Ride, RideEvent, Verification
from tests.factories import (
    IIN_ADULT,
    IIN_ELDER,
    KEY,
    NOW,
    account,
    outbox,
    register,
    rider_input,
)


def valid(first11: str) -> str:
    digits = [int(c) for c in first11]
    for weights in (range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check != 10:
            return first11 + str(check)
    raise AssertionError("never issued")


def child(n: int) -> reg.RiderInput:
    return rider_input(valid(f"1506026{n:04d}"), name=f"Бала {n}", category="child_rehab")


# -- limits ---------------------------------------------------------------------------------


def test_limits_are_district_settings_checked_when_loaded() -> None:
    assert Limits().with_overrides({"bookings_per_day": 3}).bookings_per_day == 3
    with pytest.raises(ValueError, match="bookings_per_day"):
        Limits().with_overrides({"bookings_per_day": 0})
    with pytest.raises(ValueError, match="unknown limit"):
        Limits().with_overrides({"registrations": 3})
    tekeli = District(id="x", name_kk="x", name_ru="x", chat_id=-1, limits={"pending_checks": 1})
    assert limits.limits_of(tekeli).pending_checks == 1
    assert limits.limits_of(None) == Limits()


async def test_one_account_registers_only_so_many_people_and_waits_for_checks(db) -> None:
    parent = await account(db, 1)
    rules = Limits()
    first = await register(db, parent, child(1), reg.Relationship("parent"))
    assert await limits.may_register_someone(db, parent, rules) is None
    await register(db, parent, child(2), reg.Relationship("parent"))
    refused = await limits.may_register_someone(db, parent, rules)
    assert refused is not None and refused.code == "limit_pending"
    assert refused.params == {"limit": 2}
    # Once the dispatcher has checked one, the next person can be registered.
    check = await reg.pending_verification(db, first.id)
    assert check is not None
    await reg.decide(db, check.id, approve=True, actor_id=9001, actor_name="Айгүл")
    assert await limits.may_register_someone(db, parent, rules) is None
    few = rules.with_overrides({"people_registered": 2})
    refused = await limits.may_register_someone(db, parent, few)
    assert refused is not None and refused.code == "limit_people"


async def test_a_resubmitted_profile_edits_its_card_and_is_limited(db) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    rules = Limits()
    soon = NOW + timedelta(hours=1)
    for n in range(3):
        assert await limits.may_resubmit(db, rider, rules, now=soon) is None
        when = NOW + timedelta(minutes=n)
        await reg.update_rider(db, rider, {"vkk_number": f"77{n}/26"}, by=person, now=when)
    refused = await limits.may_resubmit(db, rider, rules, now=soon)
    assert refused is not None and refused.code == "limit_resubmit"
    # Four requests, one card: the waiting check was kept and its card refreshed in place.
    checks = list(await db.scalars(select(Verification).where(Verification.rider_id == rider.id)))
    assert [c.status for c in checks] == ["pending"]
    # Tomorrow the profile may be sent again.
    later = NOW + timedelta(hours=25)
    assert await limits.may_resubmit(db, rider, rules, now=later) is None


async def test_bookings_and_cancellations_per_day(db) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    rules = Limits()
    now = datetime.now(UTC)
    for n in range(rules.bookings_per_day):
        assert await limits.may_book(db, rider.id, rules, now=now) is None
        ride = Ride(
            rider_id=rider.id,
            district_id=rider.district_id,
            pickup_address="a",
            destination="b",
            purpose="clinic",
            pickup_at=now + timedelta(days=1, hours=n),
            status="cancelled",
            created_at=now - timedelta(minutes=n),
        )
        db.add(ride)
        await db.flush()
        if n < rules.cancellations_per_day:
            db.add(RideEvent(ride_id=ride.id, actor_kind="rider", to_status="cancelled", at=now))
    await db.flush()
    booked = await limits.may_book(db, rider.id, rules, now=now)
    assert booked is not None and booked.code == "limit_bookings"
    cancelled = await limits.may_cancel(db, rider.id, rules, now=now)
    assert cancelled is not None and cancelled.code == "limit_cancellations"
    assert await limits.may_book(db, rider.id, rules, now=now + timedelta(hours=25)) is None


# -- representatives' rights ----------------------------------------------------------------


def test_what_each_level_may_do() -> None:
    assert may(None, Act.EDIT_PROFILE) and may(None, Act.SEE_IIN)
    assert may(Rights.RIDES, Act.BOOK) and may(Rights.RIDES, Act.CANCEL)
    assert not may(Rights.RIDES, Act.EDIT_PROFILE)
    assert not may(Rights.RIDES, Act.SEE_HEALTH) and not may(Rights.RIDES, Act.SEE_IIN_MASKED)
    assert may(Rights.FULL, Act.EDIT_PROFILE) and may(Rights.FULL, Act.SEE_HEALTH)
    assert not may(Rights.FULL, Act.SEE_IIN)
    assert not may("something-new", Act.EDIT_PROFILE)


async def test_an_invited_relative_books_but_changes_nothing(db) -> None:
    owner = await account(db, 1, name="Айгерім")
    rider = await register(db, owner)
    relative = await account(db, 2, name="Ольга")
    invite = await reg.create_invite(db, rider, owner, now=NOW)
    link = await reg.accept_invite(db, invite.code, relative, now=NOW)
    assert isinstance(link, Representation) and link.rights == "rides"

    refused = await reg.update_rider(db, rider, {"phone": "+77010000001"}, by=relative)
    assert refused is reg.NOT_ALLOWED and rider.phone == "+77011234567"
    data = await privacy.stored_data(db, relative, KEY)
    (record,) = data.riders
    assert record.iin is None and record.rights == "rides"
    assert IIN_ADULT not in str(record.iin)


async def test_a_change_by_someone_else_is_told_and_checked_again(db) -> None:
    owner = await account(db, 1, name="Айгерім")
    rider = await register(db, owner)
    check = await reg.pending_verification(db, rider.id)
    assert check is not None
    await reg.decide(db, check.id, approve=True, actor_id=9001, actor_name="Айгүл")
    guardian = await account(db, 2, name="Ольга")
    invite = await reg.create_invite(db, rider, owner, rights="full", now=NOW)
    assert invite.rights == "full"
    await reg.accept_invite(db, invite.code, guardian, now=NOW)

    changed = await reg.update_rider(db, rider, {"phone": "+77010000001"}, by=guardian)
    assert isinstance(changed, reg.Update) and changed.reverify
    assert rider.verification == "pending"
    told = [
        m for m in await outbox(db, chat_id=1) if m.payload.get("msgid") == reg.CHANGED_BY_OTHER
    ]
    assert len(told) == 1 and told[0].payload["params"]["who"] == "Ольга"
    # The rider's own changes are not announced to the rider.
    await reg.update_rider(db, rider, {"full_name": "Айгерім Сейітқызы"}, by=owner)
    told = [
        m for m in await outbox(db, chat_id=1) if m.payload.get("msgid") == reg.CHANGED_BY_OTHER
    ]
    assert len(told) == 1


# -- the IIN oracle -------------------------------------------------------------------------


async def test_iin_tries_are_limited_per_account(db) -> None:
    curious = await account(db, 1)
    other = await account(db, 2)
    rules = Limits()
    for _ in range(rules.iin_tries_per_day):
        assert await iin_check.iin_step(db, curious, rules) is None
    refused = await iin_check.iin_step(db, curious, rules)
    assert refused is not None and refused.code == "limit_iin_tries"
    assert await iin_check.iin_step(db, other, rules) is None


async def test_a_duplicate_is_answered_without_saying_it_exists(db) -> None:
    first = await account(db, 1)
    await register(db, first, rider_input(IIN_ELDER))
    second = await account(db, 2)
    taken = await reg.register_rider(db, second, rider_input(IIN_ELDER), None, now=NOW)
    assert taken is reg.IIN_TAKEN
    district = await db.get(District, "taldykorgan")
    assert district is not None
    answer = await iin_check.answer_duplicate(db, second, district, "+77017777777")
    assert answer.code == "call_back" and "registered" not in answer.msgid
    desk = [m for m in await outbox(db, chat_id=district.chat_id) if m.payload.get("msgid")]
    assert desk[-1].payload["msgid"] == iin_check.DUPLICATE_DESK
    assert desk[-1].payload["params"] == {"phone": "+77017777777"}


async def test_an_unlinked_relative_cannot_finish_a_rating_comment(db) -> None:
    from bot.services.feedback import save_rating_comment

    owner = await account(db, 1)
    rider = await register(db, owner)
    relative = await account(db, 2)
    invite = await reg.create_invite(db, rider, owner, now=NOW)
    link = await reg.accept_invite(db, invite.code, relative, now=NOW)
    assert isinstance(link, Representation)
    ride = Ride(
        rider_id=rider.id,
        district_id=rider.district_id,
        pickup_address="a",
        destination="b",
        purpose="clinic",
        pickup_at=NOW,
        status="completed",
    )
    db.add(ride)
    await db.flush()
    saved = await save_rating_comment(db, relative, ride.id, "Водитель вежливый\u202e")
    assert isinstance(saved, Ride) and saved.rating_comment == "Водитель вежливый"
    await reg.unlink(db, link.id, owner)
    refused = await save_rating_comment(db, relative, ride.id, "Водитель хамил, 87015554433")
    assert refused is reg.NOT_ALLOWED and ride.rating_comment == "Водитель вежливый"
