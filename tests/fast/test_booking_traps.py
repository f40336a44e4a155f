"""The rider's booking side through the real Dispatcher (no HTTP): the traps of the usability
review shown fixed, repeat booking counted in actions, dates in words, voice messages, the
daily limit at the date step, and the desk's phone where the bot says to call.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import select

from bot.callbacks.booking import RideAction, RidePress
from bot.keyboards import booking as kb
from bot.keyboards.common import BOOK, CANCEL, SKIP
from bot.services import booking_rules as br
from handlers.booking import day_text, party_text, quick_label_for
from models import Ride, RideStatus
from tests.factories import HOSPITAL, seed_rider
from tests.fast.booking_steps import UID, act, all_rides, book, desk_phone, press, window
from tests.fast.harness import FastBot, Said, fast_bot


async def test_repeat_with_the_way_back_takes_four_actions(
    migrated_db: str, tmp_path: Path
) -> None:
    """Main menu → «as last time» → a day → Confirm: the way back, the party, everything kept."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("ru")
        rider_id = await seed_rider(fast.app, name="Айгерім Сейітова", account_tid=UID)
        days = window(fast)
        await book(fast, rider_id, days[0], time(10, 0), back=time(13, 0))
        label = t(
            "As last time: to {place} at {time}, with the way back at {back}",
            place=HOSPITAL,
            time="10:00",
            back="13:00",
        )
        actions = 0

        first = await act(fast, UID, t(BOOK))
        actions += 1
        assert label in first.buttons
        asked = await act(fast, UID, label)
        actions += 1
        today = datetime.now(fast.app.settings.tz).date()
        assert asked.buttons[0] == quick_label_for(t, days[0], today)  # the date question
        day = days[1]
        summary_hint = await act(fast, UID, quick_label_for(t, day, today))
        actions += 1
        said = await fast.said(UID)
        summary = said[-1].text or ""
        assert summary_hint.buttons  # the summary with its "Change" buttons
        assert t("Way back: at {value}", value="13:00") in summary.splitlines()
        assert t("Pickup time: {value}", value="10:00") in summary.splitlines()
        await act(fast, UID, t(kb.CONFIRM))
        actions += 1

        assert actions == 4
        made = await all_rides(fast)
        assert len(made) == 4
        there, back = made[2], made[3]
        tz = fast.app.settings.tz
        assert there.pickup_at.astimezone(tz).date() == day and there.assistant
        assert back.return_of == there.id
        assert back.pickup_at.astimezone(tz).strftime("%H:%M") == "13:00"
        confirmation = (await fast.said(UID))[-1].text or ""
        assert await desk_phone(fast) in confirmation  # whom to call, with the ride's number


async def test_repeat_from_my_rides_keeps_the_way_back(migrated_db: str, tmp_path: Path) -> None:
    """Review B3: «Book the same ride on another date» booked it without the way back."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("kk")
        rider_id = await seed_rider(fast.app, name="Асель Нұрланова", account_tid=UID, lang="kk")
        days = window(fast)
        there, _ = await book(fast, rider_id, days[0], time(9, 0), back=time(12, 30))
        await press(fast, UID, RidePress(action=RideAction.AGAIN, ride_id=there.id).pack())
        await act(fast, UID, days[2].strftime("%d.%m"))
        summary = (await fast.said(UID))[-1].text or ""
        assert t("Way back: at {value}", value="12:30") in summary.splitlines()
        assert t("Way back: not needed") not in summary


async def test_dont_cancel_says_the_ride_stands(migrated_db: str, tmp_path: Path) -> None:
    """Review B2: the way out of the cancel-reason step is «Не отменять», never «Отмена»."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("ru")
        rider_id = await seed_rider(fast.app, name="Пётр Петров", account_tid=UID)
        ride, _ = await book(fast, rider_id, window(fast)[0], time(10, 0))
        said = await press(fast, UID, RidePress(action=RideAction.CANCEL, ride_id=ride.id).pack())
        question = said[-1]
        assert "Не отменять" in question.buttons and t(CANCEL) not in question.buttons
        answer = await act(fast, UID, "Не отменять")
        assert answer.text == f"Поездка №{ride.id} не отменена."
        (stored,) = await all_rides(fast)
        assert stored.status == RideStatus.REQUESTED


