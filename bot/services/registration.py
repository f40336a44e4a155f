"""Riders, their representatives and the dispatcher's verification: the rules, no Telegram.

A rider profile is saved whole at the end of the conversation (nothing half-saved), together
with the representation that links a person booking for someone else, a copy of the consent
given for that rider, and a verification request whose card goes to the district's chat. Any
later change to a field that decides eligibility sends the profile back to verification.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.crypto import SealedIin
from bot.services.district_cache import district_by_id
from bot.services.eligibility import (
    Category,
    Eligibility,
    EligibilityRules,
    RiderFacts,
    check_eligibility,
)
from bot.services.eligibility import Verification as VerificationState
from bot.services.help import with_desk_phone
from bot.services.i18n_types import N_, Reason, Translate
from bot.services.outbox import enqueue_card, enqueue_message
from bot.services.people import notify_rider
from bot.services.rights import Act, Rights, may, parse_rights, rights_when_registering
from models import (
    Account,
    AuditLog,
    Consent,
    District,
    Invite,
    Representation,
    Rider,
    Verification,
    utcnow,
)

CONSENT_VERSION: Final = "2026-12"
CONSENT_TEXT: Final = N_(
    "Consent to the processing of personal data (version {version}).\n\n"
    "Who processes the data: the department of employment and social programmes of your "
    "district or city, and its invataxi provider.\n"
    "What is kept: full name, phone, IIN, home address, category, the number and expiry date "
    "of the medical commission (VKK) conclusion, mobility needs, and your rides. The same for "
    "each person you register and book for.\n"
    "For how long: {retention} after the last ride, then it is deleted.\n"
    "Messages to and from this bot pass through Telegram's servers abroad.\n"
    "You can see what is stored with /mydata, and withdraw this consent and erase the data "
    "with /forget at any time when no ride is open."
)
YEARS_ONE: Final = N_("{count} year")
YEARS_MANY: Final = N_("{count} years")
DAYS_ONE: Final = N_("{count} day")
DAYS_MANY: Final = N_("{count} days")

VERIFICATION_CARD: Final = "verification_card"
INVITE_TTL: Final = timedelta(hours=24)
INVITE_PREFIX: Final = "inv_"

# Rider columns that decide eligibility: changing one sends the profile back to verification.
ELIGIBILITY_FIELDS: Final = frozenset(
    {
        "iin",
        "birth_date",
        "district_id",
        "category",
        "centre_name",
        "disability_group",
        "vkk_number",
        "vkk_expires_on",
    }
)
# Who the person is and how to reach them: a verified profile renamed or given another phone
# could be someone else's, so these send it back to the dispatchers as well.
REVERIFY_FIELDS: Final = ELIGIBILITY_FIELDS | {"full_name", "phone"}
# The categories every district serves (see DOMAIN.md); a district may add its own.
CATEGORY_LABELS: Final = {
    Category.GROUP1_MOBILITY.value: N_("Group I disability with difficulty moving"),
    Category.ELDERLY.value: N_("Elderly person"),
    Category.CHILD_REHAB.value: N_("Child attending a rehabilitation or day-care centre"),
    Category.MENTAL_DISORDER.value: N_("Mental disorder limiting self-care (2nd or 3rd degree)"),
}
CHILD: Final = Category.CHILD_REHAB.value
GROUP1: Final = Category.GROUP1_MOBILITY.value
# Mobility needs as codes (the conversation and the card) and their rider columns.
NEED_COLUMNS: Final = {
    "wheelchair": "needs_wheelchair",
    "walker": "needs_walker",
    "low_vision": "low_vision",
    "assistant": "needs_assistant",
}
NEED_LABELS: Final = {
    "wheelchair": N_("own wheelchair, needs a ramp or lift"),
    "walker": N_("walker or crutches"),
    "low_vision": N_("blind or low vision"),
    "assistant": N_("needs an assistant"),
}
RELATIONSHIP_LABELS: Final = {
    "parent": N_("parent"),
    "guardian": N_("guardian (legal representative)"),
    "attorney": N_("power of attorney"),
    "child": N_("son or daughter"),
    "spouse": N_("husband or wife"),
    "relative": N_("relative"),
    "other_relative": N_("relative"),
}
LEGAL_KINDS: Final = frozenset({"parent", "guardian"})
# Reasons a dispatcher picks from a list; stored as "#code", a typed reason as its text.
REJECT_REASONS: Final = {
    "docs": N_("the documents do not match"),
    "vkk": N_("the VKK conclusion has expired"),
    "category": N_("this category is not served in the district"),
    "dup": N_("duplicate registration"),
}

IIN_TAKEN = Reason(
    "iin_taken",
    N_(
        "This IIN is already registered. If it is yours or your relative's, please call "
        "the dispatcher of your district: they will help."
    ),
)
OWN_EXISTS = Reason(
    "own_exists", N_("You already have your own rider profile. Open it with /profile.")
)
INVITE_UNKNOWN = Reason(
    "invite_unknown", N_("This invitation link is not valid. Ask the rider for a new one.")
)
INVITE_USED = Reason(
    "invite_used", N_("This invitation was already used. Ask the rider for a new link.")
)
INVITE_OWN = Reason(
    "invite_own",
    N_("This is your own invitation. Send the link to the relative you want to link."),
)
NOT_ALLOWED = Reason("not_allowed", N_("This profile is not linked to you any more."))
CHANGED_BY_OTHER: Final = N_(
    "Someone else changed a profile.\nProfile: {name}\nChanged by: {who}\nSee it in /profile. "
    "If you did not expect this, unlink that person in /profile and call the dispatcher."
)
LAST_MANAGER = Reason(
    "last_manager",
    N_(
        "You are the only person who manages this profile, and the rider has no Telegram. "
        "To remove it, use “Delete this profile” instead."
    ),
)


@dataclass(frozen=True)
class RiderInput:
    """Everything the registration conversation collected, checked and normalised."""

    full_name: str
    phone: str
    iin: SealedIin
    birth_date: date | None
    district_id: str
    home_address: str
    home_lat: float | None
    home_lon: float | None
    category: str
    centre_name: str | None
    disability_group: int | None
    vkk_number: str
    vkk_expires_on: date | None
    needs: frozenset[str]
    usual_assistant: bool
    usual_companion: bool


@dataclass(frozen=True)
class Relationship:
    """How the person registering is related to a rider who is not themselves."""

    kind: str  # parent, guardian, attorney, child, spouse, other_relative
    poa_number: str | None = None
    poa_expires_on: date | None = None
    # The representative's own name and phone: whom the dispatcher calls about this rider.
    contact_name: str | None = None
    contact_phone: str | None = None


@dataclass(frozen=True)
class Access:
    """How an account may act on a rider: as the rider, or through a representation."""

    rider: Rider
    own: bool
    representation: Representation | None

    @property
    def can_delete(self) -> bool:
        """A representative may delete a profile only if the rider has no account of their own
        (a rider with Telegram withdraws their own consent with /forget)."""
        return self.representation is not None and self.rider.account_id is None


@dataclass(frozen=True)
class Decision:
    ok: bool
    verification: Verification | None
    rider: Rider | None = None
    # The press did not come from the check's own card in its own chat.
    wrong_card: bool = False


@dataclass(frozen=True)
class Update:
    changed: frozenset[str]
    reverify: bool


@dataclass(frozen=True)
class Unlinked:
    rider: Rider
    account: Account | None


def retention_words(t: Translate, days: int) -> str:
    """'3 years' / '3 года' / '3 жыл' for the consent text, from the retention setting.

    Russian genitive after "в течение": 1, 21, 31... take the singular form, others the plural.
    """
    count, one, many = (
        (days // 365, YEARS_ONE, YEARS_MANY) if days % 365 == 0 else (days, DAYS_ONE, DAYS_MANY)
    )
    singular = count % 10 == 1 and count % 100 != 11
    return t(one if singular else many, count=count)


def extra_categories(district: District) -> dict[str, dict[str, str]]:
    """The district's own categories by code, each with its kk and ru names."""
    out: dict[str, dict[str, str]] = {}
    for entry in district.extra_categories or []:
        if isinstance(entry, dict) and entry.get("code"):
            out[str(entry["code"])] = {k: str(v) for k, v in entry.items()}
    return out


