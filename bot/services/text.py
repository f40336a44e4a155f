"""Free text as people type it, made safe to store and to show in a dispatcher chat.

Typed text reaches a group card, the database and other people's screens. Some characters
there do harm and never carry meaning in an address, a name or a comment: NUL (PostgreSQL
refuses it, so the confirm failed forever), other control characters (ESC, BEL), and invisible
format characters, among them the right-to-left overrides that make a card line read
backwards to the dispatcher (spoofing) and zero-width characters that hide text. They are
removed; compatibility forms (full-width digits, ligatures) are folded by NFKC. Every
free-text cleaner calls `strip_hostile` first.
"""

from __future__ import annotations

import unicodedata
from typing import Final

# Control characters that are ordinary whitespace: kept as a space (cleaners collapse it).
_WHITESPACE: Final = frozenset("\t\n\r\x0b\x0c")
# Unicode categories removed: control, format (bidi, zero-width, BOM), surrogate, private
# use, unassigned.
_HOSTILE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def strip_hostile(text: str) -> str:
    """NFKC, then without control, format, surrogate, private-use or unassigned characters."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(
        " " if ch in _WHITESPACE else ch
        for ch in normal
        if ch in _WHITESPACE or unicodedata.category(ch) not in _HOSTILE
    )


def has_hostile(text: str) -> bool:
    """Whether `strip_hostile` would remove anything (for a handler that prefers to refuse)."""
    return any(
        ch not in _WHITESPACE and unicodedata.category(ch) in _HOSTILE
        for ch in unicodedata.normalize("NFKC", text)
    )
