"""The IIN at rest: Fernet encryption and a keyed hash, both derived from one data key.

The IIN is stored encrypted (readable only with `DATA_KEY`) and found through an HMAC of it, so
one IIN can't be registered twice and a copy of the database alone reveals no IIN. The two keys
are derived separately from the setting, so the lookup hash says nothing about the cipher key.

With `DATA_KEY` empty on the embedded SQLite default, the first start writes a random key into a
file in a `keys` folder beside the data folder (mode 0600, folder 0700), not in the data folder
that is backed up, and says in the log that it must be backed up separately. A key that
can't decrypt what is already stored stops the start with one readable line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from models import Rider
from models.sealed import use_cipher

log = logging.getLogger(__name__)

ENCRYPTION_INFO = b"invataxi/iin-encryption/v1"
LOOKUP_INFO = b"invataxi/iin-lookup/v1"
KEY_FILE_SUFFIX = ".key"
MIN_KEY_LENGTH = 16
# How many stored IINs are tried at start: enough to catch a wrong key, cheap on any size.
CHECK_SAMPLE = 3


class DataKeyError(Exception):
    """The data key is missing, unreadable or wrong; the message is one line for the operator."""


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


@dataclass(frozen=True)
class DataKey:
    """Encrypts, decrypts and hashes IINs; built once at start and handed to handlers."""

    cipher: Fernet
    lookup_key: bytes
    # The key file written at this start, if any: removed again when the key proves wrong.
    generated: Path | None = None

    @classmethod
    def from_secret(cls, secret: str, generated: Path | None = None) -> DataKey:
        raw = secret.strip().encode("utf-8")
        if len(raw) < MIN_KEY_LENGTH:
            raise DataKeyError(
                f"Setting DATA_KEY is invalid: expected at least {MIN_KEY_LENGTH} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        fernet_key = base64.urlsafe_b64encode(_derive(raw, ENCRYPTION_INFO))
        return cls(
            cipher=Fernet(fernet_key), lookup_key=_derive(raw, LOOKUP_INFO), generated=generated
        )

    def encrypt(self, iin: str) -> str:
        return self.cipher.encrypt(iin.encode("ascii")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The IIN in clear; raises DataKeyError when this key did not encrypt it."""
        try:
            return self.cipher.decrypt(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            raise DataKeyError("the data key cannot decrypt a stored IIN") from None

    def lookup_hash(self, iin: str) -> str:
        """HMAC-SHA256 of the IIN's digits, hex: 64 characters, equal for equal IINs."""
        digits = "".join(c for c in iin if c.isdigit())
        return hmac.new(self.lookup_key, digits.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SealedIin:
    """An IIN as it is kept: encrypted, its lookup hash and its last four digits (for cards)."""

    encrypted: str
    lookup_hash: str
    last4: str


def seal_iin(key: DataKey, iin: str) -> SealedIin:
    digits = "".join(c for c in iin if c.isdigit())
    return SealedIin(key.encrypt(digits), key.lookup_hash(digits), digits[-4:])


KEY_DIR = "keys"


def key_file_path(database_url: str) -> Path | None:
    """`data/invataxi.sqlite3` keeps its key in `keys/invataxi.key`; None for other databases.

    Not beside the database: operators back up the data folder, and a copy of the database
    with its key beside it is the personal data in clear.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.parent.parent / KEY_DIR / database.with_suffix(KEY_FILE_SUFFIX).name


def legacy_key_file_path(database_url: str) -> Path | None:
    """Where earlier versions wrote the key: beside the database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_suffix(KEY_FILE_SUFFIX)


def existing_key_file(database_url: str) -> Path | None:
    """The key file in use: the current place first, then the old one (with a warning)."""
    path, legacy = key_file_path(database_url), legacy_key_file_path(database_url)
    if path is not None and path.exists():
        return path
    if legacy is not None and legacy.exists():
        log.warning(
            "the data key file %s sits beside the database, in the folder that is backed up: "
            "move it to %s (mode 0600) and keep its copy apart from the backups",
            legacy,
            path,
        )
        return legacy
    return None


def load_data_key(secret: str, database_url: str) -> DataKey:
    """The data key from `DATA_KEY` (`secret`), or from (or newly into) the key file of a
    SQLite database. The key also becomes the one sealed columns use (`models.sealed`).
    """
    key = _load_data_key(secret, database_url)
    use_cipher(key.cipher)
    return key


def _load_data_key(secret: str, database_url: str) -> DataKey:
    if secret.strip():
        return DataKey.from_secret(secret)
    path = existing_key_file(database_url) or key_file_path(database_url)
    if path is None:
        if make_url(database_url).get_backend_name() == "sqlite":
            # An in-memory database lives as long as the process, and so may its key.
            return DataKey.from_secret(secrets.token_urlsafe(32))
        raise DataKeyError(
            "Setting DATA_KEY is required with PostgreSQL: set it in .env to a long random "
            "string and keep a copy in a safe place"
        )
    if path.exists():
        try:
            return DataKey.from_secret(path.read_text(encoding="ascii"))
        except (OSError, UnicodeError):
            raise DataKeyError(
                f"The data key file {path} cannot be read: restore it from the backup"
            ) from None
        except DataKeyError:
            raise DataKeyError(
                f"The data key file {path} is damaged: restore it from the backup"
            ) from None
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise DataKeyError(
            f"The data key file {path} cannot be created ({exc.strerror}); set DATA_KEY instead"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    log.warning(
        "generated a new data key file %s: back it up now; without it the stored IINs "
        "can't be read",
        path,
    )
    return DataKey.from_secret(secret, generated=path)


async def verify_data_key(session: AsyncSession, key: DataKey) -> None:
    """Stop the start if the key can't decrypt IINs already stored (a wrong or lost key).

    A key file written just now for a database that already has riders is removed again, so
    the next start does not take the wrong key for the right one.
    """
    tokens = list(
        await session.scalars(
            select(Rider.iin_encrypted).order_by(Rider.id.desc()).limit(CHECK_SAMPLE)
        )
    )
    for token in tokens:
        try:
            key.decrypt(token)
        except DataKeyError:
            if key.generated is not None:
                key.generated.unlink(missing_ok=True)
                raise DataKeyError(
                    f"The database already holds encrypted IINs but the data key file "
                    f"{key.generated} was missing: restore it from the backup or set DATA_KEY "
                    "to the key used before"
                ) from None
            raise DataKeyError(
                "The data key cannot decrypt the IINs stored in the database: set DATA_KEY "
                "(or restore the key file) to the key used before; nothing was changed"
            ) from None
