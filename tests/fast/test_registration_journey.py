"""Registration, relatives, /start and /help as a new person meets them (issue 13, phase 2).

Fast tier: the real Dispatcher and database, no HTTP; each test reads what the bot queued.
"""

from __future__ import annotations

from pathlib import Path

from bot.callbacks.common import LanguageChoice
from bot.callbacks.registration import NeedToggle, ProfileAction, ProfilePress
from bot.cards import verification as verification_card
from bot.i18n import Translator
from bot.keyboards import registration as kb
from bot.keyboards.common import BOOK, CANCEL, CONTINUE, START_OVER
from bot.services import registration as reg
from bot.services.consent_text import CONSENT_FULL, FULL_TEXT_BUTTON
from handlers.start import RESUME_BOOKING, RESUME_REGISTRATION
from tests.factories import account, register, rider_input
from tests.fast.harness import FastBot, Said, fast_bot

IIN = "900101300017"


def ru(fast: FastBot) -> Translator:
    return fast.app.i18n.translator("ru")


async def new_said(fast: FastBot, user: int, seen: int) -> list[Said]:
    return (await fast.said(user))[seen:]


async def step(fast: FastBot, user: int, text: str) -> list[Said]:
    """Send a text and return what the bot said to it."""
    seen = len(await fast.said(user))
    await fast.feed(fast.text(user, text))
    return await new_said(fast, user, seen)


async def to_the_name_question(fast: FastBot, user: int) -> None:
    t = ru(fast)
    await fast.feed(fast.text(user, "/start"))
    await fast.feed(fast.press(user, LanguageChoice(lang="ru").pack()))
    said = await step(fast, user, t(kb.AGREE_SELF))
    assert said[-1].text and t("Your full name, as in your ID card.") in said[-1].text


async def test_start_in_the_middle_of_a_registration_keeps_the_draft(
    migrated_db: str, tmp_path: Path
) -> None:
    """B1: /start asks «continue or start over»; continuing asks the same question again."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9101
        await to_the_name_question(fast, user)
        await step(fast, user, "Иван Петров")
        said = await step(fast, user, "/start")
        assert [s.text for s in said] == [t(RESUME_REGISTRATION)]
        assert said[0].buttons == [t(CONTINUE), t(START_OVER), t(CANCEL)]
        # A menu word typed mid-step is not read as the phone number either (B21).
        said = await step(fast, user, t(BOOK))
        assert [s.text for s in said] == [t(RESUME_REGISTRATION)]
        said = await step(fast, user, t(CONTINUE))
        assert said[-1].text and said[-1].text.startswith(
            t("Your phone number: press “Share my number” below, or type it.")
        )
        said = await step(fast, user, "87011234567")
        assert said[-1].text == t("Which city or district do you live in?")
        # The name typed before /start is still there: start over is the person's choice.
        await step(fast, user, "/start")
        said = await step(fast, user, t(START_OVER))
        assert said[-1].text and t("Your full name, as in your ID card.") in said[-1].text


async def test_start_with_consent_and_no_profile_leads_to_registration(
    migrated_db: str, tmp_path: Path
) -> None:
    """B1: after «Cancel», /start does not show a menu that sends the person back to /start."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9102
        await to_the_name_question(fast, user)
        await step(fast, user, t(CANCEL))
        said = await step(fast, user, "/start")
        assert said[-1].text == t(
            "Who will ride? Choose one. You can register other people later in /profile."
        )


