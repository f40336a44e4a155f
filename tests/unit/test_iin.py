"""The IIN check digit, its two weight passes, the never-issued numbers, dates and masking."""

from __future__ import annotations

from datetime import date

import pytest

from bot.services.iin import age_on, check_digit, check_iin, iin_digits, mask_iin

W1 = tuple(range(1, 12))
W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def weighted(first11: str, weights: tuple[int, ...]) -> int:
    """An independent re-statement of DOMAIN.md's rule, to build examples from."""
    return sum(int(d) * w for d, w in zip(first11, weights, strict=True)) % 11


def find(prefix: str, first: bool, second: bool) -> str:
    """The first 11 digits after `prefix` whose passes give 10 (True) or not (False)."""
    for serial in range(10_000):
        digits = f"{prefix}{serial:04d}"
        if (weighted(digits, W1) == 10) == first and (weighted(digits, W2) == 10) == second:
            return digits
    raise AssertionError("no example")


# Worked examples (a woman born 15 March 1985: century digit 4), checked by hand.
FIRST_PASS = "850315400005"  # 1·8+2·5+3·0+4·3+5·1+6·5+7·4+8·0+9·0+10·0+11·0 = 93; 93 % 11 = 5
SECOND_PASS = "850315400608"  # first pass gives 10, weights 3..11,1,2 give 8
NEVER = "85031540061"  # both passes give 10


def test_worked_examples_follow_the_rule() -> None:
    assert weighted(FIRST_PASS[:11], W1) == 5
    assert weighted(SECOND_PASS[:11], W1) == 10
    assert weighted(SECOND_PASS[:11], W2) == 8
    assert weighted(NEVER, W1) == 10
    assert weighted(NEVER, W2) == 10


def test_first_pass_check_digit() -> None:
    result = check_iin(FIRST_PASS)
    assert result.valid and result.error is None
    assert result.birth_date == date(1985, 3, 15)
    assert result.sex == "female"


def test_second_pass_check_digit() -> None:
    assert check_digit(SECOND_PASS[:11]) == 8
    assert check_iin(SECOND_PASS).valid
    # The first pass's value (10) can't be a digit; 0 is just wrong.
    assert check_iin(SECOND_PASS[:11] + "0").error == "checksum"


@pytest.mark.parametrize("last", "0123456789")
def test_never_issued_whatever_the_last_digit(last: str) -> None:
    assert check_digit(NEVER) is None
    result = check_iin(NEVER + last)
    assert not result.valid
    assert result.error == "never_issued"


@pytest.mark.parametrize(
    ("prefix", "born", "sex"),
    [
        ("0507206", date(2005, 7, 20), "female"),
        ("9912315", date(2099, 12, 31), "male"),
        ("4402294", date(1944, 2, 29), "female"),
        ("8811111", date(1888, 11, 11), "male"),
        ("0001012", date(1800, 1, 1), "female"),
    ],
)
def test_computed_examples_of_each_pass(prefix: str, born: date, sex: str) -> None:
    for first, second in ((False, False), (True, False)):
        digits = find(prefix, first, second)
        weights = W2 if first else W1
        iin = digits + str(weighted(digits, weights))
        result = check_iin(iin)
        assert result.valid, iin
        assert result.birth_date == born
        assert result.sex == sex
    assert check_iin(find(prefix, True, True) + "0").error == "never_issued"


def test_wrong_check_digit() -> None:
    wrong = FIRST_PASS[:11] + "6"
    result = check_iin(wrong)
    assert result.error == "checksum"
    assert not result.valid
    # The date is still read: the dispatcher may use it as a hint.
    assert result.birth_date == date(1985, 3, 15)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "85031540000",
        "8503154000051",
        "85031540000a",
        "８５０３１５４０００００５",
        "850315-400005",
    ],
)
def test_format_errors(raw: str) -> None:
    result = check_iin(raw)
    assert result == check_iin(raw)  # deterministic, frozen value
    assert result.error == "format"
    assert not result.valid
    assert result.birth_date is None and result.sex is None


def test_spaces_are_allowed() -> None:
    assert check_iin(" 850315 400005 ").valid
    assert check_iin("8503 1540 0005").valid
    assert iin_digits("850 315 400 005") == FIRST_PASS


@pytest.mark.parametrize(
    ("prefix", "sex"),
    [
        ("9902305", "male"),  # 30 February
        ("9913015", "male"),  # month 13
        ("9900014", "female"),  # month 0
        ("0102296", "female"),  # 29 February 2001 is not a date
    ],
)
def test_implausible_dates_give_no_birth_date(prefix: str, sex: str) -> None:
    digits = find(prefix, False, False)
    result = check_iin(digits + str(weighted(digits, W1)))
    assert result.valid  # since 2013 the digits need not be a date
    assert result.birth_date is None
    assert result.sex == sex


@pytest.mark.parametrize("century", "0789")
def test_unknown_century_digit(century: str) -> None:
    digits = find("850315" + century, False, False)
    result = check_iin(digits + str(weighted(digits, W1)))
    assert result.valid
    assert result.birth_date is None
    assert result.sex is None


def test_mask_shows_only_the_last_four() -> None:
    assert mask_iin(FIRST_PASS) == "••••••••0005"
    assert mask_iin("8503 1540 0005") == "••••••••0005"
    assert FIRST_PASS[:8] not in mask_iin(FIRST_PASS)


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(2008, 3, 12), date(2026, 3, 11), 17),
        (date(2008, 3, 12), date(2026, 3, 12), 18),
        (date(1963, 12, 31), date(2026, 12, 30), 62),
        (date(1963, 12, 31), date(2026, 12, 31), 63),
        (date(2004, 2, 29), date(2022, 2, 28), 17),
        (date(2004, 2, 29), date(2022, 3, 1), 18),
        (date(2004, 2, 29), date(2024, 2, 29), 20),
    ],
)
def test_age_on(birth: date, on: date, age: int) -> None:
    assert age_on(birth, on) == age
