"""/status for administrators: the operator's view (`bot.status`) in their language.

Only in a private chat and only for ADMIN_IDS; anyone else gets the usual "not understood", so
the command gives nothing away. It works at any step and leaves the conversation where it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.types import Message

from bot.context import Context
from bot.i18n import N_, Translator
from bot.services.sweeps import age_parts
from bot.status import status_report
from handlers import reports

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

SWEEP_LABELS = {
    "reminders": N_("Ride reminders"),
    "escalation": N_("Alerts about unanswered requests"),
    "expiry": N_("Closing requests nobody decided in time"),
    "vkk": N_("Letters about VKK expiry"),
    "conversations": N_("Clearing abandoned conversations"),
    "retention": N_("Deleting data past its keeping period"),
    "standing_orders": N_("Booking the rides of standing orders"),
    "standing_order_vkk": N_("Letters that a standing order stops with the VKK conclusion"),
    "monthly_report": reports.SWEEP_LABEL,
}


def is_admin(message: Message, ctx: Context) -> bool:
    return message.from_user is not None and message.from_user.id in ctx.settings.admin_ids


@router.message(Command("status"), StateFilter("*"), is_admin)
async def status(message: Message, ctx: Context) -> None:
    report = await status_report(ctx.session)
    ctx.reply(render(report, ctx.t, ctx.lang, ctx.settings.tz))


def duration(t: Translator, seconds: int) -> str:
    hours, minutes = age_parts(timedelta(seconds=seconds))
    if hours:
        return t("{hours} h {minutes} min", hours=hours, minutes=minutes)
    return t("{minutes} min", minutes=minutes)


def render(report: dict[str, Any], t: Translator, lang: str, tz: tzinfo) -> str:
    """Short lines, one figure each, so a screen reader reads them one by one."""
    out, inbox = report["outbox"], report["inbox"]
    lines = [t("Bot status")]
    if out["waiting"]:
        lines.append(
            t(
                "Messages waiting to be sent: {count}, the oldest for {age}.",
                count=out["waiting"],
                age=duration(t, out["oldest_age_s"] or 0),
            )
        )
    else:
        lines.append(t("Messages waiting to be sent: none."))
    lines.append(t("Messages that could not be delivered: {count}.", count=out["dead"]))
    lines.append(
        t(
            "Updates waiting to be handled: {count}. Given up after errors: {failed}.",
            count=inbox["waiting"],
            failed=inbox["failed"],
        )
    )
    lines.append(
        t(
            "Riders who can't be reached (blocked the bot): {count}.",
            count=report["unreachable_riders"],
        )
    )
    lines.append("")
    lines.append(t("Unanswered requests:"))
    for district in report["districts"]:
        name = district["name_kk"] if lang == "kk" else district["name_ru"]
        if district["oldest_ride"] is None:
            lines.append(t("{district}: none.", district=name))
        else:
            lines.append(
                t(
                    "{district}: {count}, the oldest is ride №{number}, waiting {age}.",
                    district=name,
                    count=district["unanswered"],
                    number=district["oldest_ride"],
                    age=duration(t, district["oldest_age_s"] or 0),
                )
            )
    lines.append("")
    lines.append(t("Sweeps:"))
    runs = {run["name"]: run for run in report["sweeps"]}
    for name, label in SWEEP_LABELS.items():
        run = runs.get(name)
        finished = run["last_finished_at"] if run else None
        if finished is None:
            lines.append(t("{sweep}: has not run yet.", sweep=t(label)))
            continue
        when = datetime.fromisoformat(finished).astimezone(tz).strftime("%H:%M %d.%m")
        if str(run["last_result"] if run else "").startswith("failed"):
            lines.append(t("{sweep}: the last run failed at {time}.", sweep=t(label), time=when))
        else:
            lines.append(t("{sweep}: last run at {time}.", sweep=t(label), time=when))
    return "\n".join(lines)
