"""The dispatcher group end to end: the real bot against the Bot API stand-in.

Three dispatchers share Taldykorgan's group (its chat writes Russian); a rider writes Kazakh and
her representative Russian. Rides are created by the test's factory as the booking service
would (row, first event, card queued); from there everything goes through Telegram updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.dispatch import Act, ProposalAnswer, RideAct
from bot.cards.ride import desk_status
from bot.i18n import Translator
from bot.services.ride_labels import status_label
from bot.services.rides import Action, Actor, change
from bot.settings import Settings
from handlers.dispatch import TYPE_REASON
from models import Dispatcher, District, Ride, RideEvent, Rider, RideStatus, Vehicle
from tests.e2e.harness import BotHarness, running_bot
from tests.factories import SEDAN, VAN, make_account, make_ride, make_rider
from tests.stand_in import BotApiStandIn

S = RideStatus
GROUP = -1001000000001
TEKELI = -1001000000002
RIDER_ID, REP_ID = 5001, 5002
# The TIMEZONE setting, which the harness leaves at its default.
ZONE = ZoneInfo(Settings.model_fields["timezone"].default)
NAME = "Айгерім Сейітова"

# The desk's answers now go through the outbox and share the group's pacing with the cards; a
# three-second gap between group messages would only make these tests slow (the pacing itself
# is tested with the sender).
FAST_GROUPS = {"outbox_group_spacing": 0.1}


@pytest.fixture
async def bot(stand_in: Any, sqlite_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(stand_in, sqlite_url, tmp_path, **FAST_GROUPS) as harness:
        yield harness


@pytest.fixture
async def pg_bot(stand_in: Any, postgres_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(stand_in, postgres_url, tmp_path, **FAST_GROUPS) as harness:
        yield harness


class Scene:
    """The people of these tests and shortcuts to what they see."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.stand_in = bot.stand_in
        self.ru: Translator = bot.app.i18n.translator("ru")
        self.kk: Translator = bot.app.i18n.translator("kk")
        self.aigul = bot.dispatcher("taldykorgan", 0)
        self.marat = bot.dispatcher("taldykorgan", 1)
        self.svetlana = bot.dispatcher("taldykorgan", 2)
        self.rider = bot.person(RIDER_ID, name="Айгерім", lang="kk")
        self.rep = bot.person(REP_ID, name="Ольга", lang="ru")

    async def ride(
        self,
        *,
        district: str = "taldykorgan",
        wheelchair: bool = True,
        pickup_at: datetime | None = None,
        with_people: bool = True,
    ) -> int:
        """A verified rider's new request, its card queued; returns the ride's number."""
        async with self.bot.sessions() as session:
            own = await make_account(session, RIDER_ID, language="kk", name="Айгерім")
            parent = await make_account(session, REP_ID, language="ru", name="Ольга")
            rider = await session.scalar(
                select(Rider).where(Rider.district_id == district, Rider.full_name == NAME)
            )
            if rider is None:
                rider = await make_rider(
                    session,
                    district_id=district,
                    account=own if with_people else None,
                    representative=parent if with_people else None,
                    name=NAME,
                    phone="+77011234567",
                    wheelchair=wheelchair,
                )
            ride = await make_ride(
                session,
                rider,
                pickup_at=pickup_at or tomorrow_at(10),
                assistant=True,
                comment="Подъезд со двора",
            )
            await session.commit()
            ride_id = ride.id
        self.bot.app.outbox_wakeup.set()
        await self.bot.settle()
        return ride_id

    def card(self, ride_id: int, chat_id: int = GROUP) -> Any:
        title = self.ru("Request №{number} — {state}", number=ride_id, state="")
        kk_title = self.kk("Request №{number} — {state}", number=ride_id, state="")
        found = [
            m
            for m in self.stand_in.messages(chat_id)
            if m.text.startswith(title.rstrip()) or m.text.startswith(kk_title.rstrip())
        ]
        assert len(found) == 1, f"one card per ride, found {len(found)}"
        return found[0]

    def state_line(self, ride_id: int, status: S, t: Translator | None = None) -> str:
        t = t or self.ru
        return t("Request №{number} — {state}", number=ride_id, state=t(desk_status(status)))

    def group_posts(self, chat_id: int = GROUP) -> int:
        """How many messages the bot posted in the group (edits don't count)."""
        return sum(
            1
            for e in self.stand_in.events
            if e.kind == "new" and e.message.chat.id == chat_id and e.message.from_bot
        )

    async def db_ride(self, ride_id: int) -> Ride:
        session: AsyncSession
        async with self.bot.sessions() as session:
            ride = await session.get(Ride, ride_id)
        assert ride is not None
        return ride

    async def press(self, user: Any, label: str, ride_id: int) -> Any:
        pressed = user.press(label, message=self.card(ride_id))
        answer = await pressed.answer()
        await self.bot.settle()
        return answer


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def texts(user: Any) -> list[str]:
    return [m.text for m in user.messages() if m.text]


