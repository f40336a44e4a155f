"""What is stored about a person (/mydata) and erasing it when they withdraw consent (/forget).

Erasure, thought through:
- Refused while any ride of a rider the person is or books for, or a ride they booked, is
  open: a car may be on its way, and the dispatcher must still be able to reach someone.
- Their own rider profile is deleted with its rides, ride history, verifications and invites
  (the database cascades); the audit row keeps only how many rows went.
- A rider they book for is deleted too when, without this person, nobody would be left who
  can act for them: the rider has no Telegram and no other representative. The consent that
  allowed keeping that rider's data was this person's (as parent, guardian, attorney or
  relative), and data nobody can use or correct has no purpose left. A rider who has their
  own Telegram or another representative keeps their profile; only the link goes.
- Their representations, invites, queued and sent messages, and conversation state go; their
  name is removed from the history of rides that remain (rides of other riders they booked).
- The account row stays, anonymised, because consent records point to it: no Telegram id (a
  placeholder replaces it, so a later /start begins afresh), no name, no role; the language is
  kept. Consents are marked withdrawn; their text and time stay as proof of what was agreed.
- One audit row records the erasure with counts and ids only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.crypto import DataKey, DataKeyError
from bot.services.district_cache import district_by_id
from bot.services.i18n_types import N_, Reason
from bot.services.outbox import enqueue_card, enqueue_message
from bot.services.registration import audit, riders_of
from models import (
    OPEN_STATUSES,
    Account,
    AuditLog,
    Consent,
    ConversationState,
    District,
    Invite,
    OutboxMessage,
    Representation,
    Ride,
    RideEvent,
    Rider,
    Verification,
    utcnow,
)

ERASED_CARD = "verification_erased"
# A ride card or a notice about a person whose data is erased: edited to one line without
# personal data (bot.cards.erased). Its subject is an audit row holding only where it is.
ERASED_MESSAGE = "message_erased"
ERASED_MESSAGE_ACTION = "message_erased"
# Telegram ids erased in the session's transaction (read by the conversation storage).
ERASED_IN_SESSION = "invataxi_erased_telegram_ids"
# Group notices that name a rider (bot.services.reachability marks them with the rider's id).
ABOUT_RIDER = "about_rider"
OPEN_RIDE = N_(
    "Your data can't be erased while ride №{number} ({date}) is open. Cancel it or wait until "
    "it is finished, then send /forget again."
)
RIDER_HAS_OPEN_RIDE = N_(
    "This profile can't be deleted while ride №{number} ({date}) is open. Cancel it or wait "
    "until it is finished."
)
PROFILE_DELETED = N_(
    "The profile of {name} was deleted at the request of the person who managed it. You will "
    "no longer get its ride messages."
)


@dataclass(frozen=True)
class RiderRecord:
    rider: Rider
    # The IIN in clear, for the rider only; None for representatives or when the key can't
    # read it (then the last 4 are shown).
    iin: str | None
    own: bool
    # The representative's level (bot.services.rights); None for the rider's own profile.
    rights: str | None
    representations: list[tuple[Representation, Account]]
    rides: int
    verifications: list[Verification]


@dataclass(frozen=True)
class StoredData:
    account: Account
    consents: list[Consent]
    riders: list[RiderRecord]
    invites: list[Invite]


@dataclass(frozen=True)
class Erased:
    riders_deleted: list[int] = field(default_factory=list)
    representations_deleted: int = 0
    rides_deleted: int = 0


async def stored_data(session: AsyncSession, account: Account, key: DataKey) -> StoredData:
    """Everything kept about the person and the riders they are or book for.

    Only the rider and their representatives get here (the handler serves it in private chat
    to the account itself), so the IIN is shown decrypted.
    """
    consents = list(
        await session.scalars(
            select(Consent)
            .where(Consent.account_id == account.id)
            .order_by(Consent.given_at, Consent.id)
        )
    )
    records: list[RiderRecord] = []
    for rider in await riders_of(session, account):
        own = rider.account_id == account.id
        rep = (
            None
            if own
            else await session.scalar(
                select(Representation).where(
                    Representation.rider_id == rider.id, Representation.account_id == account.id
                )
            )
        )
        rights = rep.rights if rep is not None else None
        iin: str | None = None
        # The whole IIN to the rider and to whoever registered them (who typed it: a parent,
        # guardian or attorney); an invited relative sees the last digits (the handler shows
        # `rider.iin_last4` when `iin` is None), and with "rides" no health fields at all.
        if own or (rep is not None and rep.relationship_kind != "relative"):
            try:
                iin = key.decrypt(rider.iin_encrypted)
            except DataKeyError:
                iin = None
        reps = await session.execute(
            select(Representation, Account)
            .join(Account, Account.id == Representation.account_id)
            .where(Representation.rider_id == rider.id)
            .order_by(Representation.id)
        )
        rides = await session.scalar(
            select(func.count()).select_from(Ride).where(Ride.rider_id == rider.id)
        )
        verifications = list(
            await session.scalars(
                select(Verification)
                .where(Verification.rider_id == rider.id)
                .order_by(Verification.id)
            )
        )
        records.append(
            RiderRecord(
                rider=rider,
                iin=iin,
                own=own,
                rights=rights,
                representations=[(r, a) for r, a in reps.all()],
                rides=int(rides or 0),
                verifications=verifications,
            )
        )
    invites = list(
        await session.scalars(
            select(Invite).where(Invite.created_by == account.id).order_by(Invite.expires_at)
        )
    )
    audit(session, "data_viewed", subject=f"account:{account.id}")
    return StoredData(account=account, consents=consents, riders=records, invites=invites)


async def _open_ride(session: AsyncSession, rider_ids: list[int], account: Account) -> Ride | None:
    query = select(Ride).where(Ride.status.in_([s.value for s in OPEN_STATUSES]))
    conditions = [Ride.booked_by == account.id]
    if rider_ids:
        conditions.append(Ride.rider_id.in_(rider_ids))
    return await session.scalar(query.where(or_(*conditions)).order_by(Ride.pickup_at).limit(1))


async def forget_refusal(session: AsyncSession, account: Account, *, tz: str) -> Reason | None:
    """Why the person's data can't be erased now: an open ride of theirs, or None."""
    riders = await riders_of(session, account)
    ride = await _open_ride(session, [r.id for r in riders], account)
    return _open_reason(OPEN_RIDE, ride, tz) if ride is not None else None


def _open_reason(msgid: str, ride: Ride, tz_name: str) -> Reason:
    from zoneinfo import ZoneInfo

    when = ride.pickup_at.astimezone(ZoneInfo(tz_name)).strftime("%d.%m.%Y %H:%M")
    return Reason("ride_open", msgid, {"number": ride.number, "date": when})


async def erase_rider(session: AsyncSession, rider: Rider) -> int:
    """Delete one rider and everything hanging off them; returns how many rides went."""
    rides = await session.scalar(
        select(func.count()).select_from(Ride).where(Ride.rider_id == rider.id)
    )
    # Verification cards already posted keep the rider's name and phone in the dispatcher
    # chat: each is edited to say the profile was deleted. The card's subject is an audit row
    # holding only where the card is, since the verification itself goes with the rider.
    posted = await session.scalars(
        select(Verification).where(
            Verification.rider_id == rider.id, Verification.card_message_id.is_not(None)
        )
    )
    for verification in posted:
        district = await district_by_id(session, verification.district_id)
        trace = AuditLog(
            action="verification_card_erased",
            subject=f"verification:{verification.id}",
            details={
                "chat_id": verification.card_chat_id,
                "message_id": verification.card_message_id,
                "topic_id": district.topic_id if district else None,
                "language": district.language if district else "ru",
            },
        )
        session.add(trace)
        await session.flush()
        await enqueue_card(
            session,
            kind=ERASED_CARD,
            subject_id=trace.id,
            chat_id=int(verification.card_chat_id or 0),
            topic_id=district.topic_id if district else None,
        )
    await erase_group_messages(session, rider)
    # Consents given for this rider stay as proof, unlinked from the deleted profile.
    await session.execute(
        update(Consent)
        .where(Consent.rider_id == rider.id)
        .values(rider_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.delete(rider)
    await session.flush()
    return int(rides or 0)


async def _erase_posted(
    session: AsyncSession, *, chat_id: int, message_id: int, what: str, number: str | None
) -> None:
    """Queue the edit of one posted group message to a line without personal data."""
    district = await session.scalar(select(District).where(District.chat_id == chat_id))
    trace = AuditLog(
        action=ERASED_MESSAGE_ACTION,
        subject=what,
        details={
            "chat_id": chat_id,
            "message_id": message_id,
            "topic_id": district.topic_id if district else None,
            "language": district.language if district else "ru",
            "what": what,
            "number": number,
        },
    )
    session.add(trace)
    await session.flush()
    await enqueue_card(
        session,
        kind=ERASED_MESSAGE,
        subject_id=trace.id,
        chat_id=chat_id,
        topic_id=district.topic_id if district else None,
    )


def _names_rider(row: OutboxMessage, rider: Rider) -> bool:
    payload = row.payload or {}
    if payload.get(ABOUT_RIDER) is not None:
        return bool(payload.get(ABOUT_RIDER) == rider.id)
    params = payload.get("params") or {}
    # Rows queued before notices were marked: recognised by the name and phone they show.
    return bool(params.get("name") == rider.full_name and params.get("phone") == rider.phone)


async def erase_group_messages(session: AsyncSession, rider: Rider) -> int:
    """Every ride card and notice about the rider in a dispatcher chat is edited to one line.

    Ride cards are found through the rides; notices ("the rider blocked the bot") through the
    outbox rows that sent them, which are then deleted, as they hold the name and phone too.
    Returns how many messages will be edited.
    """
    count = 0
    rides = await session.scalars(
        select(Ride).where(Ride.rider_id == rider.id, Ride.card_message_id.is_not(None))
    )
    for ride in rides:
        await _erase_posted(
            session,
            chat_id=int(ride.card_chat_id or 0),
            message_id=int(ride.card_message_id or 0),
            what="ride",
            number=ride.number,
        )
        count += 1
    notices = await session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.account_id.is_(None),
            OutboxMessage.chat_id < 0,
            OutboxMessage.kind.in_(("send", "reply")),
        )
    )
    for row in list(notices):
        if not _names_rider(row, rider):
            continue
        if row.sent_message_id:
            await _erase_posted(
                session,
                chat_id=row.chat_id,
                message_id=int(row.sent_message_id),
                what="notice",
                number=None,
            )
            count += 1
        await session.delete(row)
    await session.flush()
    return count


async def _keeps_someone(session: AsyncSession, rider: Rider, without: Account) -> bool:
    """Whether anyone but `without` can still act for this rider."""
    if rider.account_id is not None and rider.account_id != without.id:
        return True
    others = await session.scalar(
        select(func.count())
        .select_from(Representation)
        .where(Representation.rider_id == rider.id, Representation.account_id != without.id)
    )
    return bool(others)


async def delete_profile(
    session: AsyncSession, account: Account, rider_id: int, *, tz: str
) -> Rider | Reason | None:
    """A representative deletes a profile they manage (the rider without Telegram).

    None when the profile is not theirs to delete; a Reason while one of its rides is open.
    Other representatives are told; the rider's own account can't be deleted from here.
    """
    rider = await session.get(Rider, rider_id)
    if rider is None or rider.account_id is not None:
        return None
    mine = await session.scalar(
        select(Representation.id).where(
            Representation.rider_id == rider_id, Representation.account_id == account.id
        )
    )
    if mine is None:
        return None
    ride = await session.scalar(
        select(Ride)
        .where(Ride.rider_id == rider_id, Ride.status.in_([s.value for s in OPEN_STATUSES]))
        .order_by(Ride.pickup_at)
        .limit(1)
    )
    if ride is not None:
        return _open_reason(RIDER_HAS_OPEN_RIDE, ride, tz)
    for _, other in await _others(session, rider.id, account):
        enqueue_message(
            session,
            chat_id=other.telegram_id,
            account_id=other.id,
            msgid=PROFILE_DELETED,
            params={"name": rider.full_name},
        )
    rides = await erase_rider(session, rider)
    audit(
        session,
        "rider_deleted",
        subject=f"rider:{rider_id}",
        details={"by": f"account:{account.id}", "rides": rides},
    )
    return rider


async def _others(
    session: AsyncSession, rider_id: int, account: Account
) -> list[tuple[Representation, Account]]:
    rows = await session.execute(
        select(Representation, Account)
        .join(Account, Account.id == Representation.account_id)
        .where(Representation.rider_id == rider_id, Representation.account_id != account.id)
    )
    return [(r, a) for r, a in rows.all()]


async def forget(
    session: AsyncSession,
    account: Account,
    *,
    now: datetime | None = None,
    tz: str,
) -> Erased | Reason:
    """Withdraw consent and erase the person's data (see the module's notes for what goes)."""
    now = now or utcnow()
    riders = await riders_of(session, account)
    refusal = await forget_refusal(session, account, tz=tz)
    if refusal is not None:
        return refusal
    deleted: list[int] = []
    rides = 0
    for rider in riders:
        if rider.account_id == account.id or not await _keeps_someone(session, rider, account):
            for _, other in await _others(session, rider.id, account):
                enqueue_message(
                    session,
                    chat_id=other.telegram_id,
                    account_id=other.id,
                    msgid=PROFILE_DELETED,
                    params={"name": rider.full_name},
                )
            deleted.append(rider.id)
            rides += await erase_rider(session, rider)
    reps = await session.execute(
        delete(Representation)
        .where(Representation.account_id == account.id)
        .returning(Representation.id)
        .execution_options(synchronize_session=False)
    )
    rep_count = len(reps.all())
    await session.execute(delete(Invite).where(Invite.created_by == account.id))
    await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.account_id == account.id)
        .execution_options(synchronize_session=False)
    )
    tid = account.telegram_id
    # The conversation storage writes this update's state just before the commit, after the
    # delete below: it leaves alone every conversation of an id erased in this transaction.
    session.info.setdefault(ERASED_IN_SESSION, set()).add(tid)
    await session.execute(
        delete(ConversationState)
        .where(ConversationState.key.like(f"%:{tid}:{tid}:%"))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(RideEvent)
        .where(RideEvent.actor_id == tid, RideEvent.actor_kind.in_(("rider", "representative")))
        .values(actor_id=None, actor_name=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(AuditLog)
        .where(AuditLog.actor_id == tid)
        .values(actor_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Consent)
        .where(Consent.account_id == account.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
        .execution_options(synchronize_session=False)
    )
    # A negative placeholder: unique, and never a real Telegram user id.
    account.telegram_id = -account.id
    account.display_name = ""
    account.role = None
    account.consent_version = None
    account.consent_at = None
    account.unreachable_since = None
    account.updated_at = now
    result = Erased(riders_deleted=deleted, representations_deleted=rep_count, rides_deleted=rides)
    audit(
        session,
        "consent_withdrawn_data_erased",
        subject=f"account:{account.id}",
        details={
            "riders": deleted,
            "representations": rep_count,
            "rides": rides,
        },
    )
    await session.flush()
    return result
