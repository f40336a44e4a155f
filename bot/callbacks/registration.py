"""Callback data of the profile pages, invites, /forget and the verification card.

Every press names what it acts on (a rider, a representation, a verification) and the handler
re-reads it and checks who pressed, so a stale or forged button changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from bot.callbacks.common import RowId


class ProfileAction(StrEnum):
    LIST = "ls"
    OPEN = "op"
    EDIT_MENU = "em"
    EDIT = "ed"
    INVITE = "iv"
    RELATIVES = "rl"
    UNLINK = "ul"  # ask to confirm (arg: representation id)
    UNLINK_CONFIRM = "uc"
    DELETE = "dl"  # ask to confirm deleting a profile nobody else manages
    DELETE_CONFIRM = "dc"
    REGISTER_SELF = "rs"
    REGISTER_OTHER = "ro"


class ProfilePress(CallbackData, prefix="pf1"):
    action: ProfileAction
    rider: RowId = 0
    arg: RowId = 0
    field: str = ""


class InviteAnswer(CallbackData, prefix="ia1"):
    code: str
    accept: bool


class ForgetAnswer(CallbackData, prefix="fg1"):
    confirm: bool


class VerifyAction(StrEnum):
    APPROVE = "ok"
    REJECT = "rj"  # show the reasons
    REASON = "rr"  # reject with a listed reason (arg: its code)
    TYPED = "rt"  # ask the dispatcher to reply with a reason
    BACK = "bk"


class VerifyPress(CallbackData, prefix="vf1"):
    verification: RowId
    action: VerifyAction
    arg: str = ""


class NeedToggle(CallbackData, prefix="nd1"):
    """A need (or who rides along) ticked or unticked at the registration's needs question."""

    code: str


class SummaryChange(CallbackData, prefix="rc1"):
    """A "Change" button under the registration summary: which part of the profile."""

    group: str
