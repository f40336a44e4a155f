"""Structured (JSON-lines) logs with no message texts, phone numbers or IINs in them.

Handlers log ids and outcomes only; as a second line of defence, long digit runs that look like a
phone number or an IIN are masked in every record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_DIGITS = re.compile(r"\+?\d[\d\s()-]{8,}\d")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _scrub(value: str) -> str:
    return _DIGITS.sub("[hidden]", value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else _scrub(str(value))
        if record.exc_info:
            entry["exc"] = _scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update at INFO with the chat id; keep it for warnings only.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    cap_library_loggers()


# Libraries that log statements, parameters or request bodies at INFO or DEBUG: aiosqlite
# logs every statement with its values (typed text, the raw update), SQLAlchemy the same with
# echo, asyncpg and aiohttp requests and bodies. Capped even when the bot runs at DEBUG.
CAPPED_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "aiohttp", "alembic", "asyncio")


def cap_library_loggers() -> None:
    for name in CAPPED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
