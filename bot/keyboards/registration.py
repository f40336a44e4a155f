"""Keyboards of onboarding, the profile conversation, the profile pages and the verification card.

Conversation steps use big one-per-row reply buttons (typing the same text works too) with
Back and Cancel; pages and cards use inline buttons that carry typed callback data.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.callbacks.registration import (
    ForgetAnswer,
    InviteAnswer,
    NeedToggle,
    ProfileAction,
    ProfilePress,
    SummaryChange,
    VerifyAction,
    VerifyPress,
)
from bot.context import START_LINK_URL
from bot.i18n import N_, Translator
from bot.keyboards.common import BACK, CANCEL, step_keyboard
from bot.services.registration import NEED_LABELS, REJECT_REASONS
from bot.services.rights import RIGHTS_LABELS, Rights

AGREE = N_("I agree")
# Consent and "who will ride" in one tap: the same agreement, one question fewer.
AGREE_SELF = N_("I agree: I will ride myself")
AGREE_OTHER = N_("I agree: I book for someone else")
DISAGREE = N_("I do not agree")
READ_CONSENT = N_("Read the consent again")
ROLE_SELF = N_("I am the rider, booking for myself")
ROLE_OTHER = N_("I book for someone else")
PARENT = N_("Parent")
GUARDIAN = N_("Guardian (legal representative)")
ATTORNEY = N_("I have a power of attorney")
CHILD_OF = N_("Son or daughter")
SPOUSE = N_("Husband or wife")
OTHER_RELATIVE = N_("Another relative")
SHARE_MY_NUMBER = N_("Share my number")
USE_MY_NUMBER = N_("Use my own number")
SEND_PIN = N_("Send a location pin")
INDEFINITE = N_("Indefinite")
NO_NEEDS = N_("None of these")
DONE = N_("Done")
CHOSEN_MARK = "✓ "
# At the needs question, who rides along is asked with the needs: one question, not two.
COMPANION_NEED = N_("a companion rides along (a relative or friend)")
WITH_ASSISTANT = N_("An assistant")
WITH_COMPANION = N_("A companion")
WITH_BOTH = N_("An assistant and a companion")
WITH_NOBODY = N_("No one")
GROUP_LABELS = {
    1: N_("Group I"),
    2: N_("Group II"),
    3: N_("Group III"),
}
NO_GROUP = N_("No disability group")
CONFIRM = N_("Confirm and send for checking")
CHANGE = N_("Change: {field}")

EDIT_FIELDS: dict[str, str] = {
    "name": N_("Full name"),
    "phone": N_("Phone"),
    "iin": N_("IIN"),
    "district": N_("District"),
    "address": N_("Home address"),
    "category": N_("Category and disability group"),
    "vkk": N_("VKK conclusion"),
    "needs": N_("Mobility needs and who rides along"),
    "poa": N_("Power of attorney"),
    "contact": N_("Your name and phone"),
    "relationship": N_("Who you are to the rider"),
}

APPROVE = N_("Approve")
REJECT = N_("Reject")
TYPED_REASON = N_("Another reason: type it")


def reply(t: Translator, options: Sequence[str], *, back: bool = True) -> ReplyKeyboardMarkup:
    """Options already translated, one per row, then Back (unless first) and Cancel."""
    return step_keyboard(t, list(options), back=back)


def consent_keyboard(
    t: Translator, *, with_role: bool = False, full_text: str | None = None
) -> ReplyKeyboardMarkup:
    """«I agree» (or, for a newcomer, «I agree: I will ride myself» / «…for someone else»),
    «I do not agree», and the button that shows the full text."""
    agree = [t(AGREE_SELF), t(AGREE_OTHER)] if with_role else [t(AGREE)]
    extra = [full_text] if full_text else []
    return step_keyboard(t, [*agree, t(DISAGREE), *extra], back=False)


def read_again_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=t(READ_CONSENT))]], resize_keyboard=True
    )


def phone_keyboard(t: Translator, *, own: bool, back: bool = True) -> ReplyKeyboardMarkup:
    """The contact button shares the presser's own number: for someone else it says so."""
    label = t(SHARE_MY_NUMBER) if own else t(USE_MY_NUMBER)
    rows = [[KeyboardButton(text=label, request_contact=True)]]
    nav = [KeyboardButton(text=t(CANCEL))]
    if back:
        nav.insert(0, KeyboardButton(text=t(BACK)))
    rows.append(nav)
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def address_keyboard(t: Translator, *, back: bool = True) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=t(SEND_PIN), request_location=True)]]
    nav = [KeyboardButton(text=t(CANCEL))]
    if back:
        nav.insert(0, KeyboardButton(text=t(BACK)))
    rows.append(nav)
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True)