async def test_a_ride_from_request_to_rating_in_everyones_language(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    ride_id = await scene.ride()
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.REQUESTED)
    pickup = tomorrow_at(10).astimezone(ZONE)
    for line in (
        ru("Pickup: {when}", when=pickup.strftime("%d.%m.%Y %H:%M")),
        ru("Rider: {name}, {phone}", name="Айгерім Сейітова", phone="+77011234567"),
        ru("Comment: {comment}", comment="Подъезд со двора"),
        ru("Verified until (VKK): {date}", date="31.12.2027"),
    ):
        assert line in card.text
    assert ru("wheelchair (needs a ramp or lift)") in card.text
    assert ru("an assistant rides along") in card.text
    assert "VKK-" not in card.text and "9876" not in card.text  # no documents, no IIN
    assert card.button_texts == [
        ru("Take it myself"),
        ru("Assign a car"),
        ru("Offer another time"),
        ru("Refuse"),
        ru("Cancel the ride"),
    ]

    answer = await scene.press(scene.aigul, ru("Take it myself"), ride_id)
    assert answer.text == ru(
        "You took request №{number}. Choose a car on the card.", number=ride_id
    )
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.TAKEN)
    assert ru("Last change: {who}, {when}", who="Айгүл", when="").rstrip() in card.text
    # A wheelchair ride is offered only the car with a ramp.
    assert card.button_texts[0] == f"Ford Transit {VAN}"
    assert f"Hyundai Accent {SEDAN}" not in card.button_texts

    await scene.press(scene.aigul, f"Ford Transit {VAN}", ride_id)
    card = scene.card(ride_id)
    async with bot.sessions() as session:
        van = await session.scalar(select(Vehicle).where(Vehicle.plate == VAN))
    assert van is not None
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.SCHEDULED)
    assert (
        ru(
            "Car: {make}, {colour}, {plate}. Driver: {driver}, {phone}",
            make="Ford Transit",
            colour="белый",
            plate=VAN,
            driver=van.driver_name,
            phone=van.driver_phone,
        )
        in card.text
    )
    assert ru("Car is on its way") in card.button_texts
    # The rider reads it in Kazakh with the colour in Kazakh, her mother in Russian.
    scheduled_kk = await scene.rider.wait_for("Ford Transit", after=0)
    assert "ақ" in scheduled_kk.text and VAN in scheduled_kk.text
    assert (
        kk(
            "Ride №{number} is confirmed: {date} at {time}.\nCar: {make}, {colour}, number plate "
            "{plate}.\nDriver: {driver}, {driver_phone}.",
            number=ride_id,
            date=pickup.strftime("%d.%m.%Y"),
            time=pickup.strftime("%H:%M"),
            make="Ford Transit",
            colour="ақ",
            plate=VAN,
            driver=van.driver_name,
            driver_phone=van.driver_phone,
        )
        == scheduled_kk.text
    )
    scheduled_ru = await scene.rep.wait_for("Ford Transit", after=0)
    assert "белый" in scheduled_ru.text and "Водитель" in scheduled_ru.text

    # A day ahead, the car can't be on its way yet: the press is refused and nobody is told.
    early = await scene.press(scene.marat, ru("Car is on its way"), ride_id)
    assert (await scene.db_ride(ride_id)).status == S.SCHEDULED
    assert early.text and "ещё рано" in early.text
    # The day comes: the pickup is half an hour away.
    async with scene.bot.sessions() as session:
        await session.execute(
            update(Ride)
            .where(Ride.id == ride_id)
            .values(pickup_at=datetime.now(UTC) + timedelta(minutes=30))
        )
        await session.commit()
    await scene.press(scene.marat, ru("Car is on its way"), ride_id)
    assert scene.card(ride_id).text.splitlines()[0] == scene.state_line(ride_id, S.EN_ROUTE)
    await scene.rider.wait_for("жолға шықты", after=0)
    await scene.rep.wait_for("выехала к вам", after=0)

    await scene.press(scene.svetlana, ru("Car has arrived"), ride_id)
    assert scene.card(ride_id).text.splitlines()[0] == scene.state_line(ride_id, S.ARRIVED)
    await scene.rider.wait_for("күтіп тұр", after=0)
    await scene.rep.wait_for("ждёт вас по адресу подачи", after=0)

    await scene.press(scene.aigul, ru("Rider is on board"), ride_id)
    assert scene.card(ride_id).text.splitlines()[0] == scene.state_line(ride_id, S.ON_BOARD)
    await scene.rep.wait_for("в машине", after=0)
    assert not any("көлікте" in text for text in texts(scene.rider))  # she knows she is in it

    await scene.press(scene.aigul, ru("Ride completed"), ride_id)
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.COMPLETED)
    assert card.button_texts == []  # nothing more to do

    rating = await scene.rider.wait_for(lambda m: bool(m.buttons), after=0)
    assert rating.button_texts[0] == kk("5 — excellent")
    await scene.rep.wait_for(lambda m: ru("1 — very bad") in m.button_texts, after=0)
    scene.rider.press(kk("4 — good"), message=rating)
    await scene.rider.wait_for(kk("Skip"))
    await bot.settle()
    assert rating.buttons == []  # answered: the buttons are gone
    assert ru("Rider's rating: {stars} of 5", stars=4) in scene.card(ride_id).text

    scene.rider.send_sticker()
    await scene.rider.wait_for(
        kk("Please type your comment in words, up to 300 characters, or press «Skip».")
    )
    scene.rider.send_text("Жүргізуші өте сыпайы болды")
    await scene.rider.wait_for(kk("Thank you! The dispatchers will see your comment."))
    await bot.settle()
    card = scene.card(ride_id)
    assert ru("Rider's comment: {comment}", comment="Жүргізуші өте сыпайы болды") in card.text
    ride = await scene.db_ride(ride_id)
    assert (ride.rating, ride.rating_comment) == (4, "Жүргізуші өте сыпайы болды")

    # One card was posted; every change was an edit of it.
    assert scene.group_posts() == 1
    assert len(card.edits) >= 7
    # Every message about the ride reached each of them in their own language.
    about = f"№{ride_id}"
    rider_news = [text for text in texts(scene.rider) if about in text]
    rep_news = [text for text in texts(scene.rep) if about in text]
    assert len(rider_news) == 4 and len(rep_news) == 5  # the rider is not told she is on board
    assert all("сапар" in text for text in rider_news)
    assert all("оездк" in text for text in rep_news)


