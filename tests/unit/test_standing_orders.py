"""Standing orders on a real database, SQLite and PostgreSQL: from the rider's request to rides.

A rider asks for dialysis on Monday, Wednesday and Friday at 07:30 with the way back at 12:00
for a month; a dispatcher approves it with a car; the sweep books the dates inside the booking
horizon once each, also when it runs twice, is stopped half-way, or runs in two processes at
once. The rider and the representative hear every step in their own language (ru and kk).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cards import ride as ride_card
from bot.cards import standing_order as order_card
from bot.db import create_engine, create_sessionmaker, transaction
from bot.i18n import I18n
from bot.services import standing_orders as so
from bot.services.rides import Actor
from bot.settings import Settings, load_settings
from bot.sweeps import Sweeps
from models import (
    Account,
    District,
    OrderStatus,
    OutboxMessage,
    Ride,
    Rider,
    RideStatus,
    StandingOrder,
    Vehicle,
)
from tests.factories import VAN, make_account, make_rider, sync_test_districts

seed = sync_test_districts

TZ = ZoneInfo("Asia/Almaty")
HERE = socket.gethostname()
RIDER_TG, REP_TG = 7001, 7002
FIRST = date(2026, 12, 7)  # a Monday
END = date(2027, 1, 6)  # a month later, a Wednesday
HOLIDAY = date(2026, 12, 16)  # Independence Day, a Wednesday
DISPATCHER = Actor("dispatcher", 9001, "Айгүл")
I18N = I18n()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


TODAY = date(2026, 12, 2)  # a Wednesday: the horizon of 14 days reaches 16.12


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    url: str
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    clock: Clock
    engines: list[AsyncEngine]
    rider_id: int = 0

    def sweeps(self, name: str = "one") -> Sweeps:
        """A sweep runner as another process would have: its own engine and owner."""
        engine = create_engine(self.url)
        self.engines.append(engine)
        return Sweeps(
            create_sessionmaker(engine), self.settings, f"{name}@{HERE}:1", clock=self.clock
        )

    async def account(self, telegram_id: int) -> Account:
        async with self.sessions() as session:
            found = await session.scalar(select(Account).where(Account.telegram_id == telegram_id))
        assert found is not None
        return found

    async def rides(self) -> list[Ride]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Ride).order_by(Ride.pickup_at, Ride.id)))

    async def order(self, order_id: int) -> StandingOrder:
        async with self.sessions() as session:
            found = await session.get(StandingOrder, order_id)
        assert found is not None
        return found

    async def messages(self, msgid: str) -> list[OutboxMessage]:
        async with self.sessions() as session:
            rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        return [r for r in rows if r.payload.get("msgid") == msgid]


def rendered(message: OutboxMessage, lang: str) -> str:
    """The text as the sender renders it for a reader of `lang`."""
    t = I18N.translator(lang)
    params: dict[str, Any] = {
        k: t(v["msgid"]) if isinstance(v, dict) else v
        for k, v in message.payload.get("params", {}).items()
    }
    return t(message.payload["msgid"], **params)


@pytest.fixture
async def env(migrated_db: str) -> AsyncIterator[Env]:
    settings = load_settings(
        bot_token="1:a", database_url=migrated_db, timezone="Asia/Almaty", default_language="kk"
    )
    engine = create_engine(migrated_db)
    sessions = create_sessionmaker(engine)
    made = Env(migrated_db, sessions, settings, Clock(local(TODAY, 12)), [engine])
    async with transaction(sessions) as session:
        await seed(session)
        district = await session.get(District, "taldykorgan")
        assert district is not None
        # Dialysis starts early: this district's cars run from 07:00.
        district.rules = {"service_start": "07:00"}
        own = await make_account(session, RIDER_TG, language="ru", name="Гульнара")
        rep = await make_account(session, REP_TG, language="kk", name="Асан")
        rider = await make_rider(session, account=own, representative=rep, name="Гульнара Сейтова")
        rider.category = "group1_mobility"
        made.rider_id = rider.id
    try:
        yield made
    finally:
        for e in made.engines:
            await e.dispose()


def dialysis(env: Env, **changes: Any) -> so.OrderDraft:
    values: dict[str, Any] = {
        "rider_id": env.rider_id,
        "weekdays": frozenset({1, 3, 5}),
        "pickup_time": time(7, 30),
        "return_time": time(12, 0),
        "pickup_address": "ул. Абая, 1",
        "destination": "Областная больница, отделение диализа",
        "purpose": "procedure",
        "first_date": FIRST,
        "end_date": END,
    }
    values.update(changes)
    return so.OrderDraft(**values)


async def create(env: Env, **changes: Any) -> so.OrderResult:
    async with transaction(env.sessions) as session:
        account = await session.scalar(select(Account).where(Account.telegram_id == RIDER_TG))
        assert account is not None
        return await so.create_order(
            session, account, dialysis(env, **changes), env.clock.now, tz=TZ
        )


async def approved(env: Env, *, with_car: bool = True) -> int:
    """An approved Mon/Wed/Fri order, with the district's van as its usual car."""
    result = await create(env)
    assert result.ok and result.order is not None
    async with transaction(env.sessions) as session:
        van = await session.scalar(select(Vehicle).where(Vehicle.plate == VAN))
        assert van is not None
        decision = await so.approve(
            session,
            result.order.id,
            DISPATCHER,
            env.clock.now,
            vehicle_id=van.id if with_car else None,
            district_id="taldykorgan",
        )
    assert decision.ok
    return result.order.id


