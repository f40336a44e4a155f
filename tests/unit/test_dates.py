"""Dates typed in words are understood in both languages, whatever language the person chose."""

from __future__ import annotations

from datetime import date

import pytest

from bot.services.dates import parse_day

WEDNESDAY = date(2026, 12, 2)  # the review's day: Wednesday, 2 December 2026


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("завтра", date(2026, 12, 3)),
        ("Завтра", date(2026, 12, 3)),
        ("ертең", date(2026, 12, 3)),
        ("Ертен", date(2026, 12, 3)),  # Kazakh typed with Russian letters
        ("послезавтра", date(2026, 12, 4)),
        ("бүрсігүні", date(2026, 12, 4)),
        ("бурсигуни", date(2026, 12, 4)),
        ("сегодня", WEDNESDAY),
        ("бүгін", WEDNESDAY),
    ],
)
def test_relative_words_in_both_languages(text: str, expected: date) -> None:
    assert parse_day(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25 декабря", date(2026, 12, 25)),
        ("на 25 декабря", date(2026, 12, 25)),
        ("4 желтоқсан", date(2026, 12, 4)),
        ("4-желтоқсан", date(2026, 12, 4)),
        ("желтоқсанның 4-і", date(2026, 12, 4)),
        ("4 желтоксан", date(2026, 12, 4)),
        ("дек 25", date(2026, 12, 25)),
        ("5 января", date(2027, 1, 5)),  # January typed in December is next year's
        ("5 қаңтар", date(2027, 1, 5)),
        ("10 марта 2027", date(2027, 3, 10)),
        ("1 мая", date(2027, 5, 1)),
        ("1 мамыр", date(2027, 5, 1)),
        ("30 ноября", date(2026, 11, 30)),  # just passed: the booking rules refuse it
    ],
)
def test_day_and_month_name(text: str, expected: date) -> None:
    assert parse_day(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("пятница", date(2026, 12, 4)),
        ("в пятницу", date(2026, 12, 4)),
        ("пт", date(2026, 12, 4)),
        ("жұма", date(2026, 12, 4)),
        ("Жм", date(2026, 12, 4)),
        ("сенбі", date(2026, 12, 5)),
        ("суббота", date(2026, 12, 5)),
        ("понедельник", date(2026, 12, 7)),
        ("дүйсенбі", date(2026, 12, 7)),
        ("сейсенбі", date(2026, 12, 8)),
        ("вторник", date(2026, 12, 8)),
        # Today's weekday means the one a week ahead, not today.
        ("среда", date(2026, 12, 9)),
        ("сәрсенбі", date(2026, 12, 9)),
        ("ср", date(2026, 12, 9)),
        ("бейсенбі", date(2026, 12, 3)),
        ("жексенбі", date(2026, 12, 6)),
        ("воскресенье", date(2026, 12, 6)),
    ],
)
def test_weekday_names_full_and_short(text: str, expected: date) -> None:
    assert parse_day(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("4", WEDNESDAY, date(2026, 12, 4)),
        ("4-го", WEDNESDAY, date(2026, 12, 4)),
        ("4 числа", WEDNESDAY, date(2026, 12, 4)),
        ("4-ші", WEDNESDAY, date(2026, 12, 4)),
        ("1", WEDNESDAY, date(2027, 1, 1)),  # the 1st has passed this month: the next one
        ("31", date(2026, 11, 20), date(2026, 12, 31)),  # November has no 31st
        ("2", WEDNESDAY, WEDNESDAY),
    ],
)
def test_bare_day_number_is_the_next_such_day(text: str, today: date, expected: date) -> None:
    assert parse_day(text, today) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("04.12", date(2026, 12, 4)),
        ("4.12", date(2026, 12, 4)),
        ("25.12.2026", date(2026, 12, 25)),
        ("25/12/26", date(2026, 12, 25)),
        ("2026-12-25", date(2026, 12, 25)),
        ("03.01", date(2027, 1, 3)),
        # The quick-date button's label: its date wins over the word «Завтра».
        ("Ертең, бейсенбі, 03.12.2026", date(2026, 12, 3)),
        ("Завтра, четверг, 03.12.2026", date(2026, 12, 3)),
    ],
)
def test_todays_numeric_formats_still_work(text: str, expected: date) -> None:
    assert parse_day(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Мои поездки", "Менің сапарларым", "32", "0", "10 30", "31.02", "марка", "😀"],
)
def test_no_date_in_the_text(text: str) -> None:
    assert parse_day(text, WEDNESDAY) is None