def eligibility_rules(district: District) -> EligibilityRules:
    """The district's eligibility rules: its age threshold and its own categories."""
    return EligibilityRules().for_district(
        dict(district.rules or {}), extra_categories(district).keys()
    )


def eligibility_of(rider: Rider, district: District, on: date) -> Eligibility:
    """May this rider book a ride on `on` in their district (see bot.services.eligibility)."""
    state = rider.verification
    verification: VerificationState = (
        "verified" if state == "verified" else "rejected" if state == "rejected" else "pending"
    )
    facts = RiderFacts(
        category=rider.category,
        verification=verification,
        vkk_expires_on=rider.vkk_expires_on,
        birth_date=rider.birth_date,
        disability_group=rider.disability_group,
    )
    return check_eligibility(facts, eligibility_rules(district), on)


def category_label(t: Translate, lang: str, code: str, district: District | None) -> str:
    if code in CATEGORY_LABELS:
        return t(CATEGORY_LABELS[code])
    extra = extra_categories(district).get(code) if district is not None else None
    if extra is not None:
        return extra.get("name_kk" if lang == "kk" else "name_ru") or code
    return code


def consent_text(t: Translate, retention_days: int) -> str:
    """The consent exactly as shown and as stored with the person's agreement."""
    return t(CONSENT_TEXT, version=CONSENT_VERSION, retention=retention_words(t, retention_days))