async def test_a_refusal_with_a_typed_reason_reaches_the_rider(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    ride_id = await scene.ride()
    card = scene.card(ride_id)
    await scene.press(scene.marat, ru("Refuse"), ride_id)
    card = scene.card(ride_id)
    assert ru("No car is available at that time") in card.button_texts
    assert card.button_texts[-1] == ru("Back")
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.REQUESTED)  # only buttons

    # Back restores the card's buttons; then the reason is typed as a reply to the card.
    await scene.press(scene.marat, ru("Back"), ride_id)
    assert scene.card(ride_id).button_texts[0] == ru("Take it myself")
    await scene.press(scene.marat, ru("Refuse"), ride_id)
    answer = await scene.press(scene.marat, ru("Other reason (type it)"), ride_id)
    assert answer.show_alert and answer.text == ru("Reply to this card with the reason, in words.")
    assert scene.card(ride_id).button_texts == [ru("Back")]

    scene.marat.send_sticker(chat=GROUP)  # not a reply: the group's chatter is not for the bot
    scene.marat.stand_in.user_message(
        scene.marat,
        GROUP,
        reply_to=card,
        extra={
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "type": "regular",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
            }
        },
    )
    warning = await scene.stand_in.wait_for(
        ru("Please type the reason in words, up to 300 characters."), GROUP
    )
    assert warning.from_bot
    scene.marat.send_text("Адрес за пределами города", chat=GROUP, reply_to=card)
    await bot.settle()
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.REJECTED)
    assert ru("Reason: {reason}", reason="Адрес за пределами города") in card.text
    assert card.button_texts == []
    told = await scene.rider.wait_for("Адрес за пределами города", after=0)
    assert told.text.startswith("Диспетчер") and "қабылдамады" in told.text
    await scene.rep.wait_for("отклонил поездку", after=0)

    # A second request refused with a reason from the list: each reader gets it in words.
    second = await scene.ride()
    await scene.press(scene.aigul, ru("Refuse"), second)
    await scene.press(scene.aigul, ru("The address is outside the service territory"), second)
    assert (
        ru("Reason: {reason}", reason=ru("The address is outside the service territory"))
        in scene.card(second).text
    )
    await scene.rider.wait_for(kk("The address is outside the service territory"), after=0)
    await scene.rep.wait_for(ru("The address is outside the service territory"), after=0)
    async with bot.sessions() as session:
        events = list(await session.scalars(select(RideEvent).where(RideEvent.ride_id == ride_id)))
    assert events[-1].reason == "Адрес за пределами города" and events[-1].actor_name == "Марат"
    assert scene.group_posts() == 3  # two cards and one warning about the sticker


