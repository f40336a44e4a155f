"""The translation contract between services (no aiogram, no catalogs) and the texts users see.

Services explain refusals as `Reason`s: a code for tests and logs, an English message id, and
params. The handler renders a Reason with the person's translator. Params that are themselves
message ids (a weekday, a category) are marked with `Msg` and translated before formatting;
dates and times are passed already formatted ("12.03.2026", "18:00"), so translations stay
plain `{name}` placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


def N_(msgid: str) -> str:  # the gettext name for "mark now, translate later"
    """Mark a message id for extraction; services have no language, handlers translate."""
    return msgid


class Translate(Protocol):
    """A translator bound to one person's language: `t("Hello, {name}", name="Айгүл")`."""

    def __call__(self, msgid: str, /, **params: object) -> str: ...


class Msg(str):
    """A param value that is a message id, translated when the Reason is rendered."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something was refused, in a form any language can render later."""

    code: str
    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, t: Translate) -> str:
        """The text in `t`'s language; `Msg` params (weekday names) are translated first."""
        values = {k: t(v) if isinstance(v, Msg) else v for k, v in self.params.items()}
        return t(self.msgid, **values)