def audit(
    session: AsyncSession,
    action: str,
    *,
    subject: str | None = None,
    actor_id: int | None = None,
    details: Mapping[str, object] | None = None,
) -> None:
    """An audit row: ids and outcomes only, never names, phones, IINs or health details."""
    session.add(
        AuditLog(action=action, subject=subject, actor_id=actor_id, details=dict(details or {}))
    )


async def give_consent(
    session: AsyncSession,
    account: Account,
    *,
    language: str,
    text: str,
    now: datetime | None = None,
) -> Consent:
    now = now or utcnow()
    consent = Consent(
        account_id=account.id, version=CONSENT_VERSION, language=language, text=text, given_at=now
    )
    session.add(consent)
    account.consent_version = CONSENT_VERSION
    account.consent_at = now
    audit(
        session,
        "consent_given",
        subject=f"account:{account.id}",
        details={"version": CONSENT_VERSION},
    )
    return consent


# -- whose riders -------------------------------------------------------------------------------


async def own_rider(session: AsyncSession, account: Account) -> Rider | None:
    return await session.scalar(select(Rider).where(Rider.account_id == account.id))


async def riders_of(session: AsyncSession, account: Account) -> list[Rider]:
    """The person's own rider profile first, then the riders they book for, oldest link first."""
    riders: list[Rider] = []
    own = await own_rider(session, account)
    if own is not None:
        riders.append(own)
    represented = await session.scalars(
        select(Rider)
        .join(Representation, Representation.rider_id == Rider.id)
        .where(Representation.account_id == account.id)
        .order_by(Representation.id)
    )
    riders.extend(r for r in represented if own is None or r.id != own.id)
    return riders


async def access_to(session: AsyncSession, account: Account, rider_id: int) -> Access | None:
    """None when the rider is gone or not this person's to see (a stale or forged button)."""
    rider = await session.get(Rider, rider_id)
    if rider is None:
        return None
    if rider.account_id == account.id:
        return Access(rider=rider, own=True, representation=None)
    rep = await session.scalar(
        select(Representation).where(
            Representation.rider_id == rider_id, Representation.account_id == account.id
        )
    )
    if rep is None:
        return None
    return Access(rider=rider, own=False, representation=rep)


async def relatives_of(
    session: AsyncSession, rider_id: int
) -> list[tuple[Representation, Account]]:
    rows = await session.execute(
        select(Representation, Account)
        .join(Account, Account.id == Representation.account_id)
        .where(Representation.rider_id == rider_id)
        .order_by(Representation.id)
    )
    return [(rep, acc) for rep, acc in rows.all()]


async def iin_taken(
    session: AsyncSession, lookup_hash: str, except_rider: int | None = None
) -> bool:
    query = select(Rider.id).where(Rider.iin_hash == lookup_hash)
    if except_rider is not None:
        query = query.where(Rider.id != except_rider)
    return await session.scalar(query.limit(1)) is not None


async def active_districts(session: AsyncSession) -> list[District]:
    rows = await session.scalars(
        select(District).where(District.active.is_(True)).order_by(District.id)
    )
    return list(rows)


