"""Steps of a rider's booking in the fast tier: a trip booked earlier, one typed action, one
press, and what the desk and the table hold; shared by the fast tests."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import select

from bot.services import booking_rules as br
from bot.services.help import format_phone
from bot.services.rides import Actor
from models import District, Ride
from tests.factories import book_trip
from tests.fast.harness import FastBot, Said

UID = 7801


UID = 7801


async def book(
    fast: FastBot, rider_id: int, day: date, at: time, back: time | None = None
) -> tuple[Ride, Ride | None]:
    """A trip booked earlier, with an assistant and maybe a way back."""
    async with fast.app.sessions() as session:
        actor = Actor("rider", UID, "User")
        tz = fast.app.settings.tz
        return await book_trip(
            session, rider_id, day, at, actor, tz, return_time=back, assistant=True
        )


def window(fast: FastBot) -> list[date]:
    tz = fast.app.settings.tz
    return br.bookable_dates(br.BookingRules(), datetime.now(tz), tz)


async def act(fast: FastBot, uid: int, text: str) -> Said:
    """One action: a typed message or a tapped reply button; returns the last thing said."""
    before = len(await fast.said(uid))
    await fast.feed(fast.text(uid, text))
    said = await fast.said(uid)
    assert len(said) > before, f"no answer to {text!r}"
    return said[-1]


async def press(fast: FastBot, uid: int, data: str) -> list[Said]:
    before = len(await fast.said(uid))
    await fast.feed(fast.press(uid, data))
    return (await fast.said(uid))[before:]


async def all_rides(fast: FastBot) -> list[Ride]:
    async with fast.app.sessions() as session:
        return list(await session.scalars(select(Ride).order_by(Ride.id)))


async def desk_phone(fast: FastBot) -> str:
    async with fast.app.sessions() as session:
        district = await session.get(District, "taldykorgan")
    assert district is not None and district.desk_phone
    return format_phone(district.desk_phone)
