"""The Kazakhstan IIN (ИИН / ЖСН): check digit, birth date, sex, masking.

The check digit catches typing mistakes before a dispatcher sees the profile. Since 2013 the
date and sex digits are not guaranteed to match the person, so they are hints, never a reason
to refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

IinError = Literal["format", "checksum", "never_issued"]
Sex = Literal["male", "female"]

_WEIGHTS_1: Final = tuple(range(1, 12))
_WEIGHTS_2: Final = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY: Final = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
_DIGITS: Final = re.compile(r"[0-9]{12}")
_SPACES: Final = re.compile(r"\s+")
MASK: Final = "•" * 8


@dataclass(frozen=True, slots=True)
class IinCheck:
    """The outcome of checking an IIN; `birth_date`/`sex` are read even when it is invalid."""

    valid: bool
    error: IinError | None
    birth_date: date | None
    sex: Sex | None


def iin_digits(raw: str) -> str:
    """The IIN without spaces (people type it in groups of digits)."""
    return _SPACES.sub("", raw)


def check_digit(first11: str) -> int | None:
    """The 12th digit for these 11 digits, or None when no IIN can be issued with them."""
    digits = [int(c) for c in first11]
    for weights in (_WEIGHTS_1, _WEIGHTS_2):
        value = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if value != 10:
            return value
    return None


def _birth_and_sex(digits: str) -> tuple[date | None, Sex | None]:
    century_digit = int(digits[6])
    century = _CENTURY.get(century_digit)
    if century is None:
        return None, None
    sex: Sex = "male" if century_digit % 2 else "female"
    try:
        born = date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None, sex
    return born, sex


def check_iin(raw: str) -> IinCheck:
    """Check the format and the check digit (weights 1..11, then 3..11,1,2; mod 11)."""
    digits = iin_digits(raw)
    if not _DIGITS.fullmatch(digits):
        return IinCheck(valid=False, error="format", birth_date=None, sex=None)
    born, sex = _birth_and_sex(digits)
    expected = check_digit(digits[:11])
    if expected is None:
        return IinCheck(valid=False, error="never_issued", birth_date=born, sex=sex)
    if expected != int(digits[11]):
        return IinCheck(valid=False, error="checksum", birth_date=born, sex=sex)
    return IinCheck(valid=True, error=None, birth_date=born, sex=sex)


def mask_iin(iin: str) -> str:
    """'••••••••1234': enough for a person to recognise their IIN, useless to anyone else."""
    digits = re.sub(r"[^0-9]", "", iin)
    return MASK + digits[-4:]


def age_on(birth: date, on: date) -> int:
    """Full years on a date (born 29 February: a year older on 1 March in other years)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