# -- registering and changing -------------------------------------------------------------------


def _apply_needs(rider: Rider, needs: frozenset[str]) -> None:
    for code, column in NEED_COLUMNS.items():
        setattr(rider, column, code in needs)


def needs_of(rider: Rider) -> frozenset[str]:
    return frozenset(code for code, column in NEED_COLUMNS.items() if getattr(rider, column))


async def register_rider(
    session: AsyncSession,
    account: Account,
    data: RiderInput,
    relationship: Relationship | None,
    *,
    now: datetime | None = None,
) -> Rider | Reason:
    """Save a confirmed profile, link the representative, and ask for verification.

    Without `relationship` the profile is the person's own (one per account); with it, the
    rider may have no Telegram at all and the person becomes their representative.
    """
    now = now or utcnow()
    if relationship is None and await own_rider(session, account) is not None:
        return OWN_EXISTS
    if await iin_taken(session, data.iin.lookup_hash):
        return IIN_TAKEN
    rider = Rider(
        account_id=None if relationship else account.id,
        district_id=data.district_id,
        full_name=data.full_name,
        phone=data.phone,
        iin_encrypted=data.iin.encrypted,
        iin_hash=data.iin.lookup_hash,
        birth_date=data.birth_date,
        home_address=data.home_address,
        home_lat=data.home_lat,
        home_lon=data.home_lon,
        category=data.category,
        centre_name=data.centre_name,
        disability_group=data.disability_group,
        vkk_number=data.vkk_number,
        vkk_expires_on=data.vkk_expires_on,
        usual_assistant=data.usual_assistant,
        usual_companion=data.usual_companion,
        verification="pending",
        created_by=account.id,
        created_at=now,
    )
    _apply_needs(rider, data.needs)
    try:
        # Two people may register one IIN at the same moment: the unique hash decides.
        async with session.begin_nested():
            session.add(rider)
            await session.flush()
    except IntegrityError:
        return IIN_TAKEN
    if relationship is not None:
        session.add(
            Representation(
                rider_id=rider.id,
                account_id=account.id,
                relationship_kind=relationship.kind,
                rights=rights_when_registering(relationship.kind).value,
                poa_number=relationship.poa_number,
                poa_expires_on=relationship.poa_expires_on,
                contact_name=relationship.contact_name,
                contact_phone=relationship.contact_phone,
                created_at=now,
            )
        )
        if account.role is None:
            account.role = "representative"
    elif account.role is None:
        account.role = "rider"
    await _consent_for_rider(session, account, rider, now)
    await request_verification(session, rider, now=now)
    audit(
        session,
        "rider_registered",
        subject=f"rider:{rider.id}",
        details={
            "by": f"account:{account.id}",
            "as": relationship.kind if relationship else "self",
        },
    )
    return rider


async def _consent_for_rider(
    session: AsyncSession, account: Account, rider: Rider, now: datetime
) -> None:
    """Keep, per rider, the consent text the person accepted when they registered them."""
    given = await session.scalar(
        select(Consent)
        .where(Consent.account_id == account.id, Consent.withdrawn_at.is_(None))
        .order_by(Consent.given_at.desc(), Consent.id.desc())
        .limit(1)
    )
    if given is None:
        return
    session.add(
        Consent(
            account_id=account.id,
            rider_id=rider.id,
            version=given.version,
            language=given.language,
            text=given.text,
            given_at=now,
        )
    )