async def test_another_time_offered_and_declined_cancels_the_ride(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    ride_id = await scene.ride(pickup_at=tomorrow_at(10))
    await scene.press(scene.aigul, ru("Take it myself"), ride_id)
    await scene.press(scene.aigul, ru("Offer another time"), ride_id)
    card = scene.card(ride_id)
    assert "11:00" in card.button_texts and ru("Type another time") in card.button_texts
    await scene.press(scene.aigul, "11:00", ride_id)
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.TIME_PROPOSED)
    new_time = tomorrow_at(11).astimezone(ZONE).strftime("%d.%m.%Y %H:%M")
    assert ru("Offered instead: {when}", when=new_time) in card.text

    offer = await scene.rider.wait_for("11:00", after=0)
    assert "10:00" in offer.text
    assert offer.button_texts == [kk("Accept the new time"), kk("Decline and cancel the ride")]
    rep_offer = await scene.rep.wait_for("11:00", after=0)
    assert rep_offer.button_texts == [ru("Accept the new time"), ru("Decline and cancel the ride")]

    pressed = scene.rider.press(kk("Decline and cancel the ride"), message=offer)
    assert (await pressed.answer()).text == kk("The ride is cancelled.")
    await bot.settle()
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.CANCELLED)
    assert card.button_texts == []
    await scene.rep.wait_for("предложенное время не подошло", after=0)
    assert (await scene.db_ride(ride_id)).pickup_at == tomorrow_at(10)

    # The representative's copy of the offer is now stale: it says so and changes nothing.
    late = scene.rep.press(ru("Accept the new time"), message=rep_offer)
    answer = await late.answer()
    assert answer.show_alert
    assert answer.text == ru(
        "This offer is no longer valid: ride №{number} is now «{state}».",
        number=ride_id,
        state=ru(status_label(S.CANCELLED)),
    )
    await bot.settle()
    assert (await scene.db_ride(ride_id)).status == S.CANCELLED
    # The card, and one new message replying to it: an edit alone makes no sound (B18).
    assert scene.group_posts() == 2
    declined = scene.stand_in.messages(GROUP)[-1]
    assert declined.reply_to is not None and declined.reply_to.message_id == card.message_id
    assert declined.text.startswith(f"Поездка №{ride_id}: предложенное время отклонил пассажир")