async def test_cancelling_one_leg_asks_about_the_other(migrated_db: str, tmp_path: Path) -> None:
    """Review B9, the rider's side: nobody is left at the clinic without being asked."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("kk")
        rider_id = await seed_rider(fast.app, name="Ерлан Ким", account_tid=UID, lang="kk")
        days = window(fast)
        there, back = await book(fast, rider_id, days[0], time(10, 0), back=time(13, 0))
        assert back is not None
        await press(fast, UID, RidePress(action=RideAction.CANCEL, ride_id=there.id).pack())
        asked = await act(fast, UID, t(kb.CANCEL_REASONS[0]))
        lines = (asked.text or "").splitlines()
        assert lines[0] == t(
            "Ride №{number} is cancelled. The dispatcher has been told.", number=there.id
        )
        assert f"№{back.id}" in lines[-1] and "13:00" in lines[-1]
        assert asked.buttons == [t(kb.CANCEL_OTHER_TOO), t(kb.KEEP_OTHER)]
        kept = await act(fast, UID, t(kb.KEEP_OTHER))
        assert f"№{back.id}" in (kept.text or "") and "13:00" in (kept.text or "")
        statuses = [r.status for r in await all_rides(fast)]
        assert statuses == [RideStatus.CANCELLED, RideStatus.REQUESTED]

        # The other way round: cancel the way back, and the trip there too.
        again, again_back = await book(fast, rider_id, days[1], time(9, 0), back=time(11, 0))
        assert again_back is not None
        await press(fast, UID, RidePress(action=RideAction.CANCEL, ride_id=again_back.id).pack())
        asked = await act(fast, UID, t(kb.CANCEL_REASONS[0]))
        assert f"№{again.id}" in (asked.text or "").splitlines()[-1]
        both = await act(fast, UID, t(kb.CANCEL_OTHER_TOO))
        assert both.text == t(
            "Ride №{number} is cancelled too. The dispatcher has been told.", number=again.id
        )
        made = {r.id: r.status for r in await all_rides(fast)}
        assert made[again.id] == made[again_back.id] == RideStatus.CANCELLED


async def test_stop_inside_cancelling_says_the_ride_stands(
    migrated_db: str, tmp_path: Path
) -> None:
    """Review B2: /cancel or «Stop» typed while cancelling a ride never answers "Stopped. Nothing
    was saved." while the ride stays booked: it says which ride stands."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        ru = fast.app.i18n.translator("ru")
        rider_id = await seed_rider(fast.app, name="Пётр Петров", account_tid=UID)
        days = window(fast)
        ride, _ = await book(fast, rider_id, days[0], time(10, 0))
        await press(fast, UID, RidePress(action=RideAction.CANCEL, ride_id=ride.id).pack())
        answer = await act(fast, UID, "/cancel")
        assert answer.text == f"Поездка №{ride.id} не отменена."
        assert ru(BOOK) in answer.buttons  # back at the main menu
        (stored,) = await all_rides(fast)
        assert stored.status == RideStatus.REQUESTED

        # At the other-leg question, the button's word typed in the other language.
        kk = fast.app.i18n.translator("kk")
        there, back = await book(fast, rider_id, days[1], time(9, 0), back=time(12, 30))
        assert back is not None
        await press(fast, UID, RidePress(action=RideAction.CANCEL, ride_id=there.id).pack())
        await act(fast, UID, ru(kb.CANCEL_REASONS[0]))
        answer = await act(fast, UID, kk(CANCEL))
        assert (answer.text or "").startswith(f"Поездка №{back.id} остаётся в силе")
        assert "12:30" in (answer.text or "")
        assert ru(BOOK) in answer.buttons
        made = {r.id: r.status for r in await all_rides(fast)}
        assert made[there.id] == RideStatus.CANCELLED and made[back.id] == RideStatus.REQUESTED


async def to_date_step(fast: FastBot, t: Any) -> Said:
    await act(fast, UID, t(BOOK))
    await act(fast, UID, t(kb.HOME))
    await act(fast, UID, HOSPITAL)
    return await act(fast, UID, t("Clinic or hospital"))


