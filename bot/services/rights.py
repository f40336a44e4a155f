"""What a representative may do for a rider: the level set when they are linked.

The invitation a rider sends says what the relative will be able to do, and that is all they
get. Two levels:
- "rides": book and cancel rides, get the ride messages, rate a ride. They see the rider's
  name, phone and addresses (a booking needs them) but no IIN, category, ВКК or needs, and
  change nothing in the profile. The default for an invited relative.
- "full": everything the rider can do with their own profile. For the person who registered
  the rider (a parent, a guardian, an attorney: they typed the IIN and see it whole) and for a
  relative the rider chose to give it to in the invitation (who sees the IIN masked).
The rider themself is "own": everything. Pure rules: the caller finds the representation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from bot.services.i18n_types import N_


class Rights(StrEnum):
    RIDES = "rides"
    FULL = "full"


class Act(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    RIDE_MESSAGES = "ride_messages"
    RATE = "rate"
    SEE_PROFILE = "see_profile"  # name, phone, addresses
    SEE_HEALTH = "see_health"  # category, disability group, ВКК, needs, centre
    SEE_IIN_MASKED = "see_iin_masked"
    SEE_IIN = "see_iin"  # the whole IIN: the rider only
    EDIT_PROFILE = "edit_profile"
    INVITE = "invite"
    DELETE_PROFILE = "delete_profile"


RIGHTS_LABELS: Final = {
    Rights.RIDES: N_("book and cancel rides and get the ride messages; no changes to the profile"),
    Rights.FULL: N_(
        "book rides, see and change the whole profile (the rider is told of every change)"
    ),
}

_ALLOWED: Final[dict[str, frozenset[Act]]] = {
    Rights.RIDES: frozenset({Act.BOOK, Act.CANCEL, Act.RIDE_MESSAGES, Act.RATE, Act.SEE_PROFILE}),
    Rights.FULL: frozenset(Act) - {Act.SEE_IIN},
}

OWN: Final = None


def may(rights: str | None, act: Act) -> bool:
    """May a person act so for the rider: `rights` None is the rider themself.

    An unknown level (a row from a newer version, a typo) allows only what "rides" allows.
    """
    if rights is OWN:
        return True
    return act in _ALLOWED.get(rights, _ALLOWED[Rights.RIDES])


def rights_when_registering(kind: str) -> Rights:
    """The person who registers a rider manages the profile: parent, guardian, attorney."""
    return Rights.FULL


def parse_rights(value: str | None) -> Rights:
    """An invitation's level from a button or a stored row; anything unknown is "rides"."""
    try:
        return Rights(value or Rights.RIDES)
    except ValueError:
        return Rights.RIDES
