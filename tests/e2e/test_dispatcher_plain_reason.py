"""End to end (B10): with privacy mode off, a dispatcher's reason typed as a plain message in the
group, not a reply, refuses the ride, and the rider reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers.dispatch import TYPE_REASON
from models import RideStatus
from tests.e2e.harness import BotHarness, running_bot
from tests.e2e.test_dispatch import FAST_GROUPS, GROUP, Scene
from tests.stand_in import BotApiStandIn


@pytest.fixture
async def open_bot(sqlite_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot in groups where it reads every message (BotFather: /setprivacy, Disable)."""
    async with (
        BotApiStandIn(privacy_mode=False) as stand_in,
        running_bot(stand_in, sqlite_url, tmp_path, **FAST_GROUPS) as harness,
    ):
        yield harness


async def test_a_plain_message_after_other_reason_refuses_the_ride(open_bot: Any) -> None:
    scene = Scene(open_bot)
    ru = scene.ru
    ride_id = await scene.ride()
    await scene.press(scene.marat, ru("Refuse"), ride_id)
    hint = await scene.press(scene.marat, ru("Other reason (type it)"), ride_id)
    assert hint.show_alert and hint.text == ru(TYPE_REASON)
    scene.marat.send_text("Адрес за пределами города", chat=GROUP)  # not a reply
    await open_bot.settle()
    card = scene.card(ride_id)
    assert card.text.splitlines()[0] == scene.state_line(ride_id, RideStatus.REJECTED)
    assert ru("Reason: {reason}", reason="Адрес за пределами города") in card.text
    refused = await scene.rep.wait_for("Адрес за пределами города", after=0)
    assert f"№{ride_id}" in refused.text
