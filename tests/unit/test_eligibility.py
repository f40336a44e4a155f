"""Who may ride: categories, ВКК expiry, ages, verification, and district overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bot.services.eligibility import (
    BUILTIN_CATEGORIES,
    Category,
    EligibilityRules,
    RiderFacts,
    birth_date_for,
    check_eligibility,
)
from bot.services.iin import IinCheck

ON = date(2026, 3, 12)
RULES = EligibilityRules()


def rider(category: str = Category.GROUP1_MOBILITY, **changes: object) -> RiderFacts:
    base = RiderFacts(
        category=category,
        verification="verified",
        vkk_expires_on=None,
        birth_date=date(1980, 5, 1),
        disability_group=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def code(facts: RiderFacts, rules: EligibilityRules = RULES, on: date = ON) -> str | None:
    result = check_eligibility(facts, rules, on)
    assert (result.reason is None) == (result.status == "eligible")
    return None if result.reason is None else result.reason.code


def test_builtin_categories() -> None:
    assert {str(c) for c in Category} == {
        "group1_mobility",
        "elderly",
        "child_rehab",
        "mental_disorder",
    }
    assert RULES.allowed_categories == BUILTIN_CATEGORIES
    assert str(Category.ELDERLY) == "elderly"


@pytest.mark.parametrize(
    ("facts", "status", "reason"),
    [
        (rider(Category.GROUP1_MOBILITY), "eligible", None),
        (rider(Category.GROUP1_MOBILITY, disability_group=None), "eligible", None),
        (
            rider(Category.GROUP1_MOBILITY, disability_group=2),
            "not_eligible",
            "disability_group_mismatch",
        ),
        (rider(Category.ELDERLY, birth_date=date(1960, 1, 1)), "eligible", None),
        (
            rider(Category.ELDERLY, birth_date=date(1970, 1, 1)),
            "not_eligible",
            "elderly_too_young",
        ),
        (rider(Category.ELDERLY, birth_date=None), "not_eligible", "birth_date_unknown"),
        (rider(Category.CHILD_REHAB, birth_date=date(2015, 6, 1)), "eligible", None),
        (
            rider(Category.CHILD_REHAB, birth_date=date(2000, 6, 1)),
            "not_eligible",
            "child_too_old",
        ),
        (rider(Category.CHILD_REHAB, birth_date=None), "not_eligible", "birth_date_unknown"),
        (rider(Category.MENTAL_DISORDER, disability_group=None), "eligible", None),
        (rider(Category.MENTAL_DISORDER, birth_date=None), "eligible", None),
        (rider("war_veteran"), "not_eligible", "category_not_allowed"),
        (rider(verification="pending"), "pending", "verification_pending"),
        (rider(verification="rejected"), "not_eligible", "verification_rejected"),
    ],
)
def test_matrix(facts: RiderFacts, status: str, reason: str | None) -> None:
    result = check_eligibility(facts, RULES, ON)
    assert result.status == status
    assert (result.reason.code if result.reason else None) == reason
    assert result.ok == (status == "eligible")


def test_vkk_is_valid_through_its_expiry_day() -> None:
    facts = rider(vkk_expires_on=date(2026, 3, 12))
    assert code(facts, on=date(2026, 3, 11)) is None
    assert code(facts, on=date(2026, 3, 12)) is None
    result = check_eligibility(facts, RULES, date(2026, 3, 13))
    assert result.status == "not_eligible"
    assert result.reason is not None
    assert result.reason.code == "vkk_expired"
    assert result.reason.params == {"date": "12.03.2026"}


def test_indefinite_vkk_never_expires() -> None:
    assert code(rider(vkk_expires_on=None), on=date(2090, 1, 1)) is None


def test_child_may_ride_until_the_18th_birthday() -> None:
    facts = rider(Category.CHILD_REHAB, birth_date=date(2008, 3, 12), disability_group=None)
    assert code(facts, on=date(2026, 3, 11)) is None
    assert code(facts, on=date(2026, 3, 12)) == "child_too_old"


def test_elderly_from_the_threshold_birthday() -> None:
    facts = rider(Category.ELDERLY, birth_date=date(1963, 3, 12), disability_group=None)
    assert code(facts, on=date(2026, 3, 11)) == "elderly_too_young"
    assert code(facts, on=date(2026, 3, 12)) is None
    result = check_eligibility(facts, RULES, date(2026, 3, 11))
    assert result.reason is not None
    assert result.reason.params == {"age": 63}


def test_district_overrides_the_elderly_age() -> None:
    facts = rider(Category.ELDERLY, birth_date=date(1965, 1, 1), disability_group=None)
    assert code(facts) == "elderly_too_young"  # 61 on the date
    district = RULES.for_district({"elderly_age": 60, "cutoff_time": "20:00"})
    assert district.elderly_age == 60
    assert code(facts, district) is None
    assert RULES.elderly_age == 63  # the defaults are untouched


def test_district_overrides_the_child_age() -> None:
    facts = rider(Category.CHILD_REHAB, birth_date=date(2008, 1, 1), disability_group=None)
    assert code(facts) == "child_too_old"
    assert code(facts, RULES.for_district({"child_max_age": 18})) is None


@pytest.mark.parametrize("bad", ["63", 63.0, True, 0, -5, 200, None])
def test_district_override_rejects_bad_ages(bad: object) -> None:
    with pytest.raises(ValueError, match="elderly_age"):
        RULES.for_district({"elderly_age": bad})


def test_district_added_category() -> None:
    facts = rider("war_veteran", disability_group=None)
    assert code(facts) == "category_not_allowed"
    district = RULES.for_district({}, extra_categories=["war_veteran"])
    assert code(facts, district) is None
    assert district.allowed_categories >= BUILTIN_CATEGORIES
    assert code(replace(facts, verification="pending"), district) == "verification_pending"


def test_district_may_narrow_the_list() -> None:
    rules = EligibilityRules(allowed_categories=frozenset({Category.GROUP1_MOBILITY}))
    assert code(rider(Category.GROUP1_MOBILITY), rules) is None
    facts = rider(Category.ELDERLY, birth_date=date(1950, 1, 1))
    assert code(facts, rules) == "category_not_allowed"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (rider("unknown", verification="pending"), "category_not_allowed"),
        (
            rider(verification="pending", vkk_expires_on=date(2026, 1, 1)),
            "vkk_expired",
        ),
        (
            rider(Category.CHILD_REHAB, verification="pending", birth_date=date(1990, 1, 1)),
            "child_too_old",
        ),
        (
            rider(Category.ELDERLY, verification="pending", birth_date=None),
            "birth_date_unknown",
        ),
    ],
)
def test_hard_ineligibility_wins_over_pending(facts: RiderFacts, reason: str) -> None:
    result = check_eligibility(facts, RULES, ON)
    assert result.status == "not_eligible"
    assert result.reason is not None and result.reason.code == reason


def test_category_refusal_comes_first() -> None:
    facts = rider("unknown", verification="rejected", vkk_expires_on=date(2020, 1, 1))
    assert code(facts) == "category_not_allowed"


def valid_iin(born: date | None) -> IinCheck:
    return IinCheck(valid=True, error=None, birth_date=born, sex="female")


STATED = date(1950, 6, 1)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (valid_iin(date(1955, 4, 2)), date(1955, 4, 2)),
        (valid_iin(None), STATED),  # the digits are not a date
        (valid_iin(date(2026, 3, 13)), STATED),  # in the future
        (valid_iin(date(2026, 3, 12)), date(2026, 3, 12)),  # born today
        (valid_iin(date(1906, 3, 13)), date(1906, 3, 13)),  # 119
        (valid_iin(date(1906, 3, 12)), STATED),  # 120: implausible
        (
            IinCheck(valid=False, error="checksum", birth_date=date(1955, 4, 2), sex="male"),
            STATED,
        ),
    ],
)
def test_birth_date_for(check: IinCheck, expected: date) -> None:
    assert birth_date_for(check, STATED, on=ON) == expected


def test_birth_date_for_without_any_date() -> None:
    assert birth_date_for(valid_iin(None), None, on=ON) is None
    assert birth_date_for(valid_iin(date(1955, 4, 2)), None) == date(1955, 4, 2)