async def test_an_accepted_time_typed_by_the_dispatcher_goes_back_for_a_car(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    ride_id = await scene.ride(pickup_at=tomorrow_at(10))
    await scene.press(scene.aigul, ru("Offer another time"), ride_id)
    await scene.press(scene.aigul, ru("Type another time"), ride_id)
    card = scene.card(ride_id)
    scene.aigul.send_text("в обед", chat=GROUP, reply_to=card)
    await scene.stand_in.wait_for(ru("Please type the time as 14:30 or 26.11 14:30."), GROUP)
    scene.aigul.send_text("14:30", chat=GROUP, reply_to=card)
    await bot.settle()
    assert scene.card(ride_id).text.splitlines()[0] == scene.state_line(ride_id, S.TIME_PROPOSED)

    offer = await scene.rider.wait_for("14:30", after=0)
    scene.rider.press(kk("Accept the new time"), message=offer)
    await bot.settle()
    ride = await scene.db_ride(ride_id)
    assert ride.status == S.TAKEN and ride.pickup_at == tomorrow_at(14, 30)
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.TAKEN)
    assert card.button_texts[0] == f"Ford Transit {VAN}"
    await scene.rep.wait_for("Новое время поездки", after=0)


async def test_two_dispatchers_take_at_once_and_exactly_one_wins(bot) -> None:
    await take_race(bot)


@pytest.mark.postgres
async def test_two_dispatchers_take_at_once_on_postgresql(pg_bot) -> None:
    await take_race(pg_bot)


async def take_race(bot: Any) -> None:
    scene = Scene(bot)
    ru = scene.ru
    ride_id = await scene.ride()
    card = scene.card(ride_id)
    first = scene.aigul.press(ru("Take it myself"), message=card)
    second = scene.marat.press(ru("Take it myself"), message=card)
    answers = await asyncio.gather(first.answer(), second.answer())
    await bot.settle()
    ride = await scene.db_ride(ride_id)
    winner = ride.dispatcher_name
    assert winner in ("Айгүл", "Марат")
    won = [a for a in answers if not a.show_alert]
    lost = [a for a in answers if a.show_alert]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].text == ru(
        "Request №{number} was already taken by {name}.", number=ride_id, name=winner
    )
    async with bot.sessions() as session:
        taken = await session.scalars(
            select(RideEvent).where(RideEvent.ride_id == ride_id, RideEvent.to_status == S.TAKEN)
        )
        assert len(list(taken)) == 1