async def request_verification(
    session: AsyncSession, rider: Rider, *, now: datetime | None = None
) -> Verification:
    """Ask the rider's district to check the profile.

    A check already waiting in the same district is kept and its card edited in place, so a
    profile resubmitted again and again stays one card in the dispatcher chat; one waiting in
    another district (the rider moved) is superseded and a new card posted where they live.
    """
    now = now or utcnow()
    # Counted by bot.services.limits.may_resubmit.
    session.add(AuditLog(action="verification_requested", subject=f"rider:{rider.id}", at=now))
    older = list(
        await session.scalars(
            select(Verification).where(
                Verification.rider_id == rider.id, Verification.status == "pending"
            )
        )
    )
    rider.verification = "pending"
    rider.verified_at = None
    rider.verified_by = None
    rider.rejection_reason = None
    same = [v for v in older if v.district_id == rider.district_id]
    if same:
        keep = same[-1]
        district = await district_by_id(session, keep.district_id)
        if district is not None:
            await enqueue_card(
                session,
                kind=VERIFICATION_CARD,
                subject_id=keep.id,
                chat_id=keep.card_chat_id or district.chat_id,
                topic_id=district.topic_id,
            )
        older = [v for v in older if v is not keep]
    for old in older:
        old.status = "superseded"
        old.decided_at = now
        old_district = await district_by_id(session, old.district_id)
        if old_district is not None:
            await enqueue_card(
                session,
                kind=VERIFICATION_CARD,
                subject_id=old.id,
                chat_id=old.card_chat_id or old_district.chat_id,
                topic_id=old_district.topic_id,
            )
    if same:
        return keep
    verification = Verification(rider_id=rider.id, district_id=rider.district_id, created_at=now)
    session.add(verification)
    await session.flush()
    district = await district_by_id(session, rider.district_id)
    if district is not None:
        await enqueue_card(
            session,
            kind=VERIFICATION_CARD,
            subject_id=verification.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
        )
    return verification


async def pending_verification(session: AsyncSession, rider_id: int) -> Verification | None:
    return await session.scalar(
        select(Verification)
        .where(Verification.rider_id == rider_id, Verification.status == "pending")
        .order_by(Verification.id.desc())
        .limit(1)
    )


async def update_rider(
    session: AsyncSession,
    rider: Rider,
    changes: Mapping[str, object],
    *,
    by: Account,
    now: datetime | None = None,
) -> Update | Reason:
    """Apply edited fields; an eligibility field that really changed asks for verification.

    `changes` holds rider columns, plus `iin` as a SealedIin and `needs` as a set of codes.
    Only the rider and representatives with "full" rights may change a profile; a change of
    the name, phone or anything eligibility rests on goes back to the dispatchers, and a
    change made by anyone but the rider is told to the rider (or, for a rider without
    Telegram, to the other people who manage the profile).
    """
    rights = await rights_of(session, rider, by)
    if rights is NOT_LINKED or not may(rights, Act.EDIT_PROFILE):
        return NOT_ALLOWED
    changed: set[str] = set()
    for name, value in changes.items():
        if name == "iin":
            assert isinstance(value, SealedIin)
            if value.lookup_hash == rider.iin_hash:
                continue
            if await iin_taken(session, value.lookup_hash, except_rider=rider.id):
                return IIN_TAKEN
            rider.iin_encrypted = value.encrypted
            rider.iin_hash = value.lookup_hash
            changed.add(name)
        elif name == "needs":
            assert isinstance(value, frozenset)
            if value != needs_of(rider):
                _apply_needs(rider, value)
                changed.add(name)
        elif getattr(rider, name) != value:
            setattr(rider, name, value)
            changed.add(name)
    # A rejected profile goes back for checking after any correction.
    reverify = bool(changed & REVERIFY_FIELDS) or (
        bool(changed) and rider.verification == "rejected"
    )
    if reverify:
        await request_verification(session, rider, now=now)
    elif changed:
        # The dispatcher checking a pending profile sees its current name and phone.
        pending = await pending_verification(session, rider.id)
        district = await district_by_id(session, rider.district_id)
        if pending is not None and district is not None:
            await enqueue_card(
                session,
                kind=VERIFICATION_CARD,
                subject_id=pending.id,
                chat_id=pending.card_chat_id or district.chat_id,
                topic_id=district.topic_id,
            )
    if changed:
        audit(
            session,
            "rider_updated",
            subject=f"rider:{rider.id}",
            details={"by": f"account:{by.id}", "fields": sorted(changed), "reverify": reverify},
        )
        await tell_of_change(session, rider, by)
    return Update(changed=frozenset(changed), reverify=reverify)


NOT_LINKED: Final = "not_linked"


async def rights_of(session: AsyncSession, rider: Rider, account: Account) -> str | None:
    """None for the rider themself, the representation's level, or NOT_LINKED."""
    if rider.account_id is not None and rider.account_id == account.id:
        return None
    rights = await session.scalar(
        select(Representation.rights).where(
            Representation.rider_id == rider.id, Representation.account_id == account.id
        )
    )
    return rights if rights is not None else NOT_LINKED


