"""Kazakhstan phone numbers in one form, +7XXXXXXXXXX, so dispatchers can call them back.

+7 is shared with Russia: Kazakhstan has the ranges +7 6xx and +7 7xx (mobile 70x, 747, 75x,
76x, 771, 775-778; landline area codes 7xxx and 6xx); Russia's 3xx, 4xx, 8xx, 9xx are refused.
"""

from __future__ import annotations

import re
from typing import Final

_ALLOWED: Final = re.compile(r"\+?[0-9\s()\-.]+")
_SEPARATORS: Final = re.compile(r"[\s()\-.]")
_KZ_NATIONAL: Final = re.compile(r"[67][0-9]{9}")


def normalize_phone(raw: str) -> str | None:
    """'+77011234567' for any usual way of writing a Kazakhstan number, else None.

    Accepted: +7 701 123 45 67, 87011234567, 8 (701) 123-45-67, 7011234567, 77011234567.
    """
    text = raw.strip()
    if not _ALLOWED.fullmatch(text):
        return None
    plus = text.startswith("+")
    digits = _SEPARATORS.sub("", text.removeprefix("+"))
    if plus:
        national = digits[1:] if len(digits) == 11 and digits[0] == "7" else None
    elif len(digits) == 11 and digits[0] in "78":
        national = digits[1:]
    elif len(digits) == 10:
        national = digits
    else:
        national = None
    if national is None or not _KZ_NATIONAL.fullmatch(national):
        return None
    return "+7" + national
