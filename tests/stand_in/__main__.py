"""Run the stand-in on its own: ``python -m tests.stand_in --port 8081``.

Handy for trying the bot by hand without Telegram: start this, start the bot with its API base
URL pointed here, then play a user over HTTP, e.g.::

    curl -X POST localhost:8081/_stand_in/users/1001/text -d '{"text": "/start"}'
    curl localhost:8081/_stand_in/state
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import DEFAULT_TOKEN, BotApiStandIn


async def _serve(args: argparse.Namespace) -> None:
    stand_in = BotApiStandIn(
        token=args.token, host=args.host, port=args.port, enforce_limits=args.enforce_limits
    )
    for group_id in args.group:
        stand_in.group(group_id, f"Group {group_id}")
    async with stand_in:
        print(stand_in.base_url, flush=True)
        print(f"token: {stand_in.token}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument(
        "--group", type=int, action="append", default=[], help="register a group chat id"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
