"""/profile (the rider pages and their edits), /mydata and /forget.

A person sees their own rider profile and every rider they book for. Every button names the
rider it acts on and is checked against who pressed it, so an old or forged button says why it
does nothing. /mydata lists everything stored; /forget erases it after a confirmation.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardRemove

from bot.callbacks.registration import ForgetAnswer, ProfileAction, ProfilePress
from bot.context import Context
from bot.filters import Button
from bot.i18n import N_, Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import LANGUAGE_NAMES, PROFILE, main_menu
from bot.profile_view import NOT_YOURS, profile_lines, rider_page, send_rider_page, view_of_rider
from bot.services import privacy
from bot.services import registration as reg
from bot.services.dispatch import split_text
from bot.services.i18n_types import Reason
from bot.services.rights import Act, may
from bot.settings import Settings
from bot.states.registration import Draft
from handlers.onboarding import begin as begin_onboarding
from handlers.registration import begin_edit, begin_registration, data_key
from models import District, Representation, Rider

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

EDITABLE = ("name", "phone", "iin", "district", "address", "category", "vkk", "needs")


def local(instant: datetime, settings: Settings) -> str:
    return instant.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")


# -- /profile -----------------------------------------------------------------------------------


@router.message(Command("profile"))
@router.message(Button(PROFILE))
async def profile_command(message: Message, ctx: Context) -> None:
    """Works from any step: the step is left, as with any command."""
    await ctx.fsm.clear()
    if ctx.person.consent_version is None:
        await begin_onboarding(ctx)
        return
    riders = await reg.riders_of(ctx.session, ctx.person)
    if len(riders) == 1:
        await send_rider_page(ctx, riders[0].id)
        return
    ctx.reply(*(await profiles_list(ctx, riders)))


async def profiles_list(
    ctx: Context, riders: list[Rider] | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    t, account = ctx.t, ctx.person
    riders = riders if riders is not None else await reg.riders_of(ctx.session, account)
    has_own = any(r.account_id == account.id for r in riders)
    markup = kb.profiles_keyboard(
        t, [(r.id, r.full_name) for r in riders], can_register_self=not has_own
    )
    if not riders:
        return t("You have no rider profile yet. Who do you want to register?"), markup
    return t("Your profiles. Choose one to see or change it."), markup


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.LIST))
async def list_pressed(query: CallbackQuery, ctx: Context) -> None:
    ctx.edit(query.message, *(await profiles_list(ctx)))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.OPEN))
async def open_pressed(query: CallbackQuery, callback_data: ProfilePress, ctx: Context) -> None:
    page = await rider_page(ctx, callback_data.rider)
    if page is None:
        ctx.toast(ctx.t(NOT_YOURS), alert=True)
        return
    ctx.edit(query.message, *page)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.EDIT_MENU))
async def edit_menu_pressed(
    query: CallbackQuery, callback_data: ProfilePress, ctx: Context
) -> None:
    t = ctx.t
    access = await reg.access_to(ctx.session, ctx.person, callback_data.rider)
    if access is None:
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    rep = access.representation
    # A representative without the right to change the profile changes only their own contact.
    may_edit = may(rep.rights if rep is not None else None, Act.EDIT_PROFILE)
    fields = list(EDITABLE) if may_edit else []
    if rep is not None and rep.relationship_kind == "attorney" and may_edit:
        fields.append("poa")
    if rep is not None:
        fields.append("contact")
    text = t(
        "What do you want to change? A new IIN, date of birth, district, category, disability "
        "group or VKK conclusion goes to the dispatcher for checking again."
    )
    ctx.edit(query.message, text, kb.edit_menu_keyboard(t, access.rider.id, fields))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.EDIT))
async def edit_pressed(query: CallbackQuery, callback_data: ProfilePress, ctx: Context) -> None:
    access = await reg.access_to(ctx.session, ctx.person, callback_data.rider)
    if access is None:
        ctx.toast(ctx.t(NOT_YOURS), alert=True)
        return
    rep = access.representation
    if callback_data.field != "contact" and not may(
        rep.rights if rep is not None else None, Act.EDIT_PROFILE
    ):
        ctx.toast(ctx.t(reg.NOT_ALLOWED.msgid), alert=True)
        return
    if not await begin_edit(ctx, access, callback_data.field):
        ctx.toast(ctx.t("This can't be changed here."), alert=True)


@router.callback_query(
    ProfilePress.filter(F.action.in_({ProfileAction.REGISTER_SELF, ProfileAction.REGISTER_OTHER}))
)
async def register_pressed(
    query: CallbackQuery, callback_data: ProfilePress, ctx: Context
) -> None:
    account = ctx.person
    if account.consent_version is None:
        await begin_onboarding(ctx)
        return
    for_other = callback_data.action == ProfileAction.REGISTER_OTHER
    if not for_other and await reg.own_rider(ctx.session, account) is not None:
        ctx.toast(ctx.t(reg.OWN_EXISTS.msgid), alert=True)
        return
    # Offered as a button for the person's own name (or, for someone else, the representative's).
    name = query.from_user.full_name
    await begin_registration(ctx, Draft(for_other=for_other, telegram_name=name))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.DELETE))
async def delete_pressed(query: CallbackQuery, callback_data: ProfilePress, ctx: Context) -> None:
    t = ctx.t
    access = await reg.access_to(ctx.session, ctx.person, callback_data.rider)
    if access is None or not access.can_delete:
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    text = t(
        "Delete the profile of {name}? Its rides and their history are deleted too. "
        "This can't be undone.",
        name=access.rider.full_name,
    )
    yes = ProfilePress(action=ProfileAction.DELETE_CONFIRM, rider=access.rider.id)
    ctx.edit(
        query.message,
        text,
        kb.confirm_keyboard(t, t(N_("Yes, delete the profile")), yes, access.rider.id),
    )


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.DELETE_CONFIRM))
async def delete_confirmed(
    query: CallbackQuery, callback_data: ProfilePress, ctx: Context
) -> None:
    t = ctx.t
    result = await privacy.delete_profile(
        ctx.session, ctx.person, callback_data.rider, tz=ctx.settings.timezone
    )
    if result is None:
        ctx.toast(t(NOT_YOURS), alert=True)
        return
    if isinstance(result, Reason):
        ctx.toast(result.render(t), alert=True)
        return
    text, markup = await profiles_list(ctx)
    ctx.edit(
        query.message,
        t("The profile of {name} is deleted.", name=result.full_name) + "\n\n" + text,
        markup,
    )


# -- /mydata ------------------------------------------------------------------------------------


CHECK_STATES = {
    "pending": N_("waiting for the dispatcher"),
    "verified": N_("approved"),
    "rejected": N_("not approved"),
    "approved": N_("approved"),
    "superseded": N_("replaced by a newer check"),
}


def _kind(t: Translator, rep: Representation) -> str:
    kind = t(reg.RELATIONSHIP_LABELS.get(rep.relationship_kind, N_("relative")))
    if rep.poa_number:
        until = t.date(rep.poa_expires_on) if rep.poa_expires_on else "—"
        kind += ", " + t("№{number}, valid until: {until}", number=rep.poa_number, until=until)
    return kind


def data_lines(
    t: Translator, data: privacy.StoredData, settings: Settings, districts: dict[str, District]
) -> list[str]:
    """Every stored field, labelled, in the person's language; the IIN in full."""
    a = data.account
    role = {"rider": N_("rider"), "representative": N_("books for others")}.get(a.role or "")
    lines = [
        t("What the bot stores about you"),
        "",
        t("Your account"),
        t("Telegram id: {value}", value=a.telegram_id),
        t("Name in Telegram: {value}", value=a.display_name or "—"),
        t("Language: {value}", value=LANGUAGE_NAMES.get(a.language or "", "—")),
        t("Role: {value}", value=t(role) if role else "—"),
        t("First contact: {value}", value=local(a.created_at, settings)),
        "",
        t("Consents"),
    ]
    for consent in data.consents:
        line = t(
            "Version {version}, in {lang}, given {when}",
            version=consent.version,
            lang=LANGUAGE_NAMES.get(consent.language, consent.language),
            when=local(consent.given_at, settings),
        )
        if consent.rider_id is not None:
            line += "; " + t("for rider profile №{number}", number=consent.rider_id)
        if consent.withdrawn_at is not None:
            line += "; " + t("withdrawn {when}", when=local(consent.withdrawn_at, settings))
        lines.append(line)
    for record in data.riders:
        rider = record.rider
        district = districts.get(rider.district_id)
        mine = next((r for r, acc in record.representations if acc.id == a.id), None)
        lines += ["", t("Rider profile №{number}: {name}", number=rider.id, name=rider.full_name)]
        you = (
            t(N_("the rider (your own profile)"))
            if record.own
            else (_kind(t, mine) if mine else "—")
        )
        lines.append(t("You are: {kind}", kind=you))
        if mine is not None and mine.contact_phone:
            lines.append(
                t(
                    "Your name and phone: {name}, {phone}",
                    name=mine.contact_name or "—",
                    phone=mine.contact_phone,
                )
            )
        view = view_of_rider(rider, district, None)
        # The IIN whole only when the service gave it; masked, and the health fields, by level.
        lines += profile_lines(
            t,
            view,
            iin=record.iin,
            masked_iin=may(record.rights, Act.SEE_IIN_MASKED),
            health=may(record.rights, Act.SEE_HEALTH),
        )
        if rider.home_lat is not None and rider.home_lon is not None:
            lines.append(
                t(
                    "Location pin: {lat}, {lon}",
                    lat=f"{rider.home_lat:.6f}",
                    lon=f"{rider.home_lon:.6f}",
                )
            )
        status = t(CHECK_STATES.get(rider.verification, CHECK_STATES["pending"]))
        if rider.verification == "rejected" and rider.rejection_reason:
            status += " — " + reg.reason_text(t, rider.rejection_reason)
        lines.append(t("Checking: {status}", status=status))
        if rider.verified_at is not None:
            lines.append(t("Approved on: {when}", when=local(rider.verified_at, settings)))
        for check in record.verifications:
            lines.append(
                t(
                    "Check №{number}: {status}, {when}",
                    number=check.id,
                    status=t(CHECK_STATES.get(check.status, CHECK_STATES["pending"])),
                    when=local(check.decided_at or check.created_at, settings),
                )
            )
        for rep, other in record.representations:
            lines.append(
                t(
                    "Representative: {name} ({kind})",
                    name=other.display_name or "—",
                    kind=_kind(t, rep),
                )
            )
        lines.append(t("Rides: {count}", count=record.rides))
        lines.append(
            t(
                "Profile created {created}, last changed {updated}",
                created=local(rider.created_at, settings),
                updated=local(rider.updated_at, settings),
            )
        )
    if data.invites:
        lines += ["", t("Invitations you created")]
        for invite in data.invites:
            state = (
                t("used {when}", when=local(invite.used_at, settings))
                if invite.used_at
                else t("valid until: {when}", when=local(invite.expires_at, settings))
            )
            lines.append(
                t("Invitation for profile №{number}: {state}", number=invite.rider_id, state=state)
            )
    lines += ["", t("To erase all of this and withdraw your consent, send /forget.")]
    return lines


