"""/mydata and /forget end to end: everything stored is shown; erasure waits for open rides."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.i18n import Translator
from bot.keyboards import registration as kb
from bot.services import registration as reg
from models import (
    Account,
    AuditLog,
    Consent,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Verification,
)
from tests.factories import (
    IIN_KK,
    Person,
    one,
    person,
    rider_with_history,
)

GROUP = -1001000000001


async def test_mydata_lists_every_stored_field(bot) -> None:
    rider_id = await rider_with_history(bot, 7501, "kk")
    me = person(bot, 7501, "kk", "Айгерім")
    t = me.t
    me.user.send_text("/mydata")
    await me.sees("To erase all of this and withdraw your consent, send /forget.")
    text = "\n".join(m.text for m in me.user.messages() if m.text)
    stored = await one(bot, Rider, Rider.id == rider_id)
    expected = [
        t("Telegram id: {value}", value=7501),
        t("Name in Telegram: {value}", value="Айгерім"),
        t("Language: {value}", value="Қазақ тілі"),
        t("Role: {value}", value=t("rider")),
        t(
            "Rider profile №{number}: {name}",
            number=rider_id,
            name="Айгерім Сейітова",
        ),
        t("You are: {kind}", kind=t("the rider (your own profile)")),
        t("Full name: {value}", value="Айгерім Сейітова"),
        t("Phone: {value}", value="+77011234567"),
        t("IIN: {value}", value=IIN_KK),  # in full: this is the person's own private chat
        t("Date of birth: {value}", value="05.03.1958"),
        t("District: {value}", value="Талдықорған қаласы"),
        t("Home address: {value}", value="Абай көшесі, 12") + " " + t("(location pin saved)"),
        t("Location pin: {lat}, {lon}", lat="45.015300", lon="78.373900"),
        t("Category: {value}", value=t(reg.CATEGORY_LABELS["group1_mobility"])),
        t("Disability group: {value}", value=t(kb.GROUP_LABELS[1])),
        t(
            "VKK conclusion: №{number}, valid until: {expiry}",
            number="123/45",
            expiry="31.12.2027",
        ),
        t(
            "Needs: {value}",
            value=", ".join(t(reg.NEED_LABELS[c]) for c in ("wheelchair", "low_vision")),
        ),
        t("Usually rides along: {value}", value=t(kb.WITH_BOTH)),
        t("Checking: {status}", status=t("approved")),
        t(
            "Representative: {name} ({kind})",
            name="Ольга",
            kind=t(reg.RELATIONSHIP_LABELS["attorney"])
            + ", "
            + t("№{number}, valid until: {until}", number="02-1234", until="31.01.2027"),
        ),
        t("Rides: {count}", count=1),
    ]
    for line in expected:
        assert line in text, line
    assert stored.verified_at is not None
    assert t("Approved on: {when}", when="")[:10] in text
    assert reg.CONSENT_VERSION in text and t("Consents") in text
    async with bot.sessions() as session:
        viewed = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "data_viewed")
        )
    assert viewed == 1


async def test_forget_waits_for_open_rides_then_erases_the_data(bot) -> None:
    rider_id = await rider_with_history(bot, 7601, "ru")
    me: Person = person(bot, 7601, "ru", "Айгерім")
    async with bot.sessions() as session:
        stored = await session.get(Rider, rider_id)
        assert stored is not None
        open_ride = Ride(
            rider_id=rider_id,
            district_id=stored.district_id,
            pickup_address="Абай көшесі, 12",
            destination="Емхана",
            purpose="clinic",
            pickup_at=datetime(2030, 1, 10, 5, 0, tzinfo=UTC),
            status=RideStatus.SCHEDULED.value,
        )
        session.add(open_ride)
        await session.commit()
        ride_id = open_ride.id
    account_id = (await one(bot, Account, Account.telegram_id == 7601)).id
    me.user.send_text("/forget")
    await me.sees(
        "Your data can't be erased while ride №{number} ({date}) is open. Cancel it or wait "
        "until it is finished, then send /forget again.",
        number=ride_id,
        date="10.01.2030 10:00",
    )
    assert await one(bot, Rider, Rider.id == rider_id)

    async with bot.sessions() as session:
        ride = await session.get(Ride, ride_id)
        assert ride is not None
        ride.status = RideStatus.COMPLETED.value
        await session.commit()
    me.user.send_text("/forget")
    question = await me.sees(
        "This withdraws your consent and erases your data: your rider profile, the profiles "
        "that only you manage, your links to other riders, and the history of those rides. "
        "It can't be undone. Erase?"
    )
    me.user.press(me.t("No, keep my data"), message=question)
    await me.sees("Nothing was erased.")
    assert await one(bot, Rider, Rider.id == rider_id)

    me.user.send_text("/forget")
    question = await me.sees(
        "This withdraws your consent and erases your data: your rider profile, the profiles "
        "that only you manage, your links to other riders, and the history of those rides. "
        "It can't be undone. Erase?"
    )
    me.user.press(me.t("Yes, erase my data"), message=question)
    await me.sees("Goodbye. If you need the service again, send /start.")
    await bot.settle()

    async with bot.sessions() as session:
        assert await session.get(Rider, rider_id) is None
        assert await session.scalar(select(func.count()).select_from(Ride)) == 0
        assert await session.scalar(select(func.count()).select_from(Representation)) == 0
        gone = await session.scalar(select(Account).where(Account.telegram_id == 7601))
        assert gone is None  # no account answers to this Telegram id any more
        consents = list(
            await session.scalars(select(Consent).where(Consent.account_id == account_id))
        )
        # Withdrawn, but kept as proof: the text, the time, and the account only as an id.
        assert len(consents) == 2 and all(c.withdrawn_at and c.text for c in consents)
        anonymous = await session.get(Account, account_id)
        assert anonymous is not None and anonymous.display_name == ""
        trace = await session.scalar(
            select(AuditLog).where(AuditLog.action == "consent_withdrawn_data_erased")
        )
        assert trace is not None and "Айгерім" not in str(trace.details)
        assert await session.scalar(select(func.count()).select_from(Verification)) == 0
    # The profile's card in the dispatcher chat no longer shows the name or the phone.
    ru: Translator = bot.app.i18n.translator("ru")
    erased = [
        m
        for m in bot.stand_in.messages(GROUP)
        if m.text == ru("This profile was deleted at the person's request.")
    ]
    assert len(erased) == 1
    assert not any("Айгерім" in m.text for m in bot.stand_in.messages(GROUP))
    # The aunt who held the power of attorney is told the profile is gone.
    aunt = person(bot, 7602, "ru", "Ольга")
    await aunt.user.wait_for(
        aunt.t(
            "The profile of {name} was deleted at the request of the person who managed it. "
            "You will no longer get its ride messages.",
            name="Айгерім Сейітова",
        ),
        after=0,
    )

    # Coming back is a fresh start, in a language chosen again.
    me.user.send_text("/start")
    await me.user.wait_for("Тілді таңдаңыз")
