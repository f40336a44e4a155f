"""Booking end to end: the real bot against the Bot API stand-in, in Kazakh and in Russian.

Riders are created verified in the database by a small factory (registration has its own
tests); from there everything is what a person types and taps.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.booking import CalendarAction, CalendarPick, SummaryField
from bot.i18n import Translator
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, BOOK, SKIP
from bot.services import booking
from bot.services import booking_rules as br
from bot.services.registration import CONSENT_VERSION
from handlers.booking import day_text, party_text
from models import Account, OutboxMessage, Representation, Ride, Rider, utcnow

GROUP = -1001000000001
HOME = "ул. Абая, 1"
HOSPITAL = "Областная больница"
_serial = itertools.count(1)


async def seed_rider(
    bot: Any,
    *,
    name: str,
    account_tid: int | None = None,
    lang: str = "ru",
    representative_tid: int | None = None,
    rep_lang: str = "ru",
    wheelchair: bool = False,
    verification: str = "verified",
) -> int:
    """A rider as registration leaves them after a dispatcher's approval; returns the id."""
    session: AsyncSession
    async with bot.sessions() as session:

        async def account(tid: int, language: str) -> Account:
            found = await session.scalar(select(Account).where(Account.telegram_id == tid))
            if found is None:
                found = Account(
                    telegram_id=tid,
                    language=language,
                    display_name=f"User {tid}",
                    consent_version=CONSENT_VERSION,
                    consent_at=utcnow(),
                    role="rider" if tid == account_tid else "representative",
                )
                session.add(found)
                await session.flush()
            return found

        own = await account(account_tid, lang) if account_tid else None
        n = next(_serial)
        rider = Rider(
            account_id=own.id if own else None,
            district_id="taldykorgan",
            full_name=name,
            phone=f"+7701555{n:04d}",
            iin_encrypted="sealed",
            iin_hash=f"e2e-booking-{n}-{name}",
            home_address=HOME,
            category="group1_mobility",
            disability_group=1,
            vkk_number=f"VKK-{n}",
            needs_wheelchair=wheelchair,
            verification=verification,
        )
        session.add(rider)
        await session.flush()
        if representative_tid is not None:
            rep = await account(representative_tid, rep_lang)
            session.add(
                Representation(rider_id=rider.id, account_id=rep.id, relationship_kind="parent")
            )
        await session.commit()
        return rider.id


def calendar_days(message: Any) -> list[tuple[str, date]]:
    """The bookable days of an inline calendar: (button text, date)."""
    days = []
    for row in message.buttons:
        for button in row:
            data = str(button.get("callback_data", ""))
            if not data.startswith(CalendarPick.__prefix__ + ":"):
                continue
            pick = CalendarPick.unpack(data)
            if pick.action == CalendarAction.DAY:
                days.append((str(button["text"]), date(pick.year, pick.month, pick.day)))
    return days


