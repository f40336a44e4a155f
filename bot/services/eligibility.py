"""Who may ride: category, ВКК validity, age, and the dispatchers' verification.

The district decides (the akimat may widen the list), so categories are plain string codes and
the built-in ones are constants. A refusal always carries a Reason the rider can read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final, Literal

from bot.services.i18n_types import N_, Reason
from bot.services.iin import IinCheck, age_on

Verification = Literal["pending", "verified", "rejected"]
EligibilityStatus = Literal["eligible", "pending", "not_eligible"]

MAX_PLAUSIBLE_AGE: Final = 120


class Category(StrEnum):
    """The categories every district serves (DOMAIN.md); districts add their own codes."""

    GROUP1_MOBILITY = "group1_mobility"  # group I disability with difficulty moving
    ELDERLY = "elderly"
    CHILD_REHAB = "child_rehab"  # a child attending a rehabilitation or day-care centre
    MENTAL_DISORDER = "mental_disorder"  # limits self-care, 2nd or 3rd degree


BUILTIN_CATEGORIES: Final = frozenset(str(c) for c in Category)
# District rule keys that belong here; the rest of a district's rules are booking rules.
ELIGIBILITY_RULE_KEYS: Final = frozenset({"elderly_age", "child_max_age"})


@dataclass(frozen=True, slots=True)
class RiderFacts:
    """What eligibility depends on; `birth_date` is chosen by the caller (see birth_date_for)."""

    category: str
    verification: Verification
    vkk_expires_on: date | None  # None: the ВКК conclusion is indefinite
    birth_date: date | None
    disability_group: int | None


@dataclass(frozen=True, slots=True)
class EligibilityRules:
    """A district's eligibility settings; defaults are the regional ones."""

    allowed_categories: frozenset[str] = field(default=BUILTIN_CATEGORIES)
    elderly_age: int = 63
    child_max_age: int = 17  # a child is under 18 on the ride's date

    def for_district(
        self, rules: Mapping[str, object], extra_categories: Iterable[str] = ()
    ) -> EligibilityRules:
        """These rules with a district's overrides; keys it doesn't own are left to booking."""
        changes: dict[str, int] = {}
        for key in ELIGIBILITY_RULE_KEYS & rules.keys():
            value = rules[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 150:
                raise ValueError(f"{key}: expected a whole number of years, got {value!r}")
            changes[key] = value
        categories = self.allowed_categories | frozenset(extra_categories)
        return replace(self, allowed_categories=categories, **changes)


@dataclass(frozen=True, slots=True)
class Eligibility:
    """May this rider book on that date; `reason` says why not (None when eligible)."""

    status: EligibilityStatus
    reason: Reason | None = None

    @property
    def ok(self) -> bool:
        return self.status == "eligible"


CATEGORY_NOT_ALLOWED: Final = Reason(
    "category_not_allowed",
    N_(
        "This district does not serve your category of riders. "
        "Please call the dispatcher: they will explain what is possible."
    ),
)
GROUP_MISMATCH: Final = Reason(
    "disability_group_mismatch",
    N_(
        "This category is for people with group I disability. "
        "Please choose another category or call the dispatcher."
    ),
)
BIRTH_DATE_UNKNOWN: Final = Reason(
    "birth_date_unknown",
    N_("We need your date of birth for this category. Please add it in /profile."),
)
CHILD_TOO_OLD: Final = Reason(
    "child_too_old",
    N_(
        "This category is for children under 18. "
        "Please choose another category or call the dispatcher."
    ),
)
VERIFICATION_PENDING: Final = Reason(
    "verification_pending",
    N_(
        "The dispatcher has not checked your documents yet. "
        "You can book rides once they are checked."
    ),
)
VERIFICATION_REJECTED: Final = Reason(
    "verification_rejected",
    N_(
        "The dispatcher did not approve your documents. "
        "Please correct them in /profile or call the dispatcher."
    ),
)


def vkk_expired(expired_on: date) -> Reason:
    return Reason(
        "vkk_expired",
        N_(
            "Your VKK conclusion expired on {date}. "
            "Please enter the new conclusion in /profile to book rides."
        ),
        {"date": expired_on.strftime("%d.%m.%Y")},
    )


def elderly_too_young(age: int) -> Reason:
    return Reason(
        "elderly_too_young",
        N_(
            "Elderly people can ride from the age of {age}. "
            "Please choose another category or call the dispatcher."
        ),
        {"age": age},
    )


def _hard_refusal(rider: RiderFacts, rules: EligibilityRules, on: date) -> Reason | None:
    if rider.category not in rules.allowed_categories:
        return CATEGORY_NOT_ALLOWED
    if rider.verification == "rejected":
        return VERIFICATION_REJECTED
    if rider.vkk_expires_on is not None and on > rider.vkk_expires_on:
        return vkk_expired(rider.vkk_expires_on)
    if (
        rider.category == Category.GROUP1_MOBILITY
        and rider.disability_group is not None
        and rider.disability_group != 1
    ):
        return GROUP_MISMATCH
    if rider.category in (Category.CHILD_REHAB, Category.ELDERLY):
        if rider.birth_date is None:
            return BIRTH_DATE_UNKNOWN
        age = age_on(rider.birth_date, on)
        if rider.category == Category.CHILD_REHAB and age > rules.child_max_age:
            return CHILD_TOO_OLD
        if rider.category == Category.ELDERLY and age < rules.elderly_age:
            return elderly_too_young(rules.elderly_age)
    return None


def check_eligibility(rider: RiderFacts, rules: EligibilityRules, on: date) -> Eligibility:
    """Eligible, pending the dispatchers' check, or not; a hard refusal wins over pending.

    The ВКК conclusion is valid through its expiry day; a child may ride until the 18th
    birthday; an elderly person from the `elderly_age` birthday.
    """
    refusal = _hard_refusal(rider, rules, on)
    if refusal is not None:
        return Eligibility("not_eligible", refusal)
    if rider.verification == "pending":
        return Eligibility("pending", VERIFICATION_PENDING)
    return Eligibility("eligible")


def birth_date_for(
    iin_check: IinCheck, stated: date | None, *, on: date | None = None
) -> date | None:
    """The IIN's birth date when plausible (valid IIN, not in the future, under 120), else the
    stated one: since 2013 the IIN's digits may not match the person."""
    today = on if on is not None else datetime.now(UTC).date()
    born = iin_check.birth_date
    if (
        iin_check.valid
        and born is not None
        and born <= today
        and age_on(born, today) < MAX_PLAUSIBLE_AGE
    ):
        return born
    return stated
