"""Settings read from the environment and `.env`, validated once at start.

A bad setting must stop the program with one readable line, never a traceback: the people who
deploy this bot are district IT staff, not Python developers.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.clock import DEFAULT_TIMEZONE

DEFAULT_API_URL = "https://api.telegram.org"
# A token is "<bot id>:<secret>"; the secret is letters, digits, "_" and "-".
_TOKEN_SECRET = re.compile(r"[A-Za-z0-9_-]+")
# Words of example tokens (.env.example's "replace-with-your-token", docs' "ABC-DEF..."):
# a token still holding one was copied, not filled in.
_PLACEHOLDER = re.compile(r"replace|your|example|abc-def", re.IGNORECASE)
TOKEN_HELP = (
    "get your bot's token from @BotFather in Telegram (/newbot, or /token for an existing bot) "
    "and put it in .env as BOT_TOKEN=123456789:AA... (see .env.example)"
)
# Telegram's rule for the secret_token of setWebhook.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A generated key (token_urlsafe(32), Fernet.generate_key) has 43-44 characters of ~64 kinds;
# these catch a short passphrase or a repeated pattern, not every weak key.
MIN_DATA_KEY = 32
MIN_DISTINCT = 12


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting is documented in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    telegram_api_url: str = DEFAULT_API_URL
    database_url: str = "sqlite+aiosqlite:///./data/invataxi.sqlite3"
    redis_url: str = ""
    timezone: str = DEFAULT_TIMEZONE
    default_language: Literal["kk", "ru"] = "kk"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    districts_file: Path = Path("districts.toml")
    webhook_url: str = ""
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr = SecretStr("")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_key: SecretStr = SecretStr("")
    reminder_evening_at: time = time(19, 0)
    reminder_before_minutes: int = Field(default=60, ge=5, le=24 * 60)
    sweep_interval_seconds: int = Field(default=30, ge=1, le=3600)
    retention_days: int = Field(default=3 * 365, ge=30)
    process_name: str = ""
    # Updates handled at once, each with its own database connection; more wait their turn.
    database_pool_size: int = Field(default=8, ge=1, le=100)
    # Telegram's sending limits, with a margin (the sender's `bot.delivery.Limits`). Tests shrink
    # them; in production leave them be.
    outbox_private_interval: float = Field(default=1.0, ge=0.0, le=60.0)
    outbox_private_burst: int = Field(default=3, ge=1, le=20)
    outbox_group_per_minute: int = Field(default=19, ge=1, le=100_000)
    outbox_group_spacing: float = Field(default=3.0, ge=0.0, le=60.0)
    outbox_global_per_second: int = Field(default=28, ge=1, le=100_000)
    # Messages and presses one person may send in a private chat: a burst, then so many a minute
    # (`bot.services.throttle`); past that, one "slow down" and silence. Tests raise the burst:
    # their simulated people answer in milliseconds.
    throttle_burst: int = Field(default=10, ge=1, le=100_000)
    throttle_per_minute: int = Field(default=30, ge=1, le=100_000)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        head, _, tail = token.partition(":")
        if _PLACEHOLDER.search(tail):
            raise ValueError(f"it still holds the example's placeholder: {TOKEN_HELP}")
        if not head.isdigit() or not _TOKEN_SECRET.fullmatch(tail):
            raise ValueError(f"this is not a bot token: {TOKEN_HELP}")
        return SecretStr(token)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("expected Telegram user ids separated by commas") from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA zone name such as {DEFAULT_TIMEZONE}") from None
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL starting with http:// or https://")
        # The token travels in every Bot API request's path: in clear only to this machine
        # (a local Bot API server or a test stand-in).
        if value.startswith("http://") and not is_loopback(value):
            raise ValueError("expected https:// (http:// only for a server on this machine)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        if secret and not WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("expected 1-256 characters, each a letter, digit, _ or -")
        return SecretStr(secret)

    @field_validator("data_key")
    @classmethod
    def _key_strength(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if key and (len(key) < MIN_DATA_KEY or len(set(key)) < MIN_DISTINCT):
            raise ValueError(
                f"too weak: use at least {MIN_DATA_KEY} random characters, e.g. "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return SecretStr(key)

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "expected sqlite+aiosqlite:///path/to/file.sqlite3 "
                "or postgresql+asyncpg://user@host/db"
            )
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings or raise SettingsError naming the first bad setting and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        if err["type"] == "missing" and name == "BOT_TOKEN":
            hint = f"it is required: {TOKEN_HELP}"
        elif err["type"] == "missing":
            hint = "it is required: set it in .env or the environment (see .env.example)"
        else:
            hint = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Setting {name} is invalid: {hint}") from None
