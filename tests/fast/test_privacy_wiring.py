"""Issue 12, phase 2: the personal-data and abuse services wired into the handlers, fed
through the real Dispatcher; what people would read is asserted on the queued outbox rows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from aiogram.methods import AnswerCallbackQuery
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import delete, func, select

from bot.callbacks.booking import RideAction, RidePress
from bot.callbacks.common import LanguageChoice
from bot.callbacks.dispatch import Act, Rating
from bot.callbacks.registration import ProfileAction, ProfilePress, VerifyAction, VerifyPress
from bot.cards import verification as verification_card
from bot.delivery import with_start_links
from bot.i18n import Translator
from bot.keyboards import booking as booking_kb
from bot.keyboards import registration as kb
from bot.keyboards.common import BACK
from bot.services import booking, full_profile, limits
from bot.services import registration as reg
from bot.services.rights import RIGHTS_LABELS, Rights
from handlers.registration import Problem, words
from handlers.representatives import INVITE_LEVEL
from handlers.rider_updates import ALREADY_RATED
from models import (
    Account,
    AuditLog,
    ConversationState,
    Invite,
    OutboxMessage,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Verification,
    utcnow,
)
from tests.factories import account, make_ride, register, rider_input, seed_rider, valid_iin
from tests.fast.booking_steps import act, all_rides, book, desk_phone, window
from tests.fast.booking_steps import press as booking_press
from tests.fast.desk_steps import (
    AIGUL,
    GROUP,
    NURLAN,
    S,
    first_vehicle,
    group_press,
    press,
    rider_texts,
    seed_ride,
)
from tests.fast.harness import FastBot, Said, fast_bot

SPAMMER = 6601


async def rows_for(fast, chat_id: int) -> int:
    async with fast.app.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id)
            )
            or 0
        )


async def test_a_storm_of_200_messages_gets_a_few_answers_and_a_ride_notice_still_goes_out(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path, throttle_burst=10, throttle_per_minute=30) as fast:
        for n in range(200):
            await fast.feed(fast.text(SPAMMER, f"привет {n}"))
        answers = await fast.said(SPAMMER)
        assert 1 <= len(answers) <= 15
        assert any("тым көп хабарлама" in (a.text or "") for a in answers)
        ride = await seed_ride(
            fast,
            status=S.SCHEDULED,
            vehicle_id=await first_vehicle(fast),
            pickup_at=datetime.now(UTC) + timedelta(minutes=40),
        )
        await press(fast, ride, Act.EN_ROUTE)
        assert any("машина выехала к вам" in t for t in await rider_texts(fast))
        # Nothing of the storm's is left waiting in the queue ahead of the ride's news.
        assert await rows_for(fast, SPAMMER) == len(answers)


# -- registration: the IIN oracle, the limits, nothing of the IIN in the draft in clear ---------

IIN = "900101300017"
OTHER_IIN = valid_iin("85031540001")


def ru(fast: FastBot) -> Translator:
    return fast.app.i18n.translator("ru")


async def step(fast: FastBot, user: int, text: str) -> list[Said]:
    seen = len(await fast.said(user))
    await fast.feed(fast.text(user, text))
    return (await fast.said(user))[seen:]


async def to_the_iin_question(fast: FastBot, user: int, agree: str = kb.AGREE_SELF) -> None:
    t = ru(fast)
    await fast.feed(fast.text(user, "/start"))
    await fast.feed(fast.press(user, LanguageChoice(lang="ru").pack()))
    await step(fast, user, t(agree))
    if agree == kb.AGREE_OTHER:
        said = await step(fast, user, t(reg.RELATIONSHIP_LABELS["parent"]))
    said = await step(fast, user, "Иван Петров")
    said = await step(fast, user, "87011234567")
    assert said[-1].text == t("Which city or district do you live in?"), said
    said = await step(fast, user, "город Талдыкорган")
    assert said[-1].text and "ИИН" in said[-1].text, said


async def to_the_summary(fast: FastBot, user: int, iin: str) -> list[Said]:
    t = ru(fast)
    said = await step(fast, user, iin)
    assert said[-1].text and said[-1].text.startswith(
        t(
            "Home address, where the car picks up. If you are at that home now, you can send "
            "a location pin instead."
        )
    ), said
    await step(fast, user, "Абай көшесі, 12")
    await step(fast, user, t(reg.CATEGORY_LABELS["group1_mobility"]))
    await step(fast, user, "123/45")
    await step(fast, user, "31.12.2030")
    said = await step(fast, user, t(kb.NO_NEEDS))
    assert any(s.text and s.text.startswith(t("Please check the profile:")) for s in said), said
    return said


async def draft_data(fast: FastBot, user: int) -> dict[str, object]:
    async with fast.app.sessions() as session:
        row = await session.scalar(
            select(ConversationState).where(ConversationState.key.like(f"%{user}%"))
        )
        return dict(row.data or {}) if row is not None else {}


async def test_a_registered_iin_is_answered_like_any_other_and_the_desk_is_asked_to_call(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t, user = ru(fast), 6611
        async with fast.app.sessions() as session:
            owner = await account(session, 6610)
            await register(session, owner, rider_input(IIN))
            await session.commit()
        await to_the_iin_question(fast, user)
        said = await to_the_summary(fast, user, IIN)
        summary = next(s.text for s in said if s.text and "ИИН" in s.text)
        assert "••••••••0017" in summary and "01.01.1990" in summary
        # The draft waiting in the conversation state has neither in clear.
        data = await draft_data(fast, user)
        assert data.get("iin_encrypted") and "iin_last4" not in data
        assert "birth_date" not in data and "0017" not in str(data)
        said = await step(fast, user, t(kb.CONFIRM))
        answer = said[-1].text or ""
        assert answer.startswith("Спасибо. Чтобы завершить регистрацию, вам позвонит диспетчер.")
        assert "зарегистрирован" not in answer
        desk = [s.text or "" for s in await fast.said(GROUP)]
        assert any("профиль с таким же ИИН уже есть" in d and "+77011234567" in d for d in desk)
        assert await draft_data(fast, user) == {}


async def test_iins_typed_past_the_days_tries_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        user = 6612
        await to_the_iin_question(fast, user)
        said = await step(fast, user, OTHER_IIN)
        assert "ИИН" not in (said[-1].text or "")  # on to the address
        async with fast.app.sessions() as session:
            person = await account(session, user)
            # Four more tries today (the limit is five), as if typed and gone back from.
            for _ in range(4):
                session.add(AuditLog(action="iin_tried", subject=f"account:{person.id}"))
            await session.commit()
        await step(fast, user, ru(fast)(BACK))
        said = await step(fast, user, IIN)
        assert any(ru(fast)(limits.TOO_MANY_IIN_TRIES) in (s.text or "") for s in said), said


async def test_registering_others_stops_at_the_pending_limit(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t, user = ru(fast), 6613
        async with fast.app.sessions() as session:
            parent = await account(session, user)
            for n, iin in enumerate((OTHER_IIN, IIN)):
                await register(
                    session,
                    parent,
                    rider_input(iin, name=f"Ребёнок {n}"),
                    reg.Relationship(kind="parent"),
                )
            await session.commit()
        await fast.feed(fast.press(user, ProfilePress(action=ProfileAction.REGISTER_OTHER).pack()))
        said = await fast.said(user)
        assert said[-1].text == t(limits.TOO_MANY_PENDING, limit=2)
        # The flood stops at two profile checks in the desk's queue: a genuine ride card queued
        # now waits behind those two (seconds at the group's pace), not behind dozens.
        async with fast.app.sessions() as session:
            checks = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "verification_card")
            )
        assert checks == 2


# -- rides: bookings and cancellations a day, an old rating button, a comment after unlinking ---

UID = 6621
RELATIVE = 6622


def answers(fast: FastBot) -> list[str]:
    return [c.text or "" for c in fast.api.calls if isinstance(c, AnswerCallbackQuery)]


async def test_a_booking_past_the_days_limit_is_refused_with_the_desks_phone(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        rider_id = await seed_rider(fast.app, name="Пётр Петров", account_tid=UID)
        days = window(fast)
        first, _ = await book(fast, rider_id, days[0], time(9, 0), back=time(12, 0))
        await book(fast, rider_id, days[1], time(9, 0), back=time(12, 0))
        await book(fast, rider_id, days[2], time(9, 0), back=time(12, 0))
        await booking_press(fast, UID, RidePress(action=RideAction.AGAIN, ride_id=first.id).pack())
        await act(fast, UID, days[3].strftime("%d.%m"))
        said = await act(fast, UID, t(booking_kb.CONFIRM))
        assert (said.text or "").startswith(t(limits.TOO_MANY_BOOKINGS, limit=6).split(".")[0])
        assert await desk_phone(fast) in (said.text or "")
        assert len(await all_rides(fast)) == 6


async def test_a_cancellation_past_the_days_limit_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        rider_id = await seed_rider(fast.app, name="Пётр Петров", account_tid=UID)
        days = window(fast)
        made = [
            (await book(fast, rider_id, days[n % 3], time(9 + 3 * (n // 3), 0)))[0]
            for n in range(5)
        ]
        async with fast.app.sessions() as session:
            person = await account(session, UID)
            for ride in made[:4]:
                done = await booking.cancel_ride(session, person, ride.id, "планы", utcnow())
                assert done.reason is None
            await session.commit()
        await booking_press(
            fast, UID, RidePress(action=RideAction.CANCEL, ride_id=made[4].id).pack()
        )
        assert answers(fast)[-1].startswith(
            t(limits.TOO_MANY_CANCELLATIONS, limit=4).split(".")[0]
        )
        assert (await all_rides(fast))[4].status == RideStatus.REQUESTED


async def finished_ride(fast: FastBot, *, rating: int | None = None) -> Ride:
    async with fast.app.sessions() as session:
        rider = await session.get(
            Rider,
            await seed_rider(
                fast.app, name="Пётр Петров", account_tid=UID, representative_tid=RELATIVE
            ),
        )
        assert rider is not None
        ride = await make_ride(
            session, rider, status=RideStatus.COMPLETED, post_card=False, rating=rating
        )
        await session.commit()
        return ride


async def test_an_old_rating_button_does_not_change_the_rating(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        ride = await finished_ride(fast, rating=5)
        await fast.feed(fast.press(UID, Rating(ride=ride.id, stars=1).pack()))
        assert answers(fast)[-1] == t(ALREADY_RATED, number=ride.number, stars=5)
        async with fast.app.sessions() as session:
            stored = await session.get(Ride, ride.id)
            assert stored is not None and stored.rating == 5


async def test_a_relative_unlinked_after_rating_puts_no_comment_on_the_card(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        ride = await finished_ride(fast)
        await fast.feed(fast.press(RELATIVE, Rating(ride=ride.id, stars=2).pack()))
        async with fast.app.sessions() as session:
            await session.execute(delete(Representation))
            await session.commit()
        said = await step(fast, RELATIVE, "Водитель хамил, вот мой номер 87015554433")
        assert said[-1].text == t(reg.NOT_ALLOWED.msgid)
        async with fast.app.sessions() as session:
            stored = await session.get(Ride, ride.id)
            assert stored is not None and stored.rating == 2 and stored.rating_comment is None


# -- verification: a decision counts only from the check's own card ----------------------------


async def test_an_approval_pressed_on_another_message_changes_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        async with fast.app.sessions() as session:
            owner = await account(session, 6631)
            rider = await register(session, owner, rider_input(IIN))
            check = await session.scalar(
                select(Verification).where(Verification.rider_id == rider.id)
            )
            assert check is not None
            check.card_chat_id, check.card_message_id = GROUP, 4242
            await session.commit()
        data = VerifyPress(verification=check.id, action=VerifyAction.APPROVE).pack()
        await fast.feed(group_press(fast, AIGUL, GROUP, 4243, data))
        kk = fast.app.i18n.translator("kk")
        assert answers(fast)[-1] in (
            kk("This button is out of date."),
            ru(fast)("This button is out of date."),
        )
        async with fast.app.sessions() as session:
            stored = await session.get(Verification, check.id)
            assert stored is not None and stored.status == "pending"
        await fast.feed(group_press(fast, AIGUL, GROUP, 4242, data))
        async with fast.app.sessions() as session:
            stored = await session.get(Verification, check.id)
            assert stored is not None and stored.status == "approved"


# -- representatives: the level chosen in the invitation is all they get -------------------------

RIDER_TID = 6641
REL_TID = 6642


async def rider_with_relative(fast: FastBot, rights: str) -> int:
    async with fast.app.sessions() as session:
        owner = await account(session, RIDER_TID)
        rider = await register(session, owner, rider_input(IIN, name="Анна Иванова"))
        relative = await account(session, REL_TID)
        session.add(
            Representation(
                rider_id=rider.id,
                account_id=relative.id,
                relationship_kind="relative",
                rights=rights,
            )
        )
        await session.commit()
        return int(rider.id)


async def texts_after(fast: FastBot, user: int, update: dict[str, object]) -> str:
    seen = len(await fast.said(user))
    await fast.feed(update)
    return "\n".join(s.text or "" for s in (await fast.said(user))[seen:])


async def test_a_relative_with_rides_sees_no_iin_nor_health_and_changes_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        rider_id = await rider_with_relative(fast, "rides")
        opened = ProfilePress(action=ProfileAction.OPEN, rider=rider_id).pack()
        page = await texts_after(fast, REL_TID, fast.press(REL_TID, opened))
        assert "Анна Иванова" in page
        for hidden in ("ИИН", "0017", "ВКК", "123/45", "Категория", "Группа инвалидности"):
            assert hidden not in page, hidden
        edit = ProfilePress(action=ProfileAction.EDIT, rider=rider_id, field="name").pack()
        await fast.feed(fast.press(REL_TID, edit))
        assert answers(fast)[-1] == t(reg.NOT_ALLOWED.msgid)
        mydata = await texts_after(fast, REL_TID, fast.text(REL_TID, "/mydata"))
        assert "Анна Иванова" in mydata
        assert "0017" not in mydata and "123/45" not in mydata
        # The rider sees their own IIN whole.
        own = await texts_after(fast, RIDER_TID, fast.text(RIDER_TID, "/mydata"))
        assert IIN in own and "123/45" in own


async def test_a_relative_with_the_whole_profile_sees_the_iin_masked(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        rider_id = await rider_with_relative(fast, "full")
        opened = ProfilePress(action=ProfileAction.OPEN, rider=rider_id).pack()
        page = await texts_after(fast, REL_TID, fast.press(REL_TID, opened))
        assert "••••••••0017" in page and IIN not in page and "123/45" in page


async def test_the_rider_chooses_what_an_invited_relative_may_do(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        async with fast.app.sessions() as session:
            owner = await account(session, RIDER_TID)
            rider = await register(session, owner, rider_input(IIN, name="Анна Иванова"))
            await account(session, REL_TID)
            await session.commit()
            rider_id = int(rider.id)
        invite = ProfilePress(action=ProfileAction.INVITE, rider=rider_id)
        seen = len(await fast.said(RIDER_TID))
        await fast.feed(fast.press(RIDER_TID, invite.pack()))
        (question,) = (await fast.said(RIDER_TID))[seen:]
        assert question.text == t(INVITE_LEVEL)
        assert question.buttons == [t(RIGHTS_LABELS[Rights.RIDES]), t(RIGHTS_LABELS[Rights.FULL])]
        full = ProfilePress(action=ProfileAction.INVITE, rider=rider_id, field="full").pack()
        sent = await texts_after(fast, RIDER_TID, fast.press(RIDER_TID, full))
        assert t(RIGHTS_LABELS[Rights.FULL]) in sent
        async with fast.app.sessions() as session:
            made = await session.scalar(select(Invite).where(Invite.rider_id == rider_id))
            assert made is not None and made.rights == "full"
            code = made.code
        offer = await texts_after(
            fast, REL_TID, fast.text(REL_TID, f"/start {reg.INVITE_PREFIX}{code}")
        )
        assert "Анна Иванова" in offer and t(RIGHTS_LABELS[Rights.FULL]) in offer


# -- the full profile: opened by a district's dispatcher in a private chat, never in the group ---


async def test_a_dispatcher_opens_the_full_profile_privately_and_it_is_audited(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        async with fast.app.sessions() as session:
            owner = await account(session, 6651)
            rider = await register(session, owner, rider_input(IIN, name="Анна Иванова"))
            check = await session.scalar(
                select(Verification).where(Verification.rider_id == rider.id)
            )
            assert check is not None
            await session.commit()
            view = await verification_card.render(session, check.id, fast.app.i18n)
        assert view is not None and isinstance(view.markup, InlineKeyboardMarkup)
        # The card's button becomes the bot's own link into a private chat when it is sent.
        written = with_start_links(view.markup, "invataxi_bot")
        assert isinstance(written, InlineKeyboardMarkup)
        urls = [b.url for row in written.inline_keyboard for b in row if b.url]
        assert urls == [f"https://t.me/invataxi_bot?start=chk_{check.id}"]
        group_before = len(await fast.said(GROUP))

        opened = await texts_after(fast, AIGUL, fast.text(AIGUL, f"/start chk_{check.id}"))
        assert "Анна Иванова" in opened and IIN in opened and "123/45" in opened
        assert len(await fast.said(GROUP)) == group_before  # nothing of it in the group

        refused = await texts_after(fast, NURLAN, fast.text(NURLAN, f"/start chk_{check.id}"))
        assert IIN not in refused and "123/45" not in refused
        assert refused == fast.app.i18n.translator("kk")(full_profile.NOT_THIS_DISTRICT.msgid)
        async with fast.app.sessions() as session:
            actions = list(
                await session.scalars(
                    select(AuditLog.action).where(AuditLog.action.like("full_profile_%"))
                )
            )
        assert sorted(actions) == ["full_profile_opened", "full_profile_refused"]


# -- plumbing: activity for retention, hostile characters in typed words ------------------------


async def test_a_message_marks_the_account_active_at_most_once_a_day(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        user = 6661
        long_ago = datetime.now(UTC) - timedelta(days=200)
        async with fast.app.sessions() as session:
            person = await account(session, user)
            person.updated_at = long_ago
            await session.commit()
        await fast.feed(fast.text(user, "/help"))
        async with fast.app.sessions() as session:
            seen = await session.scalar(
                select(Account.updated_at).where(Account.telegram_id == user)
            )
        # Retention counts a person's last activity from here: they are active again.
        assert seen is not None and seen > datetime.now(UTC) - timedelta(minutes=5)


def test_typed_words_lose_control_and_direction_override_characters() -> None:
    assert words("Иван \u202eвортеП\x00", 100) == "Иван вортеП"
    assert isinstance(words("\x00\u202e", 100), Problem)


async def test_a_profile_resubmitted_too_often_today_is_not_sent_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fast_bot(sqlite_url, tmp_path) as fast:
        t = ru(fast)
        async with fast.app.sessions() as session:
            owner = await account(session, RIDER_TID)
            rider = await register(session, owner, rider_input(IIN, name="Анна Иванова"))
            for _ in range(4):
                session.add(AuditLog(action="verification_requested", subject=f"rider:{rider.id}"))
            await session.commit()
            rider_id = int(rider.id)
        edit = ProfilePress(action=ProfileAction.EDIT, rider=rider_id, field="name").pack()
        await fast.feed(fast.press(RIDER_TID, edit))
        said = await step(fast, RIDER_TID, "Анна Петрова")
        assert (said[-1].text or "").startswith(
            t(limits.TOO_MANY_RESUBMISSIONS, limit=4).split("(")[0]
        ), said
        async with fast.app.sessions() as session:
            stored = await session.get(Rider, rider_id)
            assert stored is not None and stored.full_name == "Анна Иванова"


async def test_an_edit_to_an_iin_already_registered_reveals_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Changing one's IIN to someone else's: the same answer as for any check, the desk asked
    to call, and the profile keeps its own IIN."""
    async with fast_bot(sqlite_url, tmp_path) as fast:
        user = 6631
        async with fast.app.sessions() as session:
            other = await account(session, 6630)
            await register(session, other, rider_input(OTHER_IIN))
            me = await account(session, user)
            mine = await register(session, me, rider_input(IIN))
            await session.commit()
            rider_id, hash_before = mine.id, mine.iin_hash
        await fast.feed(
            fast.press(
                user, ProfilePress(action=ProfileAction.EDIT, rider=rider_id, field="iin").pack()
            )
        )
        said = await step(fast, user, OTHER_IIN)
        answer = " ".join(s.text or "" for s in said[-2:])
        assert "зарегистрирован" not in answer and OTHER_IIN not in answer
        desk = [s.text or "" for s in await fast.said(GROUP)]
        assert any("профиль с таким же ИИН уже есть" in d for d in desk)
        async with fast.app.sessions() as session:
            kept = await session.get(Rider, rider_id)
            assert kept is not None and kept.iin_hash == hash_before
