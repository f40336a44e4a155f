# Waits take a ``timeout`` argument on purpose (ASYNC109): on expiry they raise an
# AssertionError describing what the user saw, which a caller-side asyncio.timeout cannot do.
"""Simulated Telegram users: what a person does in the app, turned into real updates.

A test should read like a person using the bot — type a command, tap a keyboard button, press
an inline button, share a contact — and fail the way a person would notice a problem: "there is
no button «Confirm» here, the buttons are ...". Every action creates the update Telegram would
send, with the same shape, so aiogram parses it exactly as in production.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .formatting import utf16_len
from .models import (
    CallbackAnswer,
    JsonDict,
    SimChat,
    StoredMessage,
)

if TYPE_CHECKING:
    from .server import BotApiStandIn

#: where a chat is given: a SimChat, a chat id, or None for the user's private chat.
ChatRef = SimChat | int | None
#: what to look for in bot messages: a substring of the text/caption, or a predicate.
MessageMatch = str | re.Pattern[str] | Callable[[StoredMessage], bool]

_file_ids = itertools.count(1)
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def _file(prefix: str) -> tuple[str, str]:
    number = next(_file_ids)
    return f"{prefix}-file-{number}", f"{prefix}-unique-{number}"


def command_entities(text: str) -> list[JsonDict]:
    """The ``bot_command`` entity Telegram adds to a message starting with ``/command``."""
    match = _COMMAND.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]


@dataclass(frozen=True)
class PressedButton:
    """A callback query the user produced; await ``answer()`` for the bot's reply to it."""

    id: str
    data: str | None
    message: StoredMessage | None
    user: SimUser

    async def answer(self, timeout: float = 5.0) -> CallbackAnswer:
        return await self.user.wait_answer(self, timeout=timeout)