def by_date(rides: list[Ride]) -> dict[date, list[Ride]]:
    found: dict[date, list[Ride]] = {}
    for ride in rides:
        assert ride.occurrence_date is not None
        found.setdefault(ride.occurrence_date, []).append(ride)
    return found


def booked(rides: list[Ride]) -> list[tuple[date | None, str | None]]:
    """(date, leg) of every ride still standing, to compare against once-each expectations."""
    return sorted(
        (r.occurrence_date, r.leg) for r in rides if r.status != RideStatus.CANCELLED.value
    )


IN_HORIZON = [date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 11), date(2026, 12, 14)]


def once_each(days: list[date]) -> list[tuple[date | None, str | None]]:
    return sorted((d, leg) for d in days for leg in ("back", "there"))


# -- the whole way ------------------------------------------------------------------------------


async def test_a_month_of_dialysis_from_the_request_to_rides_booked_once_each(env: Env) -> None:
    result = await create(env)
    assert result.ok and result.order is not None
    order_id = result.order.id
    assert result.order.status == OrderStatus.PENDING
    async with env.sessions() as session:
        cards = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == so.STANDING_ORDER_CARD)
        )
    assert cards == 1, "one card for the whole order in the dispatcher chat"
    submitted = await env.messages(so.SUBMITTED)
    assert [m.chat_id for m in submitted] == [REP_TG], "the person who asked is answered directly"
    assert "Гульнара Сейтова" in rendered(submitted[0], "kk")

    async with transaction(env.sessions) as session:
        van = await session.scalar(select(Vehicle).where(Vehicle.plate == VAN))
        assert van is not None
        decision = await so.approve(
            session, order_id, DISPATCHER, env.clock.now, vehicle_id=van.id
        )
        assert decision.ok and decision.capacity is not None and not decision.capacity.over
        again = await so.approve(session, order_id, DISPATCHER, env.clock.now)
        assert again.reason == so.NOT_PENDING, "a second press changes nothing"
    told = await env.messages(so.APPROVED_WITH_CAR)
    assert sorted(m.chat_id for m in told) == [RIDER_TG, REP_TG]
    texts = {m.chat_id: rendered(m, "ru" if m.chat_id == RIDER_TG else "kk") for m in told}
    assert "одобрена" in texts[RIDER_TG] and VAN in texts[RIDER_TG]
    assert "белый" in texts[RIDER_TG]
    assert "мақұлданды" in texts[REP_TG] and "ақ" in texts[REP_TG]

    # The sweep books the dates inside the 14-day horizon: 7, 9, 11 and 14 December, both
    # ways; 16 December is Independence Day and is skipped.
    first = env.sweeps("one")
    assert await first.run("standing_orders")
    await first.run("standing_orders")
    await asyncio.gather(
        env.sweeps("two").standing_orders(env.clock.now),
        env.sweeps("three").standing_orders(env.clock.now),
    )
    rides = await env.rides()
    assert booked(rides) == once_each(IN_HORIZON)
    assert all(r.standing_order_id == order_id for r in rides)
    assert all(r.status == RideStatus.SCHEDULED.value for r in rides), "the usual car, no conflict"
    for day, pair in by_date(rides).items():
        there = next(r for r in pair if r.leg == "there")
        back = next(r for r in pair if r.leg == "back")
        assert there.pickup_at == local(day, 7, 30) and back.pickup_at == local(day, 12)
        assert back.return_of == there.id and back.destination == there.pickup_address

    holiday = await env.messages(so.SKIPPED_HOLIDAY)
    assert sorted(m.chat_id for m in holiday) == [RIDER_TG, REP_TG], "told once, each of them"
    ru = rendered(next(m for m in holiday if m.chat_id == RIDER_TG), "ru")
    kk = rendered(next(m for m in holiday if m.chat_id == REP_TG), "kk")
    assert "16.12.2026" in ru and "праздничный" in ru and "среда" in ru
    assert "16.12.2026" in kk and "мереке" in kk and "сәрсенбі" in kk
    order = await env.order(order_id)
    assert [(s.day, s.kind) for s in so.skipped_dates(order)] == [(HOLIDAY, so.SKIP_HOLIDAY)]

    # The desk sees where a ride comes from, and the order's card shows the skipped date.
    async with env.sessions() as session:
        district = await session.get(District, "taldykorgan")
        assert district is not None
        text, _ = await ride_card.build(session, rides[0], district, I18N)
        assert f"Из постоянной заявки №{order_id}" in text
        card, buttons = await order_card.build(session, order, district, I18N)
    assert f"Постоянная заявка №{order_id} — одобрена" in card
    assert "пн, ср, пт" in card and "16.12 (праздник)" in card
    assert buttons is None, "a decided order has nothing left to press"

    # A week later the horizon has moved on: the next dates appear by themselves.
    env.clock.now = local(date(2026, 12, 9), 12)
    await env.sweeps().run("standing_orders")
    later = [date(2026, 12, 18), date(2026, 12, 21), date(2026, 12, 23)]
    assert booked(await env.rides()) == once_each(IN_HORIZON + later)


