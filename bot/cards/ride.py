"""The request card in the district's dispatcher chat: posted once, then edited in place.

Rendered from the database when the outbox sends it, in the district's language. It shows what
a dispatcher needs to arrange the ride and nothing more: no IIN, no diagnosis, no disability
group or category.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.registry import CardRenderer, CardView, register_card
from bot.i18n import N_, I18n, Translator
from bot.keyboards.dispatch import card_keyboard
from bot.services import dispatch
from bot.services.dispatch import VehicleOption
from bot.services.district_cache import district_by_id
from bot.services.outbox import enqueue_location
from bot.services.ride_labels import purpose_label, status_label
from models import District, Ride, RideEvent, Rider, RideStatus, Vehicle

S = RideStatus

# Where the shared labels speak to the rider ("your answer"), the desk gets its own words.
# A district with no cars at all is not "no car fits" (B11): the administrator must add some.
NO_CARS_AT_ALL = N_(
    "This district has no cars in the bot yet: the administrator adds them to the districts "
    "file. Until then, agree the ride by phone, or refuse it."
)

DESK_STATUS: dict[str, str] = {
    S.TIME_PROPOSED: N_("Another time offered, waiting for the rider's answer"),
}

ACTOR_KINDS = {
    "rider": N_("the rider"),
    "representative": N_("the rider's representative"),
    "system": N_("the bot"),
}


def desk_status(status: str) -> str:
    """The message id of a state as the dispatcher chat shows it."""
    return DESK_STATUS.get(status) or status_label(status)


def local(instant: datetime, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def needs_text(t: Translator, ride: Ride, rider: Rider | None) -> str:
    """Mobility needs in words; "none" is said, so an empty line is never a question."""
    parts = []
    if ride.wheelchair:
        parts.append(t("wheelchair (needs a ramp or lift)"))
    if rider is not None and rider.needs_walker:
        parts.append(t("walker"))
    if ride.assistant:
        parts.append(t("an assistant rides along"))
    if ride.companions:
        parts.append(t("companions: {count}", count=ride.companions))
    return ", ".join(parts) if parts else t("no special needs")


def verified_until(t: Translator, rider: Rider | None) -> str:
    if rider is None or rider.verification != "verified":
        return t("not verified")
    if rider.vkk_expires_on is None:
        return t("indefinite")
    return rider.vkk_expires_on.strftime("%d.%m.%Y")


def actor_text(t: Translator, event: RideEvent) -> str:
    if event.actor_name:
        return event.actor_name
    return t(ACTOR_KINDS.get(event.actor_kind, N_("the bot")))


def reason_text(t: Translator, reason: str | None) -> str:
    msgid = dispatch.reason_msgid(reason)
    return t(msgid) if msgid else (reason or "")


def card_text(
    t: Translator,
    ride: Ride,
    rider: Rider | None,
    vehicle: Vehicle | None,
    last: RideEvent | None,
    options: list[VehicleOption] | None,
    tz: tzinfo,
    has_cars: bool = True,
) -> str:
    """The card's text: one fact per line, labels in the district's language."""
    lines = [
        t("Request №{number} — {state}", number=ride.number, state=t(desk_status(ride.status))),
        t("Pickup: {when}", when=local(ride.pickup_at, tz)),
    ]
    if ride.proposed_at is not None and ride.status == S.TIME_PROPOSED:
        lines.append(t("Offered instead: {when}", when=local(ride.proposed_at, tz)))
    lines += [
        t("From: {address}", address=ride.pickup_address),
    ]
    if ride.pickup_lat is not None and ride.pickup_lon is not None:
        link = dispatch.map_link(ride.pickup_lat, ride.pickup_lon)
        lines.append(t("On the map: {link}", link=link))
    lines += [
        t("To: {address}", address=ride.destination),
        t("Purpose: {purpose}", purpose=t(purpose_label(ride.purpose))),
        t(
            "Rider: {name}, {phone}",
            name=rider.full_name if rider else "—",
            phone=rider.phone if rider else "—",
        ),
        t("Needs: {needs}", needs=needs_text(t, ride, rider)),
    ]
    if ride.comment:
        lines.append(t("Comment: {comment}", comment=ride.comment))
    if ride.standing_order_id is not None:
        lines.append(t("From standing order №{number}", number=ride.standing_order_id))
    lines.append(t("Verified until (VKK): {date}", date=verified_until(t, rider)))
    if vehicle is not None:
        colour = vehicle.colour_kk if t.lang == "kk" else vehicle.colour_ru
        lines.append(
            t(
                "Car: {make}, {colour}, {plate}. Driver: {driver}, {phone}",
                make=vehicle.make,
                colour=colour,
                plate=vehicle.plate,
                driver=vehicle.driver_name,
                phone=vehicle.driver_phone,
            )
        )
    elif ride.status == S.TAKEN and options is not None and not options:
        lines.append(
            t(NO_CARS_AT_ALL if not has_cars else N_("No car of the district suits this ride."))
        )
    if ride.reason and ride.status in (S.REJECTED, S.CANCELLED):
        lines.append(t("Reason: {reason}", reason=reason_text(t, ride.reason)))
    if ride.cancelled_late:
        lines.append(t("Cancelled less than the allowed time before pickup."))
    if last is not None:
        lines.append(
            t("Last change: {who}, {when}", who=actor_text(t, last), when=local(last.at, tz))
        )
    if ride.rating is not None:
        lines.append(t("Rider's rating: {stars} of 5", stars=ride.rating))
        if ride.rating_comment:
            lines.append(t("Rider's comment: {comment}", comment=ride.rating_comment))
    return "\n".join(lines)


async def build(
    session: AsyncSession, ride: Ride, district: District, i18n: I18n
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Text and main buttons of a ride's card as they are now (shared with the handlers), with
    times in the zone people read them in (`I18n.tz`, the TIMEZONE setting)."""
    tz = i18n.tz
    t = i18n.translator(district.language)
    if ride.anonymised_at is not None:
        # Past its keeping period the card, like the ride, keeps no name, phone or address.
        head = t(
            "Request №{number} — {state}", number=ride.number, state=t(desk_status(ride.status))
        )
        return head + "\n" + t("The details were removed after the keeping period."), None
    rider = await session.get(Rider, ride.rider_id)
    vehicle = await session.get(Vehicle, ride.vehicle_id) if ride.vehicle_id else None
    last = await session.scalar(
        select(RideEvent)
        .where(RideEvent.ride_id == ride.id)
        .order_by(RideEvent.at.desc(), RideEvent.id.desc())
        .limit(1)
    )
    options = (
        await dispatch.vehicle_options(session, ride, district) if ride.status == S.TAKEN else None
    )
    has_cars = bool(options) or await dispatch.has_vehicles(session, district.id)
    text = card_text(t, ride, rider, vehicle, last, options, tz, has_cars)
    markup = card_keyboard(t, ride.id, ride.status, options or [], tz)
    return text, markup


