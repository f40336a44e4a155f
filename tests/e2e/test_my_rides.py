"""My rides end to end: the list, a ride's details and history, cancelling with a reason, and
booking the way back or the same ride again, in Kazakh and in Russian."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.booking import RideAction, RidePress
from bot.i18n import Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, BOOK
from bot.services import booking
from bot.services import booking_rules as br
from bot.services.help import with_desk_phone
from bot.services.i18n_types import Reason
from bot.services.ride_labels import status_label
from bot.services.rides import Actor, record_creation
from handlers.booking import day_text
from handlers.my_rides import short_when
from models import Ride, RideEvent, Rider, RideStatus, utcnow
from tests.factories import GROUP, HOME, HOSPITAL, Booker, Q, book_trip, rides, seed_rider

TID = 7501


def first_days(bot: Any) -> list[date]:
    return br.bookable_dates(br.BookingRules(), datetime.now(bot.settings.tz), bot.settings.tz)


async def book(bot: Any, rider_id: int, day: date, at: time, *, tid: int = TID) -> Ride:
    """A ride booked through the service, as the conversation's Confirm does."""
    async with bot.sessions() as session:
        actor = Actor("rider", tid, f"User {tid}")
        ride, _ = await book_trip(session, rider_id, day, at, actor, bot.settings.tz)
    bot.app.outbox_wakeup.set()
    await bot.settle()
    return ride


async def open_ride(user: Any, t: Translator, ride: Ride, tz: Any) -> Any:
    user.send_text("/rides")
    listing = await user.wait_for(t("Press a ride to see its details and history."))
    label = t(
        "№{number} · {when} · {state}",
        number=ride.number,
        when=short_when(ride.pickup_at, tz),
        state=t(status_label(ride.status)),
    )
    user.press(label, message=listing)
    return await user.wait_for(t("Ride №{number}", number=ride.number))


async def db_ride(bot: Any, ride_id: int) -> Ride:
    session: AsyncSession
    async with bot.sessions() as session:
        ride = await session.get(Ride, ride_id)
    assert ride is not None
    return ride


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_rider_cancels_and_the_state_and_history_show_it(bot: Any, lang: str) -> None:
    t = bot.app.i18n.translator(lang)
    tz = bot.settings.tz
    user = bot.person(TID, name="Гүлнар", lang=lang)
    rider_id = await seed_rider(bot, name="Гүлнар Әлиева", account_tid=TID, lang=lang)
    ride = await book(bot, rider_id, first_days(bot)[0], time(10, 0))
    (card,) = [m for m in bot.stand_in.messages(GROUP) if m.text and HOSPITAL in m.text]
    first_card = card.text

    user.send_text("/rides")
    listing = await user.wait_for(t("Upcoming rides:"))
    waiting = t(status_label(RideStatus.REQUESTED))
    assert (
        t(
            "№{number}, {when}: {pickup} → {destination}. {state}.",
            number=ride.number,
            when=short_when(ride.pickup_at, tz),
            pickup=HOME,
            destination=HOSPITAL,
            state=waiting,
        )
        in listing.text.splitlines()
    )
    details = await open_ride(user, t, ride, tz)
    assert t("State: {state}.", state=waiting) in details.text.splitlines()
    assert t("From: {value}", value=HOME) in details.text.splitlines()
    assert t("Cancel this ride") in details.button_texts

    user.press(t("Cancel this ride"), message=details)
    await user.wait_for(
        t("Why do you cancel ride №{number}? Choose a reason or type it.", number=ride.number)
    )
    assert user.keyboard_buttons[: len(kb.CANCEL_REASONS)] == [t(r) for r in kb.CANCEL_REASONS]
    user.send_text("🙁")
    await user.wait_for(t("Please write it in words: pictures and emoji alone can't be read."))
    user.tap(t("Plans changed"))
    done = await user.wait_for(
        t("Ride №{number} is cancelled. The dispatcher has been told.", number=ride.number)
    )
    assert t(BOOK) in user.keyboard_buttons
    assert t("The cancellation was late: less than the district's notice before pickup.") not in (
        done.text
    )
    await bot.settle()

    stored = await db_ride(bot, ride.id)
    assert stored.status == RideStatus.CANCELLED and not stored.cancelled_late
    async with bot.sessions() as session:
        last = await session.scalar(
            select(RideEvent).where(RideEvent.ride_id == ride.id).order_by(RideEvent.id.desc())
        )
    assert last is not None
    assert (last.actor_kind, last.to_status, last.reason) == (
        "rider",
        "cancelled",
        t("Plans changed"),
    )
    assert card.text != first_card and card.edits  # the dispatchers' card changed in place

    details = await open_ride(user, t, stored, tz)
    cancelled = t(status_label(RideStatus.CANCELLED))
    assert t("State: {state}.", state=cancelled) in details.text.splitlines()
    history = details.text.split(t("History:"))[1]
    assert (
        t(
            "{when}: {change} ({who})",
            when=short_when(last.at, tz),
            change=f"{waiting} → {cancelled}",
            who=t("rider {name}", name=f"User {TID}"),
        )
        in history
    )
    assert t("Reason: {reason}", reason=t("Plans changed")) in history
    assert t("Cancel this ride") not in details.button_texts