class Q:
    """The questions of the conversation as the person reads them."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def pickup(self, name: str) -> str:
        return self.t("Where should the car pick {name} up?", name=name)

    @property
    def destination(self) -> str:
        return self.t("Where to? Type the address or the place, for example: Regional hospital.")

    @property
    def purpose(self) -> str:
        return self.t("What is the trip for?")

    @property
    def calendar(self) -> str:
        return self.t("Or pick a day in the calendar:")

    def time(self, day: date) -> str:
        return self.t(
            "At what time should the car come on {day}? Cars pick up from {start} to {end}. "
            "Choose below or type the time, for example: 09:30.",
            day=day_text(self.t, day),
            start="08:00",
            end="20:00",
        )

    @property
    def way_back(self) -> str:
        return self.t("Do you need a ride back the same day?")

    def way_back_time(self, name: str, place: str) -> str:
        return self.t(
            "At what time should the car pick {name} up for the way back from {place}? "
            "Choose below or type the time.",
            name=name,
            place=place,
        )

    def party(self, name: str) -> str:
        return self.t("Who rides along with {name}?", name=name)

    def wheelchair(self, name: str) -> str:
        return self.t(
            "Will {name} travel in a wheelchair on this ride? Then a car with a ramp or lift "
            "will come.",
            name=name,
        )

    @property
    def comment(self) -> str:
        return self.t(
            "Anything the dispatcher or driver should know? For example: entrance 2, 5th floor, "
            "no lift. Type it (up to {limit} characters) or press Skip.",
            limit=300,
        )

    @property
    def summary(self) -> str:
        return self.t("Please check the request:")


class Booker:
    """One person going through the booking conversation, step by step."""

    def __init__(self, bot: Any, user: Any, t: Translator) -> None:
        self.bot = bot
        self.user = user
        self.t = t
        self.q = Q(t)

    async def start(self, expect: str) -> Any:
        self.user.send_text("/book")
        return await self.user.wait_for(expect)

    async def tap(self, label: str, expect: str) -> Any:
        self.user.tap(label)
        return await self.user.wait_for(expect)

    async def say(self, text: str, expect: str) -> Any:
        self.user.send_text(text)
        return await self.user.wait_for(expect)

    async def pick_day(self, index: int = 0) -> date:
        calendar = await self.user.wait_for(self.q.calendar, after=0)
        label, day = calendar_days(calendar)[index]
        self.user.press(label, message=calendar)
        await self.user.wait_for(self.q.time(day))
        return day

    async def to_date(self, name: str, destination: str = HOSPITAL) -> date:
        """From the pickup question: home, a typed destination, a clinic, the first open day."""
        await self.tap(self.t(kb.HOME), self.q.destination)
        await self.say(destination, self.q.purpose)
        await self.tap(self.t("Clinic or hospital"), self.q.calendar)
        return await self.pick_day()

    async def one_way_alone(self, name: str, at: str = "10:00") -> Any:
        """From the time question to the summary: no way back, alone, no wheelchair, no comment."""
        await self.say(at, self.q.way_back)
        await self.tap(self.t(kb.RETURN_NO), self.q.party(name))
        await self.tap(party_text(self.t, False, 0), self.q.wheelchair(name))
        await self.tap(self.t(kb.WHEELCHAIR_NO), self.q.comment)
        return await self.tap(self.t(SKIP), self.q.summary)


async def rides(bot: Any) -> list[Ride]:
    async with bot.sessions() as session:
        return list(await session.scalars(select(Ride).order_by(Ride.id)))


def group_posts_about(bot: Any, ride_id: int, text: str) -> list[Any]:
    return [
        m
        for m in bot.stand_in.messages(GROUP)
        if m.text and str(ride_id) in m.text and text in m.text
    ]


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_rider_books_a_round_trip(bot: Any, lang: str) -> None:
    t = bot.app.i18n.translator(lang)
    q = Q(t)
    name = "Айгерім Сейітова"
    user = bot.person(7001, name="Айгерім", lang=lang)
    await seed_rider(bot, name=name, account_tid=7001, lang=lang)
    booker = Booker(bot, user, t)

    await booker.start(q.pickup(name))
    assert t(kb.HOME) in user.keyboard_buttons and t(kb.SEND_LOCATION) in user.keyboard_buttons
    assert t(BACK) not in user.keyboard_buttons  # the first question has nowhere to go back to
    day = await booker.to_date(name)
    await booker.say("10:00", q.way_back)
    await booker.tap(t(kb.RETURN_YES), q.way_back_time(name, HOSPITAL))
    assert "10:30" not in user.keyboard_buttons and "11:00" in user.keyboard_buttons
    await booker.say("13:00", q.party(name))
    await booker.tap(party_text(t, True, 0), q.wheelchair(name))
    await booker.tap(t(kb.WHEELCHAIR_NO), q.comment)
    summary = await booker.say("Подъезд 2, домофон 15", q.summary)
    for line in (
        t("Rider: {value}", value=name),
        t("From: {value}", value=HOME),
        t("To: {value}", value=HOSPITAL),
        t("Purpose: {value}", value=t("Clinic or hospital")),
        t("Date: {value}", value=day_text(t, day)),
        t("Pickup time: {value}", value="10:00"),
        t("Way back: at {value}", value="13:00"),
        t("Rides along: {value}", value=party_text(t, True, 0)),
        t("Wheelchair: no"),
        t("Comment: {value}", value="Подъезд 2, домофон 15"),
    ):
        assert line in summary.text.splitlines()
    assert t(kb.EDIT_LABELS[SummaryField.RIDER]) not in summary.button_texts
    assert t(kb.EDIT_LABELS[SummaryField.DATE]) in summary.button_texts

    pressed = user.press(t(kb.CONFIRM), message=summary)
    await pressed.answer()
    await bot.settle()
    there, back = await rides(bot)
    assert (there.status, back.status) == ("requested", "requested")
    assert there.district_id == "taldykorgan" and there.assistant and not there.wheelchair
    assert back.return_of == there.id
    assert (back.pickup_address, back.destination) == (HOSPITAL, HOME)
    answer = user.last_message()
    assert answer is not None
    lines = answer.text.splitlines()
    assert lines[0] == t(
        "Request {number} is sent: {day} at {time}, for {name}.",
        number=there.id,
        day=day_text(t, day),
        time="10:00",
        name=name,
    )
    assert t("The way back is request {number}, at {time}.", number=back.id, time="13:00") in lines
    assert t("Place in the district's queue: {position}.", position=1) in lines
    assert t(BOOK) in user.keyboard_buttons  # back at the main menu
    assert group_posts_about(bot, there.id, HOSPITAL) and group_posts_about(bot, back.id, HOME)


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_a_representative_books_for_one_of_two_riders(bot: Any, lang: str) -> None:
    """The mother writes in `lang`; her son, who has Telegram too, reads Kazakh."""
    t, kk = bot.app.i18n.translator(lang), bot.app.i18n.translator("kk")
    q = Q(t)
    mother = bot.person(7101, name="Ольга", lang=lang)
    await seed_rider(bot, name="Дана Ким", representative_tid=7101, rep_lang=lang)
    son = await seed_rider(
        bot,
        name="Ерлан Ким",
        account_tid=7102,
        lang="kk",
        representative_tid=7101,
        rep_lang=lang,
        wheelchair=True,
    )
    son_user = bot.person(7102, name="Ерлан", lang="kk")
    booker = Booker(bot, mother, t)
    await booker.start(t("Who is the ride for?"))
    assert mother.keyboard_buttons[:2] == ["Дана Ким", "Ерлан Ким"]
    await booker.tap("Ерлан Ким", q.pickup("Ерлан Ким"))
    assert t(BACK) in mother.keyboard_buttons  # back to the choice of rider
    day = await booker.to_date("Ерлан Ким")
    await booker.say("9:30", q.way_back)
    await booker.tap(t(kb.RETURN_NO), q.party("Ерлан Ким"))
    await booker.tap(party_text(t, False, 1), q.wheelchair("Ерлан Ким"))
    assert mother.keyboard_buttons[0] == t(kb.WHEELCHAIR_YES)  # as the profile says
    await booker.tap(t(kb.WHEELCHAIR_YES), q.comment)
    summary = await booker.tap(t(SKIP), q.summary)
    assert t(kb.EDIT_LABELS[SummaryField.RIDER]) in summary.button_texts
    assert t("Rider: {value}", value="Ерлан Ким") in summary.text.splitlines()
    assert t("Wheelchair: yes") in summary.text.splitlines()
    await booker.tap(t(kb.CONFIRM), t("Place in the district's queue: {position}.", position=1))
    await bot.settle()
    (ride,) = await rides(bot)
    assert ride.rider_id == son and ride.wheelchair and ride.companions == 1
    local = ride.pickup_at.astimezone(bot.settings.tz)
    assert (local.date(), local.strftime("%H:%M")) == (day, "09:30")
    async with bot.sessions() as session:
        booked_by = await session.get(Account, ride.booked_by)
    assert booked_by is not None and booked_by.telegram_id == 7101
    # The rider has Telegram too and is told, in Kazakh, who booked what.
    told = await son_user.wait_for(f"№{ride.id}", after=0)
    assert told.text == kk(
        booking.BOOKED_FOR_YOU,
        who="User 7101",
        number=ride.id,
        name="Ерлан Ким",
        date=local.strftime("%d.%m.%Y"),
        time="09:30",
        pickup=HOME,
        destination=HOSPITAL,
    )


async def test_bad_input_keeps_each_step(bot: Any) -> None:
    t = bot.app.i18n.translator("ru")
    q = Q(t)
    name = "Анна Иванова"
    user = bot.person(7201, name="Анна", lang="ru")
    await seed_rider(bot, name=name, account_tid=7201)
    booker = Booker(bot, user, t)
    await booker.start(q.pickup(name))

    not_text = t("I can read only typed text at this step.")
    user.send_sticker()
    await user.wait_for(not_text)
    too_long = t(
        "That is too long: {length} characters. Please keep it within {limit}.",
        length=301,
        limit=300,
    )
    await booker.say("а" * 301, too_long)
    await booker.say(
        "🚕🏥", t("Please write it in words: pictures and emoji alone can't be read.")
    )
    user.send_location(44.99, 78.38)
    await user.wait_for(
        t(
            "Got the location. Please add the address in words (street, house, entrance) so "
            "the driver finds the place, or press Skip."
        )
    )
    await booker.tap(t(SKIP), q.destination)
    user.send_photo()
    await user.wait_for(not_text)
    await booker.say(HOSPITAL, q.purpose)
    await booker.say("в гости", t("Please choose one of the buttons below."))
    await booker.tap(t(BACK), q.destination)
    await booker.say(HOSPITAL, q.purpose)
    await booker.tap(t("Pharmacy"), q.calendar)

    tz = bot.settings.tz
    now = datetime.now(tz)
    rules = br.BookingRules()
    past = now.date() - timedelta(days=2)
    refusal = br.check_date(rules, past, now, tz)
    assert refusal is not None and refusal.code == "date_in_past"
    await booker.say(past.strftime("%d.%m.%Y"), refusal.render(t))
    far = now.date() + timedelta(days=40)
    refusal = br.check_date(rules, far, now, tz)
    assert refusal is not None and refusal.code == "too_far_ahead"
    await booker.say(far.strftime("%d.%m.%Y"), refusal.render(t))
    example = (now.date() + timedelta(days=2)).strftime("%d.%m")
    await booker.say(
        "послезавтра",
        t("Please type the date as day.month, for example: {example}.", example=example),
    )
    calendar = await user.wait_for(q.calendar, after=0)
    window = br.bookable_dates(rules, now, tz)
    assert [d for _, d in calendar_days(calendar)] == [
        d for d in window if d.month == window[0].month
    ]
    closed = user.press(lambda text: text == kb.CLOSED_DAY, message=calendar)
    alert = await closed.answer()
    assert alert.show_alert and alert.text == t(
        "You can book from {first} to {last}.",
        first=day_text(t, window[0]),
        last=day_text(t, window[-1]),
    )
    day = await booker.pick_day()
    await booker.say("21:30", br.outside_service_hours(rules).render(t))
    await booker.say("полдень", t("Please type the time as hours:minutes, for example: 09:30."))
    await booker.say("1100", q.way_back)
    await booker.tap(t(kb.RETURN_YES), q.way_back_time(name, HOSPITAL))
    await booker.say(
        "11:30",
        t(
            "The way back must start at least {minutes} min after the pickup at {time}: "
            "at {earliest} or later.",
            minutes=60,
            time="11:00",
            earliest="12:00",
        ),
    )
    await booker.say("12:00", q.party(name))
    await booker.say("Может быть", t("Please choose one of the buttons below."))
    await booker.tap(party_text(t, False, 0), q.wheelchair(name))
    await booker.tap(t(kb.WHEELCHAIR_NO), q.comment)
    await booker.say("б" * 301, too_long)
    summary = await booker.say("Без лифта", q.summary)
    pin = t("Location pin {lat}, {lon}", lat="44.99000", lon="78.38000")
    assert t("From: {value}", value=pin) in summary.text.splitlines()
    assert t("Date: {value}", value=day_text(t, day)) in summary.text.splitlines()
    assert t("Pickup time: {value}", value="11:00") in summary.text.splitlines()
    assert t("Way back: at {value}", value="12:00") in summary.text.splitlines()
    assert await rides(bot) == []  # nothing exists before Confirm


async def test_double_confirm_and_stale_summary_buttons_book_once(bot: Any) -> None:
    t = bot.app.i18n.translator("kk")
    q = Q(t)
    name = "Асель Нұрланова"
    user = bot.person(7301, name="Асель", lang="kk")
    await seed_rider(bot, name=name, account_tid=7301, lang="kk")
    booker = Booker(bot, user, t)
    await booker.start(q.pickup(name))
    day = await booker.to_date(name)
    first = await booker.one_way_alone(name)

    # Change the time from the summary: the new summary replaces the first one.
    user.press(t(kb.EDIT_LABELS[SummaryField.TIME]), message=first)
    await user.wait_for(q.time(day))
    assert t(BACK) in user.keyboard_buttons
    second = await booker.say("11:30", q.summary)
    assert t("Pickup time: {value}", value="11:30") in second.text.splitlines()
    stale = user.press(t(kb.CONFIRM), message=first)
    assert (await stale.answer()).text == t(
        "This summary is out of date. Please use the newest one."
    )
    assert await rides(bot) == []

    one = user.press(t(kb.CONFIRM), message=second)
    two = user.press(t(kb.CONFIRM), message=second)
    await one.answer()
    repeated = await two.answer()
    await bot.settle()
    made = await rides(bot)
    assert len(made) == 1
    assert made[0].pickup_at.astimezone(bot.settings.tz).strftime("%H:%M") == "11:30"
    already = t(
        "This request was already sent: ride {number}. Nothing new was booked.",
        number=made[0].id,
    )
    assert repeated.show_alert and repeated.text == already
    late = user.press(t(kb.EDIT_LABELS[SummaryField.DATE]), message=second)
    assert (await late.answer()).text == already
    await bot.settle()
    async with bot.sessions() as session:
        cards = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "ride_card")
        )
    assert cards == 1 and len(await rides(bot)) == 1
    assert len(group_posts_about(bot, made[0].id, HOSPITAL)) == 1


async def test_cancel_leaves_nothing_and_unverified_rider_is_told_why(bot: Any) -> None:
    t = bot.app.i18n.translator("ru")
    q = Q(t)
    user = bot.person(7401, name="Пётр", lang="ru")
    await seed_rider(bot, name="Пётр Петров", account_tid=7401)
    booker = Booker(bot, user, t)
    await booker.start(q.pickup("Пётр Петров"))
    await booker.tap(t(kb.HOME), q.destination)
    await booker.say("/cancel", t("Cancelled. Nothing was saved."))
    assert t(BOOK) in user.keyboard_buttons
    assert await rides(bot) == []

    other = bot.person(7402, name="Мария", lang="ru")
    await seed_rider(bot, name="Мария Ли", account_tid=7402, verification="pending")
    other.send_text("/book")
    await other.wait_for(
        t(
            "The dispatcher has not checked your documents yet. "
            "You can book rides once they are checked."
        )
    )
    assert t(BOOK) in other.keyboard_buttons

    stranger = bot.person(7403, name="Гость", lang="ru")
    stranger.send_text("/book")
    # Someone who never chose a language reads the default one, Kazakh.
    await stranger.wait_for(booking.NO_RIDERS.render(bot.app.i18n.translator("kk")))


async def test_a_calendar_left_on_screen_is_out_of_date(bot: Any) -> None:
    """After the date was typed, a day pressed on the calendar still shown changes nothing."""
    t = bot.app.i18n.translator("ru")
    q = Q(t)
    name = "Гульнара Абенова"
    user = bot.person(7501, name="Гульнара", lang="ru")
    await seed_rider(bot, name=name, account_tid=7501)
    booker = Booker(bot, user, t)
    await booker.start(q.pickup(name))
    await booker.tap(t(kb.HOME), q.destination)
    await booker.say(HOSPITAL, q.purpose)
    calendar = await booker.tap(t("Clinic or hospital"), q.calendar)
    (_, first_day), (label, _) = calendar_days(calendar)[:2]
    await booker.say(first_day.strftime("%d.%m.%Y"), q.time(first_day))
    pressed = user.press(label, message=calendar)
    answer = await pressed.answer()
    assert answer.show_alert
    assert answer.text == t("This calendar is out of date. Please use the newest one.")
    await bot.settle()
    # Still at the time question of the day typed, and the booking goes on from there.
    assert user.last_message().text == q.time(first_day)
    summary = await booker.one_way_alone(name)
    assert t("Date: {value}", value=day_text(t, first_day)) in summary.text.splitlines()
