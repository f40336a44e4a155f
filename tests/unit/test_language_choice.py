"""A language typed by name chooses it, in either language or in Latin letters."""

from __future__ import annotations

import pytest

from bot.services.language_choice import language_named


@pytest.mark.parametrize(
    "text",
    ["қазақша", "Қазақша", "казакша", "Қазақ тілі", "казахский", "на казахском", "Kazakh", "kz"],
)
def test_kazakh_named(text: str) -> None:
    assert language_named(text) == "kk"


@pytest.mark.parametrize(
    "text", ["русский", "Русский язык", "орысша", "Орыс тілі", "по-русски", "на русском", "RU"]
)
def test_russian_named(text: str) -> None:
    assert language_named(text) == "ru"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Тіл / Язык",  # the language button itself names no language
        "қазақша немесе орысша",  # both
        "сәлеметсіз бе",
        "Мои поездки",
        "я живу в Казахстане и говорю по-русски",  # a sentence, not a choice
        "Казань",
    ],
)
def test_not_a_choice(text: str) -> None:
    assert language_named(text) is None