async def render(session: AsyncSession, ride_id: int, i18n: I18n) -> CardView | None:
    ride = await session.get(Ride, ride_id, populate_existing=True)
    if ride is None:
        return None
    district = await district_by_id(session, ride.district_id)
    if district is None:
        return None
    text, markup = await build(session, ride, district, i18n)
    # A card posted in another chat (the district moved) is posted anew in the current one.
    same_chat = ride.card_chat_id == district.chat_id
    message_id = ride.card_message_id if same_chat and ride.card_message_id else None
    return CardView(
        text=text,
        markup=markup,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        message_id=message_id,
    )


async def posted(session: AsyncSession, ride_id: int, chat_id: int, message_id: int) -> None:
    """Remember the card's message; 0 means it is gone and the next refresh posts it again.

    A card posted anew for a pickup given as a location pin gets the pin as a reply: one tap
    opens it in the dispatcher's map app (B15)."""
    ride = await session.get(Ride, ride_id)
    if (
        ride is not None
        and message_id
        and ride.card_message_id is None
        and ride.pickup_lat is not None
        and ride.pickup_lon is not None
    ):
        district = await district_by_id(session, ride.district_id)
        enqueue_location(
            session,
            chat_id=chat_id,
            topic_id=district.topic_id if district is not None else None,
            latitude=ride.pickup_lat,
            longitude=ride.pickup_lon,
            ride_id=ride.id,
        )
    await session.execute(
        update(Ride)
        .where(Ride.id == ride_id)
        .values(card_chat_id=chat_id, card_message_id=message_id or None)
        .execution_options(synchronize_session=False)
    )


register_card("ride_card", CardRenderer(render, posted))
