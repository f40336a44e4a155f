"""/report in a dispatcher group, through the real bot and the Bot API stand-in: the district's
dispatcher gets the workbook and the charts as files; anyone else is refused."""

from __future__ import annotations

from typing import Any

from bot.i18n import I18n
from handlers.dispatch import NOT_A_DISPATCHER
from handlers.reports import MONTH_FORMAT


async def test_a_dispatcher_gets_the_month_as_files_and_an_outsider_does_not(bot: Any) -> None:
    group = bot.group("taldykorgan")
    # The desk's language is the district's (Taldykorgan writes in Russian in the test file).
    async with bot.sessions() as session:
        from models import District

        district = await session.get(District, "taldykorgan")
        assert district is not None
        t = I18n().translator(district.language)
    aigul = bot.dispatcher("taldykorgan")
    aigul.send_text("/report 2026-11", chat=group)
    await bot.settle(timeout=60)
    files = [m for m in bot.stand_in.messages(group) if m.kind == "document"]
    names = sorted(str(m.extra["document"]["file_id"]).removeprefix("uploaded-") for m in files)
    assert len(files) == 3, [m.kind for m in bot.stand_in.messages(group)]
    assert names[0].endswith(".png") and names[1].endswith(".png") and names[2].endswith(".xlsx")
    assert all("2026-11" in name or "2026_11" in name for name in names), names

    aigul.send_text("/report November", chat=group)
    await bot.stand_in.wait_for(t(MONTH_FORMAT), group)

    guest = bot.outsider("taldykorgan")
    guest.send_text("/report 2026-11", chat=group)
    await bot.stand_in.wait_for(t(NOT_A_DISPATCHER), group)
    await bot.settle(timeout=30)
    assert len([m for m in bot.stand_in.messages(group) if m.kind == "document"]) == 3
