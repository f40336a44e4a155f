"""/profile (the rider pages and their edits), /mydata and /forget.

A person sees their own rider profile and every rider they book for. Every button names the
rider it acts on and is checked against who pressed it, so an old or forged button says why it
does nothing. /mydata lists everything stored; /forget erases it after a confirmation.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.callback_answer import CallbackAnswer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.registration import ForgetAnswer, ProfileAction, ProfilePress
from bot.filters import Button
from bot.i18n import N_, I18n, Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import LANGUAGE_NAMES, PROFILE, main_menu
from bot.services import privacy
from bot.services import registration as reg
from bot.services.crypto import DataKey
from bot.services.dispatch import split_text
from bot.services.i18n_types import Reason
from bot.settings import Settings
from bot.states.registration import Draft
from handlers.onboarding import begin as begin_onboarding
from handlers.registration import (
    begin_edit,
    begin_registration,
    make_ctx,
    profile_lines,
    view_of_rider,
)
from models import Account, District, Representation, Rider


def alert(answer: CallbackAnswer, text: str) -> None:
    """A short alert in answer to the press (answered once, by the middleware)."""
    answer.text = text
    answer.show_alert = True


router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

NOT_YOURS = N_("This profile is not linked to you any more.")
VERIFICATION_LABELS = {
    "pending": N_("Checking: waiting for the dispatcher."),
    "verified": N_("Checking: approved by the dispatcher."),
    "rejected": N_("Checking: not approved. Reason: {reason}."),
}
EDITABLE = ("name", "phone", "iin", "district", "address", "category", "vkk", "needs")


def local(instant: datetime, settings: Settings) -> str:
    return instant.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")


# -- /profile -----------------------------------------------------------------------------------


@router.message(Command("profile"))
@router.message(Button(PROFILE))
async def profile_command(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    bot: Bot,
    settings: Settings,
) -> None:
    """Works from any step: the step is left, as with any command."""
    await state.clear()
    if account.consent_version is None:
        await begin_onboarding(bot, message.chat.id, state, t, settings)
        return
    riders = await reg.riders_of(session, account)
    if len(riders) == 1:
        await send_rider_page(bot, message.chat.id, session, account, t, riders[0].id, settings)
        return
    text, markup = await profiles_list(session, account, t, riders)
    await message.answer(text, reply_markup=markup)


async def profiles_list(
    session: AsyncSession, account: Account, t: Translator, riders: list[Rider] | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    riders = riders if riders is not None else await reg.riders_of(session, account)
    has_own = any(r.account_id == account.id for r in riders)
    markup = kb.profiles_keyboard(
        t, [(r.id, r.full_name) for r in riders], can_register_self=not has_own
    )
    if not riders:
        return t("You have no rider profile yet. Who do you want to register?"), markup
    return t("Your profiles. Choose one to see or change it."), markup


async def rider_page(
    session: AsyncSession, account: Account, t: Translator, rider_id: int, settings: Settings
) -> tuple[str, InlineKeyboardMarkup] | None:
    access = await reg.access_to(session, account, rider_id)
    if access is None:
        return None
    rider = access.rider
    district = await session.get(District, rider.district_id)
    lines = [f"{rider.full_name}"]
    label = VERIFICATION_LABELS.get(rider.verification, VERIFICATION_LABELS["pending"])
    lines.append(t(label, reason=reg.reason_text(t, rider.rejection_reason) or "—"))
    if district is not None:
        today = datetime.now(settings.tz).date()
        verdict = reg.eligibility_of(rider, district, today)
        if verdict.ok:
            lines.append(t("Rides: can be booked."))
        elif verdict.reason is not None and verdict.status == "not_eligible":
            lines.append(
                t("Rides: can't be booked now. {reason}", reason=verdict.reason.render(t))
            )
    lines.append("")
    lines += profile_lines(t, view_of_rider(rider, district, access.representation))
    if access.own:
        count = len(await reg.relatives_of(session, rider.id))
        lines.append(t("Linked relatives: {count}", count=count))
    several = len(await reg.riders_of(session, account)) > 1
    rep = access.representation
    can_delete = rep is not None and rider.account_id is None
    markup = kb.rider_page_keyboard(
        t,
        rider.id,
        own=access.own,
        representation_id=rep.id if rep else None,
        can_delete=can_delete,
        several=several,
    )
    return "\n".join(lines), markup


async def send_rider_page(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    account: Account,
    t: Translator,
    rider_id: int,
    settings: Settings,
) -> None:
    page = await rider_page(session, account, t, rider_id, settings)
    if page is None:
        await bot.send_message(chat_id, t(NOT_YOURS))
        return
    await bot.send_message(chat_id, page[0], reply_markup=page[1])


async def show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Replace the page the button was on (a page is one message that changes in place)."""
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.LIST))
async def list_pressed(
    query: CallbackQuery, session: AsyncSession, account: Account, t: Translator
) -> None:
    text, markup = await profiles_list(session, account, t)
    await show(query, text, markup)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.OPEN))
async def open_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
) -> None:
    page = await rider_page(session, account, t, callback_data.rider, settings)
    if page is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    await show(query, *page)


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.EDIT_MENU))
async def edit_menu_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    access = await reg.access_to(session, account, callback_data.rider)
    if access is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    fields = list(EDITABLE)
    rep = access.representation
    if rep is not None and rep.relationship_kind == "attorney":
        fields.append("poa")
    text = t(
        "What do you want to change? A new IIN, date of birth, district, category, disability "
        "group or VKK conclusion goes to the dispatcher for checking again."
    )
    await show(query, text, kb.edit_menu_keyboard(t, access.rider.id, fields))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.EDIT))
