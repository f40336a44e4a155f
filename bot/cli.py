"""The `invataxi` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="invataxi", description="Invataxi booking bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate the database, then serve (polling or webhook)")
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    sub.add_parser("check", help="validate settings and the districts file, then exit")
    status = sub.add_parser("status", help="outbox backlog, oldest requests, sweeps")
    status.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="write a month's report: XLSX, CSV and charts")
    report.add_argument("--month", required=True, metavar="YYYY-MM", help="e.g. 2026-11")
    report.add_argument("--district", metavar="ID", help="one district (default: the region)")
    report.add_argument("--out", metavar="DIR", default=".", help="where to write the files")
    report.add_argument("--lang", choices=("kk", "ru"), help="default: DEFAULT_LANGUAGE")
    bench = sub.add_parser("bench", help="measure throughput, latency and memory")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--postgres", metavar="URL", default="")
    bench.add_argument("--mode", choices=("updates", "outbox", "report"), default="updates")
    bench.add_argument("--quick", action="store_true", help="a short run, for smoke tests")
    bench.add_argument(
        "--pace",
        type=float,
        metavar="SECONDS",
        help="mean pause between one person's steps in the latency run (default 5)",
    )
    bench.add_argument(
        "--api-latency-ms",
        type=float,
        metavar="MS",
        help="how late every fake Bot API answer comes, as Telegram's network would (default 100)",
    )
    bench.add_argument(
        "--people", type=int, metavar="N", help="conversations at the same time (default 200)"
    )
    args = parser.parse_args(argv)

    if args.command == "bench":
        from bot.bench import main as bench_main

        return bench_main(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    from bot.logging_setup import setup_logging

    setup_logging(settings.log_level)
    if args.command == "migrate":
        from bot.migrate import upgrade

        upgrade(settings.database_url, data_key=settings.data_key.get_secret_value())
        print("database is up to date")
        return 0
    if args.command == "check":
        from bot.districts import DistrictsFileError, district_warnings, load_districts

        try:
            spec = load_districts(settings.districts_file)
        except DistrictsFileError as exc:
            print(exc, file=sys.stderr)
            return 2
        for warning in district_warnings(spec):
            print(f"warning: {settings.districts_file}: {warning}", file=sys.stderr)
        print(f"settings ok; {len(spec.districts)} districts")
        return 0
    if args.command == "status":
        from bot.status import print_status

        return asyncio.run(print_status(settings, as_json=args.json))
    if args.command == "report":
        from bot.reports.cli import run_report

        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(
            run_report(
                settings,
                month=args.month,
                district_id=args.district,
                out_dir=out_dir,
                lang=args.lang or settings.default_language,
            )
        )
    from bot.districts import DistrictsFileError
    from bot.runner import TokenRefused, serve
    from bot.services.crypto import DataKeyError
    from bot.settings import TOKEN_HELP

    try:
        asyncio.run(serve(settings))
    except (DistrictsFileError, DataKeyError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except TokenRefused:
        print(f"Telegram refused BOT_TOKEN: {TOKEN_HELP}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