class SimUser:
    """A person talking to the bot. Create one with ``stand_in.private_chat(...)``."""

    def __init__(
        self,
        stand_in: BotApiStandIn,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        phone: str | None = None,
        is_premium: bool = False,
    ) -> None:
        self.stand_in = stand_in
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.phone = phone or f"+7701{user_id % 10_000_000:07d}"
        #: where request_location buttons put the user (Almaty by default).
        self.location: tuple[float, float] = (43.238949, 76.889709)
        self.is_premium = is_premium
        #: True once the user has a private chat with the bot (pressed Start).
        self.started = False
        #: the user blocked the bot: sends to them answer 403.
        self.blocked = False
        #: event-log position of this user's last action per chat (``wait_for`` default).
        self.last_action: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"SimUser(id={self.id}, first_name={self.first_name!r})"

    def to_api(self) -> JsonDict:
        """The ``User`` object as Telegram puts it into updates."""
        body: JsonDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            body["last_name"] = self.last_name
        if self.username:
            body["username"] = self.username
        if self.language_code:
            body["language_code"] = self.language_code
        if self.is_premium:
            body["is_premium"] = True
        return body

    @property
    def chat(self) -> SimChat:
        """The private chat with the bot (created on first use, like opening the bot)."""
        return self.stand_in.private_chat_of(self)

    # -- sending ---------------------------------------------------------------------------

    def send_text(
        self,
        text: str,
        chat: ChatRef = None,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
    ) -> StoredMessage:
        """Type and send ``text``; ``/command`` and ``/command@bot`` get a bot_command entity."""
        entities = command_entities(text)
        return self.stand_in.user_message(
            self, chat, thread_id=thread_id, reply_to=reply_to, text=text, entities=entities
        )

    def send_contact(
        self,
        phone: str | None = None,
        own: bool = True,
        chat: ChatRef = None,
        first_name: str | None = None,
    ) -> StoredMessage:
        """Share a contact; ``own=True`` is the "share my phone" button (contact.user_id set)."""
        contact: JsonDict = {
            "phone_number": phone or self.phone,
            "first_name": first_name or (self.first_name if own else "Contact"),
        }
        if own:
            contact["user_id"] = self.id
            if self.last_name:
                contact["last_name"] = self.last_name
        return self.stand_in.user_message(self, chat, extra={"contact": contact})

    def send_location(
        self,
        latitude: float | None = None,
        longitude: float | None = None,
        chat: ChatRef = None,
        live_period: int | None = None,
    ) -> StoredMessage:
        """Send a location pin (defaults to ``self.location``)."""
        lat = self.location[0] if latitude is None else latitude
        lon = self.location[1] if longitude is None else longitude
        location: JsonDict = {"latitude": lat, "longitude": lon}
        if live_period:
            location["live_period"] = live_period
        return self.stand_in.user_message(self, chat, extra={"location": location})

    def send_sticker(self, chat: ChatRef = None, emoji: str = "👍") -> StoredMessage:
        file_id, unique = _file("sticker")
        sticker: JsonDict = {
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.stand_in.user_message(self, chat, extra={"sticker": sticker})

    def send_photo(self, chat: ChatRef = None, caption: str | None = None) -> StoredMessage:
        file_id, unique = _file("photo")
        sizes = [
            {
                "file_id": f"{file_id}-s",
                "file_unique_id": f"{unique}-s",
                "width": 90,
                "height": 90,
            },
            {"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 800},
        ]
        return self.stand_in.user_message(self, chat, extra={"photo": sizes}, caption=caption)

    def send_voice(self, chat: ChatRef = None, duration: int = 3) -> StoredMessage:
        file_id, unique = _file("voice")
        voice: JsonDict = {
            "file_id": file_id,
            "file_unique_id": unique,
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return self.stand_in.user_message(self, chat, extra={"voice": voice})

    def send_document(
        self,
        chat: ChatRef = None,
        file_name: str = "document.pdf",
        caption: str | None = None,
    ) -> StoredMessage:
        file_id, unique = _file("document")
        document: JsonDict = {"file_id": file_id, "file_unique_id": unique, "file_name": file_name}
        return self.stand_in.user_message(
            self, chat, extra={"document": document}, caption=caption
        )

    # -- keyboards -------------------------------------------------------------------------

    def press(
        self,
        button: str | Callable[[str], bool],
        message: StoredMessage | None = None,
        chat: ChatRef = None,
    ) -> PressedButton:
        """Press the inline button whose text is ``button`` (or satisfies the predicate).

        Without ``message``, the newest bot message of the chat that has such a button is
        used — what a person would scroll to. Raises AssertionError listing the buttons that
        do exist when there is no match.
        """
        matches: Callable[[str], bool] = (
            (lambda text: text == button) if isinstance(button, str) else button
        )
        if message is not None:
            target_chat, candidates = message.chat, [message]
        else:
            target_chat = self.stand_in.resolve_chat(chat, self, create=False)
            candidates = self.stand_in.bot_messages(target_chat.id)[::-1]
        for candidate in candidates:
            if candidate.deleted:
                continue
            for row in candidate.buttons:
                for item in row:
                    if matches(str(item.get("text", ""))):
                        return self._press_found(candidate, item)
        raise AssertionError(self._no_button_message(button, candidates, target_chat))

    def _press_found(self, message: StoredMessage, button: JsonDict) -> PressedButton:
        if "callback_data" not in button:
            kinds = sorted(key for key in button if key not in ("text", "style"))
            raise AssertionError(
                f"button {button.get('text')!r} on message #{message.message_id} is not a "
                f"callback button (it has {', '.join(kinds)}); pressing it sends no update"
            )
        return self.press_data(message, str(button["callback_data"]))

    def _no_button_message(
        self,
        button: str | Callable[[str], bool],
        candidates: list[StoredMessage],
        chat: SimChat,
    ) -> str:
        wanted = repr(button) if isinstance(button, str) else "matching the predicate"
        lines = [f"no inline button {wanted} in chat {chat.id}; buttons on screen:"]
        shown = [m for m in candidates if m.buttons and not m.deleted][:8]
        for candidate in shown:
            labels = " | ".join(f"[{text}]" for text in candidate.button_texts)
            lines.append(f"  #{candidate.message_id} {candidate.content[:60]!r}: {labels}")
        if not shown:
            lines.append("  (no message with inline buttons)")
        return "\n".join(lines)

    def press_data(self, message: StoredMessage | int, data: str) -> PressedButton:
        """Send a callback query with arbitrary ``data`` — a forged or stale button press."""
        if isinstance(message, int):
            found = self.stand_in.message(self.id, message)
            if found is None:
                msg = f"no message #{message} in the private chat of {self!r}"
                raise AssertionError(msg)
            message = found
        state = self.stand_in.user_callback(self, message, data)
        return PressedButton(state.id, data, message, self)

    def tap(self, text: str, chat: ChatRef = None) -> StoredMessage:
        """Tap a button of the reply keyboard currently shown (sent as text/contact/location)."""
        target_chat = self.stand_in.resolve_chat(chat, self, create=False)
        keyboard = target_chat.reply_keyboard
        if not keyboard:
            raise AssertionError(
                f"no reply keyboard is shown in chat {target_chat.id}; cannot tap {text!r}"
            )
        labels: list[str] = []
        for row in keyboard.get("keyboard", []):
            for raw in row:
                item: JsonDict = raw if isinstance(raw, dict) else {"text": str(raw)}
                labels.append(str(item.get("text", "")))
                if item.get("text") != text:
                    continue
                if item.get("request_contact"):
                    return self.send_contact(own=True, chat=target_chat)
                if item.get("request_location"):
                    return self.send_location(chat=target_chat)
                unsupported = [
                    key
                    for key in ("request_users", "request_chat", "request_poll", "web_app")
                    if key in item
                ]
                if unsupported:
                    msg = f"the stand-in cannot simulate {unsupported[0]} buttons ({text!r})"
                    raise AssertionError(msg)
                return self.send_text(text, chat=target_chat)
        shown = " | ".join(f"[{label}]" for label in labels)
        raise AssertionError(
            f"no reply keyboard button {text!r} in chat {target_chat.id}; keyboard: {shown}"
        )

    @property
    def keyboard_buttons(self) -> list[str]:
        """Texts of the reply keyboard shown in the private chat (empty when none)."""
        private = self.stand_in.chats.get(self.id)
        keyboard = (private.reply_keyboard if private else None) or {}
        return [
            str(raw.get("text", "")) if isinstance(raw, dict) else str(raw)
            for row in keyboard.get("keyboard", [])
            for raw in row
        ]

    # -- reading ---------------------------------------------------------------------------

    def messages(self, chat: ChatRef = None) -> list[StoredMessage]:
        """Bot messages the user sees in ``chat`` now (after edits and deletions)."""
        return self.stand_in.messages(self.stand_in.resolve_chat(chat, self, create=False))

    def last_message(self, chat: ChatRef = None) -> StoredMessage | None:
        """The newest bot message still visible in ``chat``, or None."""
        visible = self.messages(chat)
        return visible[-1] if visible else None

    async def wait_for(
        self,
        match: MessageMatch,
        chat: ChatRef = None,
        timeout: float = 5.0,
        after: StoredMessage | int | None = None,
    ) -> StoredMessage:
        """The first bot message, new or edited, matching ``match`` since ``after``.

        ``after`` defaults to this user's last action in the chat — "the reply to what I just
        did" — so an older message with the same text cannot satisfy the wait. Pass ``0`` to
        include everything, a message to start after it, or ``stand_in.checkpoint()``.
        """
        target_chat = self.stand_in.resolve_chat(chat, self, create=False)
        if after is None:
            after = self.last_action.get(target_chat.id, 0)
        return await self.stand_in.wait_for(match, target_chat.id, timeout=timeout, after=after)

    async def wait_answer(
        self, callback: PressedButton | str, timeout: float = 5.0
    ) -> CallbackAnswer:
        """The bot's answerCallbackQuery for ``callback`` (text, show_alert, url, cache_time)."""
        callback_id = callback.id if isinstance(callback, PressedButton) else callback
        return await self.stand_in.wait_answer(callback_id, timeout=timeout)

    def block(self) -> None:
        self.stand_in.block(self.id)

    def unblock(self) -> None:
        self.stand_in.unblock(self.id)