def need_button(t: Translator, code: str, chosen: bool) -> str:
    """A need's button; a chosen one is marked (the message also lists the choice in words)."""
    label = t(NEED_LABELS[code])
    return f"{CHOSEN_MARK}{label}" if chosen else label


def needs_keyboard(
    t: Translator, chosen: Sequence[str], *, back: bool = True
) -> ReplyKeyboardMarkup:
    options = [need_button(t, code, code in chosen) for code in NEED_LABELS]
    options += [t(NO_NEEDS), t(DONE)]
    return step_keyboard(t, options, back=back)


def needs_done_keyboard(t: Translator, *, back: bool = True) -> ReplyKeyboardMarkup:
    """Under the needs question: «Done» and «None of these»; the needs are ticked inline."""
    return step_keyboard(t, [t(DONE), t(NO_NEEDS)], back=back)


def needs_inline(t: Translator, options: Sequence[tuple[str, str, bool]]) -> InlineKeyboardMarkup:
    """One numbered button per (code, label, chosen); a tap edits only these buttons."""
    rows = [
        [
            InlineKeyboardButton(
                text=f"{CHOSEN_MARK if chosen else ''}{number}. {label}",
                callback_data=NeedToggle(code=code).pack(),
            )
        ]
        for number, (code, label, chosen) in enumerate(options, 1)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def summary_changes(t: Translator, groups: Sequence[str]) -> InlineKeyboardMarkup:
    """A "Change: …" button per part of the profile, two to a row, as the booking summary has."""
    buttons = [
        InlineKeyboardButton(
            text=t(CHANGE, field=t(EDIT_FIELDS[group])),
            callback_data=SummaryChange(group=group).pack(),
        )
        for group in groups
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


# -- inline: profile pages ----------------------------------------------------------------------


def _button(text: str, data: ProfilePress) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=text, callback_data=data.pack())]


