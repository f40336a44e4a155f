"""/report in a district's dispatcher group: that district's monthly report, as files.

`/report` is this month so far, `/report 2026-11` a given month. Only the district's dispatchers
and the administrators may ask (the same check as every desk command). Nothing is sent from
here: the answer is queued in the outbox, and the files are built when the row is sent.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.context import Context
from bot.i18n import N_
from bot.services.outbox import enqueue_document
from bot.services.report_figures import month_code, month_of, parse_month
from handlers.dispatch import find_desk

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))

MONTH_FORMAT = N_("Write the month as 2026-11, or just /report for this month so far.")
NOT_YET = N_("That month has not begun yet.")
# For the group's command menu (bot.runner.GROUP_COMMANDS) and the operator's list of sweeps
# (handlers.status.SWEEP_LABELS["monthly_report"]).
COMMAND_DESCRIPTION = N_("The district's report for a month, as files")
SWEEP_LABEL = N_("Monthly reports to the administrators")


@router.message(Command("report"))
async def report(message: Message, command: CommandObject, ctx: Context) -> None:
    if message.from_user is None:
        return
    desk, why, t = await find_desk(ctx, message.from_user)
    if desk is None:
        ctx.reply_to(message.message_id, t(why))
        return
    this_month = month_of(ctx.now, ctx.settings.tz)
    first = parse_month(command.args) if command.args else this_month
    if first is None:
        ctx.reply_to(message.message_id, t(MONTH_FORMAT))
        return
    if first > this_month:
        ctx.reply_to(message.message_id, t(NOT_YET))
        return
    district = desk.district
    row = enqueue_document(
        ctx.session,
        chat_id=district.chat_id,
        topic_id=district.topic_id,
        renderer="monthly_report",
        args={"month": month_code(first), "district_id": district.id, "tz": ctx.settings.timezone},
        lang=district.language,
    )
    ctx.outbox.hurry(row)
