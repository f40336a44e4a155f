"""A pickup given as a location pin (B15): the card carries a map link, and when the card is
first posted the pin itself follows as a reply to it, so a dispatcher opens it with one tap."""

from __future__ import annotations

from sqlalchemy import select

from bot.cards import ride as ride_card  # noqa: F401  (registers the ride card)
from bot.services.outbox import enqueue_card
from models import Ride
from tests import test_delivery
from tests.test_delivery import GROUP, World, add_ride, add_rider, delivered

# The sender's fixtures: a migrated SQLite database and the stand-in with the test districts.
sqlite_sessions = test_delivery.sqlite_sessions
world = test_delivery.world

LAT, LON = 45.0156, 78.3739


async def post_card(world: World, **values: object) -> int:
    async with world.sessions() as session, session.begin():
        rider = await add_rider(session, None)
        ride = await add_ride(session, rider, **values)
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=GROUP,
            topic_id=None,
            ride_id=ride.id,
        )
        ride_id = ride.id
    await delivered(world.sessions, world.sender)
    return ride_id


async def test_a_pin_pickup_gets_a_map_link_and_the_pin_on_the_card(world: World) -> None:
    ride_id = await post_card(world, pickup_lat=LAT, pickup_lon=LON)
    card, pin = world.stand_in.messages(GROUP)
    assert "На карте: https://maps.google.com/?q=45.01560,78.37390" in card.text
    assert pin.extra["location"]["latitude"] == LAT
    assert pin.extra["location"]["longitude"] == LON
    assert pin.reply_to is not None and pin.reply_to.message_id == card.message_id
    # A later refresh of the card edits it; the pin is not sent again.
    async with world.sessions() as session, session.begin():
        ride = await session.scalar(select(Ride).where(Ride.id == ride_id))
        assert ride is not None and ride.card_message_id == card.message_id
        await enqueue_card(
            session, kind="ride_card", subject_id=ride_id, chat_id=GROUP, topic_id=None
        )
    await delivered(world.sessions, world.sender)
    assert len(world.stand_in.messages(GROUP)) == 2


async def test_a_typed_address_gets_no_pin(world: World) -> None:
    await post_card(world)
    (card,) = world.stand_in.messages(GROUP)
    assert "На карте" not in card.text
