"""Every text a user can see exists in Kazakh and in Russian, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR, I18n, placeholders

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("bot", "handlers")
# Latin words allowed inside Kazakh and Russian texts: product names and units.
LATIN_ALLOWED = {"Telegram", "Invataxi", "invataxi", "t", "me", "https", "tg", "id"}


def code_msgids() -> dict[str, str]:
    """Message ids used in code: every literal inside t("...") or N_("...")."""
    found: dict[str, str] = {}
    for folder in SOURCE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=[("**.py", "python")],
            keywords={"t": None, "N_": None},
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, f"{folder}/{filename}:{lineno}")
    return found


def catalog_entries() -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for lang in LANGUAGES:
        for po in sorted((LOCALES_DIR / lang / "LC_MESSAGES").glob("*.po")):
            with po.open("rb") as fh:
                for message in read_po(fh, locale=lang):
                    if message.id:
                        assert not message.fuzzy, f"{po}: fuzzy entry {message.id!r}"
                        entries[lang][str(message.id)] = str(message.string or "")
    return entries


def test_catalogs_exist_for_both_languages() -> None:
    for lang in LANGUAGES:
        assert list((LOCALES_DIR / lang / "LC_MESSAGES").glob("*.po")), f"no {lang} catalog"


def test_every_code_msgid_is_translated_in_both_languages() -> None:
    entries = catalog_entries()
    missing = [
        f"{where}: {lang}: {msgid!r}"
        for msgid, where in code_msgids().items()
        for lang in LANGUAGES
        if not entries[lang].get(msgid)
    ]
    assert not missing, "untranslated:\n" + "\n".join(missing[:50])


def test_catalogs_cover_the_same_ids_with_the_same_placeholders() -> None:
    entries = catalog_entries()
    kk, ru = entries["kk"], entries["ru"]
    assert set(kk) == set(ru), f"only kk: {set(kk) - set(ru)}; only ru: {set(ru) - set(kk)}"
    problems = []
    for msgid in kk:
        expected = placeholders(msgid)
        for lang, text in (("kk", kk[msgid]), ("ru", ru[msgid])):
            if not text:
                problems.append(f"{lang}: empty translation of {msgid!r}")
            elif placeholders(text) != expected:
                problems.append(f"{lang}: placeholders differ in {msgid!r}")
    assert not problems, "\n".join(problems[:50])


def _latin_words(text: str) -> set[str]:
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"/[a-z_]+", "", text)
    text = re.sub(r"https?://\S+", "", text)
    return {w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in LATIN_ALLOWED}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_english_reaches_users(lang: str) -> None:
    entries = catalog_entries()[lang]
    english = {msgid: words for msgid, text in entries.items() if (words := _latin_words(text))}
    assert not english, f"Latin words in {lang}: {list(english.items())[:10]}"


def test_kazakh_uses_its_own_letters() -> None:
    kk = " ".join(catalog_entries()["kk"].values())
    for letter in "әғқңөұүі":
        assert letter in kk


def test_i18n_renders_and_recognises_buttons_in_both_languages() -> None:
    i18n = I18n()
    ids = code_msgids()
    assert "Back" in ids and "Stop" in ids
    variants = i18n.variants("Back")
    assert len(variants) == 2
    assert all(v != "Back" for v in variants)