async def edit_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    i18n: I18n,
    bot: Bot,
    settings: Settings,
    data_key: DataKey,
) -> None:
    access = await reg.access_to(session, account, callback_data.rider)
    if access is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    chat_id = query.message.chat.id if query.message else account.telegram_id
    ctx = make_ctx(bot, chat_id, t, i18n, session, account, settings, data_key)
    if not await begin_edit(ctx, state, access, callback_data.field):
        alert(callback_answer, t("This can't be changed here."))


@router.callback_query(
    ProfilePress.filter(F.action.in_({ProfileAction.REGISTER_SELF, ProfileAction.REGISTER_OTHER}))
)
async def register_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    i18n: I18n,
    bot: Bot,
    settings: Settings,
    data_key: DataKey,
) -> None:
    chat_id = query.message.chat.id if query.message else account.telegram_id
    if account.consent_version is None:
        await begin_onboarding(bot, chat_id, state, t, settings)
        return
    for_other = callback_data.action == ProfileAction.REGISTER_OTHER
    if not for_other and await reg.own_rider(session, account) is not None:
        alert(callback_answer, t(reg.OWN_EXISTS.msgid))
        return
    name = query.from_user.full_name if not for_other else ""
    ctx = make_ctx(bot, chat_id, t, i18n, session, account, settings, data_key, name)
    await begin_registration(ctx, state, Draft(for_other=for_other))


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.DELETE))
async def delete_pressed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
) -> None:
    access = await reg.access_to(session, account, callback_data.rider)
    if access is None or access.representation is None or access.rider.account_id is not None:
        alert(callback_answer, t(NOT_YOURS))
        return
    text = t(
        "Delete the profile of {name}? Its rides and their history are deleted too. "
        "This can't be undone.",
        name=access.rider.full_name,
    )
    yes = ProfilePress(action=ProfileAction.DELETE_CONFIRM, rider=access.rider.id)
    await show(
        query, text, kb.confirm_keyboard(t, t(N_("Yes, delete the profile")), yes, access.rider.id)
    )


@router.callback_query(ProfilePress.filter(F.action == ProfileAction.DELETE_CONFIRM))
async def delete_confirmed(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ProfilePress,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
) -> None:
    result = await privacy.delete_profile(
        session, account, callback_data.rider, tz=settings.timezone
    )
    if result is None:
        alert(callback_answer, t(NOT_YOURS))
        return
    if isinstance(result, Reason):
        alert(callback_answer, result.render(t))
        return
    text, markup = await profiles_list(session, account, t)
    await show(
        query,
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
        kind += ", " + t("No. {number}, valid until {until}", number=rep.poa_number, until=until)
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
            line += "; " + t("for rider profile {number}", number=consent.rider_id)
        if consent.withdrawn_at is not None:
            line += "; " + t("withdrawn {when}", when=local(consent.withdrawn_at, settings))
        lines.append(line)
    for record in data.riders:
        rider = record.rider
        district = districts.get(rider.district_id)
        mine = next((r for r, acc in record.representations if acc.id == a.id), None)
        lines += ["", t("Rider profile {number}: {name}", number=rider.id, name=rider.full_name)]
        you = (
            t(N_("the rider (your own profile)"))
            if record.own
            else (_kind(t, mine) if mine else "—")
        )
        lines.append(t("You are: {kind}", kind=you))
        view = view_of_rider(rider, district, None)
        lines += profile_lines(t, view, iin=record.iin)
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
                    "Check {number}: {status}, {when}",
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
                else t("valid until {when}", when=local(invite.expires_at, settings))
            )
            lines.append(
                t("Invitation for profile {number}: {state}", number=invite.rider_id, state=state)
            )
    lines += ["", t("To erase all of this and withdraw your consent, send /forget.")]
    return lines


@router.message(Command("mydata"))
async def my_data(
    message: Message,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
    data_key: DataKey,
) -> None:
    data = await privacy.stored_data(session, account, data_key)
    ids = {r.rider.district_id for r in data.riders}
    districts = {d.id: d for d in await reg.active_districts(session) if d.id in ids}
    for chunk in split_text(data_lines(t, data, settings, districts)):
        await message.answer(chunk)


# -- /forget ------------------------------------------------------------------------------------


@router.message(Command("forget"))
async def forget_command(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
) -> None:
    await state.clear()
    refusal = await privacy.forget_refusal(session, account, tz=settings.timezone)
    if refusal is not None:
        await message.answer(refusal.render(t), reply_markup=main_menu(t))
        return
    await message.answer(
        t(
            "This withdraws your consent and erases your data: your rider profile, the profiles "
            "that only you manage, your links to other riders, and the history of those rides. "
            "It can't be undone. Erase?"
        ),
        reply_markup=kb.forget_keyboard(t),
    )


@router.callback_query(ForgetAnswer.filter())
async def forget_answered(
    query: CallbackQuery,
    callback_data: ForgetAnswer,
    state: FSMContext,
    session: AsyncSession,
    account: Account,
    t: Translator,
    settings: Settings,
) -> None:
    if not callback_data.confirm:
        await show(query, t("Nothing was erased."), None)
        return
    await state.clear()
    result = await privacy.forget(session, account, tz=settings.timezone)
    if isinstance(result, Reason):
        await show(query, result.render(t), None)
        return
    await show(query, t("Your consent is withdrawn and your data is erased."), None)
    if isinstance(query.message, Message):
        await query.message.answer(
            t("Goodbye. If you need the service again, send /start."),
            reply_markup=ReplyKeyboardRemove(),
        )