async def test_outsiders_forged_buttons_and_finished_rides_change_nothing(bot) -> None:
    scene = Scene(bot)
    ru = scene.ru
    ride_id = await scene.ride()
    card = scene.card(ride_id)
    versions = len(card.versions)

    guest = bot.outsider()
    answer = await guest.press(ru("Take it myself"), message=card).answer()
    assert answer.show_alert and answer.text == ru("Only this district's dispatchers can do this.")

    tekeli_ride = await scene.ride(district="tekeli", with_people=False)
    forged = RideAct(ride=tekeli_ride, act=Act.TAKE).pack()
    answer = await scene.aigul.press_data(card, forged).answer()
    assert answer.show_alert and answer.text == ru("This request belongs to another district.")
    await bot.settle()
    assert (await scene.db_ride(tekeli_ride)).status == S.REQUESTED
    assert (await scene.db_ride(ride_id)).status == S.REQUESTED
    assert len(card.versions) == versions  # the card was not touched

    # The rider cancels; the card follows at once and its old buttons no longer act.
    take = RideAct(ride=ride_id, act=Act.TAKE).pack()
    async with bot.sessions() as session:
        await change(session, ride_id, Action.RIDER_CANCEL, Actor("rider", RIDER_ID, "Айгерім"))
        await session.commit()
    bot.app.outbox_wakeup.set()
    await bot.settle()
    assert scene.card(ride_id).text.splitlines()[0] == scene.state_line(ride_id, S.CANCELLED)
    assert scene.card(ride_id).button_texts == []
    await scene.rep.wait_for("Кто отменил: Айгерім", after=0)
    answer = await scene.aigul.press_data(card, take).answer()
    assert answer.show_alert
    assert answer.text == ru(
        "Request №{number} is already: {state}.",
        number=ride_id,
        state=ru(desk_status(S.CANCELLED)),
    )
    await bot.settle()
    assert (await scene.db_ride(ride_id)).status == S.CANCELLED
    # The card, and the rider's cancellation as a new message replying to it (B18).
    assert scene.group_posts() == 2
    cancelled = scene.stand_in.messages(GROUP)[-1]
    assert cancelled.reply_to is not None and cancelled.reply_to.message_id == card.message_id
    assert cancelled.text.startswith(f"Поездку №{ride_id}") and "Айгерім" in cancelled.text


async def test_a_busy_car_needs_a_second_confirmation(bot) -> None:
    scene = Scene(bot)
    ru = scene.ru
    first = await scene.ride(pickup_at=tomorrow_at(10))
    second = await scene.ride(pickup_at=tomorrow_at(10, 30))
    await scene.press(scene.aigul, ru("Assign a car"), first)
    await scene.press(scene.aigul, f"Ford Transit {VAN}", first)
    assert (await scene.db_ride(first)).status == S.SCHEDULED

    await scene.press(scene.marat, ru("Take it myself"), second)
    busy = ru(
        "{car} — busy: ride №{number} at {time}",
        car=f"Ford Transit {VAN}",
        number=first,
        time="10:00",
    )
    assert scene.card(second).button_texts[0] == busy
    answer = await scene.press(scene.marat, busy, second)
    assert answer.show_alert and "10:00" in answer.text
    assert (await scene.db_ride(second)).status == S.TAKEN
    confirm = ru("Assign anyway: {car}", car=f"Ford Transit {VAN}")
    assert scene.card(second).button_texts == [confirm, ru("Back")]
    await scene.press(scene.marat, confirm, second)
    ride = await scene.db_ride(second)
    assert ride.status == S.SCHEDULED and ride.dispatcher_name == "Марат"


