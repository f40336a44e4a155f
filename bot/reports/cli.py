"""`invataxi report`: the monthly report as files on disk, for the department's paperwork."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.db import create_engine, create_sessionmaker, reader
from bot.reports.monthly import write_report
from bot.services.district_cache import district_by_id
from bot.services.report_figures import parse_month
from bot.settings import Settings


async def run_report(
    settings: Settings, *, month: str, district_id: str | None, out_dir: Path, lang: str
) -> int:
    """Write the report's four files into `out_dir` (which exists) and print their paths;
    2 on a bad month or district."""
    first = parse_month(month)
    if first is None:
        print(f"--month {month!r}: expected a month such as 2026-11", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    try:
        async with reader(create_sessionmaker(engine))() as session:
            if district_id is not None and await district_by_id(session, district_id) is None:
                print(f"--district {district_id!r}: no such district", file=sys.stderr)
                return 2
            paths = await write_report(
                session,
                first=first,
                tz=settings.tz,
                lang=lang,
                out_dir=out_dir,
                district_id=district_id,
            )
    finally:
        await engine.dispose()
    for path in paths:
        print(path)
    return 0