async def test_a_sweep_stopped_half_way_books_the_rest_once_when_it_runs_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await approved(env)
    real = so.materialize
    calls = 0

    async def dies_on_the_third(*args: Any, **kwargs: Any) -> so.Materialized:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the process was killed")
        return await real(*args, **kwargs)

    monkeypatch.setattr(so, "materialize", dies_on_the_third)
    assert await env.sweeps("dies").run("standing_orders") == 0
    assert booked(await env.rides()) == once_each(IN_HORIZON[:2])

    monkeypatch.setattr(so, "materialize", real)
    await asyncio.gather(
        env.sweeps("two").standing_orders(env.clock.now),
        env.sweeps("three").standing_orders(env.clock.now),
    )
    assert booked(await env.rides()) == once_each(IN_HORIZON)


# -- the rider's exceptions ---------------------------------------------------------------------


async def test_one_date_is_cancelled_and_the_others_stay(env: Env) -> None:
    order_id = await approved(env)
    await env.sweeps().run("standing_orders")
    rep = await env.account(REP_TG)
    async with transaction(env.sessions) as session:
        done = await so.cancel_occurrence(
            session, rep, order_id, date(2026, 12, 9), env.clock.now, tz=TZ
        )
        assert done.ok and len(done.cancelled_rides) == 2
        # A date not booked yet is cancelled too, and never booked later.
        later = await so.cancel_occurrence(
            session, rep, order_id, date(2026, 12, 28), env.clock.now, tz=TZ
        )
        assert later.ok and later.cancelled_rides == ()
        wrong = await so.cancel_occurrence(
            session, rep, order_id, date(2026, 12, 8), env.clock.now, tz=TZ
        )
        assert wrong.reason == so.NOT_A_DATE_OF_ORDER
    rides = await env.rides()
    cancelled = [r for r in rides if r.status == RideStatus.CANCELLED.value]
    assert {r.occurrence_date for r in cancelled} == {date(2026, 12, 9)}
    others = [r for r in rides if r.occurrence_date != date(2026, 12, 9)]
    assert others and all(r.status == RideStatus.SCHEDULED.value for r in others)
    async with env.sessions() as session:
        district = await session.get(District, "taldykorgan")
        assert district is not None
        text, _ = await ride_card.build(session, cancelled[0], district, I18N)
    assert "Причина: Этот день отменён в постоянной заявке" in text

    env.clock.now = local(date(2026, 12, 16), 12)  # the horizon now reaches 30 December
    await env.sweeps().run("standing_orders")
    rides = await env.rides()
    assert not [r for r in rides if r.occurrence_date == date(2026, 12, 28)]
    assert [r for r in rides if r.occurrence_date == date(2026, 12, 30)]
    assert len([r for r in rides if r.occurrence_date == date(2026, 12, 9)]) == 2
    told = await env.messages(so.DATE_CANCELLED_BY)
    assert [m.chat_id for m in told] == [RIDER_TG], "the rider hears what the relative did"
    assert "28.12.2026" in rendered(told[0], "ru") and "Асан" in rendered(told[0], "ru")


