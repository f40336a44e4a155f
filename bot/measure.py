"""What the benchmarks share: a measurement in a fresh process of its own, and its peak memory.

Each measured configuration runs in a process of its own so that the peak resident memory it
reports is that configuration's alone (`bot.bench`, `bot.reports.bench`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENT_TIMEOUT_S = 1800


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux and BSD report KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure_apart(module: str, args: list[str], what: str) -> dict[str, Any]:
    """`python -m <module> <args>` in a fresh process; its last JSON line is the result.

    Raises RuntimeError (with the end of its error output) when it fails or prints none."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=MEASUREMENT_TIMEOUT_S,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {what} measurement failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
