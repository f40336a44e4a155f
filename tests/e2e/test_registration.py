"""Registration end to end, against the Bot API stand-in, in Kazakh and in Russian.

A rider registers and a dispatcher of their district approves; a parent registers a child who
has no Telegram and the dispatcher rejects with a reason; a rider invites a relative who then
gets the rider's messages; a group member who is not a dispatcher can't decide anything.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.callbacks.registration import VerifyAction, VerifyPress
from bot.i18n import Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import BACK
from bot.services import registration as reg
from bot.services.consent_text import consent_full
from bot.services.rights import RIGHTS_LABELS, Rights
from handlers.representatives import INVITE_LEVEL, INVITE_OFFER
from handlers.verification import BAD_REASON
from models import Account, Consent, Invite, Representation, Rider, Verification
from tests.factories import (
    IIN_CHILD,
    IIN_KK,
    IIN_RU,
    REGISTRATION_DISTRICTS,
    Person,
    account,
    card_of,
    first_contact,
    one,
    person,
    register_self,
    registered,
)


@pytest.mark.parametrize("lang", ["ru", "kk"])
async def test_a_rider_registers_and_a_dispatcher_approves(bot, lang: str) -> None:
    district_id, group, _ = REGISTRATION_DISTRICTS[lang]
    name = "Иван Петров" if lang == "ru" else "Гүлнар Әбенова"
    iin = IIN_RU if lang == "ru" else IIN_KK
    rider = person(bot, 7001, lang, name.split()[0])
    await first_contact(bot, rider, lang)
    await register_self(bot, rider, lang, iin=iin, name=name)
    await bot.settle()

    stored = await one(bot, Rider, Rider.account_id.is_not(None))
    assert stored.full_name == name and stored.district_id == district_id
    assert stored.phone == rider.user.phone  # the shared contact, normalised
    assert stored.verification == "pending"
    assert stored.needs_wheelchair and stored.usual_assistant and not stored.usual_companion
    assert stored.home_lat is not None and stored.disability_group == 1
    # The IIN is stored encrypted and found by its keyed hash, never in clear.
    assert iin not in stored.iin_encrypted and stored.iin_hash != iin
    assert bot.app.dp["data_key"].decrypt(stored.iin_encrypted) == iin
    consents = await one(bot, Account, Account.telegram_id == 7001)
    assert consents.consent_version == reg.CONSENT_VERSION and consents.role == "rider"
    async with bot.sessions() as session:
        texts = list(await session.scalars(select(Consent.text)))
    assert len(texts) == 2 and texts[0] == texts[1]  # the account's and the rider's copy
    # The full text is what was agreed to, not the summary.
    assert texts[0] == consent_full(rider.t, reg.CONSENT_VERSION, 3 * 365)

    # The card in the district chat, in the chat's language: whom to call, nothing about
    # health or identity (no IIN digits, category, VKK or needs: they open in private).
    verification = await one(bot, Verification, Verification.rider_id == stored.id)
    desk: Translator = bot.app.i18n.translator(lang)
    card = card_of(bot, group, verification.id, desk)
    assert desk("Name: {name}, phone {phone}", name=name, phone=stored.phone) in card.text
    assert iin[-4:] not in card.text and "123/45" not in card.text
    assert desk(reg.NEED_LABELS["wheelchair"]) not in card.text
    assert desk(reg.CATEGORY_LABELS["group1_mobility"]) not in card.text
    # The full profile opens in a private chat with the bot (issue 12): a link, then the decision.
    assert card.button_texts == [desk(kb.OPEN_PROFILE), desk(kb.APPROVE), desk(kb.REJECT)]

    dispatcher = bot.dispatcher(district_id, 0)
    answer = await dispatcher.press(desk(kb.APPROVE), message=card).answer()
    assert answer.text == desk("Approved. The rider is told.")
    await bot.settle()
    card = card_of(bot, group, verification.id, desk)
    assert card.button_texts == []
    assert desk("approved") in card.text.splitlines()[0]
    decided_by = "Айгүл" if lang == "ru" else "Нұрлан"
    assert desk("Decided by {who}, {when}", who=decided_by, when="").rstrip() in card.text
    await rider.sees(
        "The dispatcher checked the profile of {name}: it is approved. You can book rides now: "
        "/book",
        name=name,
    )
    stored = await one(bot, Rider, Rider.id == stored.id)
    assert stored.verification == "verified" and stored.verified_by == dispatcher.id

    # A stale Approve from before the decision changes nothing and says why.
    stale = VerifyPress(verification=verification.id, action=VerifyAction.REJECT).pack()
    late = await bot.dispatcher(district_id, 0).press_data(card, stale).answer()
    assert late.show_alert
    assert late.text == desk(
        "This profile check is already closed: {status}.",
        status=f"{desk('approved')} ({decided_by})",
    )
    assert (await one(bot, Rider, Rider.id == stored.id)).verification == "verified"


async def test_a_parent_registers_a_child_who_has_no_telegram(bot) -> None:
    parent = person(bot, 7101, "kk", "Ләззат")
    t = parent.t
    await first_contact(bot, parent, "kk", agree=kb.AGREE_OTHER)
    relationship = await parent.sees("Who are you to the person you are registering?")
    assert relationship is not None
    for msgid in (kb.PARENT, kb.CHILD_OF, kb.SPOUSE, kb.OTHER_RELATIVE):
        assert t(msgid) in parent.user.keyboard_buttons
    parent.user.send_text("бір нәрсе")
    await parent.sees("Please choose one of the buttons below.")
    # Typed as people say it, not only pressed.
    parent.user.send_text("мамасымын")
    await parent.sees("Your own name: the dispatcher will call you about the rider's rides.")
    parent.user.send_text("Ләззат Омарова")
    await parent.sees("Your own phone number: press “Share my number” below, or type it.")
    parent.tap(kb.SHARE_MY_NUMBER)
    await parent.sees("The rider's full name, as in their ID card or birth certificate.")
    parent.user.send_text("Әлихан Серікұлы Омаров")
    phone = await parent.sees(
        "The rider's phone number. If the rider has no phone, press “Use my own number”: "
        "the driver will call you."
    )
    assert phone is not None
    # The contact button shares the parent's own number, and says so.
    assert parent.user.keyboard_buttons[0] == t(kb.USE_MY_NUMBER)
    parent.tap(BACK)
    await parent.sees("The rider's full name, as in their ID card or birth certificate.")
    parent.user.send_text("Әлихан Серікұлы Омаров")
    await parent.user.wait_for(t(kb.USE_MY_NUMBER).split()[0])
    parent.user.send_text("8 (707) 555-12-34")
    await parent.sees("Which city or district does the rider live in?")
    parent.user.tap("Талдықорған қаласы")
    await parent.sees("The rider's IIN, from their ID card or birth certificate.")
    parent.user.send_text(IIN_CHILD)
    await parent.sees("Type the street, house and flat, for example: Abai street 12, flat 5.")
    parent.user.send_text("Жансүгіров көшесі, 5")
    await parent.sees("Which of these describes the rider? It decides the right to the service.")
    parent.tap(reg.CATEGORY_LABELS["child_rehab"])
    await parent.sees("Which rehabilitation or day-care centre does the child attend?")
    parent.user.send_photo()
    await parent.sees("I can read only typed text at this step.")
    parent.user.send_text("«Үміт» оңалту орталығы")
    await parent.sees(
        "Disability group? For an elderly person or a child without one, choose the last."
    )
    parent.tap(kb.NO_GROUP)
    await parent.sees("The number of the VKK conclusion (the medical advisory commission).")
    parent.user.send_text("45/2026")
    await parent.sees("Until what date is the VKK conclusion valid?")
    parent.tap(kb.INDEFINITE)
    await parent.sees("What does the rider need on the way?")
    parent.user.send_text("2 4 5")
    summary = await parent.sees("Please check the profile:")
    assert t("Usually rides along: {value}", value=t(kb.WITH_BOTH)) in summary.text, summary.text
    assert t("You are: {kind}", kind=t(reg.RELATIONSHIP_LABELS["parent"])) in summary.text
    assert t("Centre: {value}", value="«Үміт» оңалту орталығы") in summary.text
    assert (
        t(
            "Needs: {value}",
            value=", ".join(t(reg.NEED_LABELS[c]) for c in ("walker", "assistant")),
        )
        in summary.text
    )
    parent.tap(kb.CONFIRM)
    await parent.sees(
        "Thank you! The profile of {name} is sent to the dispatchers of {district} for "
        "checking. We will write to you here when they decide.",
        name="Әлихан Серікұлы Омаров",
        district="Талдықорған қаласы",
    )
    await bot.settle()

    child = await one(bot, Rider, Rider.full_name == "Әлихан Серікұлы Омаров")
    assert child.account_id is None  # no Telegram of his own
    assert child.phone == "+77075551234" and child.category == "child_rehab"
    assert child.birth_date == date(2015, 6, 2) and child.vkk_expires_on is None
    assert child.needs_walker and child.needs_assistant and not child.needs_wheelchair
    link = await one(bot, Representation, Representation.rider_id == child.id)
    parent_account = await one(bot, Account, Account.telegram_id == 7101)
    assert link.account_id == parent_account.id and link.relationship_kind == "parent"
    assert link.contact_name == "Ләззат Омарова" and link.contact_phone == parent.user.phone

    # Taldykorgan's chat writes Russian: the dispatcher rejects with a reason from the list.
    ru: Translator = bot.app.i18n.translator("ru")
    verification = await one(bot, Verification, Verification.rider_id == child.id)
    card = card_of(bot, -1001000000001, verification.id, ru)
    assert (
        ru(
            "Representative: {kind}, {name}, {phone}",
            kind=ru(reg.RELATIONSHIP_LABELS["parent"]),
            name="Ләззат Омарова",
            phone=parent.user.phone,
        )
        in card.text
    )
    assert "«Үміт»" not in card.text
    marat = bot.dispatcher("taldykorgan", 1)
    await marat.press(ru(kb.REJECT), message=card).answer()
    await bot.settle()
    reasons = card_of(bot, -1001000000001, verification.id, ru).button_texts
    assert ru(kb.TYPED_REASON) in reasons and ru(BACK) in reasons
    await marat.press(lambda text: text == reasons[0], message=card).answer()
    await bot.settle()
    card = card_of(bot, -1001000000001, verification.id, ru)
    assert card.button_texts == []
    assert ru("Reason for rejecting: {reason}", reason=ru(reg.REJECT_REASONS["docs"])) in card.text
    await parent.sees(
        "The dispatcher did not approve the profile of {name}. Reason: {reason}.\n"
        "Correct the profile in /profile (it goes back for checking), or call the dispatcher: "
        "{phone}.",
        phone="+7 728 224 11 22",
        name="Әлихан Серікұлы Омаров",
        reason=t(reg.REJECT_REASONS["docs"]),
    )
    assert (await one(bot, Rider, Rider.id == child.id)).verification == "rejected"


async def test_only_the_districts_dispatchers_can_decide(bot) -> None:
    rider_id = await registered(bot, 7201, "ru", "Иван Петров", IIN_RU)
    ru: Translator = bot.app.i18n.translator("ru")
    verification = await one(bot, Verification, Verification.rider_id == rider_id)
    group = -1001000000001
    card = card_of(bot, group, verification.id, ru)

    guest = bot.outsider("taldykorgan")
    for label in (kb.APPROVE, kb.REJECT):
        answer = await guest.press(ru(label), message=card).answer()
        assert answer.show_alert
        assert answer.text == ru("Only this district's dispatchers can check profiles.")
    # A dispatcher of another district is no dispatcher here either.
    nurlan = bot.person(9101, name="Нұрлан")
    bot.stand_in.add_member(group, nurlan)
    answer = await nurlan.press(ru(kb.APPROVE), message=card).answer()
    assert answer.text == ru("Only this district's dispatchers can check profiles.")
    await bot.settle()
    assert (await one(bot, Verification, Verification.id == verification.id)).status == "pending"
    assert (await one(bot, Rider, Rider.id == rider_id)).verification == "pending"
    assert card_of(bot, group, verification.id, ru).button_texts == [
        ru(kb.OPEN_PROFILE),
        ru(kb.APPROVE),
        ru(kb.REJECT),
    ]

    # A dispatcher rejects with a reason of her own, typed as a reply to the card.
    aigul = bot.dispatcher("taldykorgan", 0)
    await aigul.press(ru(kb.REJECT), message=card).answer()
    await bot.settle()
    hint = await aigul.press(ru(kb.TYPED_REASON), message=card).answer()
    assert hint.show_alert
    assert hint.text == ru("Reply to this card with the reason for rejecting, in words.")
    aigul.send_sticker(chat=group)  # not a reply: the bot does not even see it in a group
    aigul.send_text("🙂", chat=group, reply_to=card)
    await bot.stand_in.wait_for(ru(BAD_REASON), group)
    aigul.send_text("Фото заключения ВКК нечитаемое", chat=group, reply_to=card)
    await bot.settle()
    card = card_of(bot, group, verification.id, ru)
    assert (
        ru("Reason for rejecting: {reason}", reason="Фото заключения ВКК нечитаемое") in card.text
    )
    rider = Person(bot.person(7201), ru)
    await rider.sees(
        "The dispatcher did not approve the profile of {name}. Reason: {reason}.\n"
        "Correct the profile in /profile (it goes back for checking), or call the dispatcher: "
        "{phone}.",
        phone="+7 728 224 11 22",
        name="Иван Петров",
        reason="Фото заключения ВКК нечитаемое",
    )


async def test_a_rider_invites_a_relative_who_then_gets_the_riders_messages(bot) -> None:
    rider_id = await registered(bot, 7301, "kk", "Бибігүл Әбенова", IIN_KK)
    rider = person(bot, 7301, "kk", "Бибігүл")
    rider.user.send_text("/invite")
    # The rider chooses what the relative may do (issue 12): rides only.
    await rider.sees(INVITE_LEVEL)
    rider.user.press(rider.t(RIGHTS_LABELS[Rights.RIDES]))
    link_message = await rider.user.wait_for("https://t.me/")
    found = re.search(r"https://t\.me/(\w+)\?start=inv_([A-Za-z0-9_-]+)", link_message.text)
    assert found is not None and found.group(1) == "invataxi_test_bot"
    code = found.group(2)
    invite = await one(bot, Invite, Invite.code == code)
    assert timedelta(hours=23) < invite.expires_at - datetime.now(UTC) <= timedelta(hours=24)

    # The daughter is new: language, consent, then the invitation.
    daughter = person(bot, 7302, "ru", "Дана")
    daughter.user.send_text(f"/start inv_{code}")
    await daughter.user.wait_for("Тілді таңдаңыз")
    daughter.user.press(lambda text: text.endswith("Русский язык"))
    await daughter.user.wait_for(daughter.t(reg.CONSENT_TEXT, version="", retention="")[:30])
    daughter.tap(kb.AGREE)
    offer = await daughter.sees(
        INVITE_OFFER,
        name="Бибігүл Әбенова",
        rights=daughter.t(RIGHTS_LABELS[Rights.RIDES]),
    )
    daughter.user.press(daughter.t("Accept the invitation"), message=offer)
    await daughter.sees(
        "You are now linked to {name}. Book rides for them with /book; their ride messages "
        "will come here too.",
        name="Бибігүл Әбенова",
    )
    await bot.settle()
    await rider.sees(
        "{relative} accepted your invitation and is now linked to your profile: they can book "
        "rides for you and get your ride messages. Unlink them any time in /profile.",
        relative="Дана",
    )
    link = await one(bot, Representation, Representation.rider_id == rider_id)
    assert link.relationship_kind == "relative"

    # The link works once.
    third = person(bot, 7303, "ru", "Олег")
    async with bot.sessions() as session:
        await account(session, 7303, language="ru", name="Олег")
        await session.commit()
    third.user.send_text(f"/start inv_{code}")
    await third.sees("This invitation was already used. Ask the rider for a new link.")

    # The dispatcher approves: the rider reads it in Kazakh, her daughter in Russian.
    ru: Translator = bot.app.i18n.translator("ru")
    verification = await one(bot, Verification, Verification.rider_id == rider_id)
    card = card_of(bot, -1001000000001, verification.id, ru)
    await bot.dispatcher("taldykorgan", 0).press(ru(kb.APPROVE), message=card).answer()
    await bot.settle()
    for who in (rider, daughter):
        await who.user.wait_for(who.t(reg.VERIFIED_MSG, name="Бибігүл Әбенова"), after=0)

    # The rider unlinks her from the profile page; the daughter is told.
    rider.user.send_text("/profile")
    page = await rider.user.wait_for("Бибігүл Әбенова")
    rider.user.press(rider.t("Linked relatives"), message=page)
    listed = await rider.user.wait_for(rider.t("Linked to your profile:"))
    rider.user.press(rider.t("Unlink {name}", name="Дана"), message=listed)
    confirm = await rider.sees(
        "Unlink {name}? They will no longer book for you or get your ride messages.", name="Дана"
    )
    rider.user.press(rider.t("Yes, unlink"), message=confirm)
    await rider.user.wait_for(rider.t("{name} is unlinked.", name="Дана"))
    await bot.settle()
    await daughter.sees(
        "{name} unlinked you from their profile. You will no longer get their ride messages.",
        name="Бибігүл Әбенова",
    )
    async with bot.sessions() as session:
        assert await session.scalar(select(Representation.id)) is None


async def test_an_expired_invite_is_refused_with_the_reason(bot) -> None:
    rider_id = await registered(bot, 7401, "ru", "Иван Петров", IIN_RU)
    async with bot.sessions() as session:
        owner = await account(session, 7401)
        session.add(
            Invite(
                code="old-code-0123456789",
                rider_id=rider_id,
                created_by=owner.id,
                expires_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        await session.commit()
    relative = person(bot, 7402, "ru", "Дана")
    async with bot.sessions() as session:
        await account(session, 7402, language="ru", name="Дана")
        await session.commit()
    relative.user.send_text("/start inv_old-code-0123456789")
    refusal = await relative.user.wait_for(relative.t(reg.INVITE_EXPIRED, when="")[:20])
    assert "24" in refusal.text
    async with bot.sessions() as session:
        assert await session.scalar(select(Representation.id)) is None


async def test_registering_oneself_takes_at_most_13_actions(bot) -> None:
    """Issue 13, point 16: /start to «sent for checking», every tap and message counted."""
    rider = person(bot, 7501, "ru", "Ерлан")
    t = rider.t
    actions = await first_contact(bot, rider, "ru")  # /start, language, «agree: myself»
    steps: list[tuple[str | None, str]] = [
        (None, "Ерлан Сейітов"),
        (kb.SHARE_MY_NUMBER, ""),
        (None, "город Талдыкорган"),
        (None, IIN_RU),
        (None, "Абая, 12"),
        (reg.CATEGORY_LABELS["group1_mobility"], ""),
        (None, "123/45"),
        (kb.INDEFINITE, ""),
        (kb.DONE, ""),
        (kb.CONFIRM, ""),
    ]
    for button, text in steps:
        if button is not None:
            rider.tap(button)
        else:
            rider.user.send_text(text)
        actions += 1
        await bot.settle()
    await rider.sees(
        "Thank you! The profile of {name} is sent to the dispatchers of {district} for "
        "checking. We will write to you here when they decide.",
        name="Ерлан Сейітов",
        district="город Талдыкорган",
    )
    assert actions <= 13, actions
    assert t(kb.CONFIRM)  # the count includes the confirmation


async def test_a_daughter_registers_her_father_and_the_dispatcher_finds_her(bot) -> None:
    """B4, B5: a daughter says who she is, her own name and phone reach the card and /find."""
    daughter = person(bot, 7502, "ru", "Дана")
    t = daughter.t
    await first_contact(bot, daughter, "ru", agree=kb.AGREE_OTHER)
    await daughter.sees("Who are you to the person you are registering?")
    daughter.user.send_text("Дочь")
    await daughter.sees("Your own name: the dispatcher will call you about the rider's rides.")
    daughter.user.send_text("Дана Ахметова")
    await daughter.sees("Your own phone number: press “Share my number” below, or type it.")
    daughter.user.send_text("8 777 123 45 67")
    await daughter.sees("The rider's full name, as in their ID card or birth certificate.")
    for answer in ("Ахметов Серик Болатович", "8 705 111 22 33", "город Талдыкорган"):
        daughter.user.send_text(answer)
        await bot.settle()
    daughter.user.send_text(IIN_KK)
    await daughter.sees("Type the street, house and flat, for example: Abai street 12, flat 5.")
    daughter.user.send_text("Абая, 12")
    await bot.settle()
    daughter.tap(reg.CATEGORY_LABELS["elderly"])
    await bot.settle()
    daughter.tap(kb.NO_GROUP)
    await bot.settle()
    daughter.user.send_text("77/1")
    await bot.settle()
    daughter.tap(kb.INDEFINITE)
    await bot.settle()
    daughter.tap(kb.NO_NEEDS)
    summary = await daughter.sees("Please check the profile:")
    assert t("You are: {kind}", kind=t(reg.RELATIONSHIP_LABELS["child"])) in summary.text
    assert (
        t("Your name and phone: {name}, {phone}", name="Дана Ахметова", phone="+77771234567")
        in summary.text
    )
    daughter.tap(kb.CONFIRM)
    await daughter.sees(
        "Thank you! The profile of {name} is sent to the dispatchers of {district} for "
        "checking. We will write to you here when they decide.",
        name="Ахметов Серик Болатович",
        district="город Талдыкорган",
    )
    await bot.settle()

    father = await one(bot, Rider, Rider.full_name == "Ахметов Серик Болатович")
    verification = await one(bot, Verification, Verification.rider_id == father.id)
    ru: Translator = bot.app.i18n.translator("ru")
    card = card_of(bot, -1001000000001, verification.id, ru)
    assert (
        ru(
            "Representative: {kind}, {name}, {phone}",
            kind=ru(reg.RELATIONSHIP_LABELS["child"]),
            name="Дана Ахметова",
            phone="+77771234567",
        )
        in card.text
    )
    # The dispatcher finds the father by the daughter's name, and sees whom to call.
    marat = bot.dispatcher("taldykorgan", 1)
    after = bot.stand_in.checkpoint()
    marat.send_text("/find Ахметова", chat=-1001000000001)
    found = await bot.stand_in.wait_for("Ахметов Серик Болатович", -1001000000001, after=after)
    assert (
        ru("Representative: {name}, {phone}", name="Дана Ахметова", phone="+77771234567")
        in found.text
    )
