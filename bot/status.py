"""The operator's view: is anything stuck? Outbox, inbox, unanswered requests, sweeps.

One function, `collect_status`, gathers the figures as plain JSON-ready data; `invataxi status`
prints them, `/status` shows them to administrators in their language (handlers/status.py), and
the webhook server's `/healthz` answers with them. No names, phones or texts: counts, ages and
ride numbers only.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import SENDER_LEASE
from bot.services.sweeps import age_parts
from bot.settings import Settings
from models import (
    Account,
    District,
    InboundUpdate,
    OutboxMessage,
    Representation,
    Ride,
    Rider,
    RideStatus,
    SweepRun,
    utcnow,
)


def _age(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


async def collect_status(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Every figure of the operator's view, as JSON-ready data (for /healthz and the CLI)."""
    async with sessions() as session:
        return await status_report(session)


async def status_report(session: AsyncSession) -> dict[str, Any]:
    """The same within an open session: a handler passes its own, because on SQLite a second
    connection would wait for the lock the update's transaction holds."""
    now = utcnow()
    waiting = OutboxMessage.status.in_(("pending", "sending"))
    out_count, out_oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
        )
    ).one()
    dead = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "dead")
    )
    open_updates = InboundUpdate.status.in_(("pending", "claimed"))
    in_count, in_oldest = (
        await session.execute(
            select(func.count(), func.min(InboundUpdate.received_at)).where(open_updates)
        )
    ).one()
    failed = await session.scalar(
        select(func.count()).select_from(InboundUpdate).where(InboundUpdate.status == "failed")
    )
    districts = []
    for district in await session.scalars(
        select(District).where(District.active.is_(True)).order_by(District.id)
    ):
        requested = and_(Ride.district_id == district.id, Ride.status == RideStatus.REQUESTED)
        count = await session.scalar(select(func.count()).select_from(Ride).where(requested))
        oldest = (
            await session.execute(
                select(Ride.id, Ride.created_at)
                .where(requested)
                .order_by(Ride.created_at, Ride.id)
                .limit(1)
            )
        ).first()
        districts.append(
            {
                "id": district.id,
                "name_kk": district.name_kk,
                "name_ru": district.name_ru,
                "unanswered": int(count or 0),
                "oldest_ride": int(oldest[0]) if oldest else None,
                "oldest_age_s": _age(now, oldest[1]) if oldest else None,
            }
        )
    unreachable = await session.scalar(
        select(func.count())
        .select_from(Rider)
        .where(
            _circle_has(Account.unreachable_since.is_not(None)),
            ~_circle_has(Account.unreachable_since.is_(None)),
        )
    )
    sweeps = []
    sender: dict[str, Any] = {"process": None, "lease_until": None}
    for run in await session.scalars(select(SweepRun).order_by(SweepRun.name)):
        held = run.lease_until is not None and run.lease_until > now
        if run.name == SENDER_LEASE:
            # Which process sends now (one at a time keeps the bot within Telegram's limits).
            if held:
                sender = {"process": run.lease_owner, "lease_until": _iso(run.lease_until)}
            continue
        sweeps.append(
            {
                "name": run.name,
                "last_started_at": _iso(run.last_started_at),
                "last_finished_at": _iso(run.last_finished_at),
                "last_result": run.last_result,
                "running": held,
            }
        )
    return {
        "at": _iso(now),
        "outbox": {
            "waiting": int(out_count or 0),
            "oldest_age_s": _age(now, out_oldest),
            "dead": int(dead or 0),
            "sender": sender,
        },
        "inbox": {
            "waiting": int(in_count or 0),
            "oldest_age_s": _age(now, in_oldest),
            "failed": int(failed or 0),
        },
        "districts": districts,
        "unreachable_riders": int(unreachable or 0),
        "sweeps": sweeps,
    }


def _circle_has(condition: Any) -> Any:
    """Someone who hears about the rider (the rider or a representative) meets `condition`."""
    return exists().where(
        condition,
        or_(
            Account.id == Rider.account_id,
            Account.id.in_(
                select(Representation.account_id)
                .where(Representation.rider_id == Rider.id)
                .correlate(Rider)
            ),
        ),
    )


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, minutes = age_parts(timedelta(seconds=seconds))
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def render_text(report: dict[str, Any]) -> str:
    """The report for a terminal (operators read English here, as in every CLI message)."""
    out, inbox = report["outbox"], report["inbox"]
    lines = [
        f"status at {report['at']}",
        f"outbox: {out['waiting']} waiting, oldest {_duration(out['oldest_age_s'])}; "
        f"{out['dead']} undeliverable; sending: {out['sender']['process'] or 'no process'}",
        f"updates: {inbox['waiting']} waiting, oldest {_duration(inbox['oldest_age_s'])}; "
        f"{inbox['failed']} failed",
        f"riders who can't be reached: {report['unreachable_riders']}",
        "unanswered requests:",
    ]
    for d in report["districts"]:
        oldest = (
            f", oldest: ride {d['oldest_ride']}, {_duration(d['oldest_age_s'])}"
            if d["oldest_ride"]
            else ""
        )
        lines.append(f"  {d['id']}: {d['unanswered']}{oldest}")
    lines.append("sweeps:")
    if not report["sweeps"]:
        lines.append("  none has run yet")
    for s in report["sweeps"]:
        lines.append(
            f"  {s['name']}: started {s['last_started_at'] or 'never'}, "
            f"finished {s['last_finished_at'] or 'never'} ({s['last_result'] or '-'})"
        )
    return "\n".join(lines)


async def print_status(settings: Settings, as_json: bool) -> int:
    """`invataxi status [--json]`: 0 when the figures were read, 1 when the database failed."""
    from bot.db import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        report = await collect_status(create_sessionmaker(engine))
    except SQLAlchemyError as exc:
        print(
            f"cannot read the database ({type(exc).__name__}); run `invataxi migrate` first?",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    print(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render_text(report))
    return 0
