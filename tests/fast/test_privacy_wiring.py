"""Issue 12, phase 2: the personal-data and abuse services wired into the handlers, fed
through the real Dispatcher; what people would read is asserted on the queued outbox rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.callbacks.dispatch import Act
from models import OutboxMessage
from tests.fast.harness import fast_bot
from tests.fast.test_dispatcher_side import (
    S,
    first_vehicle,
    press,
    rider_texts,
    seed_ride,
)

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
