"""The registration, verification, invite and erasure rules, on SQLite and PostgreSQL.

The factories here are shared with the end-to-end tests: they register riders the way the
conversation does (through `register_rider`), so the rows look exactly as in production.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import DEFAULT_TIMEZONE as TZ_NAME
from bot.i18n import I18n
from bot.services import privacy
from bot.services import registration as reg
from bot.services.crypto import seal_iin
from bot.services.i18n_types import Reason
from models import (
    Account,
    AuditLog,
    Consent,
    ConversationState,
    District,
    Invite,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Verification,
)
from tests.factories import (
    IIN_ADULT,
    IIN_CHILD,
    IIN_ELDER,
    KEY,
    NOW,
    account,
    outbox,
    register,
    rider_input,
)

# -- consent ------------------------------------------------------------------------------------


def test_consent_text_says_who_what_how_long_and_abroad_in_both_languages() -> None:
    i18n = I18n()
    ru = reg.consent_text(i18n.translator("ru"), 3 * 365)
    kk = reg.consent_text(i18n.translator("kk"), 3 * 365)
    assert "в течение 3 лет после последней поездки" in ru
    assert "соңғы сапардан кейін 3 жыл" in kk
    for text in (ru, kk):
        assert reg.CONSENT_VERSION in text
        assert "Telegram" in text and "/forget" in text and "/mydata" in text
    assert "отдел занятости и социальных программ" in ru and "ИИН" in ru and "ВКК" in ru
    assert "жұмыспен қамту және әлеуметтік бағдарламалар бөлімі" in kk and "ЖСН" in kk
    # Other retention settings are said in words that agree with the number.
    assert "в течение 1 года" in reg.consent_text(i18n.translator("ru"), 365)
    assert "в течение 400 дней" in reg.consent_text(i18n.translator("ru"), 400)


async def test_consent_is_kept_with_its_exact_text_version_and_time(db: AsyncSession) -> None:
    person = await account(db, 1, language="kk")
    consent = await db.scalar(select(Consent).where(Consent.account_id == person.id))
    assert consent is not None
    assert consent.version == reg.CONSENT_VERSION and consent.language == "kk"
    assert consent.text == reg.consent_text(I18n().translator("kk"), 3 * 365)
    assert consent.given_at == NOW and person.consent_at == NOW
    assert person.consent_version == reg.CONSENT_VERSION


# -- registering --------------------------------------------------------------------------------


async def test_a_new_profile_is_pending_and_its_card_goes_to_the_district_chat(
    db: AsyncSession,
) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    assert rider.account_id == person.id and person.role == "rider"
    assert rider.verification == "pending"
    assert rider.iin_last4 == "0017" and IIN_ADULT not in rider.iin_encrypted
    assert KEY.decrypt(rider.iin_encrypted) == IIN_ADULT
    verification = await db.scalar(select(Verification).where(Verification.rider_id == rider.id))
    assert verification is not None and verification.status == "pending"
    cards = await outbox(db, kind=reg.VERIFICATION_CARD)
    assert [(c.chat_id, c.payload["subject_id"]) for c in cards] == [
        (-1001000000001, verification.id)
    ]
    # The consent the person gave is kept for this rider too.
    copies = await db.scalar(
        select(func.count()).select_from(Consent).where(Consent.rider_id == rider.id)
    )
    assert copies == 1


async def test_one_iin_can_be_registered_once(db: AsyncSession) -> None:
    first = await account(db, 1)
    second = await account(db, 2)
    await register(db, first)
    again = await reg.register_rider(db, second, rider_input(IIN_ADULT), None)
    assert again is reg.IIN_TAKEN
    # Written with spaces, it is the same IIN.
    spaced = rider_input("9001 0130 0017")
    assert await reg.register_rider(db, second, spaced, None) is reg.IIN_TAKEN


async def test_one_own_profile_per_person_but_many_riders_to_book_for(db: AsyncSession) -> None:
    parent = await account(db, 1)
    own = await register(db, parent, rider_input(IIN_ADULT))
    assert await reg.register_rider(db, parent, rider_input(IIN_ELDER), None) is reg.OWN_EXISTS
    child = await register(
        db,
        parent,
        rider_input(IIN_CHILD, name="Әлихан", category="child_rehab", centre_name="Үміт"),
        reg.Relationship("parent"),
    )
    granny = await register(
        db,
        parent,
        rider_input(IIN_ELDER, name="Бибігүл", category="elderly"),
        reg.Relationship("attorney", "02-1234", date(2027, 1, 31)),
    )
    assert child.account_id is None and granny.account_id is None
    assert [r.id for r in await reg.riders_of(db, parent)] == [own.id, child.id, granny.id]
    rep = await db.scalar(select(Representation).where(Representation.rider_id == granny.id))
    assert rep is not None
    assert (rep.relationship_kind, rep.poa_number, rep.poa_expires_on) == (
        "attorney",
        "02-1234",
        date(2027, 1, 31),
    )
    access = await reg.access_to(db, parent, child.id)
    assert access is not None and not access.own and access.representation is not None
    stranger = await account(db, 3)
    assert await reg.access_to(db, stranger, child.id) is None


# -- verification -------------------------------------------------------------------------------


async def test_first_dispatcher_wins_and_the_rider_circle_is_told(db: AsyncSession) -> None:
    person = await account(db, 1, language="kk")
    rider = await register(db, person)
    relative = await account(db, 2, language="ru")
    db.add(Representation(rider_id=rider.id, account_id=relative.id, relationship_kind="relative"))
    await db.flush()
    verification = await reg.pending_verification(db, rider.id)
    assert verification is not None
    won = await reg.decide(db, verification.id, approve=True, actor_id=9001, actor_name="Айгүл")
    lost = await reg.decide(
        db, verification.id, approve=False, actor_id=9002, actor_name="Марат", reason="#docs"
    )
    assert won.ok and not lost.ok
    assert lost.verification is not None and lost.verification.decided_by_name == "Айгүл"
    await db.refresh(rider)
    assert rider.verification == "verified" and rider.verified_by == 9001
    told = await outbox(db, kind="send")
    assert {m.chat_id for m in told} == {1, 2}
    assert all(m.payload["msgid"] == reg.VERIFIED_MSG for m in told)


async def test_a_rejection_reason_reaches_people_in_their_language(db: AsyncSession) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    verification = await reg.pending_verification(db, rider.id)
    assert verification is not None
    await reg.decide(
        db, verification.id, approve=False, actor_id=9001, actor_name="Айгүл", reason="#vkk"
    )
    await db.refresh(rider)
    assert rider.verification == "rejected" and rider.rejection_reason == "#vkk"
    (message,) = await outbox(db, kind="send")
    assert message.payload["params"]["reason"] == {"msgid": reg.REJECT_REASONS["vkk"]}
    i18n = I18n()
    assert (
        reg.reason_text(i18n.translator("kk"), "#vkk") == "ДКК қорытындысының мерзімі өтіп кеткен"
    )
    assert reg.reason_text(i18n.translator("ru"), "Фото нечитаемое") == "Фото нечитаемое"


async def test_changing_an_eligibility_field_sends_the_profile_back(db: AsyncSession) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    first = await reg.pending_verification(db, rider.id)
    assert first is not None
    await reg.decide(db, first.id, approve=True, actor_id=9001, actor_name="Айгүл")

    # Needs don't change who the rider is: the profile stays verified.
    needs = await reg.update_rider(db, rider, {"needs": frozenset({"walker"})}, by=person)
    assert isinstance(needs, reg.Update) and needs.changed == {"needs"} and not needs.reverify
    assert rider.verification == "verified"

    same = await reg.update_rider(db, rider, {"vkk_number": "123/45"}, by=person)
    assert isinstance(same, reg.Update) and not same.changed

    vkk = await reg.update_rider(
        db, rider, {"vkk_number": "777/26", "vkk_expires_on": date(2028, 6, 30)}, by=person
    )
    assert isinstance(vkk, reg.Update) and vkk.reverify
    assert rider.verification == "pending"
    second = await reg.pending_verification(db, rider.id)
    assert second is not None and second.id != first.id

    # Another change while pending keeps the waiting check: its card is edited, not reposted.
    await reg.update_rider(db, rider, {"category": "elderly", "disability_group": None}, by=person)
    checks = list(await db.scalars(select(Verification).where(Verification.rider_id == rider.id)))
    assert [c.status for c in checks] == ["approved", "pending"]

    other = await account(db, 2)
    await register(db, other, rider_input(IIN_ELDER))
    taken = await reg.update_rider(db, rider, {"iin": seal_iin(KEY, IIN_ELDER)}, by=person)
    assert taken is reg.IIN_TAKEN


async def test_any_correction_of_a_rejected_profile_goes_back_for_checking(
    db: AsyncSession,
) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    verification = await reg.pending_verification(db, rider.id)
    assert verification is not None
    await reg.decide(
        db, verification.id, approve=False, actor_id=9001, actor_name="Айгүл", reason="#docs"
    )
    fixed = await reg.update_rider(db, rider, {"full_name": "Айгерім Сейітқызы"}, by=person)
    assert isinstance(fixed, reg.Update) and fixed.reverify
    assert rider.verification == "pending" and rider.rejection_reason is None


async def test_eligibility_uses_the_district_rules(db: AsyncSession) -> None:
    person = await account(db, 1)
    rider = await register(
        db, person, rider_input(IIN_ELDER, category="elderly", birth_date=date(1958, 3, 5))
    )
    district = await db.get(District, "taldykorgan")
    assert district is not None
    day = date(2026, 11, 26)
    assert reg.eligibility_of(rider, district, day).status == "pending"
    rider.verification = "verified"
    assert reg.eligibility_of(rider, district, day).ok
    district.rules = {**district.rules, "elderly_age": 70}
    verdict = reg.eligibility_of(rider, district, day)
    assert verdict.reason is not None and verdict.reason.code == "elderly_too_young"
    rider.category = "veteran"
    assert reg.eligibility_of(rider, district, day).status == "not_eligible"
    district.extra_categories = [{"code": "veteran", "name_kk": "Ардагер", "name_ru": "Ветеран"}]
    assert reg.eligibility_of(rider, district, day).ok
    t = I18n().translator("kk")
    assert reg.category_label(t, "kk", "veteran", district) == "Ардагер"


# -- invites and links --------------------------------------------------------------------------


async def test_an_invite_links_a_relative_once_within_a_day(db: AsyncSession) -> None:
    owner = await account(db, 1, language="kk")
    rider = await register(db, owner)
    invite = await reg.create_invite(db, rider, owner, now=NOW)
    assert invite.expires_at == NOW + timedelta(hours=24)
    assert len(invite.code) >= 16 and invite.code.replace("-", "").replace("_", "").isalnum()
    assert await reg.check_invite(db, invite.code, owner, now=NOW) is reg.INVITE_OWN

    relative = await account(db, 2)
    linked = await reg.accept_invite(db, invite.code, relative, now=NOW + timedelta(hours=1))
    assert isinstance(linked, Representation) and linked.relationship_kind == "relative"
    assert [r.id for r in await reg.riders_of(db, relative)] == [rider.id]
    (told,) = await outbox(db, kind="send", chat_id=1)
    assert told.payload["msgid"] == reg.RELATIVE_LINKED

    third = await account(db, 3)
    assert await reg.accept_invite(db, invite.code, third, now=NOW) is reg.INVITE_USED
    assert await reg.accept_invite(db, "no-such-code", third, now=NOW) is reg.INVITE_UNKNOWN
    late = await reg.create_invite(db, rider, owner, now=NOW)
    expired = await reg.accept_invite(db, late.code, third, now=NOW + timedelta(hours=25))
    assert isinstance(expired, Reason) and expired.code == "invite_expired"
    assert expired.params["when"] == "26.11.2026 06:00"  # UTC unless told the zone


async def test_either_side_unlinks_but_someone_must_keep_a_rider_without_telegram(
    db: AsyncSession,
) -> None:
    owner = await account(db, 1)
    rider = await register(db, owner)
    relative = await account(db, 2)
    rep = Representation(rider_id=rider.id, account_id=relative.id, relationship_kind="relative")
    db.add(rep)
    await db.flush()
    stranger = await account(db, 3)
    assert await reg.unlink(db, rep.id, stranger) is reg.NOT_ALLOWED
    done = await reg.unlink(db, rep.id, owner)
    assert isinstance(done, reg.Unlinked) and done.account is not None
    assert await reg.riders_of(db, relative) == []
    (told,) = await outbox(db, kind="send", chat_id=2)
    assert told.payload["msgid"] == reg.RELATIVE_UNLINKED

    parent = await account(db, 4)
    child = await register(
        db, parent, rider_input(IIN_CHILD, category="child_rehab"), reg.Relationship("parent")
    )
    only = await db.scalar(select(Representation).where(Representation.rider_id == child.id))
    assert only is not None
    assert await reg.unlink(db, only.id, parent) is reg.LAST_MANAGER


# -- my data and erasure ------------------------------------------------------------------------


async def test_stored_data_holds_every_rider_with_the_iin_in_clear(db: AsyncSession) -> None:
    parent = await account(db, 1)
    own = await register(db, parent)
    child = await register(
        db, parent, rider_input(IIN_CHILD, category="child_rehab"), reg.Relationship("parent")
    )
    data = await privacy.stored_data(db, parent, KEY)
    assert [r.rider.id for r in data.riders] == [own.id, child.id]
    assert [r.iin for r in data.riders] == [IIN_ADULT, IIN_CHILD]
    assert data.riders[0].own and not data.riders[1].own
    assert len(data.consents) == 3  # the account's, and one per registered rider
    viewed = await db.scalar(select(AuditLog).where(AuditLog.action == "data_viewed"))
    assert viewed is not None


async def test_forget_is_refused_while_a_ride_is_open(db: AsyncSession) -> None:
    person = await account(db, 1)
    rider = await register(db, person)
    ride = Ride(
        rider_id=rider.id,
        district_id=rider.district_id,
        pickup_address="Абай көшесі, 12",
        destination="Облыстық аурухана",
        purpose="clinic",
        pickup_at=datetime(2026, 11, 26, 5, 0, tzinfo=UTC),
        status=RideStatus.SCHEDULED.value,
    )
    db.add(ride)
    await db.flush()
    refusal = await privacy.forget(db, person, tz=TZ_NAME)
    assert isinstance(refusal, Reason) and refusal.code == "ride_open"
    assert refusal.params == {"number": str(ride.id), "date": "26.11.2026 10:00"}
    assert await db.get(Rider, rider.id) is not None
    ride.status = RideStatus.COMPLETED.value
    await db.flush()
    assert isinstance(await privacy.forget(db, person, tz=TZ_NAME), privacy.Erased)


async def test_forget_erases_what_only_this_person_holds_and_keeps_proof(
    db: AsyncSession,
) -> None:
    parent = await account(db, 700123, name="Ольга Ким")
    own = await register(db, parent)
    child = await register(
        db,
        parent,
        rider_input(IIN_CHILD, name="Әлихан", category="child_rehab"),
        reg.Relationship("parent"),
    )
    shared = await register(
        db, parent, rider_input(IIN_ELDER, name="Бибігүл"), reg.Relationship("guardian")
    )
    other = await account(db, 700456)
    db.add(Representation(rider_id=shared.id, account_id=other.id, relationship_kind="relative"))
    sister = await account(db, 700789)
    db.add(Representation(rider_id=own.id, account_id=sister.id, relationship_kind="relative"))
    await reg.create_invite(db, own, parent, now=NOW)
    db.add(ConversationState(key="fsm:1:700123:700123:default", state="Registration:iin", data={}))
    db.add(ConversationState(key="fsm:1:700456:700456:default", state="Registration:iin", data={}))
    await db.flush()
    ids = (own.id, child.id, shared.id)
    tid, parent_id = parent.telegram_id, parent.id

    erased = await privacy.forget(db, parent, now=NOW, tz=TZ_NAME)
    assert isinstance(erased, privacy.Erased)
    # Their own profile and the child nobody else manages are gone; the shared rider stays.
    assert sorted(erased.riders_deleted) == sorted(ids[:2])
    db.expire_all()
    assert await db.get(Rider, ids[0]) is None and await db.get(Rider, ids[1]) is None
    assert await db.get(Rider, ids[2]) is not None
    assert [a.telegram_id for _, a in await reg.relatives_of(db, ids[2])] == [700456]
    assert await db.scalar(select(func.count()).select_from(Invite)) == 0
    states = list(await db.scalars(select(ConversationState.key)))
    assert states == ["fsm:1:700456:700456:default"]
    # The account stays only as an id the consents point to; the language is kept.
    person = await db.get(Account, parent_id)
    assert person is not None
    assert person.telegram_id != tid and person.telegram_id < 0
    assert (person.display_name, person.role, person.consent_version) == ("", None, None)
    assert person.language == "ru"
    consents = list(await db.scalars(select(Consent).where(Consent.account_id == parent_id)))
    assert consents and all(c.withdrawn_at == NOW and c.text for c in consents)
    # The relative of the deleted profile is told; the kept rider's one has nothing to hear.
    (told,) = await outbox(db, kind="send", chat_id=700789)
    assert told.payload["msgid"] == privacy.PROFILE_DELETED
    assert await outbox(db, kind="send", chat_id=700456) == []
    # The trace has counts and ids, nothing personal.
    trace = await db.scalar(
        select(AuditLog).where(AuditLog.action == "consent_withdrawn_data_erased")
    )
    assert trace is not None
    dumped = json.dumps(trace.details, ensure_ascii=False) + (trace.subject or "")
    for personal in ("Ольга", "Әлихан", IIN_ADULT, IIN_CHILD, "+7701", str(tid)):
        assert personal not in dumped


def test_only_a_profile_managed_for_someone_without_telegram_can_be_deleted() -> None:
    """The Delete button is offered to a relative only for a rider who has no account."""
    child = Rider(id=1, account_id=None, full_name="Дана")
    adult = Rider(id=2, account_id=7, full_name="Иван")
    parent = Representation(id=3, rider_id=1, account_id=8, relationship_kind="parent")
    assert reg.Access(child, own=False, representation=parent).can_delete
    assert not reg.Access(adult, own=False, representation=parent).can_delete
    assert not reg.Access(adult, own=True, representation=None).can_delete
