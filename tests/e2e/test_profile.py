"""/profile end to end: starting one's own profile, changing one part of it, deleting a profile
kept for someone without Telegram, and an old button on a page that no longer applies.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.keyboards import registration as kb
from bot.keyboards.common import BACK, CANCEL
from bot.profile_view import NOT_YOURS
from bot.services import registration as reg
from models import Rider
from tests.factories import IIN_CHILD, IIN_RU, account, person, register, registered, rider_input

EDIT_MENU = (
    "What do you want to change? A new IIN, date of birth, district, category, disability "
    "group or VKK conclusion goes to the dispatcher for checking again."
)


async def test_own_profile_from_profile_does_not_offer_a_first_name_as_the_full_name(bot) -> None:
    me = person(bot, 7601, "ru", "Самат")
    async with bot.sessions() as session:
        await account(session, 7601, language="ru", name="Самат")
        await session.commit()
    me.user.send_text("/profile")
    listed = await me.sees("You have no rider profile yet. Who do you want to register?")
    me.user.press(me.t("Register my own profile"), message=listed)
    await me.sees("Let's fill in your rider profile. It takes a few minutes.")
    await me.sees("Your full name, as in your ID card.")
    # Telegram knows only the first name: it is not offered as the name on the ID card (B13).
    assert me.user.keyboard_buttons == [me.t(CANCEL)]
    me.user.send_sticker()
    await me.sees("I can read only typed text at this step.")
    assert me.user.keyboard_buttons == [me.t(CANCEL)]


async def test_a_rider_changes_the_phone_and_back_changes_nothing(bot) -> None:
    rider_id = await registered(bot, 7602, "ru", "Иван Петров", IIN_RU)
    me = person(bot, 7602, "ru", "Иван")
    me.user.send_text("/profile")
    page = await me.sees("Phone: {value}", value="+77011234567")
    assert page.text.startswith("Иван Петров")

    me.user.press(me.t("Edit the profile"), message=page)
    menu = await me.sees(EDIT_MENU)
    me.user.press(me.t(kb.EDIT_FIELDS["phone"]), message=menu)
    await me.sees("Your phone number: press “Share my number” below, or type it.")
    assert me.t(BACK) in me.user.keyboard_buttons, "an edit can always go back to the page"
    me.tap(BACK)
    await me.sees("Nothing was changed.")
    again = await me.sees("Phone: {value}", value="+77011234567")
    assert again.message_id != page.message_id, "the page comes again as a new message"

    me.user.press(me.t("Edit the profile"), message=again)
    menu = await me.sees(EDIT_MENU)
    assert menu.message_id == again.message_id, "the newest page turns into the menu"
    me.user.press(me.t(kb.EDIT_FIELDS["phone"]), message=menu)
    await me.sees("Your phone number: press “Share my number” below, or type it.")
    me.user.send_text("8 702 555 44 33")
    await me.sees("Saved.")
    await me.sees("Phone: {value}", value="+77025554433")
    async with bot.sessions() as session:
        rider = await session.get(Rider, rider_id)
        assert rider is not None and rider.phone == "+77025554433"


async def test_a_parent_deletes_a_childs_profile_and_the_old_button_says_why(bot) -> None:
    parent = person(bot, 7603, "ru", "Мария")
    async with bot.sessions() as session:
        owner = await account(session, 7603, language="ru", name="Мария")
        await register(
            session,
            owner,
            rider_input(IIN_CHILD, name="Дана Иванова"),
            reg.Relationship(kind="parent"),
        )
        await session.commit()
    parent.user.send_text("/profile")
    page = await parent.user.wait_for("Дана Иванова")
    edit_button = next(
        b["callback_data"]
        for row in page.buttons
        for b in row
        if b["text"] == parent.t("Edit the profile")
    )
    parent.user.press(parent.t("Delete this profile"), message=page)
    await parent.sees(
        "Delete the profile of {name}? Its rides and their history are deleted too. "
        "This can't be undone.",
        name="Дана Иванова",
    )
    parent.user.press(parent.t("Yes, delete the profile"), message=page)
    done = await parent.sees("The profile of {name} is deleted.", name="Дана Иванова")
    assert done.message_id == page.message_id, "the page changes in place"
    assert parent.t("You have no rider profile yet. Who do you want to register?") in done.text
    async with bot.sessions() as session:
        assert (
            await session.scalar(select(Rider.id).where(Rider.full_name == "Дана Иванова")) is None
        )

    # A button of the profile's page pressed late (from a forwarded or reloaded copy) says why
    # it does nothing.
    pressed = parent.user.press_data(done, edit_button)
    answer = await pressed.answer()
    assert answer.text == parent.t(NOT_YOURS) and answer.show_alert
