"""After /forget, no card or notice in the dispatcher chat shows the person (issue 12.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import DEFAULT_TIMEZONE as TZ_NAME
from bot.services import privacy
from bot.services.outbox import enqueue_card
from bot.services.reachability import mark_unreachable
from models import Account, Ride, Rider, RideStatus
from tests.factories import GROUP, person, rider_with_history


async def test_ride_cards_and_blocked_notices_are_edited_to_one_line(bot: Any) -> None:
    rider_id = await rider_with_history(bot, 7701, "ru")
    async with bot.sessions() as session, session.begin():
        rider = await session.get(Rider, rider_id)
        assert rider is not None
        ride = Ride(
            rider_id=rider_id,
            district_id=rider.district_id,
            pickup_address="Жансүгіров көшесі, 40",
            destination="Онкологический диспансер",
            purpose="clinic",
            comment="после химиотерапии",
            pickup_at=datetime.now(UTC) + timedelta(days=1),
            status=RideStatus.REQUESTED.value,
        )
        session.add(ride)
        await session.flush()
        await enqueue_card(
            session, kind="ride_card", subject_id=ride.id, chat_id=GROUP, topic_id=None
        )
        owner = await session.scalar(select(Account).where(Account.telegram_id == 7701))
        assert owner is not None
        await mark_unreachable(session, owner.id, ride.id)
        name, phone, number = rider.full_name, rider.phone, ride.number
    bot.app.outbox_wakeup.set()
    await bot.settle()
    texts = [m.text for m in bot.stand_in.messages(GROUP)]
    assert sum(name in text for text in texts) >= 2  # the ride card and the notice

    async with bot.sessions() as session, session.begin():
        ride = await session.get(Ride, ride.id)
        assert ride is not None
        ride.status = RideStatus.CANCELLED.value
        owner = await session.scalar(select(Account).where(Account.telegram_id == 7701))
        assert owner is not None
        erased = await privacy.forget(session, owner, tz=TZ_NAME)
        assert isinstance(erased, privacy.Erased)
    bot.app.outbox_wakeup.set()
    await bot.settle()

    ru = bot.app.i18n.translator("ru")
    texts = [m.text for m in bot.stand_in.messages(GROUP)]
    for secret in (name, phone, "Жансүгіров", "Онкологический", "химиотерапии"):
        assert not any(secret in text for text in texts), secret
    assert ru("Request №{number}: the rider's data was erased.", number=number) in texts
    assert ru("This notice was removed: the person's data was erased.") in texts


async def test_forget_leaves_no_conversation_row_behind(bot: Any) -> None:
    from models import ConversationState

    await rider_with_history(bot, 7801, "ru")
    me = person(bot, 7801, "ru", "Айгерім")
    me.user.send_text("/forget")
    question = await me.sees(
        "This withdraws your consent and erases your data: your rider profile, the profiles "
        "that only you manage, your links to other riders, and the history of those rides. "
        "It can't be undone. Erase?"
    )
    me.user.press(me.t("Yes, erase my data"), message=question)
    await me.sees("Goodbye. If you need the service again, send /start.")
    await bot.settle()
    async with bot.sessions() as session:
        keys = list(await session.scalars(select(ConversationState.key)))
    assert not [k for k in keys if "7801" in k], keys
