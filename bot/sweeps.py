"""Periodic sweeps: reminders, escalation, expiry, ВКК letters, the monthly report, and clearing
old data.

Every sweep re-derives its work from database rows, so nothing is lost while the bot is down and
no job has to be pickled (APScheduler 3 runs them in-process, on intervals only). Each ride or
rider is claimed with one conditional update in the same transaction as the messages it causes
(`UPDATE rides SET reminder_evening_at = :now WHERE id = :id AND reminder_evening_at IS NULL`),
so a sweep acts once per ride even when it runs twice, after a restart, or in two processes at
once. A lease per sweep (`models.SweepRun`) keeps two processes from doing the same work at the
same time and records when each sweep last started and finished, for `invataxi status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import reader, transaction
from bot.i18n import N_
from bot.inbox import owner_gone
from bot.services import retention, standing_orders
from bot.services import sweeps as rules
from bot.services.outbox import enqueue_document, enqueue_message
from bot.services.people import notify_rider, rider_circle

# `desk_of`: a district's escalation time and desk hours; it lives with the report's figures,
# whose "decided within the escalation time" must count exactly as the escalation sweep does.
from bot.services.report_figures import desk_of, month_code
from bot.services.rides import Action, Actor, change
from bot.settings import Settings
from bot.storage.dialect import insert_ignore
from models import (
    OPEN_STATUSES,
    UNDECIDED_STATUSES,
    Account,
    ConversationState,
    Dispatcher,
    District,
    InboundUpdate,
    OutboxMessage,
    ReportDelivery,
    Ride,
    RideEvent,
    Rider,
    RideStatus,
    StandingOrder,
    SweepRun,
    Vehicle,
    utcnow,
)

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Rows deleted per statement by the retention sweep, so no transaction grows without bound.
DELETE_BATCH = 500
# How far ahead the reminder sweep looks for rides.
REMINDER_HORIZON = timedelta(days=2)

EVENING_REMINDER = N_(
    "Reminder: ride №{number} is tomorrow, {date} at {time}.\nRider: {name}\nFrom: {pickup}\n"
    "To: {destination}\nCar: {car}\nIf plans have changed, cancel the ride in /rides."
)
BEFORE_REMINDER = N_(
    "The car for ride №{number} comes at {time}, {date}.\nRider: {name}\nFrom: {pickup}\n"
    "Car: {car}\nDriver: {driver}, {driver_phone}"
)
BEFORE_REMINDER_NO_CAR = N_(
    "Ride №{number} is at {time}, {date}.\nRider: {name}\nFrom: {pickup}\n"
    "The dispatcher will tell you which car comes."
)
NO_CAR_YET = N_("to be announced by the dispatcher")
ESCALATION = N_(
    "Request №{number} is still unanswered (received {since}). Please take it or phone the rider."
)
VKK_30 = N_(
    "The VKK conclusion is valid until: {date} (less than a month left).\nRider: {name}\n"
    "Get a new conclusion in time and enter it in /profile: after that date rides can't be "
    "booked."
)
VKK_7 = N_(
    "The VKK conclusion is valid until: {date} (less than a week left).\nRider: {name}\n"
    "Enter the new conclusion in /profile: after that date rides can't be booked."
)
VKK_EXPIRED = N_(
    "The VKK conclusion expired on {date}.\nRider: {name}\nNew rides can't be booked until "
    "the dispatcher checks a new conclusion. Enter it in /profile."
)
VKK_LETTERS = {
    rules.VkkNotice.DAYS_30: (VKK_30, "vkk_notice_30_at"),
    rules.VkkNotice.DAYS_7: (VKK_7, "vkk_notice_7_at"),
    rules.VkkNotice.EXPIRED: (VKK_EXPIRED, "vkk_expired_notice_at"),
}
FINISHED = tuple(s.value for s in RideStatus if s not in OPEN_STATUSES)

# Sweeps that keep promises to people run every SWEEP_INTERVAL_SECONDS; housekeeping hourly.
FREQUENT = ("reminders", "escalation", "expiry", "standing_orders", "monthly_report")
HOURLY = ("vkk", "standing_order_vkk", "conversations", "retention")
SWEEP_NAMES = (*FREQUENT, *HOURLY)


class Sweeps:
    """The sweeps of one process. `run(name)` is what the scheduler calls; tests call it too."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        owner: str,
        *,
        on_enqueue: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        # Finding due rows only reads: on SQLite that must not queue behind every writer.
        self.reads = reader(sessions)
        self.settings = settings
        self.tz = settings.tz
        self.owner = owner
        self.on_enqueue = on_enqueue or (lambda: None)
        self.clock = clock
        self.keeping = retention.RetentionRules.with_retention_days(settings.retention_days)
        self.running: set[str] = set()
        self.tasks: set[asyncio.Task[int | None]] = set()
        self.scheduler: AsyncIOScheduler | None = None
        self.jobs: dict[str, Callable[[datetime], Awaitable[int]]] = {
            "reminders": self.reminders,
            "escalation": self.escalation,
            "expiry": self.expiry,
            "monthly_report": self.monthly_report,
            "vkk": self.vkk,
            "standing_orders": self.standing_orders,
            "standing_order_vkk": self.standing_order_vkk,
            "conversations": self.conversations,
            "retention": self.retention,
        }

    # -- running ----------------------------------------------------------------------------

    async def run(self, name: str) -> int | None:
        """Run one sweep under its lease; returns how many things it did (None: not its turn).

        Shielded from the scheduler's cancellation at shutdown: `stop` waits for it instead.
        """
        task = asyncio.ensure_future(self._run(name))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return await asyncio.shield(task)

    async def run_all(self) -> dict[str, int | None]:
        return {name: await self.run(name) for name in SWEEP_NAMES}

    async def _run(self, name: str) -> int | None:
        if name in self.running:
            return None
        self.running.add(name)
        try:
            now = self.clock()
            if not await self._take_lease(name, now):
                return None
            done = 0
            result = "ok"
            try:
                done = await self.jobs[name](now)
                result = f"ok: {done}"
            except Exception as exc:
                log.exception("sweep failed", extra={"sweep": name})
                result = f"failed: {type(exc).__name__}"
            await self._end_lease(name, result)
            if done:
                self.on_enqueue()
            return done
        finally:
            self.running.discard(name)

    async def _take_lease(self, name: str, now: datetime) -> bool:
        async with transaction(self.sessions) as session:
            await insert_ignore(
                session,
                SweepRun.__table__,  # type: ignore[arg-type]
                [{"name": name}],
                key=["name"],
            )
            holder = await session.scalar(
                select(SweepRun.lease_owner).where(SweepRun.name == name)
            )
            free = or_(SweepRun.lease_until.is_(None), SweepRun.lease_until < now)
            if holder is not None and owner_gone(holder, self.owner):
                free = or_(free, SweepRun.lease_owner == holder)
            taken = await session.execute(
                update(SweepRun)
                .where(SweepRun.name == name, free)
                .values(lease_owner=self.owner, lease_until=now + LEASE, last_started_at=now)
                .returning(SweepRun.name)
                .execution_options(synchronize_session=False)
            )
            return taken.scalar_one_or_none() is not None

    async def _end_lease(self, name: str, result: str) -> None:
        async with transaction(self.sessions) as session:
            await session.execute(
                update(SweepRun)
                .where(SweepRun.name == name, SweepRun.lease_owner == self.owner)
                .values(
                    lease_owner=None,
                    lease_until=None,
                    last_finished_at=utcnow(),
                    last_result=result[:200],
                )
                .execution_options(synchronize_session=False)
            )

    def start(self) -> AsyncIOScheduler:
        """Schedule every sweep; the first run comes one interval after start."""
        from bot.app import create_scheduler

        scheduler = create_scheduler(self.settings)
        every = self.settings.sweep_interval_seconds
        for name in SWEEP_NAMES:
            seconds = every if name in FREQUENT else max(every, 3600)
            scheduler.add_job(self.run, "interval", seconds=seconds, args=[name], id=name)
        scheduler.start()
        self.scheduler = scheduler
        return scheduler

    async def stop(self, grace: float) -> None:
        """No new runs; let a sweep in progress finish (each ride is its own transaction)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=grace)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- reminders --------------------------------------------------------------------------

    async def reminders(self, now: datetime) -> int:
        """The evening before and shortly before pickup, to the rider and representatives."""
        async with self.reads() as session:
            rides = (
                await session.execute(
                    select(
                        Ride.id,
                        Ride.pickup_at,
                        Ride.status_changed_at,
                        Ride.reminder_evening_at,
                        Ride.reminder_before_at,
                    ).where(
                        Ride.status == RideStatus.SCHEDULED,
                        Ride.pickup_at > now,
                        Ride.pickup_at <= now + REMINDER_HORIZON,
                        or_(Ride.reminder_evening_at.is_(None), Ride.reminder_before_at.is_(None)),
                    )
                )
            ).all()
        before = self.settings.reminder_before_minutes
        done = 0
        for ride_id, pickup_at, scheduled_at, evening_sent, before_sent in rides:
            if evening_sent is None and rules.evening_reminder_due(
                pickup_at=pickup_at,
                scheduled_at=scheduled_at,
                now=now,
                evening_at=self.settings.reminder_evening_at,
                before_minutes=before,
                tz=self.tz,
            ):
                done += await self._remind(
                    ride_id, Ride.reminder_evening_at, EVENING_REMINDER, now
                )
            elif before_sent is None and rules.before_reminder_due(
                pickup_at=pickup_at, scheduled_at=scheduled_at, now=now, before_minutes=before
            ):
                done += await self._remind(ride_id, Ride.reminder_before_at, BEFORE_REMINDER, now)
        return done

    async def _remind(self, ride_id: int, column: Any, msgid: str, now: datetime) -> int:
        async with transaction(self.sessions) as session:
            claimed = await _claim(
                session,
                update(Ride)
                .where(Ride.id == ride_id, column.is_(None), Ride.status == RideStatus.SCHEDULED)
                .values({column: now})
                .returning(Ride.id),
            )
            if not claimed:
                return 0
            ride = await session.get(Ride, ride_id)
            rider = await session.get(Rider, ride.rider_id) if ride else None
            if ride is None or rider is None:
                return 0
            vehicle = await session.get(Vehicle, ride.vehicle_id) if ride.vehicle_id else None
            local = ride.pickup_at.astimezone(self.tz)
            for account in await rider_circle(session, rider.id):
                lang = account.language or self.settings.default_language
                params: dict[str, Any] = {
                    "number": ride.number,
                    "name": rider.full_name,
                    "date": local.strftime("%d.%m.%Y"),
                    "time": local.strftime("%H:%M"),
                    "pickup": ride.pickup_address,
                    "destination": ride.destination,
                    "car": {"msgid": NO_CAR_YET},
                    "driver": "",
                    "driver_phone": "",
                }
                if vehicle is not None:
                    colour = vehicle.colour_kk if lang == "kk" else vehicle.colour_ru
                    params["car"] = f"{vehicle.make}, {colour}, {vehicle.plate}"
                    params["driver"] = vehicle.driver_name
                    params["driver_phone"] = vehicle.driver_phone
                text = msgid
                if vehicle is None and msgid == BEFORE_REMINDER:
                    text = BEFORE_REMINDER_NO_CAR
                enqueue_message(
                    session,
                    chat_id=account.telegram_id,
                    account_id=account.id,
                    msgid=text,
                    params=params,
                    ride_id=ride.id,
                )
            return 1

    # -- escalation -------------------------------------------------------------------------

    async def escalation(self, now: datetime) -> int:
        """A request nobody answered in time: a reply to its card naming the dispatchers."""
        async with self.reads() as session:
            rides = (
                await session.execute(
                    select(Ride.id, Ride.district_id, Ride.created_at, Ride.pickup_at).where(
                        Ride.status == RideStatus.REQUESTED,
                        Ride.escalated_at.is_(None),
                        Ride.pickup_at > now,
                    )
                )
            ).all()
            districts = {d.id: d for d in await session.scalars(select(District))}
        done = 0
        for ride_id, district_id, created_at, pickup_at in rides:
            district = districts.get(district_id)
            if district is None:
                continue
            minutes, hours = desk_of(district)
            if rules.escalation_due(
                created_at=created_at,
                pickup_at=pickup_at,
                now=now,
                minutes=minutes,
                hours=hours,
                tz=self.tz,
            ):
                done += await self._escalate(ride_id, district, now)
        return done

    async def _escalate(self, ride_id: int, district: District, now: datetime) -> int:
        async with transaction(self.sessions) as session:
            claimed = await _claim(
                session,
                update(Ride)
                .where(
                    Ride.id == ride_id,
                    Ride.escalated_at.is_(None),
                    Ride.status == RideStatus.REQUESTED,
                )
                .values(escalated_at=now)
                .returning(Ride.created_at),
            )
            if not claimed:
                return 0
            ride = await session.get(Ride, ride_id)
            assert ride is not None
            people = await session.scalars(
                select(Dispatcher)
                .where(Dispatcher.district_id == district.id, Dispatcher.active.is_(True))
                .order_by(Dispatcher.id)
            )
            since = ride.created_at.astimezone(self.tz).strftime("%H:%M, %d.%m")
            row = enqueue_message(
                session,
                chat_id=district.chat_id,
                topic_id=district.topic_id,
                msgid=ESCALATION,
                params={"number": ride.number, "since": since},
                lang=district.language,
                ride_id=ride.id,
                reply_to_card=True,
            )
            row.payload = {
                **row.payload,
                "mentions": [
                    {"telegram_id": p.telegram_id, "name": p.name or str(p.telegram_id)}
                    for p in people
                ],
            }
            return 1

    # -- expiry -----------------------------------------------------------------------------

    async def expiry(self, now: datetime) -> int:
        """Requests whose pickup time passed with no decision: the rider is told to rebook."""
        async with self.reads() as session:
            ids = list(
                await session.scalars(
                    select(Ride.id)
                    .where(
                        Ride.status.in_([s.value for s in UNDECIDED_STATUSES]),
                        Ride.pickup_at <= now,
                    )
                    .order_by(Ride.pickup_at)
                )
            )
        done = 0
        for ride_id in ids:
            async with transaction(self.sessions) as session:
                outcome = await change(session, ride_id, Action.EXPIRE, Actor.system(), now=now)
                done += int(outcome.ok)
        return done

    # -- the monthly report -----------------------------------------------------------------

    async def monthly_report(self, now: datetime) -> int:
        """The previous month's regional report to every administrator, in a private chat, once.

        Each administrator's report is claimed by inserting its `ReportDelivery` row in the same
        transaction as the outbox row: after a restart, or in a second process, the insert finds
        the row and nothing is queued again.
        """
        first = rules.monthly_report_due(now, self.tz)
        if first is None or not self.settings.admin_ids:
            return 0
        month = month_code(first)
        async with self.reads() as session:
            done_for = set(
                await session.scalars(
                    select(ReportDelivery.chat_id).where(
                        ReportDelivery.month == month, ReportDelivery.district_id == ""
                    )
                )
            )
        done = 0
        for admin_id in sorted(self.settings.admin_ids - done_for):
            async with transaction(self.sessions) as session:
                claimed = await insert_ignore(
                    session,
                    ReportDelivery.__table__,  # type: ignore[arg-type]
                    [{"month": month, "chat_id": admin_id, "district_id": "", "queued_at": now}],
                    key=["month", "chat_id", "district_id"],
                )
                if not claimed:
                    continue
                account = await session.scalar(
                    select(Account).where(Account.telegram_id == admin_id)
                )
                enqueue_document(
                    session,
                    chat_id=admin_id,
                    renderer="monthly_report",
                    args={"month": month, "district_id": None, "tz": self.settings.timezone},
                    lang=(account.language if account else None) or self.settings.default_language,
                    account_id=account.id if account else None,
                )
                done += 1
        return done

    # -- ВКК --------------------------------------------------------------------------------

    async def vkk(self, now: datetime) -> int:
        """Letters 30 and 7 days before a ВКК conclusion expires, and when it has expired."""
        if not rules.notice_hours(now, self.tz):
            return 0
        today = rules.local_day(now, self.tz)
        async with self.reads() as session:
            riders = (
                await session.execute(
                    select(Rider.id, Rider.vkk_expires_on).where(
                        Rider.verification == "verified",
                        Rider.vkk_expires_on.is_not(None),
                        Rider.vkk_expires_on <= today + timedelta(days=30),
                    )
                )
            ).all()
        done = 0
        for rider_id, expires_on in riders:
            notice = rules.vkk_notice_due(expires_on, today)
            if notice is None or expires_on is None:
                continue
            msgid, name = VKK_LETTERS[notice]
            column = getattr(Rider, name)
            since = rules.vkk_notice_window_start(notice, expires_on, self.tz)
            async with transaction(self.sessions) as session:
                claimed = await _claim(
                    session,
                    update(Rider)
                    .where(
                        Rider.id == rider_id,
                        Rider.vkk_expires_on == expires_on,
                        or_(column.is_(None), column < since),
                    )
                    .values({column: now})
                    .returning(Rider.full_name),
                )
                if not claimed:
                    continue
                rider = await session.get(Rider, rider_id)
                assert rider is not None
                await notify_rider(
                    session,
                    rider_id,
                    msgid,
                    {"name": rider.full_name, "date": expires_on.strftime("%d.%m.%Y")},
                )
                done += 1
        return done

    # -- standing orders --------------------------------------------------------------------

    async def standing_orders(self, now: datetime) -> int:
        """Each approved order's dates that entered the booking horizon become rides.

        One transaction per date under the order's lock, so a restart in the middle loses
        nothing and repeats nothing, and a second process finds the date done.
        """
        async with transaction(self.sessions) as session:
            await standing_orders.close_finished(session, now, tz=self.tz)
        async with self.reads() as session:
            order_ids = await standing_orders.active_order_ids(session)
        done = 0
        for order_id in order_ids:
            async with self.reads() as session:
                days = await standing_orders.due_dates(session, order_id, now, tz=self.tz)
            for day in days:
                async with transaction(self.sessions) as session:
                    result = await standing_orders.materialize(
                        session, order_id, day, now, tz=self.tz
                    )
                done += int(result.acted)
        return done

    async def standing_order_vkk(self, now: datetime) -> int:
        """Once per conclusion, 30 days ahead: the order stops when the ВКК conclusion expires."""
        if not rules.notice_hours(now, self.tz):
            return 0
        async with self.reads() as session:
            order_ids = await standing_orders.vkk_reminders_due(session, now, tz=self.tz)
        done = 0
        for order_id in order_ids:
            async with transaction(self.sessions) as session:
                done += int(await standing_orders.remind_vkk(session, order_id, now, tz=self.tz))
        return done

    # -- housekeeping -----------------------------------------------------------------------

    async def conversations(self, now: datetime) -> int:
        """Half-finished conversations nobody touched for a week are forgotten."""
        cutoff = rules.retention_cutoffs(now, self.settings.retention_days).conversations
        return await self._delete_batches(
            ConversationState.key, ConversationState.updated_at < cutoff
        )

    async def retention(self, now: datetime) -> int:
        """Delete or anonymise what is kept past its purpose (`bot.services.retention`):
        idle and never-verified profiles, ride details after a year, rides, audit rows and
        withdrawn consents after five, unused accounts, and the delivery plumbing after days."""
        done = await self.people(now)
        cut = rules.retention_cutoffs(now, self.settings.retention_days)
        old_rides = select(Ride.id).where(
            Ride.status.in_(FINISHED), Ride.status_changed_at < now - self.keeping.records
        )
        done += await self._delete_batches(RideEvent.id, RideEvent.ride_id.in_(old_rides))
        done += await self._delete_batches(OutboxMessage.id, OutboxMessage.ride_id.in_(old_rides))
        done += await self._delete_batches(
            Ride.id, Ride.status.in_(FINISHED), Ride.status_changed_at < now - self.keeping.records
        )
        # A standing order holds addresses like its rides: kept as long, once it has stopped.
        done += await self._delete_batches(
            StandingOrder.id,
            StandingOrder.status.in_(standing_orders.STOPPED_STATUSES),
            StandingOrder.updated_at < cut.rides,
        )
        done += await self._delete_batches(
            InboundUpdate.update_id,
            InboundUpdate.status == "done",
            InboundUpdate.done_at < cut.inbound_done,
        )
        done += await self._delete_batches(
            InboundUpdate.update_id,
            InboundUpdate.status == "failed",
            InboundUpdate.received_at < cut.inbound_failed,
        )
        done += await self._delete_batches(
            OutboxMessage.id,
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at < cut.outbox_sent,
        )
        done += await self._delete_batches(
            OutboxMessage.id,
            OutboxMessage.status == "dead",
            OutboxMessage.created_at < cut.outbox_dead,
        )
        return done

    async def people(self, now: datetime) -> int:
        """Profiles, rides, records and accounts by the keeping rules; one transaction per
        person, so a sweep that stops halfway has done whole steps only."""
        keeping = self.keeping
        async with self.reads() as session:
            riders = [
                rider_id
                for rider_id in await retention.riders_to_review(session, now, keeping)
                if await retention.due(session, rider_id, now, keeping) != "keep"
            ]
        done = 0
        for rider_id in riders:
            async with transaction(self.sessions) as session:
                step = await retention.review_rider(
                    session, rider_id, now, keeping, self.settings.timezone
                )
            if step != "keep":
                done += 1
                self.on_enqueue()
        while True:
            async with transaction(self.sessions) as session:
                count = await retention.anonymise_rides(session, now, keeping, limit=DELETE_BATCH)
            done += count
            if count:
                self.on_enqueue()
            if count < DELETE_BATCH:
                break
        async with transaction(self.sessions) as session:
            done += await retention.delete_old_records(session, now, keeping)
        async with self.reads() as session:
            accounts = await retention.unused_accounts(session, now, keeping)
        for account_id in accounts:
            async with transaction(self.sessions) as session:
                done += await retention.sweep_account(
                    session, account_id, now, self.settings.timezone
                )
        return done

    async def _delete_batches(self, key: Any, *where: ColumnElement[bool]) -> int:
        """Delete matching rows a batch at a time; safe to repeat and to run twice at once."""
        table = key.class_
        total = 0
        while True:
            async with transaction(self.sessions) as session:
                ids = list(await session.scalars(select(key).where(*where).limit(DELETE_BATCH)))
                if not ids:
                    return total
                await session.execute(
                    delete(table).where(key.in_(ids)).execution_options(synchronize_session=False)
                )
            total += len(ids)
            if len(ids) < DELETE_BATCH:
                return total


async def _claim(session: AsyncSession, statement: Any) -> bool:
    """One conditional update; True when this process won the row."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return result.first() is not None


def start_sweeps(app: App) -> Sweeps:
    """Build the sweeps of a running app and schedule them."""
    sweeps = Sweeps(
        app.sessions,
        app.settings,
        app.owner,
        on_enqueue=app.outbox_wakeup.set,
        clock=app.clock.now,
    )
    sweeps.start()
    return sweeps
