"""Standing orders end to end: the real bot against the Bot API stand-in.

A rider who writes Russian asks in the chat for dialysis on Monday, Wednesday and Friday at
07:30 with the way back at 12:00 for a month; her son reads Kazakh. A dispatcher approves it
with the district's van; the sweep books the dates inside the booking horizon once each and
skips Independence Day, telling both; the rider cancels one date and pauses the order, and the
rides come back by themselves after the pause. A Kazakh-speaking rider whose ВКК conclusion
runs out sooner is offered the latest end date, and her order is flagged on the card as over
the district's share for standing orders. The clock stands still at a Wednesday noon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import FixedClock
from bot.i18n import Translator
from bot.middlewares import PersonMiddleware
from bot.services import standing_orders as so
from bot.services.booking_rules import weekday_msg
from bot.services.rides import Actor
from bot.settings import Settings
from bot.sweeps import Sweeps
from handlers.booking import day_text, party_text
from models import Account, District, OrderStatus, Ride, Rider, RideStatus, StandingOrder
from tests.e2e.harness import BotHarness, running_bot
from tests.factories import VAN, make_account, make_rider

GROUP = -1001000000001
RIDER_TG, SON_TG, KK_RIDER_TG = 7001, 7002, 7003
ZONE = ZoneInfo(Settings.model_fields["timezone"].default)
TODAY = date(2026, 12, 2)  # a Wednesday: the 14-day horizon reaches 16 December
FIRST, END = date(2026, 12, 7), date(2027, 1, 6)  # a Monday, and a month later
HOLIDAY = date(2026, 12, 16)  # Independence Day, a Wednesday
FAST_GROUPS = {"outbox_group_spacing": 0.1}


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@pytest.fixture
async def bot(stand_in: Any, sqlite_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(stand_in, sqlite_url, tmp_path, **FAST_GROUPS) as harness:
        yield harness


class Scene:
    def __init__(self, bot: BotHarness) -> None:
        self.bot = bot
        self.ru: Translator = bot.app.i18n.translator("ru")
        self.kk: Translator = bot.app.i18n.translator("kk")
        self.clock = FixedClock(local(TODAY, 12))
        # Every update reads "now" from this clock: the middleware is given it in place.
        for middleware in bot.app.dp.update.outer_middleware:
            if isinstance(middleware, PersonMiddleware):
                middleware.clock = self.clock
        self.dispatcher = bot.dispatcher("taldykorgan", 0)
        self.rider = bot.person(RIDER_TG, name="Гульнара", lang="ru")
        self.son = bot.person(SON_TG, name="Асан", lang="kk")

    async def people(self, *, capacity_share: float | None = None) -> None:
        async with self.bot.sessions() as session:
            district = await session.get(District, "taldykorgan")
            assert district is not None
            # Dialysis starts early: this district's cars run from 07:00.
            district.rules = {"service_start": "07:00"}
            if capacity_share is not None:
                district.standing_order_capacity_share = capacity_share
            own = await make_account(session, RIDER_TG, language="ru", name="Гульнара")
            son = await make_account(session, SON_TG, language="kk", name="Асан")
            rider = await make_rider(
                session, account=own, representative=son, name="Гульнара Сейтова"
            )
            rider.category = "group1_mobility"
            kk_own = await make_account(session, KK_RIDER_TG, language="kk", name="Айжан")
            kk_rider = await make_rider(
                session,
                account=kk_own,
                name="Айжан Нұрова",
                phone="+77017654321",
                vkk_expires_on=date(2026, 12, 30),
            )
            kk_rider.category = "group1_mobility"
            await session.commit()

    async def sweep(self, *, settle: bool = True) -> None:
        """Book what is due; `settle=False` leaves the group's cards to Telegram's pace."""
        sweeps = Sweeps(self.bot.sessions, self.bot.settings, "test-sweeper", clock=self.clock.now)
        await sweeps.run("standing_orders")
        self.bot.app.outbox_wakeup.set()
        if settle:
            await self.bot.settle()

    async def say(self, user: Any, text: str, expect: str) -> Any:
        user.send_text(text)
        return await user.wait_for(expect)

    async def tap(self, user: Any, text: str, expect: str) -> Any:
        user.tap(text)
        return await user.wait_for(expect)

    def card(self, order_id: int) -> Any:
        title = self.ru("Standing order №{number} — {state}", number=order_id, state="")
        found = [m for m in self.bot.stand_in.messages(GROUP) if m.text.startswith(title.rstrip())]
        assert len(found) == 1, f"one card per standing order, found {len(found)}"
        return found[0]

    async def rides(self) -> list[Ride]:
        async with self.bot.sessions() as session:
            return list(await session.scalars(select(Ride).order_by(Ride.pickup_at, Ride.id)))

    async def order(self) -> StandingOrder:
        async with self.bot.sessions() as session:
            found = await session.scalar(select(StandingOrder).order_by(StandingOrder.id))
        assert found is not None
        return found


def standing(rides: list[Ride]) -> list[tuple[date | None, str | None]]:
    return sorted(
        (r.occurrence_date, r.leg) for r in rides if r.status != RideStatus.CANCELLED.value
    )


def once_each(days: list[date]) -> list[tuple[date | None, str | None]]:
    return sorted((d, leg) for d in days for leg in ("back", "there"))


async def ask_for_dialysis(scene: Scene) -> int:
    """The whole conversation in Russian, typing where a person would type."""
    ru, rider = scene.ru, scene.rider
    rider.send_text("/regular")
    await rider.wait_for("пн ср пт")
    assert ru("Weekdays, Monday to Friday") in rider.keyboard_buttons
    # A word the bot can't read keeps the question; the days typed in short are read.
    await scene.say(
        rider, "иногда", ru("Please name at least one weekday, for example: Mon Wed Fri.")
    )
    await scene.say(rider, "пн ср пт", "07:30")
    await scene.say(rider, "7:30", ru("Do you need a ride back the same day?"))
    # Back goes one question back, and the answer is kept to be given again.
    await scene.tap(rider, ru("Back"), "07:30")
    await scene.say(rider, "07:30", ru("Do you need a ride back the same day?"))
    await scene.tap(
        rider,
        ru("Yes, book the way back"),
        ru("At what time should the car come for the way back? Choose below or type the time."),
    )
    await scene.say(
        rider, "12:00", ru("Where should the car pick {name} up?", name="Гульнара Сейтова")
    )
    await scene.tap(
        rider,
        ru("Home address"),
        ru("Where to? Type the address or the place, for example: Regional hospital."),
    )
    await scene.say(rider, "Областная больница, отделение диализа", ru("What are the trips for?"))
    await scene.tap(
        rider,
        ru("Procedures (e.g. dialysis)"),
        ru("From which date should the rides start? Choose below or type the date."),
    )
    assert day_text(ru, FIRST) in rider.keyboard_buttons, "the next Monday is one tap away"
    # The latest end date offered: the district's three months.
    await scene.say(rider, "7 декабря", day_text(ru, date(2027, 3, 9)))
    await scene.say(
        rider, "06.01.2027", ru("Who rides along with {name}?", name="Гульнара Сейтова")
    )
    await scene.tap(rider, party_text(ru, False, 0), "Гульнара Сейтова")
    await scene.tap(rider, ru("No wheelchair"), "300")
    summary = await scene.tap(rider, ru("Skip"), ru("Please check the standing order:"))
    for line in (
        ru("Days: {value}", value="пн, ср, пт"),
        ru(
            "Time: {value}",
            value=ru("pickup at {time}, way back at {back}", time="07:30", back="12:00"),
        ),
        ru("From: {value}", value="ул. Абая, 1"),
        ru("To: {value}", value="Областная больница, отделение диализа"),
        ru("Dates: from {first} to {end}", first=day_text(ru, FIRST), end=day_text(ru, END)),
    ):
        assert line in summary.text, line
    assert ru("Change the days") in summary.button_texts
    rider.press(ru("Confirm the request"), message=summary)
    sent = await rider.wait_for(
        ru(
            "Standing order №{number} is sent to the dispatchers: {days}, {times}, from {first} "
            "to {end}. We will write to you here when a dispatcher has looked at it.",
            number=1,
            days="пн, ср, пт",
            times=ru("pickup at {time}, way back at {back}", time="07:30", back="12:00"),
            first=day_text(ru, FIRST),
            end=day_text(ru, END),
        )
    )
    assert sent.text
    await scene.bot.settle()
    order = await scene.order()
    assert order.status == OrderStatus.PENDING
    assert sorted(order.weekdays) == [1, 3, 5] and (order.first_date, order.end_date) == (
        FIRST,
        END,
    )
    return order.id


async def test_a_month_of_dialysis_asked_approved_booked_cancelled_and_paused(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    await scene.people()
    order_id = await ask_for_dialysis(scene)
    # The son hears of it in Kazakh.
    await scene.son.wait_for(f"№{order_id} тұрақты", after=0)

    # The desk: one card; approve with the district's van.
    card = scene.card(order_id)
    assert "пн, ср, пт" in card.text and "07:30" in card.text and "12:00" in card.text
    assert card.button_texts[:2] == [ru("Approve"), ru("Approve with a usual car")]
    scene.dispatcher.press(ru("Approve with a usual car"), message=card)
    await bot.settle()
    card = scene.card(order_id)
    van_button = next(b for b in card.button_texts if VAN in b)
    answer = scene.dispatcher.press(van_button, message=card)
    assert (await answer.answer()).text == ru(
        "Standing order №{number} is approved.", number=order_id
    )
    await bot.settle()
    card = scene.card(order_id)
    assert card.text.splitlines()[0] == ru(
        "Standing order №{number} — {state}",
        number=order_id,
        state=ru("approved, rides are booked by themselves"),
    )
    assert card.button_texts == []
    await scene.rider.wait_for(lambda m: "одобрена" in m.text and VAN in m.text, after=0)
    await scene.son.wait_for(lambda m: "мақұлданды" in m.text and VAN in m.text, after=0)

    # The sweep books the dates inside the horizon once each, even run twice; 16.12 is a
    # public holiday: skipped, and both are told in their own language.
    await scene.sweep()
    await scene.sweep()
    in_horizon = [date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 11), date(2026, 12, 14)]
    rides = await scene.rides()
    assert standing(rides) == once_each(in_horizon)
    assert all(r.status == RideStatus.SCHEDULED.value for r in rides), "the van is free"
    holiday_ru = await scene.rider.wait_for(lambda m: "16.12.2026" in m.text, after=0)
    assert "праздничный" in holiday_ru.text
    holiday_kk = await scene.son.wait_for(lambda m: "16.12.2026" in m.text, after=0)
    assert "мереке" in holiday_kk.text

    # /rides shows the order with its next dates and the skipped one.
    scene.rider.send_text("/rides")
    listed = await scene.rider.wait_for(
        lambda m: m.text.startswith(
            ru("Standing order №{number}: {state}.", number=order_id, state=ru("running"))
        )
    )
    assert ru("Next rides: {dates}", dates=day_text(ru, FIRST)) in listed.text
    assert f"{day_text(ru, HOLIDAY)} ({ru('public holiday')})" in listed.text
    assert listed.button_texts == [
        ru("Cancel one date"),
        ru("Pause between two dates"),
        ru("Change the time from a date on"),
        ru("End the standing order"),
    ]

    # One date cancelled: its two rides go, the others stay.
    scene.rider.press(ru("Cancel one date"), message=listed)
    await scene.rider.wait_for(
        ru("Which date should have no ride? Choose below or type the date.")
    )
    await scene.tap(scene.rider, day_text(ru, date(2026, 12, 9)), "09.12.2026")
    await bot.settle()
    rides = await scene.rides()
    assert standing(rides) == once_each(
        [date(2026, 12, 7), date(2026, 12, 11), date(2026, 12, 14)]
    )
    cancelled = [r for r in rides if r.status == RideStatus.CANCELLED.value]
    assert [r.occurrence_date for r in cancelled] == [date(2026, 12, 9)] * 2

    # A hospital stay: paused from 11 to 14 December.
    scene.rider.send_text("/rides")
    listed = await scene.rider.wait_for(lambda m: ru("Pause between two dates") in m.button_texts)
    scene.rider.press(ru("Pause between two dates"), message=listed)
    await scene.rider.wait_for(
        ru("From which date should the rides stop? Choose below or type the date.")
    )
    await scene.say(
        scene.rider,
        "11.12.2026",
        ru(
            "Until which date should the rides stop? The rides start again by themselves after it."
        ),
    )
    done = await scene.say(scene.rider, "14 декабря", "14.12.2026")
    assert done.text == ru(
        "Standing order №{number} is paused from {start} to {end}. The rides start again by "
        "themselves after that.",
        number=order_id,
        start=day_text(ru, date(2026, 12, 11)),
        end=day_text(ru, date(2026, 12, 14)),
    )
    await bot.settle()
    assert standing(await scene.rides()) == once_each([date(2026, 12, 7)])
    await scene.son.wait_for(lambda m: "уақытша тоқтатылды" in m.text, after=0)

    # Two weeks later the horizon has moved past the pause: rides come back by themselves,
    # the paused and cancelled dates stay empty, the holiday stays skipped.
    scene.clock.at = local(date(2026, 12, 16), 12)
    await scene.sweep(settle=False)
    after_pause = [
        date(2026, 12, 18),
        date(2026, 12, 21),
        date(2026, 12, 23),
        date(2026, 12, 25),
        date(2026, 12, 28),
        date(2026, 12, 30),
    ]
    assert standing(await scene.rides()) == once_each([date(2026, 12, 7), *after_pause])
    order = await scene.order()
    assert [s.day for s in so.skipped_dates(order)] == [date(2026, 12, 9), HOLIDAY]
    assert kk(weekday_msg(HOLIDAY)) in holiday_kk.text


async def test_an_end_date_past_the_vkk_expiry_is_refused_and_the_card_flags_the_cap(
    bot,
) -> None:
    scene = Scene(bot)
    kk, ru = scene.kk, scene.ru
    await scene.people(capacity_share=0.01)
    rider = bot.person(KK_RIDER_TG, name="Айжан", lang="kk")
    rider.send_text("/regular")
    await rider.wait_for("дс ср жм")
    await scene.tap(rider, kk("Weekdays, Monday to Friday"), "07:30")
    await scene.say(rider, "9:00", kk("Do you need a ride back the same day?"))
    await scene.tap(rider, kk("No, one way only"), "Айжан Нұрова")
    await scene.tap(
        rider,
        kk("Home address"),
        kk("Where to? Type the address or the place, for example: Regional hospital."),
    )
    await scene.say(rider, "Оңалту орталығы", kk("What are the trips for?"))
    await scene.tap(
        rider,
        kk("Rehabilitation centre"),
        kk("From which date should the rides start? Choose below or type the date."),
    )
    await scene.say(rider, "07.12.2026", "30.12.2026")
    refused = await scene.say(rider, "06.01.2027", "30.12.2026")
    assert refused.text == kk(
        "The VKK conclusion is valid until: {date}, so the standing order can run until then "
        "at the latest: {weekday}, {date}.",
        date="30.12.2026",
        weekday=kk(weekday_msg(date(2026, 12, 30))),
    )
    assert "ДКК" in refused.text and "ВКК" not in refused.text
    latest = day_text(kk, date(2026, 12, 30))
    assert latest in rider.keyboard_buttons, "the latest allowed date is one tap away"
    await scene.tap(rider, latest, kk("Who rides along with {name}?", name="Айжан Нұрова"))
    await scene.tap(rider, party_text(kk, False, 0), "Айжан Нұрова")
    await scene.tap(rider, kk("No wheelchair"), "300")
    await scene.tap(rider, kk("Skip"), kk("Please check the standing order:"))
    await scene.tap(rider, kk("Confirm the request"), "№1")
    await bot.settle()
    order = await scene.order()
    assert order.end_date == date(2026, 12, 30)
    card = scene.card(order.id)  # the desk of Taldykorgan writes Russian
    assert "⚠" in card.text
    assert "1%" in card.text
    assert ru("Approve") in card.button_texts
    # /regular in the group lists the order waiting for a dispatcher.
    scene.dispatcher.send_text("/regular", chat=GROUP)
    listing = await bot.stand_in.wait_for(
        lambda m: m.text.startswith(ru("Standing orders of the district: {count}", count=1)),
        GROUP,
    )
    assert "Айжан Нұрова" in listing.text and ru("waiting for a dispatcher") in listing.text
    assert ru("No rides from standing orders on {date}.", date="03.12.2026") in listing.text


async def order_by_service(scene: Scene, **changes: Any) -> int:
    """A pending Mon/Wed/Fri order of the Russian-speaking rider, made as the chat would."""
    async with scene.bot.sessions() as session:
        account = await session.scalar(select(Account).where(Account.telegram_id == RIDER_TG))
        assert account is not None
        rider = await session.scalar(select(Rider).where(Rider.account_id == account.id))
        assert rider is not None
        values: dict[str, Any] = {
            "rider_id": rider.id,
            "weekdays": frozenset({1, 3, 5}),
            "pickup_time": time(7, 30),
            "return_time": time(12, 0),
            "pickup_address": "ул. Абая, 1",
            "destination": "Областная больница",
            "purpose": "procedure",
            "first_date": FIRST,
            "end_date": END,
        }
        values.update(changes)
        result = await so.create_order(
            session, account, so.OrderDraft(**values), scene.clock.now(), tz=ZONE
        )
        assert result.ok and result.order is not None
        await session.commit()
        order_id = result.order.id
    scene.bot.app.outbox_wakeup.set()
    await scene.bot.settle()
    return order_id


async def test_another_time_is_offered_and_taken_and_a_typed_reason_refuses(bot) -> None:
    scene = Scene(bot)
    ru, kk = scene.ru, scene.kk
    await scene.people()
    desk = scene.dispatcher

    # Another time: the slot buttons near the asked one; the rider takes 08:30.
    order_id = await order_by_service(scene)
    desk.press(ru("Offer another time"), message=scene.card(order_id))
    await bot.settle()
    card = scene.card(order_id)
    assert "08:30" in card.button_texts and ru("Type another time") in card.button_texts
    answer = desk.press("08:30", message=card)
    assert (await answer.answer()).text == ru(
        "Standing order №{number}: the rider is asked about {time}.", number=order_id, time="08:30"
    )
    await bot.settle()
    assert ru("another time offered, waiting for the rider's answer") in scene.card(order_id).text
    offer = await scene.rider.wait_for(lambda m: "08:30" in m.text and bool(m.buttons), after=0)
    assert offer.button_texts == [
        ru("Accept the new time"),
        ru("Decline: close the standing order"),
    ]
    await scene.son.wait_for(lambda m: "08:30" in m.text and bool(m.buttons), after=0)
    scene.rider.press(ru("Accept the new time"), message=offer)
    taken = await scene.rider.wait_for(lambda m: "одобрена" in m.text)
    assert taken.text == ru(
        "Standing order №{number} is approved with the new time: {times}. The rides are "
        "booked by themselves; you will see them in /rides.",
        number=order_id,
        times=ru("pickup at {time}, way back at {back}", time="08:30", back="12:00"),
    )
    await bot.settle()
    assert offer.buttons == [], "answered: the buttons are gone"
    async with bot.sessions() as session:
        order = await session.get(StandingOrder, order_id)
    assert order is not None and order.status == OrderStatus.APPROVED
    assert order.pickup_time == time(8, 30)
    await scene.son.wait_for(lambda m: "08:30" in m.text and "мақұлданды" in m.text, after=0)

    # A reason typed as a plain message in the group after «Other reason».
    second = await order_by_service(scene, destination="Реабилитационный центр")
    desk.press(ru("Refuse"), message=scene.card(second))
    await bot.settle()
    card = scene.card(second)
    assert ru("No car is available at that time") in card.button_texts
    pressed = desk.press(ru("Other reason (type it)"), message=card)
    hint = await pressed.answer()
    assert hint.show_alert and hint.text == ru(
        "Write the reason in this chat as a message, in words."
    )
    await bot.settle()
    assert scene.card(second).button_texts == [ru("Back")]
    desk.send_text("Нет машины с подъёмником в эти часы", chat=GROUP)
    await bot.stand_in.wait_for(ru("Standing order №{number} is refused.", number=second), GROUP)
    await bot.settle()
    card = scene.card(second)
    assert ru("Reason: {reason}", reason="Нет машины с подъёмником в эти часы") in card.text
    refused = await scene.rider.wait_for(lambda m: "Нет машины с подъёмником" in m.text, after=0)
    assert "отклонена" in refused.text
    told = await scene.son.wait_for(lambda m: "Нет машины с подъёмником" in m.text, after=0)
    assert told.text == kk(
        "Standing order №{number} was refused by the dispatcher. Reason: {reason}.\n"
        "You can still book each ride in /book.",
        number=second,
        reason="Нет машины с подъёмником в эти часы",
    )


async def test_a_new_time_from_a_date_on_and_then_the_end_of_the_order(bot) -> None:
    scene = Scene(bot)
    ru = scene.ru
    await scene.people()
    order_id = await order_by_service(scene)
    async with bot.sessions() as session:
        decided = await so.approve(
            session, order_id, Actor("dispatcher", 9001, "Айгүл"), scene.clock.now()
        )
        assert decided.ok
        await session.commit()
    await scene.sweep()
    in_horizon = [date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 11), date(2026, 12, 14)]
    assert standing(await scene.rides()) == once_each(in_horizon)

    # From Monday 14 December on: pickup at 08:00, and no way back.
    scene.rider.send_text("/rides")
    listed = await scene.rider.wait_for(lambda m: ru("End the standing order") in m.button_texts)
    scene.rider.press(ru("Change the time from a date on"), message=listed)
    await scene.rider.wait_for(
        ru("From which date on should the new time apply? Choose below or type the date.")
    )
    await scene.say(scene.rider, "14.12", "14.12.2026")
    await scene.say(
        scene.rider, "08:00", ru("And the way back: at what time should the car come?")
    )
    done = await scene.tap(scene.rider, ru("No way back"), "08:00")
    assert done.text == ru(
        "Standing order №{number}: from {date} on, {times}. Rides already booked from that "
        "date are booked again at the new time.",
        number=order_id,
        date=day_text(ru, date(2026, 12, 14)),
        times=ru("pickup at {time}, no way back", time="08:00"),
    )
    await bot.settle()
    rides = await scene.rides()
    kept = [r for r in rides if r.status != RideStatus.CANCELLED.value]
    monday = [r for r in kept if r.occurrence_date == date(2026, 12, 14)]
    assert [(r.leg, r.pickup_at) for r in monday] == [("there", local(date(2026, 12, 14), 8))]
    assert len([r for r in kept if r.occurrence_date != date(2026, 12, 14)]) == 6, "untouched"

    # The end: asked once more, then every ride that has not started is cancelled.
    scene.rider.send_text("/rides")
    listed = await scene.rider.wait_for(lambda m: ru("End the standing order") in m.button_texts)
    scene.rider.press(ru("End the standing order"), message=listed)
    confirm = await scene.rider.wait_for(lambda m: ru("Yes, end it") in m.button_texts)
    scene.rider.press(ru("Yes, end it"), message=confirm)
    ended = await scene.rider.wait_for(lambda m: "завершена" in m.text)
    assert ended.text == ru(
        "Standing order №{number} is ended. Its rides that had not started are cancelled: "
        "{count}.",
        number=order_id,
        count=7,
    )
    await bot.settle()
    assert standing(await scene.rides()) == []
    assert (await scene.order()).status == OrderStatus.ENDED
    await scene.son.wait_for(lambda m: "тоқтатылды" in m.text and f"№{order_id}" in m.text)
