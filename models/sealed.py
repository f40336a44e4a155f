"""Columns sealed with the data key: stored as Fernet ciphertext, read back as plain values.

A column type can't be handed per-session state, so the cipher the running process uses is set
once at start (`use_cipher`, called by `bot.services.crypto.load_data_key`) and read here when a
row is written or loaded. Nothing in clear is stored from which the IIN follows: the birth date
is its first six digits, so it is sealed like the IIN itself.
"""

from __future__ import annotations

from datetime import date

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Dialect, Text, TypeDecorator

_cipher: list[Fernet] = []


class SealedValueError(Exception):
    """No data key is set, or the stored value was sealed with another key."""


def use_cipher(cipher: Fernet | None) -> None:
    """The cipher sealed columns use from now on (None: none, reading them fails)."""
    _cipher[:] = [cipher] if cipher is not None else []


def _current() -> Fernet:
    if not _cipher:
        raise SealedValueError("no data key is set for sealed columns")
    return _cipher[0]


def seal_text(value: str) -> str:
    return _current().encrypt(value.encode("utf-8")).decode("ascii")


def open_text(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        raise SealedValueError("the data key cannot open a sealed value") from None


class SealedDate(TypeDecorator[date]):
    """A date kept as ciphertext (Text); equal dates give different ciphertexts."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: Dialect) -> str | None:
        return None if value is None else seal_text(value.isoformat())

    def process_result_value(self, value: str | None, dialect: Dialect) -> date | None:
        return None if value is None else date.fromisoformat(open_text(value))
