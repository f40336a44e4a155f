"""`invataxi bench --mode report`: the monthly report of a big and a small month, each built in a
process of its own, so the two peak memories show whether memory grows with the number of rides.

Apart from `bot.bench`, which imports aiogram: a report needs none of it, and each measured
process then starts in a few seconds instead of paying for 600 Telegram types.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import DEFAULT_TIMEZONE
from bot.measure import measure_apart, peak_rss_mb

# Of every 20 rides: 12 completed, 2 rejected, 2 cancelled by the rider, 1 no-show, 1 expired,
# 2 still scheduled; each with the events that led there.
REPORT_MIX = (
    ("completed",) * 12
    + ("rejected",) * 2
    + ("cancelled",) * 2
    + (
        "no_show",
        "expired",
        "scheduled",
        "scheduled",
    )
)
REPORT_PATHS = {
    "completed": ("taken", "scheduled", "arrived", "completed"),
    "rejected": ("rejected",),
    "cancelled": ("scheduled", "cancelled"),
    "no_show": ("scheduled", "arrived", "no_show"),
    "expired": ("expired",),
    "scheduled": ("scheduled",),
}


async def seed_report_month(sessions: Any, first: date, rides: int, offset: int) -> None:
    """A month of rides with their events, in bulk; ride ids start after `offset`."""
    from sqlalchemy import insert

    from bot.services.report_figures import month_bounds, next_month
    from models import Ride as RideRow
    from models import RideEvent

    start, _ = month_bounds(first, ZoneInfo(DEFAULT_TIMEZONE))
    days = (next_month(first) - first).days
    riders = max(1, min(900, rides // 10))
    chunk = 2000
    for begin in range(0, rides, chunk):
        ride_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for n in range(begin, min(rides, begin + chunk)):
            ride_id = offset + n + 1
            pickup = start + timedelta(days=n % days, hours=8 + n % 12)
            created = pickup - timedelta(days=1, minutes=n % 300)
            outcome = REPORT_MIX[n % len(REPORT_MIX)]
            path = REPORT_PATHS[outcome]
            rider = 1 + n % riders
            ride_rows.append(
                {
                    "id": ride_id,
                    "rider_id": rider,
                    "district_id": f"d{1 + (rider - 1) % 2}",
                    "status": path[-1],
                    "pickup_address": "ул. Абая, 1",
                    "destination": "Областная больница",
                    "purpose": ("clinic", "procedure", "rehab", "work")[n % 4],
                    "pickup_at": pickup,
                    "wheelchair": n % 7 == 0,
                    "vehicle_id": None if outcome in ("rejected", "expired") else 1 + n % 4,
                    "dispatcher_id": 9001,
                    "dispatcher_name": "Айгүл",
                    "reason": "no_car" if outcome == "rejected" else None,
                    "cancelled_late": outcome == "cancelled" and n % 3 == 0,
                    "created_at": created,
                    "updated_at": created,
                    "status_changed_at": created,
                }
            )
            previous, at = None, created
            for step, status in enumerate(("requested", *path)):
                if step:
                    at = created + timedelta(minutes=3 + n % 40) if step == 1 else pickup
                actor = (
                    "dispatcher"
                    if status not in ("requested", "expired", "cancelled")
                    else ("system" if status == "expired" else "rider")
                )
                event_rows.append(
                    {
                        "ride_id": ride_id,
                        "at": at + timedelta(minutes=step),
                        "actor_kind": actor,
                        "actor_id": 9001 if actor == "dispatcher" else None,
                        "actor_name": "Айгүл" if actor == "dispatcher" else None,
                        "from_status": previous,
                        "to_status": status,
                        "details": {},
                    }
                )
                previous = status
        async with sessions() as session, session.begin():
            await session.execute(insert(RideRow), ride_rows)
            await session.execute(insert(RideEvent), event_rows)


async def measure_report(database_url: str, month: str) -> dict[str, Any]:
    """Build one month's report from a seeded database; seconds and this process's peak RSS."""
    from bot.db import create_engine, create_sessionmaker, reader
    from bot.reports.monthly import write_report
    from bot.services.report_figures import parse_month

    first = parse_month(month)
    assert first is not None
    engine = create_engine(database_url)
    rss_before = peak_rss_mb()
    try:
        with tempfile.TemporaryDirectory(prefix="invataxi-report-") as tmp:
            began, cpu_began = time.perf_counter(), time.process_time()
            async with reader(create_sessionmaker(engine))() as session:
                paths = await write_report(
                    session,
                    first=first,
                    tz=ZoneInfo(DEFAULT_TIMEZONE),
                    lang="ru",
                    out_dir=Path(tmp),
                )
            elapsed = time.perf_counter() - began
            cpu = time.process_time() - cpu_began
            sizes = {p.suffix: p.stat().st_size for p in paths}
    finally:
        await engine.dispose()
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "xlsx_kb": sizes.get(".xlsx", 0) // 1024,
    }


async def seed_report_database(url: str, months: list[tuple[date, int]]) -> None:
    """Two districts with cars, 900 riders, and the months' rides."""
    from sqlalchemy import insert

    from bot.db import create_engine, create_sessionmaker
    from bot.migrate import upgrade_async
    from models import District, Vehicle, utcnow
    from models import Rider as RiderRow

    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    now = utcnow()
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                insert(District),
                [
                    {
                        "id": f"d{n}",
                        "name_kk": f"Аудан {n}",
                        "name_ru": f"Район {n}",
                        "chat_id": -1004000000000 - n,
                        "language": "ru",
                        "rules": {},
                        "extra_categories": [],
                        "updated_at": now,
                    }
                    for n in (1, 2)
                ],
            )
            await session.execute(
                insert(Vehicle),
                [
                    {
                        "district_id": f"d{1 + n % 2}",
                        "plate": f"{100 + n}ABC05",
                        "make": "Ford Transit",
                        "colour_kk": "ақ",
                        "colour_ru": "белый",
                        "driver_name": "Водитель",
                        "driver_phone": "+77010000000",
                    }
                    for n in range(4)
                ],
            )
            await session.execute(
                insert(RiderRow),
                [
                    {
                        "district_id": f"d{1 + n % 2}",
                        "full_name": f"Пассажир {n}",
                        "phone": "+77011234567",
                        "iin_encrypted": "sealed",
                        "iin_hash": f"bench-{n}",
                        "home_address": "ул. Абая, 1",
                        "category": ("group1_mobility", "elderly")[n % 2],
                        "vkk_number": f"{n}/24",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(900)
                ],
            )
        offset = 0
        for first, rides in months:
            await seed_report_month(sessions, first, rides, offset)
            offset += rides
    finally:
        await engine.dispose()


def run_report_bench(report_rides: int) -> dict[str, Any]:
    """Seed a big and a small month, then report each in a subprocess of its own."""
    big, small = date(2026, 11, 1), date(2026, 10, 1)
    small_rides = max(1, report_rides // 10)
    with tempfile.TemporaryDirectory(prefix="invataxi-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'report.sqlite3'}"
        asyncio.run(seed_report_database(url, [(big, report_rides), (small, small_rides)]))
        runs = {
            str(rides): spawn_report(url, f"{first:%Y-%m}")
            for first, rides in ((big, report_rides), (small, small_rides))
        }
    return {"rides": report_rides, "runs": runs}


def print_report(result: dict[str, Any]) -> None:
    for rides, run in result["runs"].items():
        print(
            f"report of a month of {int(rides):,} rides: {run['seconds']:.1f} s "
            f"({run['cpu_seconds']:.1f} s of CPU), peak RSS "
            f"{run['rss_mb']:.0f} MB ({run['rss_before_mb']:.0f} MB before the report), "
            f"workbook {run['xlsx_kb']} KB"
        )


def spawn_report(database_url: str, month: str) -> dict[str, Any]:
    """One month's report in a fresh process (`python -m bot.reports.bench`)."""
    return measure_apart(
        "bot.reports.bench", ["--database", database_url, "--month", month], "report"
    )


def main(argv: list[str] | None = None) -> int:
    """One report measured in this process; prints its result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bot.reports.bench")
    parser.add_argument("--database", required=True, help="the database to read")
    parser.add_argument("--month", required=True, help="the month, e.g. 2026-11")
    args = parser.parse_args(argv)
    result = asyncio.run(measure_report(args.database, args.month))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
