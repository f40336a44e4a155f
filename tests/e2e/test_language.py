"""First contact offers both languages; the choice sticks; /language switches it."""

from __future__ import annotations

from sqlalchemy import select

from models import Account


async def test_start_offers_both_languages_preselecting_telegrams(bot) -> None:
    person = bot.person(5001, name="Айгерім", lang="kk")
    person.send_text("/start")
    prompt = await person.wait_for("Тілді таңдаңыз")
    assert "Выберите язык" in prompt.text
    assert prompt.button_texts == ["✓ Қазақ тілі", "Русский язык"]


async def test_unknown_telegram_language_preselects_nothing(bot) -> None:
    person = bot.person(5002, name="John", lang="en")
    person.send_text("/start")
    prompt = await person.wait_for("Тілді таңдаңыз")
    assert prompt.button_texts == ["Қазақ тілі", "Русский язык"]


async def test_choice_is_stored_and_later_messages_use_it(bot) -> None:
    person = bot.person(5003, name="Ольга", lang="kk")
    person.send_text("/start")
    await person.wait_for("Тілді таңдаңыз")
    person.press("Русский язык")
    await person.wait_for("Язык: русский.")
    await bot.settle()
    async with bot.sessions() as session:
        account = await session.scalar(select(Account).where(Account.telegram_id == 5003))
    assert account is not None and account.language == "ru"

    person.send_text("/help")
    reply = await person.wait_for("Команды")
    assert "заказать поездку" in reply.text


async def test_language_command_switches_and_buttons_match_both_languages(bot) -> None:
    person = bot.person(5004, name="Асель", lang="ru")
    person.send_text("/start")
    await person.wait_for("Тілді таңдаңыз")
    person.press(lambda label: label.endswith("Русский язык"))
    await person.wait_for("Язык: русский.")

    person.send_text("/language")
    await person.wait_for("Тілді таңдаңыз")
    person.press("Қазақ тілі")
    await person.wait_for("Тіл: қазақ тілі.")
    switched = await person.wait_for("Тілді таңдаңыз", after=0)
    assert switched.button_texts == [], "the language buttons are removed once used"

    # The old Russian "Справка" button still on screen is understood after the switch.
    person.send_text("Справка")
    reply = await person.wait_for("Командалар")
    assert "сапарға жазылу" in reply.text


async def test_commands_are_registered_in_both_languages(bot) -> None:
    await bot.settle()
    kk = bot.stand_in.commands(scope={"type": "all_private_chats"}, language_code="kk")
    ru = bot.stand_in.commands(scope={"type": "all_private_chats"}, language_code="ru")
    assert {"command": "book", "description": "Сапарға жазылу"} in kk
    assert {"command": "book", "description": "Заказать поездку"} in ru