async def test_desk_commands_list_queue_manifest_history_and_search(bot) -> None:
    scene = Scene(bot)
    ru = scene.ru
    waiting = await scene.ride(pickup_at=tomorrow_at(9))
    planned = await scene.ride(pickup_at=tomorrow_at(12))
    await scene.press(scene.aigul, ru("Assign a car"), planned)
    await scene.press(scene.aigul, f"Ford Transit {VAN}", planned)

    scene.marat.send_text("/queue", chat=GROUP)
    queue = await scene.stand_in.wait_for(
        ru("Open requests, oldest first: {count}", count=1), GROUP
    )
    card = scene.card(waiting)
    assert f"https://t.me/c/1000000001/{card.message_id}" in queue.text
    assert f"№{planned} " not in queue.text

    scene.marat.send_text("/tomorrow", chat=GROUP)
    day = (datetime.now(ZONE) + timedelta(days=1)).strftime("%d.%m.%Y")
    manifest = await scene.stand_in.wait_for(ru("Rides on {date}, by car:", date=day), GROUP)
    lines = manifest.text.splitlines()
    van_line = next(i for i, line in enumerate(lines) if line.startswith(f"Ford Transit {VAN}"))
    assert lines[van_line + 1].startswith(f"12:00 — №{planned}")
    assert ru("Without a car yet:") in lines
    assert any(line.startswith(f"09:00 — №{waiting}") for line in lines)

    scene.marat.send_text(f"/ride {planned}", chat=GROUP)
    details = await scene.stand_in.wait_for(ru("History:"), GROUP)
    assert scene.state_line(planned, S.SCHEDULED) in details.text
    assert (
        f"Айгүл: {ru(desk_status(S.REQUESTED))} → {ru(desk_status(S.SCHEDULED))}" in details.text
    )

    scene.marat.send_text("/find 8 701 123-45-67", chat=GROUP)
    found = await scene.stand_in.wait_for("Айгерім Сейітова", GROUP)
    assert "+77011234567" in found.text and f"№{waiting}" in found.text

    guest = bot.outsider()
    guest.send_text("/queue", chat=GROUP)
    refusal = await scene.stand_in.wait_for(
        ru("Only this district's dispatchers can do this."), GROUP
    )
    assert refusal.reply_to is not None


async def test_admins_manage_dispatchers_from_the_group(bot) -> None:
    scene = Scene(bot)
    ru = scene.ru
    admin = bot.person(9999, name="Админ")
    bot.stand_in.add_member(GROUP, admin)
    newcomer = bot.outsider(user_id=8002)
    hello = newcomer.send_text("Здравствуйте, я новый диспетчер", chat=GROUP)

    scene.aigul.send_text("/dispatcher_add", chat=GROUP, reply_to=hello)
    await scene.stand_in.wait_for(
        ru("Only an administrator can change the list of dispatchers."), GROUP
    )
    admin.send_text("/dispatcher_add", chat=GROUP, reply_to=hello)
    await scene.stand_in.wait_for("теперь диспетчер", GROUP)
    async with bot.sessions() as session:
        row = await session.scalar(select(Dispatcher).where(Dispatcher.telegram_id == 8002))
        assert row is not None and row.source == "admin" and row.active

    ride_id = await scene.ride()
    answer = await scene.press(newcomer, ru("Take it myself"), ride_id)
    assert not answer.show_alert
    assert (await scene.db_ride(ride_id)).dispatcher_name == "Гость"

    admin.send_text("/dispatcher_remove 9003", chat=GROUP)
    removed = await scene.stand_in.wait_for("больше не может", GROUP)
    assert "файле районов" in removed.text  # listed in the file: back after a restart
    admin.send_text("/dispatchers", chat=GROUP)
    listing = await scene.stand_in.wait_for("Диспетчеры (", GROUP)
    assert "Гость (8002)" in listing.text and "Светлана" not in listing.text