async def test_the_way_back_and_the_same_ride_again_are_prefilled(bot: Any) -> None:
    t = bot.app.i18n.translator("ru")
    q = Q(t)
    tz = bot.settings.tz
    name = "Сергей Ли"
    user = bot.person(TID, name="Сергей", lang="ru")
    rider_id = await seed_rider(bot, name=name, account_tid=TID)
    days = first_days(bot)
    ride = await book(bot, rider_id, days[0], time(9, 0))

    details = await open_ride(user, t, ride, tz)
    user.press(t("Book the way back"), message=details)
    booker = Booker(bot, user, t)
    await booker.pick_day(0)
    summary = await booker.say("14:00", q.summary)
    lines = summary.text.splitlines()
    assert t("From: {value}", value=HOSPITAL) in lines and t("To: {value}", value=HOME) in lines
    assert t("Date: {value}", value=day_text(t, days[0])) in lines
    user.tap(t(kb.CONFIRM))
    await user.wait_for(t("Place in the district's queue: {position}.", position=2))

    details = await open_ride(user, t, ride, tz)
    assert t("Book the way back") not in details.button_texts  # it has one now
    user.press(t("Book the same ride on another date"), message=details)
    # Everything carried over, its time too: the date is the one answer (review B3, item 16).
    await booker.pick_day(1, expect=q.summary)
    summary = user.last_message()
    assert summary is not None
    lines = summary.text.splitlines()
    assert t("Pickup time: {value}", value="09:00") in lines
    assert t("Way back: at {value}", value="14:00") in lines  # the way back comes along
    assert t("From: {value}", value=HOME) in lines and t("To: {value}", value=HOSPITAL) in lines
    assert t("Date: {value}", value=day_text(t, days[1])) in lines
    user.tap(t(kb.CONFIRM))
    await user.wait_for(t("Place in the district's queue: {position}.", position=3))
    await bot.settle()

    first, back, again, again_back = await rides(bot)
    assert back.return_of == first.id and again.return_of is None
    assert again_back.return_of == again.id
    assert again_back.pickup_at.astimezone(tz).strftime("%H:%M") == "14:00"
    assert (back.pickup_address, back.destination) == (HOSPITAL, HOME)
    assert again.pickup_at.astimezone(tz).date() == days[1]
    assert (again.pickup_address, again.destination) == (HOME, HOSPITAL)


async def test_late_cancellation_is_flagged_and_others_cannot_touch_the_ride(bot: Any) -> None:
    t = bot.app.i18n.translator("kk")
    tz = bot.settings.tz
    user = bot.person(TID, name="Нұрлан", lang="kk")
    stranger = bot.person(7502, name="Бөтен", lang="kk")
    rider_id = await seed_rider(bot, name="Нұрлан Асқаров", account_tid=TID, lang="kk")
    await seed_rider(bot, name="Бөтен Адам", account_tid=7502, lang="kk")
    async with bot.sessions() as session:
        rider = await session.get(Rider, rider_id)
        assert rider is not None
        soon = Ride(
            rider_id=rider_id,
            district_id=rider.district_id,
            pickup_address=HOME,
            destination=HOSPITAL,
            purpose="pharmacy",
            pickup_at=utcnow() + timedelta(minutes=90),
            status=RideStatus.SCHEDULED.value,
        )
        session.add(soon)
        await session.flush()
        await record_creation(session, soon, Actor("rider", TID, "User 7501"))
        await session.commit()

    stranger.send_text("/rides")
    await stranger.wait_for(
        t("You have no rides yet. To book one, press “Book a ride” or send /book.")
    )
    chat_message = stranger.last_message()
    for action in (RideAction.OPEN, RideAction.CANCEL, RideAction.AGAIN):
        forged = stranger.press_data(
            chat_message, RidePress(action=action, ride_id=soon.id).pack()
        )
        answer = await forged.answer()
        assert answer.show_alert and answer.text == booking.RIDE_NOT_FOUND.render(t)
    assert (await db_ride(bot, soon.id)).status == RideStatus.SCHEDULED

    details = await open_ride(user, t, soon, tz)
    user.press(t("Cancel this ride"), message=details)
    question = await user.wait_for(
        t("Why do you cancel ride №{number}? Choose a reason or type it.", number=soon.id)
    )
    assert (
        t(
            "Please note: the pickup is less than {minutes} min away, so this cancellation "
            "counts as late.",
            minutes=120,
        )
        in question.text
    )
    assert t(BACK) not in user.keyboard_buttons  # no «Cancel» inside cancelling (review B2)
    user.tap(t(kb.KEEP_RIDE))
    await user.wait_for(t("Ride №{number} is not cancelled.", number=soon.id))
    assert (await db_ride(bot, soon.id)).status == RideStatus.SCHEDULED

    details = await open_ride(user, t, soon, tz)
    user.press(t("Cancel this ride"), message=details)
    await user.wait_for(
        t("Why do you cancel ride №{number}? Choose a reason or type it.", number=soon.id)
    )
    user.send_text("Көлік басқа жерде керек болды")
    done = await user.wait_for(
        t("Ride №{number} is cancelled. The dispatcher has been told.", number=soon.id)
    )
    late = with_desk_phone(
        Reason(
            "late", "The cancellation was late: less than the district's notice before pickup."
        ),
        "+77282241122",
    )
    assert late.render(t) in done.text  # and whom to call if the car is on its way
    stored = await db_ride(bot, soon.id)
    assert stored.status == RideStatus.CANCELLED and stored.cancelled_late
    assert stored.reason == "Көлік басқа жерде керек болды"

    # The old "Cancel" button of the details message now says why nothing happens.
    again = user.press(t("Cancel this ride"), message=details)
    answer = await again.answer()
    refusal = with_desk_phone(booking.not_cancellable(RideStatus.CANCELLED), "+77282241122")
    assert answer.text == refusal.render(t)  # with the desk's number to call
