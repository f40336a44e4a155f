"""The monthly report: a November of rides made through the real services, with known outcomes,
counted figure by figure, and the files (workbook, CSV, charts) read back.

Taldykorgan's November: three rides completed (one with a wheelchair, one booked by a
representative), two rejected for two different reasons, two cancelled by riders (one late), a
no-show, an expired request, and a request picked up at 00:30 on 1 November (local time, still
October in UTC) that is still open. Rides on 31 October and 1 December at the month's edges, and
one in Tekeli, test which rides a month and a district hold.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_decimal
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.documents import DOCUMENT_RENDERERS, load_all
from bot.i18n import I18n, Translator
from bot.reports import monthly
from bot.services import booking
from bot.services import report_figures as rf
from bot.services.rides import Action, Actor, change
from models import Ride, Rider, RideStatus
from tests.factories import SEDAN, TEKELI_VAN, VAN, make_ride, sync_test_districts, vehicle
from tests.factories import booking_account as make_account
from tests.factories import booking_draft as draft
from tests.factories import booking_rider as make_rider

seed = sync_test_districts

S = RideStatus
TZ = ZoneInfo("Asia/Almaty")
NOVEMBER = date(2026, 11, 1)
# Booked on Monday 9 November at 10:00 for Tuesday the 10th (the desk is open 08:00–20:00).
BOOKED = datetime(2026, 11, 9, 10, 0, tzinfo=TZ)
DAY = date(2026, 11, 10)
AIGUL = Actor("dispatcher", 9001, "Айгүл")
SECRETS = ("+7701", "Абая", "Иванова", "Areke", "sealed", "VKK-")


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


@dataclass
class November:
    rides: dict[str, int]


async def book(
    session: AsyncSession,
    name: str,
    pickup: time,
    *,
    minutes_after: int,
    wheelchair: bool = False,
    purpose: str = "clinic",
    district_id: str = "taldykorgan",
    representative: bool = False,
) -> tuple[Ride, Any]:
    """A rider with an account (or a representative booking for one) books through the service."""
    if representative:
        who = await make_account(session, 7500 + minutes_after, "Представитель")
        rider = await make_rider(
            session, None, district_id=district_id, representative=who, name="Areke Bala"
        )
    else:
        who = await make_account(session, 7000 + minutes_after, name)
        rider = await make_rider(session, who, district_id=district_id, name="Анна Иванова")
    if wheelchair:
        rider.needs_wheelchair = True
    result = await booking.create_booking(
        session,
        draft(
            rider,
            day=DAY,
            pickup_time=pickup,
            wheelchair=wheelchair,
            purpose=purpose,
            booked_by=who.id,
        ),
        Actor("representative" if representative else "rider", who.telegram_id, who.display_name),
        BOOKED + timedelta(minutes=minutes_after),
        tz=TZ,
    )
    assert result.ride is not None, result.reason
    return result.ride, who


async def act(
    session: AsyncSession, ride: Ride, action: Action, when: datetime, **kw: Any
) -> None:
    outcome = await change(session, ride.id, action, kw.pop("actor", AIGUL), now=when, **kw)
    assert outcome.ok, (ride.id, action)


async def make_november(sessions: async_sessionmaker[AsyncSession]) -> November:
    ids: dict[str, int] = {}
    async with sessions() as session, session.begin():
        await seed(session)
        van, sedan = await vehicle(session, VAN), await vehicle(session, SEDAN)
        tekeli_van = await vehicle(session, TEKELI_VAN)

        ride, _ = await book(session, "Completed", time(9), minutes_after=0)
        await act(session, ride, Action.TAKE, BOOKED + timedelta(minutes=2))
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=10),
                  values={"vehicle_id": van.id})  # fmt: skip
        await act(session, ride, Action.ARRIVED, at(9))
        await act(session, ride, Action.COMPLETE, at(9, 40))
        ids["completed"] = ride.id
        first_ride = ride

        ride, _ = await book(session, "Wheelchair", time(13), minutes_after=1, wheelchair=True)
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=31),
                  values={"vehicle_id": van.id})  # fmt: skip
        await act(session, ride, Action.ARRIVED, at(13))
        await act(session, ride, Action.ON_BOARD, at(13, 5))
        await act(session, ride, Action.COMPLETE, at(13, 50))
        ids["wheelchair"] = ride.id

        ride, _ = await book(session, "No car", time(10), minutes_after=2)
        await act(session, ride, Action.REJECT, BOOKED + timedelta(minutes=7), reason="no_car")
        ids["no_car"] = ride.id

        ride, _ = await book(session, "Far", time(11), minutes_after=3, purpose="work")
        await act(session, ride, Action.REJECT, BOOKED + timedelta(minutes=63), reason="territory")
        ids["territory"] = ride.id

        ride, who = await book(session, "Cancels", time(15), minutes_after=4)
        cancelled = await booking.cancel_ride(
            session, who, ride.id, "plans changed", BOOKED + timedelta(hours=1)
        )
        assert cancelled.ride is not None and not cancelled.late
        ids["cancelled"] = ride.id

        ride, who = await book(session, "Late", time(11), minutes_after=5)
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=25),
                  values={"vehicle_id": sedan.id})  # fmt: skip
        late = await booking.cancel_ride(session, who, ride.id, "ill", at(10))
        assert late.late
        ids["late"] = ride.id

        ride, _ = await book(session, "No-show", time(16), minutes_after=6)
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=21),
                  values={"vehicle_id": sedan.id})  # fmt: skip
        await act(session, ride, Action.ARRIVED, at(16))
        await act(session, ride, Action.NO_SHOW, at(16, 15))
        ids["no_show"] = ride.id

        ride, _ = await book(session, "Expired", time(17), minutes_after=7)
        await act(session, ride, Action.EXPIRE, at(17), actor=Actor.system())
        ids["expired"] = ride.id

        ride, _ = await book(session, "Rep", time(12), minutes_after=8, representative=True)
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=48),
                  values={"vehicle_id": sedan.id})  # fmt: skip
        await act(session, ride, Action.ARRIVED, at(12))
        await act(session, ride, Action.COMPLETE, at(12, 30))
        ids["representative"] = ride.id

        # The month's edges, local time, and another district.
        first_rider = await session.get(Rider, first_ride.rider_id)
        assert first_rider is not None
        edge = await make_ride(
            session, first_rider, pickup_at=at(0, 30, NOVEMBER), post_card=False
        )
        ids["first_night"] = edge.id
        for day, hour, minute in ((date(2026, 10, 31), 23, 59), (date(2026, 12, 1), 0, 30)):
            await make_ride(session, first_rider, pickup_at=at(hour, minute, day), post_card=False)
        ride, _ = await book(session, "Tekeli", time(9), minutes_after=9, district_id="tekeli")
        await act(session, ride, Action.ASSIGN, BOOKED + timedelta(minutes=12),
                  values={"vehicle_id": tekeli_van.id})  # fmt: skip
        ids["tekeli"] = ride.id
    return November(ids)


@pytest.fixture
async def november(sessions: async_sessionmaker[AsyncSession]) -> November:
    return await make_november(sessions)


@pytest.fixture
def ru() -> Translator:
    return I18n().translator("ru")


# -- the figures --------------------------------------------------------------------------------


async def test_every_figure_of_the_district_equals_the_known_outcomes(
    sessions: async_sessionmaker[AsyncSession], november: November
) -> None:
    async with sessions() as session:
        f = await rf.month_figures(session, NOVEMBER, TZ, "taldykorgan")
    assert f.requests == 10
    assert f.outcomes == {
        S.COMPLETED: 3,
        S.REJECTED: 2,
        S.CANCELLED: 2,
        S.NO_SHOW: 1,
        S.EXPIRED: 1,
        rf.OPEN: 1,
    }
    assert f.rejected_by_reason == {"no_car": 1, "territory": 1}
    assert (f.cancelled_by_rider, f.cancelled_by_dispatcher, f.cancelled_late) == (2, 0, 1)
    assert f.unique_riders == 9  # the night ride is the first rider's second
    assert f.wheelchair == 1
    assert f.riders_by_category == {"group1_mobility": 9}
    assert f.by_purpose == {"clinic": 9, "work": 1}
    assert f.by_representatives == 1
    # Decisions after 10, 30, 5, 60, 20, 15 and 40 minutes; "taking" a request is not one.
    assert sorted(f.waits) == [m * 60 for m in (5, 10, 15, 20, 30, 40, 60)]
    assert f.median_wait_minutes == 20
    assert f.p90_wait_minutes == 60
    # Within the 15 minutes of escalation: 10, 5 and 15; out of 7 decided plus 1 expired.
    assert (f.decided_in_time, f.needing_decision) == (3, 8)
    assert f.share_decided_in_time == 0.375
    cars = {car.plate: (car.rides, len(car.days)) for car in f.cars.values()}
    assert cars == {VAN: (2, 1), SEDAN: (1, 1)}  # a no-show is not a ride done
    assert sum(f.per_day[DAY].values()) == 9 and sum(f.per_day[NOVEMBER].values()) == 1


async def test_the_region_holds_every_district_and_a_month_ends_at_local_midnight(
    sessions: async_sessionmaker[AsyncSession], november: November
) -> None:
    async with sessions() as session:
        region = await rf.month_figures(session, NOVEMBER, TZ)
        tekeli = await rf.month_figures(session, NOVEMBER, TZ, "tekeli")
        october = await rf.month_figures(session, date(2026, 10, 1), TZ)
        december = await rf.month_figures(session, date(2026, 12, 1), TZ)
    assert (region.requests, tekeli.requests) == (11, 1)
    assert (october.requests, december.requests) == (1, 1)
    assert tekeli.median_wait_minutes == 3


def test_months_are_parsed_and_bounded_in_local_time() -> None:
    assert rf.parse_month("2026-11") == rf.parse_month("11.2026") == NOVEMBER
    assert rf.parse_month("2026-13") is None and rf.parse_month("ноябрь") is None
    start, end = rf.month_bounds(NOVEMBER, TZ)
    assert start == at(0, 0, NOVEMBER) and end == at(0, 0, date(2026, 12, 1))
    assert start.hour == 19 and start.day == 31  # UTC: the evening before
    assert rf.previous_month(date(2026, 1, 1)) == date(2025, 12, 1)
    assert rf.next_month(date(2026, 12, 1)) == date(2027, 1, 1)


def test_median_and_percentile_of_counted_values() -> None:
    assert rf.median({}) is None and rf.percentile({}, 0.9) is None
    assert rf.median({1: 1, 3: 1}) == 2
    assert rf.median({1: 2, 9: 1}) == 1
    ten = dict.fromkeys(range(1, 11), 1)
    assert rf.percentile(ten, 0.9) == 9 and rf.percentile(ten, 0.5) == 5


# -- the files ----------------------------------------------------------------------------------


def summary_of(path: Path) -> dict[str, Any]:
    book = load_workbook(path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    return {str(row[0]): row[1] for row in rows if row and len(row) > 1 and row[0]}


def strings_in(path: Path) -> list[str]:
    book = load_workbook(path, read_only=True)
    return [
        str(value)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for value in row
        if isinstance(value, str)
    ]


async def test_the_workbook_csv_and_charts_carry_the_figures_and_no_personal_data(
    sessions: async_sessionmaker[AsyncSession], november: November, tmp_path: Path, ru: Translator
) -> None:
    async with sessions() as session:
        paths = await monthly.write_report(
            session, first=NOVEMBER, tz=TZ, lang="ru", out_dir=tmp_path, district_id="taldykorgan"
        )
    names = [p.name for p in paths]
    assert names == [
        "invataxi-2026-11-taldykorgan.xlsx",
        "invataxi-2026-11-taldykorgan.csv",
        "invataxi-2026-11-taldykorgan-rides-per-day.png",
        "invataxi-2026-11-taldykorgan-decision-time.png",
    ]
    xlsx, csv_path, per_day, waits = paths

    summary = summary_of(xlsx)
    expected = {
        monthly.REQUESTS: 10,
        monthly.COMPLETED: 3,
        monthly.REJECTED: 2,
        monthly.CANCELLED: 2,
        monthly.CANCELLED_BY_RIDER: 2,
        monthly.CANCELLED_BY_DISPATCHER: 0,
        monthly.CANCELLED_LATE: 1,
        monthly.NO_SHOWS: 1,
        monthly.EXPIRED: 1,
        monthly.STILL_OPEN: 1,
        monthly.UNIQUE_RIDERS: 9,
        monthly.WHEELCHAIR_RIDES: 1,
        monthly.BY_REPRESENTATIVES: 1,
        monthly.MEDIAN_WAIT: 20,
        monthly.P90_WAIT: 60,
        monthly.IN_TIME: 0.375,
    }
    for msgid, value in expected.items():
        assert summary[ru(msgid)] == value, msgid
    no_car = ru(monthly.REJECTED_FOR, reason=ru("No car is available at that time"))
    assert summary[no_car] == 1
    work = ru(monthly.RIDES_FOR, purpose=ru("Work"))
    assert summary[work] == 1
    group1 = ru(monthly.RIDERS_IN, category=ru("Group I disability with difficulty moving"))
    assert summary[group1] == 9

    book = load_workbook(xlsx, read_only=True)
    assert [s.title for s in book.worksheets] == [ru("Summary"), ru("Rides"), ru("Cars")]
    rides = list(book.worksheets[1].iter_rows(values_only=True))
    assert list(rides[0]) == monthly.header_texts("ru")
    assert sorted(int(str(row[0])) for row in rides[1:]) == sorted(
        v for k, v in november.rides.items() if k != "tekeli"
    )
    completed = next(row for row in rides[1:] if row[0] == november.rides["completed"])
    assert completed[1] == datetime(2026, 11, 10) and completed[2] == time(9, 0)
    assert completed[12] == "Айгүл" and completed[13] == 10  # decided by, minutes
    cars = list(book.worksheets[2].iter_rows(values_only=True))
    assert (VAN, "Ford Transit", 2, 1) in cars
    assert not [s for s in strings_in(xlsx) if any(secret in s for secret in SECRETS)]

    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: a spreadsheet opens it as UTF-8
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == monthly.header_texts("ru") and len(table) == 11
    row = next(r for r in table if r[0] == str(november.rides["late"]))
    assert row[1:3] == ["10.11.2026", "11:00"] and row[8] == "да" and row[13] == "20,0"
    assert not any(secret in raw.decode("utf-8-sig") for secret in SECRETS)

    for chart in (per_day, waits):
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_kazakh_and_russian_headers(
    sessions: async_sessionmaker[AsyncSession], november: November, tmp_path: Path
) -> None:
    async with sessions() as session:
        paths = await monthly.write_report(
            session, first=NOVEMBER, tz=TZ, lang="kk", out_dir=tmp_path
        )
    kk, ru = monthly.header_texts("kk"), monthly.header_texts("ru")
    assert kk[0] == "Сапар №" and ru[0] == "№ поездки"
    assert not set(kk) & set(ru)
    table = list(csv.reader(io.StringIO(paths[1].read_text("utf-8-sig")), delimiter=";"))
    assert table[0] == kk and len(table) == 12  # the whole region: Tekeli too
    assert "Жиынтық" in [s.title for s in load_workbook(paths[0], read_only=True).worksheets]
    assert monthly.number(1234.5) == "1\xa0234,5" == format_decimal(1234.5, "#,##0.0", "kk_KZ")


async def test_the_renderer_builds_the_workbook_and_both_charts(
    sessions: async_sessionmaker[AsyncSession], november: November
) -> None:
    load_all()
    render = DOCUMENT_RENDERERS["monthly_report"]
    args = {"month": "2026-11", "district_id": "taldykorgan", "tz": "Asia/Almaty"}
    async with sessions() as session:
        documents = await render(session, args, "kk")
    assert [d.filename.rsplit(".", 1)[1] for d in documents] == ["xlsx", "png", "png"]
    assert documents[0].content.startswith(b"PK")  # XLSX is a zip
    assert documents[0].caption is not None and "Талдықорған" in documents[0].caption
    assert all(d.content.startswith(b"\x89PNG") for d in documents[1:])


async def test_the_command_line_writes_the_four_files(
    migrated_db: str,
    november: November,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli import main

    monkeypatch.setenv("BOT_TOKEN", "1:a")
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    out = tmp_path / "out"
    argv = ["report", "--month", "2026-11", "--district", "tekeli", "--out", str(out)]
    assert await asyncio.to_thread(main, [*argv, "--lang", "kk"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".csv", ".png", ".png", ".xlsx"]
    lines = (out / "invataxi-2026-11-tekeli.csv").read_text("utf-8-sig").splitlines()
    assert len(lines) == 2 and lines[0].startswith("Сапар №;")
    assert await asyncio.to_thread(main, ["report", "--month", "2026-13"]) == 2
    assert await asyncio.to_thread(main, [*argv[:4], "nowhere"]) == 2


async def test_rides_from_standing_orders_have_their_own_line(
    sessions: async_sessionmaker[AsyncSession], november: November
) -> None:
    """A ride the standing-order sweep booked counts once more, on its own line; the others
    are one-off requests."""
    from models import StandingOrder

    async with sessions() as session, session.begin():
        ride, _ = await book(session, "Дилара", time(8, 30), minutes_after=90)
        order = StandingOrder(
            rider_id=ride.rider_id,
            district_id="taldykorgan",
            weekdays=[0, 2, 4],
            pickup_time=time(7, 30),
            pickup_address="ул. Абая, 1",
            destination="Областная больница",
            purpose="procedure",
            first_date=DAY,
            end_date=DAY + timedelta(days=30),
            status="approved",
        )
        session.add(order)
        await session.flush()
        ride.standing_order_id = order.id
    async with sessions() as session:
        f = await rf.month_figures(session, NOVEMBER, TZ, "taldykorgan")
    assert f.requests == 11
    assert f.from_standing_orders == 1