async def test_a_district_in_a_forum_topic_keeps_everything_in_its_topic(bot) -> None:
    scene = Scene(bot)
    forum = -1003000000000
    bot.stand_in.group(forum, title="Жетісу диспетчерлері", forum=True)
    topic = bot.stand_in.topic(forum, "Текелі")
    async with bot.sessions() as session:
        district = await session.get(District, "tekeli")
        assert district is not None
        district.chat_id, district.topic_id = forum, topic
        await session.commit()
    nurlan = bot.person(9101, name="Нұрлан")
    bot.stand_in.add_member(forum, nurlan)
    kk = scene.kk

    ride_id = await scene.ride(district="tekeli", wheelchair=True)
    card = scene.card(ride_id, forum)
    assert card.thread_id == topic
    assert card.text.splitlines()[0] == scene.state_line(ride_id, S.REQUESTED, kk)
    nurlan.press(kk("Take it myself"), message=card)
    await bot.settle()
    assert scene.card(ride_id, forum).text.splitlines()[0] == scene.state_line(
        ride_id, S.TAKEN, kk
    )
    assert scene.card(ride_id, forum).button_texts[0] == "Volkswagen Crafter 789GHI05"

    nurlan.send_text("/queue", chat=forum, thread_id=topic)
    reply = await bot.stand_in.wait_for(kk("Open requests, oldest first: {count}", count=1), forum)
    assert reply.thread_id == topic
    assert f"https://t.me/c/3000000000/{topic}/{card.message_id}" in reply.text

    # The General topic of the same forum is no district's desk.
    nurlan.send_text("/queue", chat=forum)
    general = await bot.stand_in.wait_for(
        bot.app.i18n.translator(bot.settings.default_language)(
            "This chat is not linked to a district."
        ),
        forum,
    )
    assert general.thread_id is None

    # Whoever sets up the districts file learns the chat and topic ids, in that topic.
    asked = nurlan.send_text("/chatid", chat=forum, thread_id=topic)
    ids = await bot.stand_in.wait_for(f"chat_id = {forum}", forum)
    assert ids.text.splitlines() == [f"chat_id = {forum}", f"topic_id = {topic}"]
    assert ids.thread_id == topic
    assert ids.reply_to is not None and ids.reply_to.message_id == asked.message_id


async def test_an_administrator_reads_the_bots_status_in_a_private_chat(bot) -> None:
    scene = Scene(bot)
    await scene.ride()
    kk = scene.kk  # the default language: the administrator never chose one
    admin = bot.person(9999, name="Админ")
    admin.send_text("/status")
    report = await bot.stand_in.wait_for(kk("Bot status"), admin.chat)
    lines = report.text.splitlines()
    assert kk("Unanswered requests:") in lines
    assert kk("Sweeps:") in lines
    # An ordinary person is not told the command exists.
    scene.rep.send_text("/status")
    await bot.settle()
    assert scene.rep.messages()
    assert not any(scene.ru("Bot status") in m.text for m in scene.rep.messages())


async def test_a_stale_proposal_answer_from_someone_else_is_refused(bot) -> None:
    scene = Scene(bot)
    ride_id = await scene.ride()
    stranger = bot.person(7001, name="Чужой", lang="ru")
    stranger.send_text("/start")
    await bot.settle()
    language_prompt = stranger.last_message()
    assert language_prompt is not None
    pressed = stranger.press_data(
        language_prompt, ProposalAnswer(ride=ride_id, accept=False).pack()
    )
    answer = await pressed.answer()
    assert answer.show_alert
    await bot.settle()
    assert (await scene.db_ride(ride_id)).status == S.REQUESTED


# -- B10: with privacy mode off, a reason typed as a plain message in the group -------------


@pytest.fixture
async def open_bot(sqlite_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot in groups where it reads every message (BotFather: /setprivacy, Disable)."""
    async with (
        BotApiStandIn(privacy_mode=False) as stand_in,
        running_bot(stand_in, sqlite_url, tmp_path, **FAST_GROUPS) as harness,
    ):
        yield harness


async def test_a_plain_message_after_other_reason_refuses_the_ride(open_bot: Any) -> None:
    scene = Scene(open_bot)
    ru = scene.ru
    ride_id = await scene.ride()
    await scene.press(scene.marat, ru("Refuse"), ride_id)
    hint = await scene.press(scene.marat, ru("Other reason (type it)"), ride_id)
    assert hint.show_alert and hint.text == ru(TYPE_REASON)
    scene.marat.send_text("Адрес за пределами города", chat=GROUP)  # not a reply
    await open_bot.settle()
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, RideStatus.REJECTED)
    assert ru("Reason: {reason}", reason="Адрес за пределами города") in card.text
    refused = await scene.rep.wait_for("Адрес за пределами города", after=0)
    assert f"№{ride_id}" in refused.text