@router.message(Command("mydata"))
async def my_data(message: Message, ctx: Context) -> None:
    data = await privacy.stored_data(ctx.session, ctx.person, data_key(ctx))
    ids = {r.rider.district_id for r in data.riders}
    districts = {d.id: d for d in await reg.active_districts(ctx.session) if d.id in ids}
    for chunk in split_text(data_lines(ctx.t, data, ctx.settings, districts)):
        ctx.reply(chunk)


# -- /forget ------------------------------------------------------------------------------------


@router.message(Command("forget"))
async def forget_command(message: Message, ctx: Context) -> None:
    t = ctx.t
    await ctx.fsm.clear()
    refusal = await privacy.forget_refusal(ctx.session, ctx.person, tz=ctx.settings.timezone)
    if refusal is not None:
        ctx.reply(refusal.render(t), main_menu(t))
        return
    ctx.reply(
        t(
            "This withdraws your consent and erases your data: your rider profile, the profiles "
            "that only you manage, your links to other riders, and the history of those rides. "
            "It can't be undone. Erase?"
        ),
        kb.forget_keyboard(t),
    )


@router.callback_query(ForgetAnswer.filter())
async def forget_answered(query: CallbackQuery, callback_data: ForgetAnswer, ctx: Context) -> None:
    t = ctx.t
    if not callback_data.confirm:
        ctx.edit(query.message, t("Nothing was erased."))
        return
    await ctx.fsm.clear()
    result = await privacy.forget(ctx.session, ctx.person, now=ctx.now, tz=ctx.settings.timezone)
    if isinstance(result, Reason):
        ctx.edit(query.message, result.render(t))
        return
    ctx.edit(query.message, t("Your consent is withdrawn and your data is erased."))
    if isinstance(query.message, Message):
        ctx.reply(t("Goodbye. If you need the service again, send /start."), ReplyKeyboardRemove())
