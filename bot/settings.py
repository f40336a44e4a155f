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

DEFAULT_API_URL = "https://api.telegram.org"
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
    timezone: str = "Asia/Almaty"
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

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        head, _, tail = token.partition(":")
        if not head.isdigit() or not tail:
            raise ValueError("expected the token from @BotFather, like 123456:ABC-DEF...")
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
            raise ValueError("expected an IANA zone name such as Asia/Almaty") from None
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
        if err["type"] == "missing":
            hint = "it is required: set it in .env or the environment (see .env.example)"
        else:
            hint = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Setting {name} is invalid: {hint}") from None