async def tell_of_change(session: AsyncSession, rider: Rider, by: Account) -> int:
    """Tell the rider that someone else changed their profile; returns how many were told."""
    if rider.account_id == by.id:
        return 0
    if rider.account_id is not None:
        told = [await session.get(Account, rider.account_id)]
    else:
        told = [acc for _, acc in await relatives_of(session, rider.id) if acc.id != by.id]
    count = 0
    for person in told:
        if person is None or person.telegram_id < 0:
            continue
        enqueue_message(
            session,
            chat_id=person.telegram_id,
            account_id=person.id,
            msgid=CHANGED_BY_OTHER,
            params={"who": by.display_name or "—", "name": rider.full_name},
        )
        count += 1
    return count


async def update_representation(
    session: AsyncSession,
    access: Access,
    poa_number: str | None,
    poa_expires_on: date | None,
    *,
    by: Account,
    now: datetime | None = None,
) -> Update | Reason:
    """A new power of attorney: the dispatcher checks it again, as on registration."""
    rep = access.representation
    if rep is None:
        return NOT_ALLOWED
    changed: set[str] = set()
    if rep.poa_number != poa_number:
        rep.poa_number = poa_number
        changed.add("poa_number")
    if rep.poa_expires_on != poa_expires_on:
        rep.poa_expires_on = poa_expires_on
        changed.add("poa_expires_on")
    if changed:
        await request_verification(session, access.rider, now=now)
        audit(
            session,
            "representation_updated",
            subject=f"rider:{access.rider.id}",
            details={"by": f"account:{by.id}", "fields": sorted(changed)},
        )
    return Update(changed=frozenset(changed), reverify=bool(changed))


async def update_contact(
    session: AsyncSession,
    access: Access,
    name: str | None,
    phone: str | None,
    *,
    by: Account,
) -> Update | Reason:
    """The representative's own name and phone; a pending card shows the new ones."""
    rep = access.representation
    if rep is None:
        return NOT_ALLOWED
    changed = {
        field
        for field, old, new in (
            ("contact_name", rep.contact_name, name),
            ("contact_phone", rep.contact_phone, phone),
        )
        if old != new
    }
    rep.contact_name, rep.contact_phone = name, phone
    if changed:
        pending = await pending_verification(session, access.rider.id)
        district = await district_by_id(session, access.rider.district_id)
        if pending is not None and district is not None:
            await enqueue_card(
                session,
                kind=VERIFICATION_CARD,
                subject_id=pending.id,
                chat_id=pending.card_chat_id or district.chat_id,
                topic_id=district.topic_id,
            )
        audit(
            session,
            "representation_updated",
            subject=f"rider:{access.rider.id}",
            details={"by": f"account:{by.id}", "fields": sorted(changed)},
        )
    return Update(changed=frozenset(changed), reverify=False)


# -- the dispatcher's decision ------------------------------------------------------------------


def reason_code(code: str) -> str:
    return f"#{code}"


def reason_param(reason: str | None) -> str | dict[str, str]:
    """A stored reason as an outbox param: a listed one is translated for each recipient."""
    if reason and reason.startswith("#") and reason[1:] in REJECT_REASONS:
        return {"msgid": REJECT_REASONS[reason[1:]]}
    return reason or ""


def reason_text(t: Translate, reason: str | None) -> str:
    param = reason_param(reason)
    if isinstance(param, dict):
        listed = param["msgid"]
        return t(listed)
    return param


VERIFIED_MSG: Final = N_(
    "The dispatcher checked the profile of {name}: it is approved. You can book rides now: /book"
)
REJECTED_MSG: Final = N_(
    "The dispatcher did not approve the profile of {name}. Reason: {reason}.\n"
    "Correct the profile in /profile (it goes back for checking), or call the dispatcher."
)


def pressed_on_card(
    verification: Verification, chat_id: int | None, message_id: int | None
) -> bool:
    """Was a button pressed on this check's posted card (not another message or chat)?"""
    return (
        verification.card_message_id is not None
        and verification.card_chat_id == chat_id
        and verification.card_message_id == message_id
    )


