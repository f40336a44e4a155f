"""Kazakh and Russian texts from gettext catalogs.

Every `.po` file under `locales/<lang>/LC_MESSAGES/` is read at start (one file per feature, so
features don't fight over one catalog) and compiled in memory: no binary catalog is committed.
Message ids are English; a user never sees them, because a test requires every id in both
languages with the same placeholders.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.messages.pofile import read_po

from bot.clock import DEFAULT_TIMEZONE
from bot.services.i18n_types import Translate

LANGUAGES: Final = ("kk", "ru")
LOCALES_DIR: Final = Path(__file__).resolve().parent.parent / "locales"

log = logging.getLogger(__name__)


def N_(msgid: str) -> str:
    """Mark a message id for extraction where it is translated later (button labels, enums)."""
    return msgid


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@functools.lru_cache(maxsize=64)
def _read_po(path: Path, lang: str, mtime_ns: int, size: int) -> dict[str, str]:
    """One catalog's translated messages. Parsing a .po file is the slow part of starting (the
    tests start the bot hundreds of times), so a file is parsed again only once it changed."""
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {
        message.id: str(message.string)
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


class I18n:
    """All catalogs of all languages, read once."""

    def __init__(
        self,
        locales_dir: Path = LOCALES_DIR,
        default_language: str = "kk",
        tz: dt.tzinfo | None = None,
    ) -> None:
        self.default_language = default_language
        # The zone people read times in: the TIMEZONE setting (one zone for the whole service).
        self.tz = tz or ZoneInfo(DEFAULT_TIMEZONE)
        self.catalogs: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        for lang in LANGUAGES:
            for po in sorted((locales_dir / lang / "LC_MESSAGES").glob("*.po")):
                stat = po.stat()
                self.catalogs[lang].update(_read_po(po, lang, stat.st_mtime_ns, stat.st_size))
        self._reverse: dict[str, frozenset[str]] = {}

    def gettext(self, lang: str, msgid: str, /, **params: object) -> str:
        text = self.catalogs.get(lang, {}).get(msgid)
        if text is None:
            log.error("missing translation", extra={"lang": lang, "msgid": msgid[:60]})
            other = "ru" if lang == "kk" else "kk"
            text = self.catalogs[other].get(msgid, msgid)
        if params:
            return text.format_map(params)
        return text

    def translator(self, lang: str) -> Translator:
        return Translator(self, lang if lang in LANGUAGES else LANGUAGES[0])

    def variants(self, msgid: str) -> frozenset[str]:
        """The texts of one message in every language: reply buttons are matched against all."""
        found = self._reverse.get(msgid)
        if found is None:
            found = frozenset(self.catalogs[lang].get(msgid, msgid) for lang in LANGUAGES)
            self._reverse[msgid] = found
        return found

    def variants_of(self, msgids: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for msgid in msgids:
            out |= self.variants(msgid)
        return frozenset(out)


class Translator(Translate):
    """A translator bound to one user's language; call it like gettext with named params."""

    def __init__(self, i18n: I18n, lang: str) -> None:
        self.i18n = i18n
        self.lang = lang

    def __call__(self, msgid: str, /, **params: object) -> str:
        return self.i18n.gettext(self.lang, msgid, **params)

    @property
    def tz(self) -> dt.tzinfo:
        return self.i18n.tz

    def local(self, instant: dt.datetime) -> dt.datetime:
        """An aware instant as the clock on the reader's wall shows it."""
        return instant.astimezone(self.i18n.tz)

    def date(self, value: dt.date | dt.datetime) -> str:
        """25.11.2026: the form every rider and dispatcher reads the same way."""
        return value.strftime("%d.%m.%Y")

    def weekday(self, value: dt.date) -> str:
        return format_date(value, "EEEE", locale=self.lang)

    def day_label(self, value: dt.date) -> str:
        """'бейсенбі, 27.11' / 'четверг, 27.11'."""
        return f"{self.weekday(value)}, {value.strftime('%d.%m')}"
