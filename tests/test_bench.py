"""`invataxi bench` runs end to end and reports in the documented shape (no timings asserted)."""

from __future__ import annotations

import argparse
import json

import pytest

from bot.bench import main

pytestmark = pytest.mark.slow

RUN_KEYS = {
    "updates_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rss_mb",
    "ratio_to_floor",
    "cpu_ms_per_update",
    "sim_cpu_ms_per_update",
    "statements_per_update",
    "api_latency_ms",
    "full_gc_runs",
    "full_gc_max_ms",
}


def bench_args(mode: str, postgres: str = "") -> argparse.Namespace:
    # A short network delay: the smoke run checks the shape, not the figures.
    return argparse.Namespace(
        json=True, postgres=postgres, mode=mode, quick=True, api_latency_ms=20.0, people=None
    )


def test_updates_mode_reports_floor_and_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(bench_args("updates")) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    report = json.loads(lines[0])
    assert set(report) == {"floor_updates_per_s", "sqlite"}
    assert report["floor_updates_per_s"] > 0
    assert set(report["sqlite"]) == RUN_KEYS
    assert all(isinstance(v, int | float) and v >= 0 for v in report["sqlite"].values())
    assert report["sqlite"]["updates_per_s"] > 0
    assert report["sqlite"]["p50_ms"] <= report["sqlite"]["p95_ms"] <= report["sqlite"]["p99_ms"]
    # Every step waits for the network at least once before the person reads the answer.
    assert report["sqlite"]["api_latency_ms"] == 20.0
    assert report["sqlite"]["p50_ms"] >= 20.0
    assert report["sqlite"]["statements_per_update"] > 0


@pytest.mark.postgres
async def test_the_postgres_phase_measures_the_bot_on_postgresql() -> None:
    """The PostgreSQL phase as `invataxi bench --postgres URL` runs it, in this process (the
    test above starts the floor and SQLite phases as processes of their own)."""
    from bot.bench import Plan, run_phase
    from tests.conftest import PG_ADMIN_DSN, require_postgres

    require_postgres()
    # The bench creates a database of its own on this server and drops it afterwards.
    url = PG_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    plan = Plan.for_args(True, None, 20.0, None)
    run = await run_phase("postgres", plan, url)
    assert RUN_KEYS - {"ratio_to_floor"} <= set(run)
    assert run["updates_per_s"] > 0 and run["errors"] == 0
    assert run["p50_ms"] >= 20.0 and run["statements_per_update"] > 0


def test_the_installed_command_runs_the_outbox_mode_from_any_directory(tmp_path) -> None:
    """`invataxi bench --mode outbox` as an operator types it, outside the checkout: the whole
    backlog is delivered within Telegram's ceiling."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "bench", "--mode", "outbox", "--quick", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["sent"] == report["messages"] > 0
    assert report["unsent"] == 0 and report["dead"] == 0
    assert report["ceiling_per_s"] == 30
    assert report["messages_per_s"] > 0


def test_report_mode_reports_seconds_and_memory_for_two_month_sizes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(bench_args("report")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["rides"] == 200
    assert set(report["runs"]) == {"200", "20"}
    for run in report["runs"].values():
        assert run["seconds"] > 0 and run["rss_mb"] >= run["rss_before_mb"] > 0
        assert run["xlsx_kb"] > 0
