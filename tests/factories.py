"""Shared test data: districts, accounts, riders, representatives and rides built straight in
the database (as the services would leave them), plus the few helpers several test modules use.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.callbacks.booking import CalendarAction, CalendarPick
from bot.db import create_engine, create_sessionmaker
from bot.districts import load_districts, sync_districts
from bot.i18n import I18n, Translator
from bot.keyboards import booking as kb
from bot.keyboards import registration as reg_kb
from bot.keyboards.common import BACK, CANCEL, SKIP
from bot.services import booking_rules as br
from bot.services import registration as reg
from bot.services.booking import Draft, create_booking, new_request_key
from bot.services.consent_text import CONSENT_SUMMARY, FULL_TEXT_BUTTON
from bot.services.crypto import DataKey, seal_iin
from bot.services.outbox import enqueue_card
from bot.services.registration import CONSENT_VERSION
from bot.services.rides import Actor, record_creation
from bot.settings import Settings
from bot.sweeps import Sweeps
from handlers.booking import CALENDAR, day_text, party_text, quick_label_for
from models import (
    Account,
    Dispatcher,
    District,
    OutboxMessage,
    Representation,
    Ride,
    Rider,
    RideStatus,
    Vehicle,
    utcnow,
)

TEST_DISTRICTS = Path(__file__).resolve().parent / "data" / "districts.toml"

GROUP = -1001000000001
GROUP_KK = -1001000000002
DISPATCHERS = [(9001, "Айгүл"), (9002, "Марат"), (9003, "Светлана")]
_iins = itertools.count(1)


@contextlib.asynccontextmanager
async def sessions_on(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database the fixtures made (usually a copy of the migrated template)."""
    from bot.db import create_engine, create_sessionmaker

    engine = create_engine(database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


# -- districts, people, rides, as the services leave them ------------------------------------


async def seed_districts(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The two test districts as the districts file would sync them."""
    async with sessions() as session, session.begin():
        session.add_all(
            [
                District(
                    id="taldykorgan",
                    name_kk="Талдықорған қаласы",
                    name_ru="город Талдыкорган",
                    chat_id=GROUP,
                    language="ru",
                    rules={},
                ),
                District(
                    id="tekeli",
                    name_kk="Текелі қаласы",
                    name_ru="город Текели",
                    chat_id=GROUP_KK,
                    language="kk",
                    rules={},
                ),
            ]
        )
        await session.flush()
        session.add_all(
            [Dispatcher(district_id="taldykorgan", telegram_id=i, name=n) for i, n in DISPATCHERS]
            + [Dispatcher(district_id="tekeli", telegram_id=9101, name="Нұрлан")]
        )
        session.add(
            Vehicle(
                district_id="taldykorgan",
                plate="123ABC05",
                make="Ford Transit",
                colour_kk="ақ",
                colour_ru="белый",
                ramp=True,
                seats=6,
                wheelchair_places=1,
                driver_name="Ерлан Сейітов",
                driver_phone="+77015551122",
            )
        )


async def add_rider(
    session: AsyncSession,
    telegram_id: int | None,
    *,
    lang: str = "ru",
    name: str = "Гульнара Сейтова",
    phone: str = "+77011234567",
    district: str = "taldykorgan",
    verified: bool = True,
) -> Rider:
    """A verified rider, with a Telegram account unless `telegram_id` is None."""
    account = None
    if telegram_id is not None:
        account = Account(telegram_id=telegram_id, language=lang, display_name=name)
        session.add(account)
        await session.flush()
    n = next(_iins)
    rider = Rider(
        account_id=account.id if account else None,
        district_id=district,
        full_name=name,
        phone=phone,
        iin_encrypted="x",
        iin_hash=f"{os.getpid()}-{n}",
        home_address="Абай көшесі 10",
        category="group1",
        vkk_number="ВКК-1",
        verification="verified" if verified else "pending",
    )
    session.add(rider)
    await session.flush()
    return rider


async def link_representative(
    session: AsyncSession, rider: Rider, telegram_id: int, *, lang: str = "kk", name: str = "Асан"
) -> Account:
    account = Account(telegram_id=telegram_id, language=lang, display_name=name)
    session.add(account)
    await session.flush()
    session.add(
        Representation(rider_id=rider.id, account_id=account.id, relationship_kind="parent")
    )
    await session.flush()
    return account


async def add_ride(session: AsyncSession, rider: Rider, **values: Any) -> Ride:
    ride = Ride(
        rider_id=rider.id,
        district_id=rider.district_id,
        pickup_address="Абай көшесі 10",
        destination="Облыстық аурухана",
        purpose="clinic",
        pickup_at=values.pop("pickup_at", utcnow() + timedelta(days=1)),
        **values,
    )
    session.add(ride)
    await session.flush()
    return ride


async def unfinished(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")))
        )
        return int(count or 0)


_serial = itertools.count(1)


# -- the dispatcher desk: the districts file synced, riders and rides with their cards ----


async def sync_test_districts(session: AsyncSession) -> None:
    """The test districts file, synced as at start."""
    await sync_districts(session, load_districts(TEST_DISTRICTS))
    await session.flush()


async def make_account(
    session: AsyncSession, telegram_id: int, *, language: str = "ru", name: str = "Person"
) -> Account:
    account = await session.scalar(select(Account).where(Account.telegram_id == telegram_id))
    if account is None:
        account = Account(telegram_id=telegram_id, language=language, display_name=name)
        session.add(account)
        await session.flush()
    return account


async def make_rider(
    session: AsyncSession,
    *,
    district_id: str = "taldykorgan",
    account: Account | None = None,
    representative: Account | None = None,
    name: str = "Анна Иванова",
    phone: str = "+77011234567",
    wheelchair: bool = False,
    vkk_expires_on: date | None = date(2027, 12, 31),
) -> Rider:
    n = next(_serial)
    rider = Rider(
        account_id=account.id if account else None,
        district_id=district_id,
        full_name=name,
        phone=phone,
        iin_encrypted="sealed",
        iin_hash=f"hash-{n}-{datetime.now(UTC).timestamp()}",
        home_address="ул. Абая, 1",
        category="group1",
        disability_group=1,
        vkk_number=f"VKK-{n}",
        vkk_expires_on=vkk_expires_on,
        needs_wheelchair=wheelchair,
        verification="verified",
        verified_at=datetime.now(UTC),
    )
    session.add(rider)
    await session.flush()
    if representative is not None:
        session.add(
            Representation(
                rider_id=rider.id, account_id=representative.id, relationship_kind="parent"
            )
        )
        await session.flush()
    return rider


async def make_ride(
    session: AsyncSession,
    rider: Rider,
    *,
    pickup_at: datetime | None = None,
    status: RideStatus = RideStatus.REQUESTED,
    vehicle_id: int | None = None,
    wheelchair: bool | None = None,
    created_at: datetime | None = None,
    post_card: bool = True,
    **extra: Any,
) -> Ride:
    """A ride as the booking service creates it: the row, its first event, its card queued."""
    ride = Ride(
        rider_id=rider.id,
        district_id=rider.district_id,
        pickup_address=extra.pop("pickup_address", "ул. Абая, 1"),
        destination=extra.pop("destination", "Областная больница"),
        purpose=extra.pop("purpose", "clinic"),
        pickup_at=pickup_at or datetime.now(UTC) + timedelta(days=1),
        wheelchair=rider.needs_wheelchair if wheelchair is None else wheelchair,
        status=status.value,
        vehicle_id=vehicle_id,
        **extra,
    )
    if created_at is not None:
        ride.created_at = created_at
    session.add(ride)
    await session.flush()
    await record_creation(session, ride, Actor("rider", None, rider.full_name))
    await session.flush()
    if post_card:
        district = await session.get(District, rider.district_id)
        assert district is not None
        await enqueue_card(
            session,
            kind="ride_card",
            subject_id=ride.id,
            chat_id=district.chat_id,
            topic_id=district.topic_id,
            ride_id=ride.id,
        )
    return ride


async def vehicle(session: AsyncSession, plate: str) -> Vehicle:
    found = await session.scalar(select(Vehicle).where(Vehicle.plate == plate))
    assert found is not None
    return found


VAN, SEDAN, TEKELI_VAN = "123ABC05", "456DEF05", "789GHI05"


# -- registration: consenting accounts and riders as the service registers them -----------

KEY = DataKey.from_secret("test-data-key-0123456789abcdef0123456789abcdef")


IIN_ADULT = "900101300017"
IIN_ELDER = "580305400122"
IIN_CHILD = "150602603452"  # born 02.06.2015
IIN_RU = "900101300017"  # a man born 01.01.1990
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


async def account(
    session: AsyncSession,
    telegram_id: int,
    *,
    language: str = "ru",
    name: str = "Person",
    consent: bool = True,
) -> Account:
    """A person who chose a language and (by default) accepted the current consent."""
    found = await session.scalar(select(Account).where(Account.telegram_id == telegram_id))
    if found is not None:
        return found
    person = Account(telegram_id=telegram_id, language=language, display_name=name)
    session.add(person)
    await session.flush()
    if consent:
        t = I18n().translator(language)
        text = reg.consent_text(t, 3 * 365)
        await reg.give_consent(session, person, language=language, text=text, now=NOW)
    return person


def rider_input(
    iin: str = IIN_ADULT,
    *,
    name: str = "Айгерім Сейітова",
    district_id: str = "taldykorgan",
    category: str = "group1_mobility",
    **changes: Any,
) -> reg.RiderInput:
    values: dict[str, Any] = {
        "full_name": name,
        "phone": "+77011234567",
        "iin": seal_iin(KEY, iin),
        "birth_date": None,
        "district_id": district_id,
        "home_address": "Абай көшесі, 12",
        "home_lat": 45.0153,
        "home_lon": 78.3739,
        "category": category,
        "centre_name": None,
        "disability_group": 1,
        "vkk_number": "123/45",
        "vkk_expires_on": date(2027, 12, 31),
        "needs": frozenset({"wheelchair"}),
        "usual_assistant": True,
        "usual_companion": False,
    }
    values.update(changes)
    return reg.RiderInput(**values)


async def register(
    session: AsyncSession,
    person: Account,
    data: reg.RiderInput | None = None,
    relationship: reg.Relationship | None = None,
) -> Rider:
    result = await reg.register_rider(
        session, person, data or rider_input(), relationship, now=NOW
    )
    assert isinstance(result, Rider), result
    return result


# -- the end-to-end tier: riders seeded for a running bot, the booking conversation -------

HOME = "ул. Абая, 1"
HOSPITAL = "Областная больница"
_booking_serial = itertools.count(1)


async def seed_rider(
    bot: Any,
    *,
    name: str,
    account_tid: int | None = None,
    lang: str = "ru",
    representative_tid: int | None = None,
    rep_lang: str = "ru",
    wheelchair: bool = False,
    verification: str = "verified",
) -> int:
    """A rider as registration leaves them after a dispatcher's approval; returns the id."""
    session: AsyncSession
    async with bot.sessions() as session:

        async def account(tid: int, language: str) -> Account:
            found = await session.scalar(select(Account).where(Account.telegram_id == tid))
            if found is None:
                found = Account(
                    telegram_id=tid,
                    language=language,
                    display_name=f"User {tid}",
                    consent_version=CONSENT_VERSION,
                    consent_at=utcnow(),
                    role="rider" if tid == account_tid else "representative",
                )
                session.add(found)
                await session.flush()
            return found

        own = await account(account_tid, lang) if account_tid else None
        n = next(_booking_serial)
        rider = Rider(
            account_id=own.id if own else None,
            district_id="taldykorgan",
            full_name=name,
            phone=f"+7701555{n:04d}",
            iin_encrypted="sealed",
            iin_hash=f"e2e-booking-{n}-{name}",
            home_address=HOME,
            category="group1_mobility",
            disability_group=1,
            vkk_number=f"VKK-{n}",
            needs_wheelchair=wheelchair,
            verification=verification,
        )
        session.add(rider)
        await session.flush()
        if representative_tid is not None:
            rep = await account(representative_tid, rep_lang)
            session.add(
                Representation(rider_id=rider.id, account_id=rep.id, relationship_kind="parent")
            )
        await session.commit()
        return rider.id


def calendar_days(message: Any) -> list[tuple[str, date]]:
    """The bookable days of an inline calendar: (button text, date)."""
    days = []
    for row in message.buttons:
        for button in row:
            data = str(button.get("callback_data", ""))
            if not data.startswith(CalendarPick.__prefix__ + ":"):
                continue
            pick = CalendarPick.unpack(data)
            if pick.action == CalendarAction.DAY:
                days.append((str(button["text"]), date(pick.year, pick.month, pick.day)))
    return days


class Q:
    """The questions of the conversation as the person reads them."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def pickup(self, name: str) -> str:
        return self.t("Where should the car pick {name} up?", name=name)

    @property
    def destination(self) -> str:
        return self.t("Where to? Type the address or the place, for example: Regional hospital.")

    @property
    def purpose(self) -> str:
        return self.t("What is the trip for?")

    @property
    def which_day(self) -> str:
        """The date question's first words (its dates change with the day the test runs)."""
        return self.t(
            "Which day? You can book from {first} to {last}. Choose below, or type a date, "
            "for example: {example}.",
            first="\x00",
            last="",
            example="",
        ).split("\x00")[0]

    @property
    def calendar(self) -> str:
        return self.t("Or pick a day in the calendar:")

    def time(self, day: date) -> str:
        return self.t(
            "At what time should the car come on {day}? Cars pick up between {start}–{end}. "
            "Choose below or type the time, for example: 09:30.",
            day=day_text(self.t, day),
            start="08:00",
            end="20:00",
        )

    @property
    def way_back(self) -> str:
        return self.t("Do you need a ride back the same day?")

    def way_back_time(self, name: str, place: str) -> str:
        return self.t(
            "At what time should the car pick {name} up for the way back from {place}? "
            "Choose below or type the time.",
            name=name,
            place=place,
        )

    def party(self, name: str) -> str:
        return self.t("Who rides along with {name}?", name=name)

    def wheelchair(self, name: str) -> str:
        return self.t(
            "Will {name} travel in a wheelchair on this ride? Then a car with a ramp or lift "
            "will come.",
            name=name,
        )

    @property
    def comment(self) -> str:
        return self.t(
            "Anything the dispatcher or driver should know? For example: entrance 2, 5th floor, "
            "no lift. Type it (up to {limit} characters) or press Skip.",
            limit=300,
        )

    @property
    def summary(self) -> str:
        return self.t("Please check the request:")


class Booker:
    """One person going through the booking conversation, step by step."""

    def __init__(self, bot: Any, user: Any, t: Translator) -> None:
        self.bot = bot
        self.user = user
        self.t = t
        self.q = Q(t)

    async def start(self, expect: str) -> Any:
        self.user.send_text("/book")
        return await self.user.wait_for(expect)

    async def tap(self, label: str, expect: str) -> Any:
        self.user.tap(label)
        return await self.user.wait_for(expect)

    async def say(self, text: str, expect: str) -> Any:
        self.user.send_text(text)
        return await self.user.wait_for(expect)

    def days(self) -> list[date]:
        tz = self.bot.settings.tz
        return br.bookable_dates(br.BookingRules(), datetime.now(tz), tz)

    async def pick_day(self, index: int = 0, expect: str | None = None) -> date:
        """Tap one of the next days, offered by name («Завтра, 3 декабря», «пятница, …»)."""
        await self.user.wait_for(self.q.which_day)
        day = self.days()[index]
        today = datetime.now(self.bot.settings.tz).date()
        self.user.tap(quick_label_for(self.t, day, today))
        await self.user.wait_for(expect or self.q.time(day))
        return day

    async def pick_in_calendar(self, index: int = 0) -> date:
        """The calendar comes only when asked for."""
        calendar = await self.tap(self.t(CALENDAR), self.q.calendar)
        label, day = calendar_days(calendar)[index]
        self.user.press(label, message=calendar)
        await self.user.wait_for(self.q.time(day))
        return day

    async def to_date(self, name: str, destination: str = HOSPITAL) -> date:
        """From the pickup question: home, a typed destination, a clinic, the first open day."""
        await self.tap(self.t(kb.HOME), self.q.destination)
        await self.say(destination, self.q.purpose)
        await self.tap(self.t("Clinic or hospital"), self.q.which_day)
        return await self.pick_day()

    async def one_way_alone(self, name: str, at: str = "10:00") -> Any:
        """From the time question to the summary: no way back, alone, no wheelchair, no comment."""
        await self.say(at, self.q.way_back)
        await self.tap(self.t(kb.RETURN_NO), self.q.party(name))
        await self.tap(party_text(self.t, False, 0), self.q.wheelchair(name))
        await self.tap(self.t(kb.WHEELCHAIR_NO), self.q.comment)
        return await self.tap(self.t(SKIP), self.q.summary)


async def rides(bot: Any) -> list[Ride]:
    async with bot.sessions() as session:
        return list(await session.scalars(select(Ride).order_by(Ride.id)))


IIN_KK = "580305400122"  # a woman born 05.03.1958


@dataclass
class Person:
    """A simulated person and their translator: what they read and tap, in their language."""

    user: Any
    t: Translator

    def tap(self, msgid: str, **params: object) -> None:
        self.user.tap(self.t(msgid, **params))

    async def sees(self, msgid: str, **params: object) -> Any:
        return await self.user.wait_for(self.t(msgid, **params))


def person(bot: Any, user_id: int, lang: str, name: str) -> Person:
    return Person(bot.person(user_id, name=name, lang=lang), bot.app.i18n.translator(lang))


async def one(bot: Any, model: Any, *where: Any) -> Any:
    async with bot.sessions() as session:
        return (await session.scalars(select(model).where(*where))).one()


# -- Telegram's pacing, shrunk --------------------------------------------------------------------

#: The outbox sender's limits (settings OUTBOX_*), shrunk for the tests whose subject is not the
#: pacing: an end-to-end step then waits milliseconds instead of Telegram's real second per
#: private chat and three seconds per group message. The pacing keeps its real values in the
#: tests about it (tests/test_delivery.py, tests/test_burst.py), which build the sender's
#: `Limits` themselves.
QUICK_PACING: dict[str, float | int] = {
    "outbox_private_interval": 0.05,
    "outbox_group_spacing": 0.1,
    "outbox_group_per_minute": 1000,
    # Simulated people answer in milliseconds: the storm test sets the real burst itself.
    "throttle_burst": 100_000,
}


def quick_pacing_env() -> dict[str, str]:
    """The same as environment variables, for a bot started as its own process."""
    return {name.upper(): str(value) for name, value in QUICK_PACING.items()}


# -- the booking service's tests and the reports' ----------------------------------------------

# Monday 23.11.2026, 10:00 in Kazakhstan: tomorrow is still open (cut-off 18:00 today).
BOOKING_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Almaty"))
BOOKING_TOMORROW = date(2026, 11, 24)
_booking_serial = itertools.count(1)


async def booking_account(
    session: AsyncSession, telegram_id: int, name: str = "Айгерім"
) -> Account:
    account = Account(telegram_id=telegram_id, language="ru", display_name=name)
    session.add(account)
    await session.flush()
    return account


async def booking_rider(
    session: AsyncSession,
    account: Account | None,
    *,
    district_id: str = "taldykorgan",
    verification: str = "verified",
    vkk_expires_on: date | None = None,
    representative: Account | None = None,
    name: str = "Анна Иванова",
) -> Rider:
    n = next(_booking_serial)
    rider = Rider(
        account_id=account.id if account else None,
        district_id=district_id,
        full_name=name,
        phone="+77011234567",
        iin_encrypted="sealed",
        iin_hash=f"booking-test-{n}",
        home_address="ул. Абая, 1",
        category="group1_mobility",
        disability_group=1,
        vkk_number=f"VKK-{n}",
        vkk_expires_on=vkk_expires_on,
        verification=verification,
    )
    session.add(rider)
    await session.flush()
    if representative is not None:
        session.add(
            Representation(
                rider_id=rider.id, account_id=representative.id, relationship_kind="parent"
            )
        )
        await session.flush()
    return rider


def booking_draft(rider: Rider, **changes: Any) -> Draft:
    """A complete summary for tomorrow 09:00, with a key of its own; `changes` override."""
    base = Draft(
        rider_id=rider.id,
        pickup_address="ул. Абая, 1",
        destination="Областная больница",
        purpose="clinic",
        day=BOOKING_TOMORROW,
        pickup_time=time(9, 0),
        request_key=f"key-{next(_booking_serial)}",
        booked_by=rider.account_id,
    )
    return replace(base, **changes)


async def book_trip(
    session: AsyncSession,
    rider_id: int,
    day: date,
    at: time,
    actor: Actor,
    tz: ZoneInfo,
    **changes: Any,
) -> tuple[Ride, Ride | None]:
    """A trip from home to the hospital booked earlier, as the conversation's Confirm books it
    (committed); `changes` add to the summary (a way back, an assistant)."""
    draft = Draft(
        rider_id=rider_id,
        pickup_address=HOME,
        destination=HOSPITAL,
        purpose="clinic",
        day=day,
        pickup_time=at,
        request_key=new_request_key(),
        **changes,
    )
    result = await create_booking(session, draft, actor, utcnow(), tz=tz)
    await session.commit()
    assert result.ride is not None, result.reason
    return result.ride, result.return_ride


# -- sweeps run as several processes would (tests/test_sweeps.py and the report's) -------------

TZ = ZoneInfo("Asia/Almaty")
HERE = socket.gethostname()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


TODAY = date(2026, 3, 10)  # a Tuesday
TOMORROW = TODAY + timedelta(days=1)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    url: str
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    clock: Clock
    engines: list[Any]

    def sweeps(self, name: str = "one") -> Sweeps:
        """A sweep runner as another process would have: its own engine and owner."""
        engine = create_engine(self.url)
        self.engines.append(engine)
        return Sweeps(
            create_sessionmaker(engine), self.settings, f"{name}@{HERE}:1", clock=self.clock
        )

    async def twice_and_at_once(self, name: str) -> None:
        """Run a sweep twice in a row, then by two processes at the same time."""
        first = self.sweeps("one")
        await first.run(name)
        await first.run(name)
        await asyncio.gather(self.sweeps("two").run(name), self.sweeps("three").run(name))

    async def messages(self, msgid: str | None = None) -> list[OutboxMessage]:
        async with self.sessions() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            rows = list(await session.scalars(query))
        return [r for r in rows if msgid is None or r.payload.get("msgid") == msgid]


# -- registration's end-to-end tests ------------------------------------------------------------


async def registered(
    bot: Any, telegram_id: int, lang: str, name: str, iin: str, district_id: str = "taldykorgan"
) -> int:
    """A person with consent and a pending profile, as the conversation leaves them."""
    bot.person(telegram_id, name=name.split()[0], lang=lang)
    async with bot.sessions() as session:
        owner = await account(session, telegram_id, language=lang, name=name.split()[0])
        rider = await register(
            session, owner, rider_input(iin, name=name, district_id=district_id)
        )
        await session.commit()
        rider_id = int(rider.id)
    bot.app.outbox_wakeup.set()
    await bot.settle()
    return rider_id


# -- registration and privacy journeys (tests/e2e, tests/privacy) ------------------------------

REGISTRATION_DISTRICTS = {
    "ru": ("taldykorgan", -1001000000001, "город Талдыкорган"),
    "kk": ("tekeli", -1001000000002, "Текелі қаласы"),
}


def valid_iin(first11: str) -> str:
    """Complete 11 digits with the official check digit (tests pick readable numbers)."""
    digits = [int(c) for c in first11]
    for weights in (range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check != 10:
            return first11 + str(check)
    raise AssertionError("never issued")


async def first_contact(bot: Any, p: Person, lang: str, agree: str = reg_kb.AGREE_SELF) -> int:
    """/start, the language, the intro and the consent accepted; returns the actions taken."""
    p.user.send_text("/start")
    await p.user.wait_for("Тілді таңдаңыз")
    label = "Қазақ тілі" if lang == "kk" else "Русский язык"
    p.user.press(lambda text: text.endswith(label))
    summary = p.t(CONSENT_SUMMARY, version="", retention="", full_text="").split("(")[0]
    consent = await p.user.wait_for(summary)
    assert reg.CONSENT_VERSION == "2026-12" and reg.CONSENT_VERSION in consent.text
    # The default retention (3 years) in the person's own words.
    assert p.t(reg.YEARS_MANY, count=3) in consent.text
    assert "Telegram" in consent.text and "/forget" in consent.text
    # Agreeing also says who will ride: one tap, not two.
    assert p.user.keyboard_buttons == [
        p.t(reg_kb.AGREE_SELF),
        p.t(reg_kb.AGREE_OTHER),
        p.t(reg_kb.DISAGREE),
        p.t(FULL_TEXT_BUTTON),
        p.t(CANCEL),
    ]
    p.tap(agree)
    await p.sees("Thank you. Your consent is saved.")
    return 3


async def register_self(bot: Any, p: Person, lang: str, *, iin: str, name: str) -> None:
    """The rider's own profile, step by step, with a wrong answer or two on the way."""
    _, _, district_name = REGISTRATION_DISTRICTS[lang]
    t = p.t
    await p.sees("Your full name, as in your ID card.")
    # The first question has Cancel but no Back.
    assert t(BACK) not in p.user.keyboard_buttons and t(CANCEL) in p.user.keyboard_buttons
    p.user.send_sticker()
    await p.sees("I can read only typed text at this step.")
    p.user.send_text(name.split()[0])
    await p.sees("Your phone number: press “Share my number” below, or type it.")
    p.user.send_text("+7 999 123 45 67")
    await p.sees("This is not a Kazakhstan phone number.")
    p.tap(reg_kb.SHARE_MY_NUMBER)
    await p.sees("Which city or district do you live in?")
    p.user.tap(district_name)
    await p.sees("Your IIN, from your ID card.")
    p.user.send_text(iin[:-1] + str((int(iin[-1]) + 1) % 10))
    await p.sees(
        "This IIN has a mistake: its last digit does not match the others. "
        "Please check each digit."
    )
    p.user.send_text(f"{iin[:4]} {iin[4:8]} {iin[8:]}")
    await p.sees(
        "Home address, where the car picks up. If you are at that home now, you can send a "
        "location pin instead."
    )
    p.user.send_text("x" * 301)
    await p.sees("This is too long: please keep it under {limit} characters.", limit=300)
    p.tap(reg_kb.SEND_PIN)
    await p.sees("The pin is saved. Now describe the address in words for the driver.")
    p.user.send_text("🏠🏠")
    await p.sees("Please use letters and digits, not only symbols or emoji.")
    p.user.send_text("Абай көшесі, 12, 5-пәтер")
    await p.sees("Which of these describes you? It decides the right to the service.")
    p.tap(reg.CATEGORY_LABELS["group1_mobility"])
    # Group I is implied by the category: the next question is the VKK conclusion.
    await p.sees("The number of the VKK conclusion (the medical advisory commission).")
    p.user.send_text("123/45")
    await p.sees("Until what date is the VKK conclusion valid?")
    p.user.send_text("31.12.2020")
    await p.sees(
        "The date {date} has already passed: rides need a conclusion that is still valid.",
        date="31.12.2020",
    )
    p.user.send_text(f"31.12.{date.today().year + 2}")
    await p.sees("What do you need on the way?")
    listed = await p.sees("Tick what applies:")
    # Needs and who rides along are one question: the assistant is asked once.
    assert len(listed.button_texts) == 5
    before = len(p.user.messages())
    p.user.press(lambda text: text.endswith(t(reg.NEED_LABELS["wheelchair"])), message=listed)
    p.user.press(lambda text: text.endswith(t(reg.NEED_LABELS["assistant"])), message=listed)
    await bot.settle()
    # A tick edits the buttons only: no new message, the question is not read out again.
    assert len(p.user.messages()) == before
    ticked = [b for b in p.user.messages()[-1].button_texts if b.startswith(reg_kb.CHOSEN_MARK)]
    assert ticked == [
        f"{reg_kb.CHOSEN_MARK}1. {t(reg.NEED_LABELS['wheelchair'])}",
        f"{reg_kb.CHOSEN_MARK}4. {t(reg.NEED_LABELS['assistant'])}",
    ]
    p.tap(reg_kb.DONE)
    summary = await p.sees("Please check the profile:")
    assert t(reg_kb.CHANGE, field=t(reg_kb.EDIT_FIELDS["name"])) in summary.button_texts
    # The name typed was the first name only: one "Change" button, not ten «Back».
    p.user.press(t(reg_kb.CHANGE, field=t(reg_kb.EDIT_FIELDS["name"])), message=summary)
    await p.sees("Your full name, as in your ID card.")
    p.user.send_text(name)
    summary = await p.sees("Please check the profile:")
    for line in (
        t("Full name: {value}", value=name),
        t("IIN: {value}", value="••••••••" + iin[-4:]),
        t("Home address: {value}", value="Абай көшесі, 12, 5-пәтер")
        + " "
        + t("(location pin saved)"),
        t("Usually rides along: {value}", value=t(reg_kb.WITH_ASSISTANT)),
    ):
        assert line in summary.text
    assert iin not in summary.text
    p.tap(reg_kb.CONFIRM)
    await p.sees(
        "Thank you! The profile of {name} is sent to the dispatchers of {district} for "
        "checking. We will write to you here when they decide.",
        name=name,
        district=district_name,
    )


def card_of(bot: Any, chat_id: int, verification_id: int, t: Translator) -> Any:
    title = t("Profile check №{number} — {status}", number=verification_id, status="").rstrip()
    found = [m for m in bot.stand_in.messages(chat_id) if m.text.startswith(title)]
    assert len(found) == 1, f"one card per profile check, found {len(found)}"
    return found[0]


async def rider_with_history(bot: Any, telegram_id: int, lang: str) -> int:
    """A verified rider with a linked relative (with a power of attorney) and one past ride."""
    bot.person(telegram_id, name="Айгерім", lang=lang)
    bot.person(telegram_id + 1, name="Ольга", lang="ru")
    async with bot.sessions() as session:
        owner = await account(session, telegram_id, language=lang, name="Айгерім")
        data = rider_input(
            IIN_KK,
            name="Айгерім Сейітова",
            birth_date=date(1958, 3, 5),
            disability_group=1,
            needs=frozenset({"wheelchair", "low_vision"}),
            usual_companion=True,
        )
        rider = await register(session, owner, data)
        aunt = await account(session, telegram_id + 1, language="ru", name="Ольга")
        session.add(
            Representation(
                rider_id=rider.id,
                account_id=aunt.id,
                relationship_kind="attorney",
                poa_number="02-1234",
                poa_expires_on=date(2027, 1, 31),
            )
        )
        verification = await reg.pending_verification(session, rider.id)
        assert verification is not None
        await reg.decide(session, verification.id, approve=True, actor_id=9001, actor_name="Айгүл")
        session.add(
            Ride(
                rider_id=rider.id,
                district_id=rider.district_id,
                booked_by=owner.id,
                pickup_address="Абай көшесі, 12",
                destination="Облыстық аурухана",
                purpose="clinic",
                pickup_at=datetime.now(UTC) - timedelta(days=3),
                status=RideStatus.COMPLETED.value,
            )
        )
        await session.commit()
        rider_id = int(rider.id)
    bot.app.outbox_wakeup.set()
    await bot.settle()
    return rider_id


async def outbox(session: AsyncSession, **where: Any) -> list[OutboxMessage]:
    """The outbox rows so far, oldest first, those whose columns equal `where`."""
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


# -- raw updates as Telegram sends them --------------------------------------------------------


def message_update(
    update_id: int, user_id: int = 7001, text: str = "привет", **user: Any
) -> dict[str, Any]:
    person = {"id": user_id, "is_bot": False, "first_name": "Асель", **user}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Асель"},
            "from": person,
            "text": text,
        },
    }