async def test_dates_by_name_and_in_words(migrated_db: str, tmp_path: Path) -> None:
    """Review B22 and screen readers: days as named buttons, words understood, calendar asked."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("ru")
        await seed_rider(fast.app, name="Анна Иванова", account_tid=UID)
        asked = await to_date_step(fast, t)
        days = window(fast)
        today = datetime.now(fast.app.settings.tz).date()
        assert asked.buttons[0] == quick_label_for(t, days[0], today)
        assert asked.buttons[1] == quick_label_for(t, days[1], today)
        assert asked.buttons[1].split(", ")[0] == t(br.weekday_msg(days[1]))
        assert "·" not in asked.buttons and t("Another day: the calendar") in asked.buttons
        calendar = await act(fast, UID, t("Another day: the calendar"))
        assert calendar.text == t("Or pick a day in the calendar:")
        time_question = await act(fast, UID, "послезавтра")
        after_tomorrow = today + timedelta(days=2)
        assert day_text(t, after_tomorrow) in (time_question.text or "")


async def test_a_voice_message_gets_the_desk_phone(migrated_db: str, tmp_path: Path) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        await seed_rider(fast.app, name="Гүлнар Ахметова", account_tid=UID, lang="kk")
        update = fast.text(UID, "")
        message = update["message"]
        del message["text"]
        message["voice"] = {"file_id": "v", "file_unique_id": "v", "duration": 3}
        await fast.feed(update)
        said = await fast.said(UID)
        assert len(said) == 1 and await desk_phone(fast) in (said[0].text or "")


async def test_the_daily_limit_is_met_at_the_date(migrated_db: str, tmp_path: Path) -> None:
    """Review B7: one ride already that day, a trip with its way back: one way, or another day."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("ru")
        rider_id = await seed_rider(fast.app, name="Дана Ким", account_tid=UID)
        days = window(fast)
        await book(fast, rider_id, days[0], time(8, 0), back=time(19, 0))  # a template
        async with fast.app.sessions() as session:
            ride = (await session.scalars(select(Ride).order_by(Ride.id.desc()))).first()
            assert ride is not None
            ride.status = RideStatus.CANCELLED.value  # the way back was cancelled
            await session.commit()
        today = datetime.now(fast.app.settings.tz).date()
        await act(fast, UID, t(BOOK))
        await act(
            fast,
            UID,
            t(
                "As last time: to {place} at {time}, with the way back at {back}",
                place=HOSPITAL,
                time="08:00",
                back="19:00",
            ),
        )
        refused = await act(fast, UID, quick_label_for(t, days[0], today))
        assert t("One way only, on {day}", day=quick_label_for(t, days[0], today)) in (
            refused.buttons
        )
        assert quick_label_for(t, days[1], today) in refused.buttons
        summary = await act(
            fast, UID, t("One way only, on {day}", day=quick_label_for(t, days[0], today))
        )
        assert summary.buttons
        text = (await fast.said(UID))[-1].text or ""
        assert t("Way back: not needed") in text.splitlines()


async def test_a_stale_button_is_answered_once(migrated_db: str, tmp_path: Path) -> None:
    """Review B17: one answer to an old button, not an alert and then a silent one."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        await seed_rider(fast.app, name="Марат Оспанов", account_tid=UID)
        await fast.feed(fast.press(UID, "zz9:old:button"))
        answers = [c for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]
        assert len(answers) == 1 and answers[0].show_alert


async def test_a_first_booking_takes_at_most_eleven_actions(
    migrated_db: str, tmp_path: Path
) -> None:
    """Nothing to repeat yet: no «as last time» button, and a round trip in 11 actions."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("kk")
        name = "Гүлнар Ахметова"
        await seed_rider(fast.app, name=name, account_tid=UID, lang="kk")
        today = datetime.now(fast.app.settings.tz).date()
        day = window(fast)[1]
        steps = [
            t(BOOK),
            t(kb.HOME),
            HOSPITAL,
            t("Clinic or hospital"),
            quick_label_for(t, day, today),
            "10:00",
            "13:00",  # the way back and its time: one question
            party_text(t, False, 0),
            t(kb.WHEELCHAIR_NO),
            t(SKIP),
        ]
        first = await act(fast, UID, steps[0])
        assert not any(b.startswith("Өткендегідей") for b in first.buttons)
        for step in steps[1:]:
            await act(fast, UID, step)
        await act(fast, UID, t(kb.CONFIRM))
        assert len(steps) + 1 <= 11
        there, back = await all_rides(fast)
        assert there.pickup_at.astimezone(fast.app.settings.tz).date() == day
        assert back.return_of == there.id


async def test_a_representative_sees_each_riders_last_trip(
    migrated_db: str, tmp_path: Path
) -> None:
    """Someone who books for two people: «as last time» names whose trip it is."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t = fast.app.i18n.translator("ru")
        mother = await seed_rider(fast.app, name="Дана Ким", representative_tid=UID)
        await seed_rider(fast.app, name="Ерлан Ким", representative_tid=UID)
        await book(fast, mother, window(fast)[0], time(9, 30))
        first = await act(fast, UID, t(BOOK))
        trip = t("As last time: to {place} at {time}", place=HOSPITAL, time="09:30")
        label = f"Дана Ким: {trip}"
        assert first.buttons[0] == label and "Ерлан Ким" in first.buttons
        await act(fast, UID, label)
        today = datetime.now(fast.app.settings.tz).date()
        summary = await act(fast, UID, quick_label_for(t, window(fast)[1], today))
        text = (await fast.said(UID))[-1].text or ""
        assert t("Rider: {value}", value="Дана Ким") in text.splitlines()
        assert summary.buttons
