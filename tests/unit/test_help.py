"""/help explains the district's rules in plain words, and every "call" text gives the number."""

from __future__ import annotations

from datetime import time

import pytest

from bot.i18n import I18n
from bot.services.booking_rules import BookingRules
from bot.services.help import (
    CALL_WITH_PHONE,
    Desk,
    desk_phones,
    format_phone,
    help_texts,
    voice_reply,
    with_desk_phone,
)
from bot.services.i18n_types import Reason

DESK = Desk(phone="+77282241122", hours="08:00-17:00")


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n()


def rendered(i18n: I18n, lang: str, reasons: list[Reason]) -> str:
    return "\n\n".join(r.render(i18n.translator(lang)) for r in reasons)


def test_help_gives_the_cutoff_window_hours_limit_cancel_notice_and_phone(i18n: I18n) -> None:
    text = rendered(i18n, "ru", help_texts(BookingRules(), DESK, registered=True))
    assert "до 18:00 предыдущего дня" in text
    assert "на 14 дн. вперёд" in text
    assert "каждый день с 08:00 до 20:00" in text
    assert "Поездок в день на одного человека: не больше 2" in text
    assert "за 2 ч до подачи" in text
    assert "«Мои поездки»" in text and "«Отменить поездку»" in text
    assert "Телефон диспетчера: +7 728 224 11 22, с 08:00 до 17:00." in text
    assert "/start" in text  # how to register, last for someone already registered


def test_help_in_kazakh_names_the_buttons_as_they_read(i18n: I18n) -> None:
    text = rendered(i18n, "kk", help_texts(BookingRules(), DESK, registered=False))
    assert text.startswith("Қалай бастау керек: /start")  # a newcomer learns to register first
    assert "«Сапарға жазылу»" in text
    assert "«Менің сапарларым»" in text and "«Сапардан бас тарту»" in text
    assert "сағат 18:00 кезінде" in text
    assert "Диспетчердің телефоны: +7 728 224 11 22, сағат 08:00–17:00." in text


def test_help_follows_the_districts_overrides(i18n: I18n) -> None:
    rules = BookingRules().with_overrides(
        {
            "service_start": "09:00",
            "service_end": "18:00",
            "service_days": [1, 2, 3, 4, 5, 6],
            "cutoff_time": "16:00",
            "max_days_ahead": 7,
            "max_rides_per_day": 4,
            "late_cancel_minutes": 90,
        }
    )
    text = rendered(i18n, "ru", help_texts(rules, Desk(phone="+77011234567"), registered=True))
    assert "с 09:00 до 18:00. Дни работы: понедельник — суббота." in text
    assert "до 16:00 предыдущего дня" in text and "на 7 дн. вперёд" in text
    assert "не больше 4" in text
    assert "за 90 мин до подачи" in text
    # No desk hours in the file: the service hours are given for the phone.
    assert "Телефон диспетчера: +7 701 123 45 67, с 09:00 до 18:00." in text


def test_help_same_day_and_around_the_clock(i18n: I18n) -> None:
    rules = BookingRules(service_start=time(0, 0), service_end=time(0, 0), same_day_allowed=True)
    text = rendered(i18n, "kk", help_texts(rules, Desk(phone="+77011234567"), registered=True))
    assert "Бүгінгі күнге де жазылуға болады" in text
    assert "Көліктер күн сайын тәулік бойы жұмыс істейді." in text
    assert "+7 701 123 45 67, тәулік бойы." in text


def test_help_without_a_desk_phone_says_where_to_get_it(i18n: I18n) -> None:
    text = rendered(i18n, "ru", help_texts(None, None, registered=False))
    assert "Телефон диспетчера в бот ещё не внесён" in text


def test_weekend_service_days_are_one_range_across_sunday(i18n: I18n) -> None:
    rules = BookingRules().with_overrides({"service_days": [6, 7, 1]})
    text = rendered(i18n, "ru", help_texts(rules, DESK, registered=True))
    assert "Дни работы: суббота — понедельник." in text


def test_every_call_text_gets_the_phone_in_both_languages(i18n: I18n) -> None:
    params = {
        "state": "Машина назначена",
        "number": 7,
        "date": "04.12.2026",
        "time": "10:00",
        "name": "Ахметов Серік",
        "reason": "нет документа",
        "age": 63,
    }
    for old in CALL_WITH_PHONE:
        reason = with_desk_phone(Reason("x", old, params), "+77282241122")
        assert reason.msgid != old
        for lang in ("kk", "ru"):
            text = reason.render(i18n.translator(lang))
            assert "+7 728 224 11 22" in text, (lang, old)


def test_without_a_phone_the_old_text_stays() -> None:
    reason = Reason("x", next(iter(CALL_WITH_PHONE)), {"state": "x"})
    assert with_desk_phone(reason, None) is reason
    other = Reason("y", "Some other text", {})
    assert with_desk_phone(other, "+77282241122") is other


def test_voice_message_reply_gives_the_number(i18n: I18n) -> None:
    ru = voice_reply("+77282241122").render(i18n.translator("ru"))
    assert ru == (
        "Я не умею слушать голосовые сообщения. Напишите ответ текстом или позвоните "
        "диспетчеру: +7 728 224 11 22."
    )
    kk = voice_reply(None).render(i18n.translator("kk"))
    assert kk.startswith("Дауыстық хабарларды тыңдай алмаймын.")


def test_phone_is_grouped_for_reading_aloud() -> None:
    assert format_phone("+77011234567") == "+7 701 123 45 67"
    assert format_phone("not a phone") == "not a phone"
    assert desk_phones([("Ақсу ауданы", "+77282000003"), ("Текелі", "")]) == (
        "Ақсу ауданы: +7 728 200 00 03"
    )
