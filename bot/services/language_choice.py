"""A language named in words: «қазақша», «русский», «на казахском», «орысша», "kz"…

At the language step (and anywhere a person writes only a language's name) a typed name
chooses it, in either language and in Latin letters, so nobody is stuck when the buttons are
hidden or a screen reader makes typing easier than finding a button.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from bot.services.dates import fold

Language = Literal["kk", "ru"]

_WORD: Final = re.compile(r"[^\W\d_]+")
# Folded stems (Kazakh letters as Russian ones): «Қазақ тілі», «казахский», «казакша».
_STEMS: Final[dict[Language, tuple[str, ...]]] = {
    "kk": ("казак", "казах", "kazak", "qazaq", "kaz"),
    "ru": ("рус", "орыс", "russ", "rus"),
}
_WHOLE: Final[dict[Language, frozenset[str]]] = {
    "kk": frozenset({"kk", "kz", "каз", "кз"}),
    "ru": frozenset({"ru", "рф"}),
}
# Words that may come with the name: «на казахском», «қазақ тілі», «по-русски», «тіл», «язык».
_FILLER: Final = frozenset(
    {"на", "по", "тили", "тил", "язык", "языке", "тилинде", "тилде", "хочу", "мен", "в", "i"}
)
_MAX_WORDS: Final = 4


def language_named(text: str) -> Language | None:
    """ "kk" or "ru" when the text is just a language's name (with «на», «тілі»…), else None.

    A sentence that happens to mention a language is not a choice, and a text naming both
    («Тіл / Язык», «қазақша немесе орысша») chooses neither.
    """
    words = [fold(w) for w in _WORD.findall(text)]
    if not words or len(words) > _MAX_WORDS:
        return None
    found: set[Language] = set()
    for word in words:
        if word in _FILLER:
            continue
        language = _language_of(word)
        if language is None:
            return None
        found.add(language)
    if len(found) != 1:
        return None
    return found.pop()


def _language_of(word: str) -> Language | None:
    for language in ("kk", "ru"):
        if word in _WHOLE[language] or any(word.startswith(s) for s in _STEMS[language]):
            return language
    return None