async def decide(
    session: AsyncSession,
    verification_id: int,
    *,
    approve: bool,
    actor_id: int,
    actor_name: str,
    reason: str | None = None,
    now: datetime | None = None,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> Decision:
    """First dispatcher wins: one conditional update from pending; the loser changes nothing.

    `chat_id` and `message_id` are where the button was pressed: a decision counts only from
    the check's own card in its own chat, as a ride's buttons do (a forged press from another
    card or group changes nothing). Give both from every press.
    """
    now = now or utcnow()
    if chat_id is not None or message_id is not None:
        current = await session.get(Verification, verification_id)
        if current is None or not pressed_on_card(current, chat_id, message_id):
            return Decision(ok=False, verification=current, wrong_card=True)
    status = "approved" if approve else "rejected"
    won = await session.execute(
        update(Verification)
        .where(Verification.id == verification_id, Verification.status == "pending")
        .values(
            status=status,
            decided_by=actor_id,
            decided_by_name=actor_name[:128],
            decided_at=now,
            reason=None if approve else (reason or "")[:300],
        )
        .returning(Verification.id)
        .execution_options(synchronize_session=False)
    )
    verification = await session.get(Verification, verification_id, populate_existing=True)
    if won.scalar_one_or_none() is None or verification is None:
        return Decision(ok=False, verification=verification)
    rider = await session.get(Rider, verification.rider_id)
    if rider is None:
        return Decision(ok=False, verification=verification)
    rider.verification = "verified" if approve else "rejected"
    rider.verified_at = now if approve else None
    rider.verified_by = actor_id if approve else None
    rider.rejection_reason = None if approve else verification.reason
    district = await district_by_id(session, verification.district_id)
    if district is not None:
        await enqueue_card(
            session,
            kind=VERIFICATION_CARD,
            subject_id=verification.id,
            chat_id=verification.card_chat_id or district.chat_id,
            topic_id=district.topic_id,
        )
    if approve:
        await notify_rider(session, rider.id, VERIFIED_MSG, {"name": rider.full_name})
    else:
        # "Call the dispatcher" always comes with the desk's number when the district has one.
        refusal = with_desk_phone(
            Reason(
                "rejected",
                REJECTED_MSG,
                {"name": rider.full_name, "reason": reason_param(verification.reason)},
            ),
            district.desk_phone if district is not None else None,
        )
        await notify_rider(session, rider.id, refusal.msgid, dict(refusal.params))
    audit(
        session,
        f"verification_{status}",
        subject=f"rider:{rider.id}",
        actor_id=actor_id,
        details={"verification": verification.id},
    )
    return Decision(ok=True, verification=verification, rider=rider)


# -- invites and links --------------------------------------------------------------------------


INVITE_EXPIRED: Final = N_(
    "This invitation expired ({when}): links are valid for 24 hours. Ask the rider for a new one."
)
ALREADY_LINKED: Final = N_("You are already linked to {name}.")
RELATIVE_LINKED: Final = N_(
    "{relative} accepted your invitation and is now linked to your profile: they can book "
    "rides for you and get your ride messages. Unlink them any time in /profile."
)
RELATIVE_LINKED_FULL: Final = N_(
    "{relative} accepted your invitation and is now linked to your profile: they can book "
    "rides for you, get your ride messages, and see and change your profile. You will be told "
    "of every change. Unlink them any time in /profile."
)
RELATIVE_UNLINKED: Final = N_(
    "{name} unlinked you from their profile. You will no longer get their ride messages."
)
REPRESENTATIVE_LEFT: Final = N_(
    "{relative} is no longer linked to your profile and will not get your ride messages."
)


async def create_invite(
    session: AsyncSession,
    rider: Rider,
    account: Account,
    *,
    rights: str = Rights.RIDES,
    now: datetime | None = None,
) -> Invite:
    """A fresh single-use code; valid 24 hours. Deep-link payloads allow [A-Za-z0-9_-].

    `rights` is what the relative will be able to do (bot.services.rights), shown in the
    invitation; only someone who may invite (the rider, or "full" rights) creates one.
    """
    now = now or utcnow()
    invite = Invite(
        code=secrets.token_urlsafe(12),
        rider_id=rider.id,
        created_by=account.id,
        expires_at=now + INVITE_TTL,
        rights=parse_rights(rights).value,
    )
    session.add(invite)
    await session.flush()
    audit(session, "invite_created", subject=f"rider:{rider.id}")
    return invite


async def check_invite(
    session: AsyncSession,
    code: str,
    account: Account,
    *,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> tuple[Invite, Rider] | Reason:
    """Whether this person may accept the invite now; the refusal says why."""
    now = now or utcnow()
    invite = await session.get(Invite, code) if code else None
    if invite is None:
        return INVITE_UNKNOWN
    rider = await session.get(Rider, invite.rider_id)
    if rider is None:
        return INVITE_UNKNOWN
    if invite.used_at is not None:
        return INVITE_USED
    if invite.expires_at <= now:
        when = invite.expires_at.astimezone(tz).strftime("%d.%m.%Y %H:%M")
        return Reason("invite_expired", INVITE_EXPIRED, {"when": when})
    if rider.account_id == account.id:
        return INVITE_OWN
    linked = await session.scalar(
        select(Representation.id).where(
            Representation.rider_id == rider.id, Representation.account_id == account.id
        )
    )
    if linked is not None:
        return Reason("already_linked", ALREADY_LINKED, {"name": rider.full_name})
    return invite, rider


async def accept_invite(
    session: AsyncSession,
    code: str,
    account: Account,
    *,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> Representation | Reason:
    """Use the invite once (a conditional update) and link the person as a relative."""
    now = now or utcnow()
    found = await check_invite(session, code, account, now=now, tz=tz)
    if isinstance(found, Reason):
        return found
    _, rider = found
    used = await session.execute(
        update(Invite)
        .where(Invite.code == code, Invite.used_at.is_(None), Invite.expires_at > now)
        .values(used_at=now, used_by=account.id)
        .returning(Invite.code)
        .execution_options(synchronize_session=False)
    )
    if used.scalar_one_or_none() is None:
        return INVITE_USED
    invite = await session.get(Invite, code)
    level = parse_rights(invite.rights if invite is not None else None)
    rep = Representation(
        rider_id=rider.id,
        account_id=account.id,
        relationship_kind="relative",
        rights=level.value,
        created_at=now,
    )
    session.add(rep)
    if account.role is None:
        account.role = "representative"
    await session.flush()
    owner = await session.get(Account, rider.account_id) if rider.account_id else None
    if owner is not None:
        enqueue_message(
            session,
            chat_id=owner.telegram_id,
            account_id=owner.id,
            msgid=RELATIVE_LINKED if level is Rights.RIDES else RELATIVE_LINKED_FULL,
            params={"relative": account.display_name or "—"},
        )
    audit(
        session,
        "representative_linked",
        subject=f"rider:{rider.id}",
        details={"kind": "relative", "rights": level.value},
    )
    return rep


async def unlink(session: AsyncSession, representation_id: int, by: Account) -> Unlinked | Reason:
    """The rider removes a relative, or a representative removes themselves.

    A rider with no Telegram must keep someone who manages them: the last such person is told
    to delete the profile instead, so no profile is left that nobody can reach.
    """
    rep = await session.get(Representation, representation_id)
    if rep is None:
        return NOT_ALLOWED
    rider = await session.get(Rider, rep.rider_id)
    if rider is None:
        return NOT_ALLOWED
    by_rider = rider.account_id == by.id
    if not by_rider and rep.account_id != by.id:
        return NOT_ALLOWED
    if rider.account_id is None:
        others = await session.scalar(
            select(func.count())
            .select_from(Representation)
            .where(Representation.rider_id == rider.id, Representation.id != rep.id)
        )
        if not others:
            return LAST_MANAGER
    other = await session.get(Account, rep.account_id)
    await session.delete(rep)
    await session.flush()
    if by_rider and other is not None:
        enqueue_message(
            session,
            chat_id=other.telegram_id,
            account_id=other.id,
            msgid=RELATIVE_UNLINKED,
            params={"name": rider.full_name},
        )
    elif rider.account_id is not None:
        owner = await session.get(Account, rider.account_id)
        if owner is not None:
            enqueue_message(
                session,
                chat_id=owner.telegram_id,
                account_id=owner.id,
                msgid=REPRESENTATIVE_LEFT,
                params={"relative": by.display_name or "—"},
            )
    audit(session, "representative_unlinked", subject=f"rider:{rider.id}")
    return Unlinked(rider=rider, account=other)