def profiles_keyboard(
    t: Translator, riders: Sequence[tuple[int, str]], *, can_register_self: bool
) -> InlineKeyboardMarkup:
    rows = [
        _button(name, ProfilePress(action=ProfileAction.OPEN, rider=rid)) for rid, name in riders
    ]
    if can_register_self:
        rows.append(
            _button(
                t(N_("Register my own profile")), ProfilePress(action=ProfileAction.REGISTER_SELF)
            )
        )
    rows.append(
        _button(
            t(N_("Register someone I book for")), ProfilePress(action=ProfileAction.REGISTER_OTHER)
        )
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def invite_level_keyboard(t: Translator, rider_id: int) -> InlineKeyboardMarkup:
    """What the invited relative may do: the rider's choice, one button per level."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            _button(
                t(RIGHTS_LABELS[level]),
                ProfilePress(action=ProfileAction.INVITE, rider=rider_id, field=level.value),
            )
            for level in (Rights.RIDES, Rights.FULL)
        ]
    )


def rider_page_keyboard(
    t: Translator,
    rider_id: int,
    *,
    own: bool,
    representation_id: int | None,
    can_delete: bool,
    several: bool,
    can_invite: bool | None = None,
) -> InlineKeyboardMarkup:
    rows = [
        _button(
            t(N_("Edit the profile")), ProfilePress(action=ProfileAction.EDIT_MENU, rider=rider_id)
        )
    ]
    if own if can_invite is None else can_invite:
        rows.append(
            _button(
                t(N_("Invite a relative")),
                ProfilePress(action=ProfileAction.INVITE, rider=rider_id),
            )
        )
    if own:
        rows.append(
            _button(
                t(N_("Linked relatives")),
                ProfilePress(action=ProfileAction.RELATIVES, rider=rider_id),
            )
        )
    if representation_id is not None and not can_delete:
        rows.append(
            _button(
                t(N_("Unlink me from this rider")),
                ProfilePress(action=ProfileAction.UNLINK, rider=rider_id, arg=representation_id),
            )
        )
    if can_delete:
        rows.append(
            _button(
                t(N_("Delete this profile")),
                ProfilePress(action=ProfileAction.DELETE, rider=rider_id),
            )
        )
    # Every page offers it: a mother of two, or a rider who also books for a spouse.
    rows.append(
        _button(
            t(N_("Register someone I book for")), ProfilePress(action=ProfileAction.REGISTER_OTHER)
        )
    )
    if several:
        rows.append(_button(t(N_("All profiles")), ProfilePress(action=ProfileAction.LIST)))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def edit_menu_keyboard(
    t: Translator, rider_id: int, fields: Sequence[str]
) -> InlineKeyboardMarkup:
    rows = [
        _button(
            t(EDIT_FIELDS[name]),
            ProfilePress(action=ProfileAction.EDIT, rider=rider_id, field=name),
        )
        for name in fields
    ]
    rows.append(_button(t(BACK), ProfilePress(action=ProfileAction.OPEN, rider=rider_id)))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def relatives_keyboard(
    t: Translator, rider_id: int, relatives: Sequence[tuple[int, str]]
) -> InlineKeyboardMarkup:
    rows = [
        _button(
            t(N_("Unlink {name}"), name=name),
            ProfilePress(action=ProfileAction.UNLINK, rider=rider_id, arg=rep_id),
        )
        for rep_id, name in relatives
    ]
    rows.append(
        _button(
            t(N_("Invite a relative")), ProfilePress(action=ProfileAction.INVITE, rider=rider_id)
        )
    )
    rows.append(_button(t(BACK), ProfilePress(action=ProfileAction.OPEN, rider=rider_id)))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_keyboard(
    t: Translator, yes_label: str, yes: ProfilePress, rider_id: int
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            _button(yes_label, yes),
            _button(t(N_("No, keep it")), ProfilePress(action=ProfileAction.OPEN, rider=rider_id)),
        ]
    )


def invite_answer_keyboard(t: Translator, code: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(N_("Accept the invitation")),
                    callback_data=InviteAnswer(code=code, accept=True).pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=t(N_("Decline")),
                    callback_data=InviteAnswer(code=code, accept=False).pack(),
                )
            ],
        ]
    )


def forget_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(N_("Yes, erase my data")),
                    callback_data=ForgetAnswer(confirm=True).pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=t(N_("No, keep my data")),
                    callback_data=ForgetAnswer(confirm=False).pack(),
                )
            ],
        ]
    )


# -- inline: the verification card --------------------------------------------------------------


def _verify(
    text: str, vid: int, action: VerifyAction, arg: str = ""
) -> list[InlineKeyboardButton]:
    data = VerifyPress(verification=vid, action=action, arg=arg)
    return [InlineKeyboardButton(text=text, callback_data=data.pack())]


OPEN_PROFILE = N_("Open the profile")
FULL_PROFILE_PREFIX = "chk_"


def verification_keyboard(t: Translator, vid: int) -> InlineKeyboardMarkup:
    """Approve, reject, and the full profile in a private chat with the bot (a group button
    can't open one: the sender writes the bot's link, see `START_LINK_URL`)."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(OPEN_PROFILE), url=f"{START_LINK_URL}{FULL_PROFILE_PREFIX}{vid}"
                )
            ],
            _verify(t(APPROVE), vid, VerifyAction.APPROVE),
            _verify(t(REJECT), vid, VerifyAction.REJECT),
        ]
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def reject_reasons_keyboard(t: Translator, vid: int) -> InlineKeyboardMarkup:
    rows = [
        _verify(_capital(t(msgid)), vid, VerifyAction.REASON, code)
        for code, msgid in REJECT_REASONS.items()
    ]
    rows.append(_verify(t(TYPED_REASON), vid, VerifyAction.TYPED))
    rows.append(_verify(t(BACK), vid, VerifyAction.BACK))
    return InlineKeyboardMarkup(inline_keyboard=rows)
