"""`python -m bot ...` for the system tests, started without paying for the imports each time.

Importing aiogram builds some 600 pydantic models: about 9 s of CPU on the 2-core CI machine,
and the crash and scale-out tests start the bot a dozen times (every restart after a kill is a
new process). Here a fork server imports the bot once per test worker and every program is
forked from it: a new process, with its own pid, environment, working directory and log, that
SIGKILL kills and SIGTERM stops exactly as it would the real command, which runs the same
`bot.cli.main`. The command itself, interpreter start included, is run for real by
`tests/test_settings.py` and `tests/test_bench.py`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path

_context: ForkServerContext | None = None


def _fork_server() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        assert isinstance(context, ForkServerContext)
        # What `python -m bot run` imports before it reads its settings.
        context.set_forkserver_preload(["bot.cli", "bot.runner", "bot.app", "bot.webhook"])
        _context = context
    return _context


def _main(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """The child: the command's environment, directory and output, then the command itself."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    from bot.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class Program:
    """A running `python -m bot <argv>`: its pid, signals, and exit status as Popen has them."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self._process = _fork_server().Process(
            target=_main, args=(argv, env, str(cwd), str(log)), daemon=True
        )
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs; the exit status, or minus the signal that ended it."""
        return self._process.exitcode

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise TimeoutError(f"process {self.pid} still runs after {timeout} s")
        return self.returncode

    async def until_exit(self, timeout: float = 60.0) -> int:
        """The exit status, waited for without blocking the test's event loop."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} still runs after {timeout} s")
            await asyncio.sleep(0.05)
        return self.returncode
