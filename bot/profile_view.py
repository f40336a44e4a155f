"""How a rider profile reads: its labelled lines and the rider page.

Shared by the profile conversation (its summary, and the page it returns to after an edit), by
/profile and by /mydata. It lives outside `handlers` so those feature routers can all use it
without importing each other in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from aiogram.types import InlineKeyboardMarkup

from bot.context import Context
from bot.i18n import N_, Translator
from bot.keyboards import registration as kb
from bot.services import registration as reg
from bot.services.district_cache import district_by_id
from bot.services.full_profile import FullProfile
from bot.services.help import with_desk_phone
from bot.services.iin import mask_iin
from bot.services.rights import Act, may
from bot.states.registration import Draft
from models import District, Representation, Rider

NOT_YOURS = N_("This profile is not linked to you any more.")
VERIFICATION_LABELS = {
    "pending": N_("Checking: waiting for the dispatcher."),
    "verified": N_("Checking: approved by the dispatcher."),
    "rejected": N_("Checking: not approved. Reason: {reason}."),
}
NEED_ORDER = list(reg.NEED_LABELS)


@dataclass(frozen=True)
class ProfileView:
    full_name: str | None
    phone: str | None
    iin_last4: str | None
    birth_date: date | None
    district: District | None
    home_address: str | None
    has_pin: bool
    category: str | None
    centre_name: str | None
    disability_group: int | None
    vkk_number: str | None
    vkk_expires_on: date | None
    needs: Sequence[str]
    usual_assistant: bool
    usual_companion: bool
    relationship: str | None = None
    poa_number: str | None = None
    poa_expires_on: date | None = None
    rep_name: str | None = None
    rep_phone: str | None = None


def view_of_draft(draft: Draft, district: District | None) -> ProfileView:
    return ProfileView(
        full_name=draft.full_name,
        phone=draft.phone,
        # The draft keeps neither in clear; the registration fills them from the sealed IIN.
        iin_last4=None,
        birth_date=draft.birth_date,
        district=district,
        home_address=draft.home_address,
        has_pin=draft.home_lat is not None,
        category=draft.category,
        centre_name=draft.centre_name,
        disability_group=draft.disability_group,
        vkk_number=draft.vkk_number,
        vkk_expires_on=draft.vkk_expires_on,
        needs=draft.needs,
        usual_assistant=draft.usual_assistant,
        usual_companion=draft.usual_companion,
        relationship=draft.relationship if draft.for_other else None,
        poa_number=draft.poa_number,
        poa_expires_on=draft.poa_expires_on,
        rep_name=draft.rep_name if draft.for_other else None,
        rep_phone=draft.rep_phone if draft.for_other else None,
    )


def view_of_rider(
    rider: Rider, district: District | None, rep: Representation | None
) -> ProfileView:
    return ProfileView(
        full_name=rider.full_name,
        phone=rider.phone,
        iin_last4=rider.iin_last4,
        birth_date=rider.birth_date,
        district=district,
        home_address=rider.home_address,
        has_pin=rider.home_lat is not None,
        category=rider.category,
        centre_name=rider.centre_name,
        disability_group=rider.disability_group,
        vkk_number=rider.vkk_number,
        vkk_expires_on=rider.vkk_expires_on,
        needs=sorted(reg.needs_of(rider)),
        usual_assistant=rider.usual_assistant,
        usual_companion=rider.usual_companion,
        relationship=rep.relationship_kind if rep else None,
        poa_number=rep.poa_number if rep else None,
        poa_expires_on=rep.poa_expires_on if rep else None,
        rep_name=rep.contact_name if rep else None,
        rep_phone=rep.contact_phone if rep else None,
    )


def needs_words(t: Translator, codes: Sequence[str]) -> str:
    return ", ".join(t(reg.NEED_LABELS[c]) for c in NEED_ORDER if c in codes) or t(N_("none"))


def profile_lines(
    t: Translator,
    v: ProfileView,
    *,
    iin: str | None = None,
    masked_iin: bool = True,
    health: bool = True,
) -> list[str]:
    """One labelled fact per line; the IIN only as its last four digits unless given.

    For a representative whose level does not allow it (`bot.services.rights`) the masked IIN
    and the birth date (`masked_iin=False`), or the category, disability group, ВКК, needs and
    centre (`health=False`) are left out.
    """
    dash = "—"
    lines = []
    if v.relationship:
        kind = t(reg.RELATIONSHIP_LABELS.get(v.relationship, N_("relative")))
        if v.relationship == "attorney" and v.poa_number:
            until = t.date(v.poa_expires_on) if v.poa_expires_on else dash
            kind += ", " + t("№{number}, valid until: {until}", number=v.poa_number, until=until)
        lines.append(t("You are: {kind}", kind=kind))
        if v.rep_phone:
            lines.append(
                t(
                    N_("Your name and phone: {name}, {phone}"),
                    name=v.rep_name or dash,
                    phone=v.rep_phone,
                )
            )
    lines += [
        t("Full name: {value}", value=v.full_name or dash),
        t("Phone: {value}", value=v.phone or dash),
    ]
    if iin or masked_iin:
        lines.append(
            t("IIN: {value}", value=iin or (mask_iin(v.iin_last4) if v.iin_last4 else dash))
        )
        if v.birth_date:
            lines.append(t("Date of birth: {value}", value=t.date(v.birth_date)))
    lines.append(t("District: {value}", value=v.district.name(t.lang) if v.district else dash))
    address = v.home_address or dash
    if v.has_pin:
        address += " " + t("(location pin saved)")
    lines.append(t("Home address: {value}", value=address))
    if health:
        lines += _health_lines(t, v)
    along = {
        (True, False): kb.WITH_ASSISTANT,
        (False, True): kb.WITH_COMPANION,
        (True, True): kb.WITH_BOTH,
        (False, False): kb.WITH_NOBODY,
    }[(v.usual_assistant, v.usual_companion)]
    lines.append(t("Usually rides along: {value}", value=t(along)))
    return lines


def _health_lines(t: Translator, v: ProfileView) -> list[str]:
    dash = "—"
    lines = []
    category = reg.category_label(t, t.lang, v.category, v.district) if v.category else dash
    lines.append(t("Category: {value}", value=category))
    if v.category == reg.CHILD:
        lines.append(t("Centre: {value}", value=v.centre_name or dash))
    group = (
        t(kb.GROUP_LABELS[v.disability_group])
        if v.disability_group in kb.GROUP_LABELS
        else t(kb.NO_GROUP)
    )
    lines.append(t("Disability group: {value}", value=group))
    expiry = t.date(v.vkk_expires_on) if v.vkk_expires_on else t(kb.INDEFINITE)
    lines.append(
        t(
            "VKK conclusion: №{number}, valid until: {expiry}",
            number=v.vkk_number or dash,
            expiry=expiry,
        )
    )
    lines.append(t("Needs: {value}", value=needs_words(t, v.needs)))
    return lines


FULL_PROFILE_TITLE = N_("Profile №{number}, for checking against the documents:")


def full_profile_lines(t: Translator, p: FullProfile, district: District | None) -> list[str]:
    """What a dispatcher checks, in their private chat only: the IIN whole, the health fields,
    and who manages the profile."""
    view = ProfileView(
        full_name=p.full_name,
        phone=p.phone,
        iin_last4=None,
        birth_date=p.birth_date,
        district=district,
        home_address=p.home_address,
        has_pin=False,
        category=p.category,
        centre_name=p.centre_name,
        disability_group=p.disability_group,
        vkk_number=p.vkk_number,
        vkk_expires_on=p.vkk_expires_on,
        needs=sorted(p.needs),
        usual_assistant="assistant" in p.needs,
        usual_companion=False,
    )
    lines = [t(FULL_PROFILE_TITLE, number=p.rider_id), *profile_lines(t, view, iin=p.iin)]
    for kind, poa_number, poa_until in p.representatives:
        label = t(reg.RELATIONSHIP_LABELS.get(kind, N_("relative")))
        if poa_number:
            until = t.date(poa_until) if poa_until else "—"
            label += ", " + t("№{number}, valid until: {until}", number=poa_number, until=until)
        lines.append(t("Representative: {kind}", kind=label))
    return lines


# -- the rider page -----------------------------------------------------------------------------


async def rider_page(ctx: Context, rider_id: int) -> tuple[str, InlineKeyboardMarkup] | None:
    """One rider's page for the person asking, or None when the rider is not theirs."""
    session, account, t = ctx.session, ctx.person, ctx.t
    access = await reg.access_to(session, account, rider_id)
    if access is None:
        return None
    rider = access.rider
    district = await district_by_id(session, rider.district_id)
    lines = [f"{rider.full_name}"]
    label = VERIFICATION_LABELS.get(rider.verification, VERIFICATION_LABELS["pending"])
    lines.append(t(label, reason=reg.reason_text(t, rider.rejection_reason) or "—"))
    if district is not None:
        verdict = reg.eligibility_of(rider, district, ctx.today)
        if verdict.ok:
            lines.append(t("Rides: can be booked."))
        elif verdict.reason is not None and verdict.status == "not_eligible":
            reason = with_desk_phone(verdict.reason, district.desk_phone)
            lines.append(t("Rides: can't be booked now. {reason}", reason=reason.render(t)))
    lines.append("")
    rep = access.representation
    # What this person may see: the rider everything, a representative by their level.
    rights = None if access.own else (rep.rights if rep is not None else "")
    lines += profile_lines(
        t,
        view_of_rider(rider, district, access.representation),
        masked_iin=may(rights, Act.SEE_IIN_MASKED),
        health=may(rights, Act.SEE_HEALTH),
    )
    if access.own:
        count = len(await reg.relatives_of(session, rider.id))
        lines.append(t("Linked relatives: {count}", count=count))
    several = len(await reg.riders_of(session, account)) > 1
    markup = kb.rider_page_keyboard(
        t,
        rider.id,
        own=access.own,
        representation_id=rep.id if rep else None,
        can_delete=access.can_delete,
        several=several,
        can_invite=may(rights, Act.INVITE),
    )
    return "\n".join(lines), markup


async def send_rider_page(ctx: Context, rider_id: int) -> None:
    """The rider page as a new message (after /profile with one rider, or after an edit)."""
    page = await rider_page(ctx, rider_id)
    if page is None:
        ctx.reply(ctx.t(NOT_YOURS))
        return
    ctx.reply(*page)
