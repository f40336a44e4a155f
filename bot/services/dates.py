"""A date as people type it, in Kazakh or Russian, whatever language they chose in the bot.

Many riders answer the date question with words, not «04.12»: «завтра», «ертең», «25 декабря»,
«4 желтоқсан», «в пятницу», «сенбі» or just «4». Kazakh is often typed without its own letters
(«ертен», «бурсигуни»), so words are compared with those letters folded to Russian ones. The
parser only finds a calendar date; whether it can be booked is the booking rules' question
(a date in the past is returned as such, so the refusal can name the earliest date instead).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Final

# A day-and-month more than this far in the past means next year (typed 03.01 on 28.12).
YEAR_ROLLOVER: Final = timedelta(days=180)

_DMY: Final = re.compile(r"(?<!\d)(\d{1,2})[./-](\d{1,2})(?:[./-](\d{4}|\d{2}))?(?!\d)")
_ISO: Final = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_TOKEN: Final = re.compile(r"\d+|[^\W\d_]+")
_FOLD: Final = str.maketrans("әғқңөұүһіё", "агкноуухие")

# Days from today. Words are folded (Kazakh letters to Russian ones, ё to е).
_RELATIVE: Final = {
    "сегодня": 0,
    "бугин": 0,
    "завтра": 1,
    "ертен": 1,
    "послезавтра": 2,
    "бурсигуни": 2,
    "бурсугуни": 2,
    "бурсыгуни": 2,
}

# Month stems, folded; a word matches when it starts with one («декабря», «желтоқсанда»).
_MONTH_STEMS: Final = (
    ("январ", "янв", "кантар"),
    ("феврал", "фев", "акпан"),
    ("март", "мар", "наурыз"),
    ("апрел", "апр", "сауир"),
    ("мая", "май", "мамыр"),
    ("июн", "маусым"),
    ("июл", "шилде"),
    ("август", "авг", "тамыз"),
    ("сентябр", "сен", "кыркуйек"),
    ("октябр", "окт", "казан"),
    ("ноябр", "ноя", "караша"),
    ("декабр", "дек", "желтоксан"),
)
# Short forms that must be the whole word: "мар" must not catch «марка», "сен" not «сенбі».
_MONTH_SHORT: Final = frozenset({"янв", "фев", "мар", "апр", "авг", "сен", "окт", "ноя", "дек"})

# ISO weekday (1 is Monday): full-name stems (folded) and whole-word abbreviations.
_WEEKDAY_STEMS: Final = (
    ("понедельн", "дуйсенби"),
    ("вторник", "сейсенби"),
    ("сред", "сарсенби"),
    ("четверг", "бейсенби"),
    ("пятниц", "жума"),
    ("суббот", "сенби"),
    ("воскресен", "жексенби"),
)
_WEEKDAY_SHORT: Final = (
    ("пн", "дс"),
    ("вт", "сс"),
    ("ср",),
    ("чт", "бс"),
    ("пт", "жм"),
    ("сб",),
    ("вс", "жс"),
)
# Words that may stand beside a bare day number: «4-го», «4 числа», «4-і», «4-ші күні».
_DAY_NUMBER_WORDS: Final = frozenset(
    {"е", "го", "ое", "числа", "число", "и", "ы", "ши", "шы", "куни", "кун", "на"}
)


def fold(word: str) -> str:
    """Lower case with Kazakh letters as Russian ones: «Ертең» and «ертен» compare equal."""
    return word.lower().translate(_FOLD)


def parse_day(text: str, today: date) -> date | None:
    """The date a person means, or None when the text names none.

    Understood, in this order: `25.11`, `25.11.2026`, `25/11/26`, `2026-11-25` (anywhere in
    the text, so a date button's label works too); «сегодня/бүгін», «завтра/ертең»,
    «послезавтра/бүрсігүні»; a day with a month name («25 декабря», «4 желтоқсан»,
    «желтоқсанның 4-і», «дек 25»); a weekday name, full or short («пятница», «в пт»,
    «сенбі», «Жм»), meaning the next such day after today; a bare day number («4», «4-го»),
    meaning the next such day of a month from today on.
    """
    if (numeric := _numeric(text, today)) is not None:
        return numeric
    tokens = [fold(t) for t in _TOKEN.findall(text)]
    if not tokens:
        return None
    for token in tokens:
        if token in _RELATIVE:
            return today + timedelta(days=_RELATIVE[token])
    if (by_month := _with_month(tokens, today)) is not None:
        return by_month
    if (weekday := _weekday(tokens)) is not None:
        ahead = (weekday - today.isoweekday()) % 7 or 7
        return today + timedelta(days=ahead)
    return _bare_day(tokens, today)


def _numeric(text: str, today: date) -> date | None:
    if match := _ISO.search(text):
        return _date_or_none(int(match[1]), int(match[2]), int(match[3]))
    match = _DMY.search(text)
    if match is None:
        return None
    day, month = int(match[1]), int(match[2])
    if match[3]:
        year = int(match[3])
        return _date_or_none(year + 2000 if year < 100 else year, month, day)
    return _this_or_next_year(today, month, day)


def _this_or_next_year(today: date, month: int, day: int) -> date | None:
    found = _date_or_none(today.year, month, day)
    if found is None and month == 2 and day == 29:
        found = _date_or_none(today.year + 1, month, day)
    if found is not None and found < today - YEAR_ROLLOVER:
        found = _date_or_none(today.year + 1, month, day)
    return found


def _date_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_of(token: str) -> int | None:
    for number, stems in enumerate(_MONTH_STEMS, start=1):
        for stem in stems:
            if token == stem or (stem not in _MONTH_SHORT and token.startswith(stem)):
                return number
    return None


def _with_month(tokens: list[str], today: date) -> date | None:
    """A month name with a day number right before or after it, and an optional year."""
    for i, token in enumerate(tokens):
        if token.isdigit() or (month := _month_of(token)) is None:
            continue
        before = tokens[i - 1] if i > 0 else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if before.isdigit() and 1 <= int(before) <= 31:
            day = int(before)
            year = after if after.isdigit() and len(after) == 4 else ""
        elif after.isdigit() and 1 <= int(after) <= 31:
            day = int(after)
            later = tokens[i + 2] if i + 2 < len(tokens) else ""
            year = later if later.isdigit() and len(later) == 4 else ""
        else:
            continue
        if year:
            return _date_or_none(int(year), month, day)
        return _this_or_next_year(today, month, day)
    return None


def _weekday(tokens: list[str]) -> int | None:
    for token in tokens:
        for number, stems in enumerate(_WEEKDAY_STEMS, start=1):
            if any(token.startswith(stem) for stem in stems):
                return number
        for number, shorts in enumerate(_WEEKDAY_SHORT, start=1):
            if token in shorts:
                return number
    return None


def _bare_day(tokens: list[str], today: date) -> date | None:
    """«4» alone (with «-го», «числа», «-і» around it): the next 4th from today on."""
    numbers = [t for t in tokens if t.isdigit()]
    if len(numbers) != 1 or any(t not in _DAY_NUMBER_WORDS for t in tokens if not t.isdigit()):
        return None
    day = int(numbers[0])
    if not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(12):
        found = _date_or_none(year, month, day)
        if found is not None and found >= today:
            return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None
