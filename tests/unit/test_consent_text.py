"""The consent: a short summary a screen reader reads in seconds, the full text one tap away."""

from __future__ import annotations

import pytest

from bot.i18n import I18n
from bot.services.consent_text import FULL_TEXT_BUTTON, consent_full, consent_summary
from bot.services.registration import consent_text


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n()


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_summary_is_short_and_points_to_the_full_text(i18n: I18n, lang: str) -> None:
    t = i18n.translator(lang)
    summary = consent_summary(t, "2026-12", 1095)
    full = consent_full(t, "2026-12", 1095)
    assert len(summary.split()) < 70
    assert len(summary.split()) < len(full.split())
    assert f"«{t(FULL_TEXT_BUTTON)}»" in summary
    for text in (summary, full):
        assert "2026-12" in text and "/mydata" in text and "/forget" in text
        assert "Telegram" in text
    assert ("ЖСН" if lang == "kk" else "ИИН") in summary


def test_full_text_says_what_the_old_one_said(i18n: I18n) -> None:
    """Same facts as the consent people already gave, so nothing is promised anew."""
    t = i18n.translator("ru")
    old = consent_text(t, 1095)
    full = consent_full(t, "2026-11", 1095)
    for fact in ("ИИН", "ВКК", "в течение 3 лет", "за рубежом", "отдел занятости"):
        assert fact in old and fact in full