async def test_a_pause_stops_rides_and_they_resume_by_themselves(env: Env) -> None:
    order_id = await approved(env)
    await env.sweeps().run("standing_orders")
    rider = await env.account(RIDER_TG)
    async with transaction(env.sessions) as session:
        done = await so.pause(
            session, rider, order_id, date(2026, 12, 10), date(2026, 12, 20), env.clock.now, tz=TZ
        )
    assert done.ok
    assert {r.occurrence_date for r in done.cancelled_rides} == {
        date(2026, 12, 11),
        date(2026, 12, 14),
    }
    env.clock.now = local(date(2026, 12, 12), 12)  # the horizon reaches 26 December
    await env.sweeps().run("standing_orders")
    standing = booked(await env.rides())
    assert once_each([date(2026, 12, 7), date(2026, 12, 9)]) == [
        x for x in standing if x[0] is not None and x[0] < date(2026, 12, 10)
    ]
    assert not [x for x in standing if x[0] and date(2026, 12, 10) <= x[0] <= date(2026, 12, 20)]
    resumed = sorted({x[0] for x in standing if x[0] and x[0] > date(2026, 12, 20)})
    assert resumed == [date(2026, 12, 21), date(2026, 12, 23), date(2026, 12, 25)]
    paused = await env.messages(so.PAUSED_BY)
    assert [m.chat_id for m in paused] == [REP_TG]
    assert "10.12.2026" in rendered(paused[0], "kk") and "20.12.2026" in rendered(paused[0], "kk")


async def test_a_new_time_from_a_date_on_rebooks_those_rides(env: Env) -> None:
    order_id = await approved(env)
    await env.sweeps().run("standing_orders")
    rider = await env.account(RIDER_TG)
    async with transaction(env.sessions) as session:
        done = await so.change_time(
            session,
            rider,
            order_id,
            date(2026, 12, 11),
            time(9, 0),
            env.clock.now,
            back=time(13, 30),
            tz=TZ,
        )
    assert done.ok and len(done.cancelled_rides) == 4
    rides = [r for r in await env.rides() if r.status != RideStatus.CANCELLED.value]
    assert booked(rides) == once_each(IN_HORIZON)
    times = {(r.occurrence_date, r.leg): r.pickup_at for r in rides}
    assert times[(date(2026, 12, 9), "there")] == local(date(2026, 12, 9), 7, 30)
    assert times[(date(2026, 12, 11), "there")] == local(date(2026, 12, 11), 9)
    assert times[(date(2026, 12, 14), "back")] == local(date(2026, 12, 14), 13, 30)
    await env.sweeps().run("standing_orders")
    assert len([r for r in await env.rides() if r.status != RideStatus.CANCELLED.value]) == 8


async def test_ending_an_order_cancels_its_rides_to_come(env: Env) -> None:
    order_id = await approved(env)
    await env.sweeps().run("standing_orders")
    rider = await env.account(RIDER_TG)
    async with transaction(env.sessions) as session:
        done = await so.end_order(session, rider, order_id, env.clock.now)
    assert done.ok and len(done.cancelled_rides) == 8
    assert (await env.order(order_id)).status == OrderStatus.ENDED
    env.clock.now = local(date(2026, 12, 9), 12)
    await env.sweeps().run("standing_orders")
    assert booked(await env.rides()) == []


# -- limits and the desk ------------------------------------------------------------------------


async def test_an_end_date_past_the_vkk_expiry_is_refused_with_the_latest_date(env: Env) -> None:
    async with transaction(env.sessions) as session:
        rider = await session.get(Rider, env.rider_id)
        assert rider is not None
        rider.vkk_expires_on = date(2026, 12, 31)
    result = await create(env)
    assert not result.ok and result.reason is not None
    assert result.reason.code == "past_vkk_expiry"
    assert result.latest_end == date(2026, 12, 31)
    ru = result.reason.render(I18N.translator("ru"))
    kk = result.reason.render(I18N.translator("kk"))
    assert "31.12.2026" in ru and "ВКК" in ru and "четверг" in ru
    assert "31.12.2026" in kk and "ДКК" in kk and "бейсенбі" in kk
    async with env.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StandingOrder)) == 0
    assert (await create(env, end_date=date(2026, 12, 31))).ok


