"""Booking end to end: the real bot against the Bot API stand-in, in Kazakh and in Russian.

Riders are created verified in the database by a small factory (registration has its own
tests); from there everything is what a person types and taps.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.callbacks.booking import SummaryField
from bot.keyboards import booking as kb
from bot.keyboards.common import BACK, BOOK, SKIP
from bot.services import booking
from bot.services import booking_rules as br
from bot.services.rides import Actor
from handlers.booking import CALENDAR, day_text, party_text
from models import Account, OutboxMessage, utcnow
from tests.factories import GROUP, HOME, HOSPITAL, Booker, Q, calendar_days, rides, seed_rider


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
    # The way back and its time are one question: a round trip is one tap shorter.
    await booker.say("10:00", q.way_back)
    assert user.keyboard_buttons[0] == t(kb.RETURN_NO)
    assert "10:30" not in user.keyboard_buttons and "11:00" in user.keyboard_buttons
    await booker.tap("13:00", q.party(name))
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
        "Request №{number} is sent: {day} at {time}, for {name}.",
        number=there.id,
        day=day_text(t, day),
        time="10:00",
        name=name,
    )
    assert (
        t("The way back is request №{number}, at {time}.", number=back.id, time="13:00") in lines
    )
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
    await booker.tap(t("Pharmacy"), q.which_day)

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
    # Dates in words are understood (review B22), in either language.
    after_tomorrow = now.date() + timedelta(days=2)
    await booker.say("послезавтра", q.time(after_tomorrow))
    await booker.tap(t(BACK), q.which_day)
    example = after_tomorrow.strftime("%d.%m")
    await booker.say(
        "когда-нибудь",
        t("Please type the date as day.month, for example: {example}.", example=example),
    )
    calendar = await booker.tap(t(CALENDAR), q.calendar)
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
    day = await booker.pick_in_calendar()
    await booker.say("21:30", br.outside_service_hours(rules).render(t))
    await booker.say("полдень", t("Please type the time as hours:minutes, for example: 09:30."))
    await booker.say("1100", q.way_back)
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
        "This request was already sent: ride №{number}. Nothing new was booked.",
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
    await booker.say("/cancel", t("Stopped. Nothing was saved."))
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
    await booker.tap(t("Clinic or hospital"), q.which_day)
    calendar = await booker.tap(t(CALENDAR), q.calendar)
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


async def test_a_repeat_with_the_way_back_takes_four_actions(bot: Any) -> None:
    """Issue 13, item 16: main menu → «as last time» → a day → Confirm, the way back kept."""
    t = bot.app.i18n.translator("kk")
    q = Q(t)
    name = "Айгерім Сейітова"
    user = bot.person(7601, name="Айгерім", lang="kk")
    rider_id = await seed_rider(bot, name=name, account_tid=7601, lang="kk")
    booker = Booker(bot, user, t)
    tz = bot.settings.tz
    async with bot.sessions() as session:
        draft = booking.Draft(
            rider_id=rider_id,
            pickup_address=HOME,
            destination=HOSPITAL,
            purpose="clinic",
            day=booker.days()[0],
            pickup_time=time(10, 0),
            return_time=time(13, 0),
            wheelchair=True,
            request_key=booking.new_request_key(),
        )
        earlier = await booking.create_booking(
            session, draft, Actor("rider", 7601, "User 7601"), utcnow(), tz=tz
        )
        await session.commit()
    assert earlier.return_ride is not None
    await bot.settle()
    actions = 0

    await booker.start(q.pickup(name))
    actions += 1
    as_last_time = t(
        "As last time: to {place} at {time}, with the way back at {back}",
        place=HOSPITAL,
        time="10:00",
        back="13:00",
    )
    assert user.keyboard_buttons[0] == as_last_time
    await booker.tap(as_last_time, q.which_day)
    actions += 1
    day = await booker.pick_day(1, expect=q.summary)
    actions += 1
    summary = user.last_message()
    assert summary is not None
    for line in (
        t("Date: {value}", value=day_text(t, day)),
        t("Pickup time: {value}", value="10:00"),
        t("Way back: at {value}", value="13:00"),
        t("Wheelchair: yes"),
    ):
        assert line in summary.text.splitlines()
    way_back = t("The way back is request №{number}, at {time}.", number="\x00", time="13:00")
    await booker.tap(t(kb.CONFIRM), way_back.split("\x00")[0])
    actions += 1
    assert actions == 4
    await bot.settle()
    made = await rides(bot)
    assert len(made) == 4
    there, back = made[2:]
    assert there.pickup_at.astimezone(tz).date() == day and there.wheelchair
    assert (
        back.return_of == there.id and back.pickup_at.astimezone(tz).strftime("%H:%M") == "13:00"
    )
