"""The verification card in the district's dispatcher chat: a new rider profile to check.

Rendered from the database when the outbox sends it, in the district chat's language.

What it shows, and why. Everyone in the group sees the card, and it stays in the chat's
history, so it carries only what lets a dispatcher pick the check up and call the person: the
check's number and state, the rider's name and phone, and who registered them (the rider, a
parent, a guardian, an attorney with the power of attorney's number). The category (which
names a disability group or a mental disorder), the ВКК conclusion, the IIN, mobility needs and
the children's centre are health or identity data: the dispatcher who takes the check opens
them in a private chat with the bot (`bot.services.full_profile.open_full_profile`, which
checks they are a dispatcher of the district and audits each opening). Once decided, the card
shrinks to its number, the decision and who made it: the name and phone leave the chat.
"""

from __future__ import annotations

from datetime import datetime

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.registry import CardRenderer, CardView, register_card
from bot.i18n import N_, I18n, Translator
from bot.keyboards.registration import verification_keyboard
from bot.services.district_cache import district_by_id
from bot.services.privacy import ERASED_CARD
from bot.services.registration import (
    RELATIONSHIP_LABELS,
    VERIFICATION_CARD,
    reason_text,
)
from models import AuditLog, District, Representation, Rider, Verification

STATUS_LABELS = {
    "pending": N_("waiting for a dispatcher"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "superseded": N_("replaced: the profile was changed, see the newer card"),
}


def local(t: Translator, instant: datetime) -> str:
    return t.local(instant).strftime("%d.%m.%Y %H:%M")


def card_text(
    t: Translator,
    verification: Verification,
    rider: Rider,
    district: District,
    representations: list[Representation],
) -> str:
    lines = [
        t(
            "Profile check №{number} — {status}",
            number=verification.id,
            status=t(STATUS_LABELS.get(verification.status, N_("waiting for a dispatcher"))),
        ),
    ]
    if verification.status != "pending":
        # Decided or replaced: nothing about the person needs to stay in the chat.
        return "\n".join(lines + _decision(t, verification))
    lines += [
        t("Name: {name}, phone {phone}", name=rider.full_name, phone=rider.phone),
        t("The documents and needs: open the profile in a private chat with the bot."),
    ]
    if not representations:
        lines.append(t("Registered by: the rider"))
    for rep in representations:
        kind = t(RELATIONSHIP_LABELS.get(rep.relationship_kind, N_("relative")))
        if rep.relationship_kind == "attorney" and rep.poa_number:
            until = t.date(rep.poa_expires_on) if rep.poa_expires_on else "—"
            kind = t(
                "power of attorney №{number}, valid until: {until}",
                number=rep.poa_number,
                until=until,
            )
        if rep.contact_phone:
            lines.append(
                t(
                    "Representative: {kind}, {name}, {phone}",
                    kind=kind,
                    name=rep.contact_name or "—",
                    phone=rep.contact_phone,
                )
            )
        else:
            lines.append(t("Representative: {kind}", kind=kind))
    return "\n".join(lines)


def _decision(t: Translator, verification: Verification) -> list[str]:
    lines = []
    if verification.status in ("approved", "rejected") and verification.decided_at:
        lines.append(
            t(
                "Decided by {who}, {when}",
                who=verification.decided_by_name or str(verification.decided_by or "—"),
                when=local(t, verification.decided_at),
            )
        )
    if verification.status == "rejected":
        lines.append(
            t("Reason for rejecting: {reason}", reason=reason_text(t, verification.reason))
        )
    return lines


async def build(
    session: AsyncSession, verification: Verification, i18n: I18n
) -> tuple[str, InlineKeyboardMarkup | None, District] | None:
    """The card's text and buttons as they are now (shared with the group handlers)."""
    rider = await session.get(Rider, verification.rider_id)
    district = await district_by_id(session, verification.district_id)
    if rider is None or district is None:
        return None
    t = i18n.translator(district.language)
    reps = list(
        await session.scalars(
            select(Representation)
            .where(
                Representation.rider_id == rider.id,
                Representation.relationship_kind != "relative",
            )
            .order_by(Representation.id)
        )
    )
    text = card_text(t, verification, rider, district, reps)
    markup = (
        verification_keyboard(t, verification.id) if verification.status == "pending" else None
    )
    return text, markup, district


async def render(session: AsyncSession, verification_id: int, i18n: I18n) -> CardView | None:
    verification = await session.get(Verification, verification_id, populate_existing=True)
    if verification is None:
        return None
    built = await build(session, verification, i18n)
    if built is None:
        return None
    text, markup, district = built
    if verification.card_message_id and verification.card_chat_id:
        # A posted card is edited where it is, even if the district's chat changed since.
        return CardView(
            text=text,
            markup=markup,
            chat_id=verification.card_chat_id,
            topic_id=district.topic_id,
            message_id=verification.card_message_id,
        )
    if verification.status == "superseded":
        # Never posted, and already out of date: nothing to show the dispatchers.
        return None
    return CardView(
        text=text,
        markup=markup,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        message_id=None,
    )


async def posted(
    session: AsyncSession, verification_id: int, chat_id: int, message_id: int
) -> None:
    """Remember the card's message; 0 means it is gone and the next refresh posts it again."""
    await session.execute(
        update(Verification)
        .where(Verification.id == verification_id)
        .values(card_chat_id=chat_id, card_message_id=message_id or None)
        .execution_options(synchronize_session=False)
    )


async def render_erased(session: AsyncSession, trace_id: int, i18n: I18n) -> CardView | None:
    """A deleted rider's card: the text is replaced, so no name or phone stays in the chat."""
    trace = await session.get(AuditLog, trace_id)
    if trace is None or trace.action != "verification_card_erased":
        return None
    details = trace.details or {}
    if details.get("gone"):
        return None
    chat_id, message_id = details.get("chat_id"), details.get("message_id")
    if not chat_id or not message_id:
        return None
    t = i18n.translator(str(details.get("language") or "ru"))
    topic = details.get("topic_id")
    return CardView(
        text=t("This profile was deleted at the person's request."),
        markup=None,
        chat_id=int(chat_id),
        topic_id=int(topic) if topic else None,
        message_id=int(message_id),
    )


async def erased_posted(
    session: AsyncSession, trace_id: int, chat_id: int, message_id: int
) -> None:
    """An erased card is only ever edited; if the message is gone there is nothing left to do."""
    if message_id:
        return
    trace = await session.get(AuditLog, trace_id)
    if trace is not None:
        trace.details = {**(trace.details or {}), "gone": True}


register_card(VERIFICATION_CARD, CardRenderer(render, posted))
register_card(ERASED_CARD, CardRenderer(render_erased, erased_posted))