async def test_an_order_over_the_districts_capacity_share_is_flagged_on_its_card(
    env: Env,
) -> None:
    async with transaction(env.sessions) as session:
        district = await session.get(District, "taldykorgan")
        assert district is not None
        # Two cars, 14 hours a day (07:00 to the end of a 20:00 ride): 10 % is 2.8 car-hours.
        # One order takes two hours on its days (7 %), a second one on a Wednesday four (14 %).
        district.standing_order_capacity_share = 0.1
    first = await approved(env)
    second = await create(env, weekdays=frozenset({3}), pickup_time=time(9, 0))
    assert second.order is not None
    async with env.sessions() as session:
        district = await session.get(District, "taldykorgan")
        assert district is not None
        text, buttons = await order_card.build(session, second.order, district, I18N)
        kk, _ = await order_card.build(
            session, second.order, District(**_copy(district, language="kk")), I18N
        )
    assert "⚠ Превышен лимит" in text and "(доля: 14%, в районе допускается 10%)" in text
    assert "⚠ Шектен асады" in kk
    assert buttons is not None, "the desk can still approve it"
    assert not (await env.order(first)).over_capacity
    async with transaction(env.sessions) as session:
        decision = await so.approve(session, second.order.id, DISPATCHER, env.clock.now)
    assert decision.capacity is not None and decision.capacity.over
    assert (await env.order(second.order.id)).over_capacity


def _copy(district: District, **changes: Any) -> dict[str, Any]:
    keys = ("id", "name_kk", "name_ru", "chat_id", "topic_id", "language", "rules")
    values = {k: getattr(district, k) for k in keys}
    values["standing_order_capacity_share"] = district.standing_order_capacity_share
    values["holidays"] = district.holidays
    return {**values, **changes}


async def test_another_time_offered_and_accepted_approves_the_order(env: Env) -> None:
    result = await create(env)
    assert result.order is not None
    async with transaction(env.sessions) as session:
        offer = await so.propose_time(
            session, result.order.id, DISPATCHER, time(8, 0), env.clock.now, back=time(12, 30)
        )
    assert offer.ok
    proposed = await env.messages(so.PROPOSED_WITH_BACK)
    assert sorted(m.chat_id for m in proposed) == [RIDER_TG, REP_TG]
    assert all(m.payload["keyboard"] == so.PROPOSAL_KEYBOARD for m in proposed)
    kk = rendered(next(m for m in proposed if m.chat_id == REP_TG), "kk")
    assert "07:30" in kk and "08:00" in kk and "12:30" in kk
    rep = await env.account(REP_TG)
    async with transaction(env.sessions) as session:
        answer = await so.answer_proposal(session, rep, result.order.id, True, env.clock.now)
    assert answer.ok
    order = await env.order(result.order.id)
    assert order.status == OrderStatus.APPROVED
    assert (order.pickup_time, order.return_time) == (time(8, 0), time(12, 30))
    await env.sweeps().run("standing_orders")
    rides = await env.rides()
    assert booked(rides) == once_each(IN_HORIZON)
    assert all(r.status == RideStatus.REQUESTED.value for r in rides), "no usual car: the queue"


async def test_a_refused_order_tells_everyone_why(env: Env) -> None:
    result = await create(env)
    assert result.order is not None
    async with transaction(env.sessions) as session:
        done = await so.reject(
            session, result.order.id, DISPATCHER, "no_car", env.clock.now, district_id="tekeli"
        )
        assert done.reason == so.ORDER_NOT_FOUND, "another district's desk can't decide it"
        done = await so.reject(session, result.order.id, DISPATCHER, "no_car", env.clock.now)
    assert done.ok
    told = await env.messages(so.REJECTED)
    assert sorted(m.chat_id for m in told) == [RIDER_TG, REP_TG]
    ru = rendered(next(m for m in told if m.chat_id == RIDER_TG), "ru")
    kk = rendered(next(m for m in told if m.chat_id == REP_TG), "kk")
    assert "Причина: На это время нет свободной машины" in ru
    assert "мақұлдамады" in kk and "/book" in kk