async def test_start_in_the_middle_of_a_booking_offers_to_continue(
    migrated_db: str, tmp_path: Path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9103
        async with fast.app.sessions() as session:
            owner = await account(session, user, language="ru")
            rider = await register(session, owner, rider_input(IIN))
            rider.verification = "verified"
            await session.commit()
        first = await step(fast, user, "/book")
        question = first[-1].text
        said = await step(fast, user, "/start")
        assert [s.text for s in said] == [t(RESUME_BOOKING)]
        said = await step(fast, user, t(CONTINUE))
        assert said[-1].text == question


async def test_help_explains_the_rules_and_gives_the_desks_phone(
    migrated_db: str, tmp_path: Path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        user = 9104
        async with fast.app.sessions() as session:
            owner = await account(session, user, language="ru")
            await register(session, owner, rider_input(IIN, district_id="taldykorgan"))
            await session.commit()
        said = await step(fast, user, "/help")
        text = said[-1].text or ""
        assert "+7 728 224 11 22" in text  # the district's desk, as a person dials it
        assert "18:00" in text and "/book" in text and "/forget" in text


async def test_typed_language_name_chooses_it(migrated_db: str, tmp_path: Path) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        user = 9105
        await fast.feed(fast.text(user, "/start"))
        said = await step(fast, user, "қазақша")
        kk = fast.app.i18n.translator("kk")
        assert said[0].text == kk("Language: Kazakh.")
        assert any(kk(kb.AGREE_SELF) in s.buttons for s in said), "the consent follows"


async def test_consent_summary_full_text_and_refusal_with_phones(
    migrated_db: str, tmp_path: Path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9106
        await fast.feed(fast.text(user, "/start"))
        await fast.feed(fast.press(user, LanguageChoice(lang="ru").pack()))
        said = await step(fast, user, t(FULL_TEXT_BUTTON))
        full = t(CONSENT_FULL, version=reg.CONSENT_VERSION, retention=t(reg.YEARS_MANY, count=3))
        assert said[-1].text == full
        said = await step(fast, user, t(kb.DISAGREE))
        refusal = said[-1].text or ""
        # The district is not known yet: every desk's number, so nobody is left without one.
        assert "+7 728 224 11 22" in refusal and t(kb.READ_CONSENT) in said[-1].buttons


async def test_needs_tick_edits_only_the_buttons(migrated_db: str, tmp_path: Path) -> None:
    """A screen reader does not hear the question again after each tick."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9107
        await to_the_name_question(fast, user)
        for answer in (
            "Иван Петров",
            "87011234567",
            "город Талдыкорган",
            IIN,
            "Абая, 12",
            t(reg.CATEGORY_LABELS["elderly"]),
            t(kb.NO_GROUP),
            "123/45",
            t(kb.INDEFINITE),
        ):
            said = await step(fast, user, answer)
        assert said[-1].text == t("Tick what applies:")
        seen = len(await fast.said(user))
        await fast.feed(fast.press(user, NeedToggle(code="low_vision").pack(), message_id=77))
        said = await new_said(fast, user, seen)
        assert len(said) == 1 and said[0].edit_of == 77 and said[0].text is None
        assert f"{kb.CHOSEN_MARK}3. {t(reg.NEED_LABELS['low_vision'])}" in said[0].buttons
        said = await step(fast, user, t(kb.DONE))
        summary = said[-1].text or ""
        assert t("Needs: {value}", value=t(reg.NEED_LABELS["low_vision"])) in summary


async def test_a_profile_page_with_one_profile_offers_registering_someone_else(
    migrated_db: str, tmp_path: Path
) -> None:
    async with fast_bot(migrated_db, tmp_path) as fast:
        t, user = ru(fast), 9108
        async with fast.app.sessions() as session:
            owner = await account(session, user, language="ru")
            await register(session, owner, rider_input(IIN))
            await session.commit()
        said = await step(fast, user, "/profile")
        assert t("Register someone I book for") in said[-1].buttons
        seen = len(await fast.said(user))
        await fast.feed(fast.press(user, ProfilePress(action=ProfileAction.REGISTER_OTHER).pack()))
        said = await new_said(fast, user, seen)
        assert said[-1].text and t("Who are you to the person you are registering?") in (
            said[-1].text
        )
        assert t(kb.CHILD_OF) in said[-1].buttons and t(kb.SPOUSE) in said[-1].buttons


async def test_a_spouse_or_another_relative_is_on_the_card_with_their_phone(
    migrated_db: str, tmp_path: Path
) -> None:
    """Unlike a relative linked by an invite, one who registered the rider is whom to call."""
    async with fast_bot(migrated_db, tmp_path) as fast:
        desk = ru(fast)
        async with fast.app.sessions() as session:
            wife = await account(session, 9109, language="kk")
            husband = await register(
                session,
                wife,
                rider_input(IIN, name="Омаров Серік"),
                reg.Relationship(
                    kind="other_relative",
                    contact_name="Гүлжан Омарова",
                    contact_phone="+77011112233",
                ),
            )
            pending = await reg.pending_verification(session, husband.id)
            assert pending is not None
            card = await verification_card.render(session, pending.id, fast.app.i18n)
            await session.commit()
        assert card is not None
        assert (
            desk(
                "Representative: {kind}, {name}, {phone}",
                kind=desk(reg.RELATIONSHIP_LABELS["other_relative"]),
                name="Гүлжан Омарова",
                phone="+77011112233",
            )
            in card.text
        )