async def test_the_rider_is_reminded_once_that_the_order_stops_with_the_vkk(env: Env) -> None:
    async with transaction(env.sessions) as session:
        rider = await session.get(Rider, env.rider_id)
        assert rider is not None
        rider.vkk_expires_on = END
    await approved(env)
    env.clock.now = local(date(2026, 12, 6), 10)  # 31 days before: not yet
    assert await env.sweeps().run("standing_order_vkk") == 0
    env.clock.now = local(date(2026, 12, 7), 10)
    await env.sweeps().run("standing_order_vkk")
    await asyncio.gather(
        env.sweeps("two").standing_order_vkk(env.clock.now),
        env.sweeps("three").standing_order_vkk(env.clock.now),
    )
    told = await env.messages(so.VKK_ENDS_ORDER)
    assert sorted(m.chat_id for m in told) == [RIDER_TG, REP_TG]
    kk = rendered(next(m for m in told if m.chat_id == REP_TG), "kk")
    assert "06.01.2027" in kk and "ДКК" in kk


async def test_lists_show_next_dates_and_skipped_ones(env: Env) -> None:
    order_id = await approved(env)
    await env.sweeps().run("standing_orders")
    rider = await env.account(RIDER_TG)
    async with env.sessions() as session:
        mine = await so.orders_of(session, rider, env.clock.now, tz=TZ)
        desk = await so.district_orders(session, "taldykorgan", env.clock.now, tz=TZ)
        tomorrow = await so.occurrences_on(session, "taldykorgan", date(2026, 12, 7), tz=TZ)
    assert [v.order.id for v in mine] == [order_id] == [v.order.id for v in desk]
    assert list(mine[0].next_dates) == IN_HORIZON[:3]
    assert [s.day for s in mine[0].skipped] == [HOLIDAY]
    assert len(tomorrow) == 2


async def test_a_date_whose_usual_car_is_busy_waits_for_a_dispatcher(env: Env) -> None:
    async with transaction(env.sessions) as session:
        van = await session.scalar(select(Vehicle).where(Vehicle.plate == VAN))
        other = await make_account(session, 7101, name="Ерлан")
        neighbour = await make_rider(session, account=other, name="Ерлан Ахметов")
        assert van is not None
        session.add(
            Ride(
                rider_id=neighbour.id,
                district_id="taldykorgan",
                pickup_address="ул. Жансугурова, 5",
                destination="Поликлиника №1",
                purpose="clinic",
                pickup_at=local(date(2026, 12, 9), 7, 45),
                status=RideStatus.SCHEDULED.value,
                vehicle_id=van.id,
            )
        )
    await approved(env)
    await env.sweeps().run("standing_orders")
    states = {
        (r.occurrence_date, r.leg): r.status for r in await env.rides() if r.standing_order_id
    }
    assert states[(date(2026, 12, 9), "there")] == RideStatus.REQUESTED.value
    assert states[(date(2026, 12, 9), "back")] == RideStatus.SCHEDULED.value
    assert states[(date(2026, 12, 7), "there")] == RideStatus.SCHEDULED.value


async def test_stopped_orders_are_deleted_with_old_rides_and_running_ones_kept(env: Env) -> None:
    running = await approved(env)
    refused = await create(env, weekdays=frozenset({2}))
    assert refused.order is not None
    async with transaction(env.sessions) as session:
        await so.reject(session, refused.order.id, DISPATCHER, "no_car", env.clock.now)
    env.clock.now += timedelta(days=env.settings.retention_days + 1)
    async with transaction(env.sessions) as session:
        order = await session.get(StandingOrder, running)
        assert order is not None
        order.end_date = date(2028, 1, 1)  # still running a year on
    await env.sweeps().run("retention")
    async with env.sessions() as session:
        left = set(await session.scalars(select(StandingOrder.id)))
    assert left == {running}


async def test_a_wheelchair_order_is_offered_and_given_only_cars_that_take_a_wheelchair(
    env: Env,
) -> None:
    result = await create(env, wheelchair=True)
    assert result.order is not None
    async with transaction(env.sessions) as session:
        fitting = await so.fitting_vehicles(session, result.order)
        sedan = await session.scalar(select(Vehicle).where(Vehicle.plate == "456DEF05"))
        assert sedan is not None
        refused = await so.approve(
            session, result.order.id, DISPATCHER, env.clock.now, vehicle_id=sedan.id
        )
        district = await session.get(District, "taldykorgan")
        assert district is not None
        times = so.proposal_times(district, time(7, 30))
    assert [v.plate for v in fitting] == [VAN]
    assert refused.reason == so.VEHICLE_UNFIT
    assert (await env.order(result.order.id)).status == OrderStatus.PENDING
    # An hour earlier, 06:30, is before the first pickup at 07:00.
    assert times == [time(7, 0), time(8, 0), time(8, 30), time(9, 0), time(9, 30)]
