"""Plain data the stand-in keeps: chats, messages with their edit history, requests, errors.

These are deliberately simple dataclasses, not aiogram models: a test must see what Telegram
stores (plain text plus entities, inline keyboards as JSON), not what the bot meant to send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]

ChatType = Literal["private", "group", "supergroup", "channel"]

BOT_USERNAME = "invataxi_test_bot"
BOT_FIRST_NAME = "Invataxi"


class ApiError(Exception):
    """An error answer of the Bot API (``{"ok": false, ...}``), raised by method handlers."""

    def __init__(
        self,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def to_json(self) -> JsonDict:
        """The response body exactly as Telegram shapes it."""
        body: JsonDict = {"ok": False, "error_code": self.code, "description": self.description}
        parameters: JsonDict = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def bad_request(text: str) -> ApiError:
    """A 400 whose description carries Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {text}")


def forbidden(text: str) -> ApiError:
    """A 403 whose description carries Telegram's ``Forbidden:`` prefix."""
    return ApiError(403, f"Forbidden: {text}")


def too_many_requests(retry_after: int) -> ApiError:
    """A flood-control answer; aiogram turns it into TelegramRetryAfter."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file the bot uploaded in a multipart body (only its name and size are kept)."""

    field: str
    filename: str
    size: int


@dataclass(eq=False)
class SimChat:
    """A chat the stand-in knows about; unknown chat ids get "chat not found" like Telegram."""

    id: int
    type: ChatType
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    is_forum: bool = False
    #: user id -> ChatMember status ("creator", "administrator", "member", "left", ...).
    members: dict[int, str] = field(default_factory=dict)
    #: forum topics: message_thread_id -> name.
    topics: dict[int, str] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    #: set when the group was upgraded to a supergroup (sends then answer 400 + migrate id).
    migrated_to: int | None = None
    #: the bot's own status in a group; "kicked"/"left" makes sends answer 403.
    bot_status: str = "administrator"
    #: the reply keyboard currently shown in this chat (None: the default text input).
    reply_keyboard: JsonDict | None = None

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    def allocate_message_id(self) -> int:
        """Message ids grow per chat; in a private chat user and bot messages share them."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def to_api(self) -> JsonDict:
        """The ``Chat`` object as Telegram puts it into messages."""
        body: JsonDict = {"id": self.id, "type": self.type}
        if self.is_private:
            body["first_name"] = self.first_name or ""
            if self.last_name:
                body["last_name"] = self.last_name
        else:
            body["title"] = self.title or ""
        if self.username:
            body["username"] = self.username
        if self.is_forum:
            body["is_forum"] = True
        return body


@dataclass(frozen=True, slots=True)
class MessageVersion:
    """One state of a message: as sent, or after an edit."""

    text: str | None
    entities: tuple[JsonDict, ...]
    caption: str | None
    reply_markup: JsonDict | None
    date: float
    raw_text: str | None = None


@dataclass(eq=False)
class StoredMessage:
    """A message as the chat shows it now, with every earlier state kept in ``versions``.

    ``edits`` lets a test assert that the bot edited a card in place instead of posting a
    new one; ``deleted`` keeps removed messages inspectable while hiding them from the chat.
    """

    chat: SimChat
    message_id: int
    date: int
    sender: JsonDict
    from_bot: bool
    text: str | None = None
    entities: list[JsonDict] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JsonDict] = field(default_factory=list)
    #: text exactly as the bot sent it, markup included (``text`` is the parsed plain text).
    raw_text: str | None = None
    parse_mode: str | None = None
    #: the inline keyboard attached to the message (Telegram never echoes reply keyboards).
    reply_markup: JsonDict | None = None
    #: a ReplyKeyboardMarkup/ReplyKeyboardRemove/ForceReply sent along with the message.
    keyboard: JsonDict | None = None
    thread_id: int | None = None
    #: other Message fields: location, contact, photo, sticker, service fields, ...
    extra: JsonDict = field(default_factory=dict)
    reply_to: StoredMessage | None = None
    edit_date: int | None = None
    deleted: bool = False
    #: the API method that created it ("sendMessage", ...) or "user" for simulated users.
    method: str = "user"
    #: position in the stand-in's event log when it was created (see ``wait_for(after=)``).
    seq: int = 0
    versions: list[MessageVersion] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def edits(self) -> list[MessageVersion]:
        """States after each edit, oldest first; empty when the message was never edited."""
        return self.versions[1:]

    @property
    def edited(self) -> bool:
        return len(self.versions) > 1

    @property
    def original(self) -> MessageVersion:
        return self.versions[0]

    @property
    def kind(self) -> str:
        """ "text" or the media/service field that makes up the message ("location", ...)."""
        if self.text is not None:
            return "text"
        for key in self.extra:
            return key
        return "empty"

    @property
    def content(self) -> str:
        """Text or caption — what a person reads — so tests can match either uniformly."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def buttons(self) -> list[list[JsonDict]]:
        """Rows of inline buttons currently attached to the message."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    @property
    def button_texts(self) -> list[str]:
        return [str(button.get("text", "")) for row in self.buttons for button in row]

    def snapshot(self) -> MessageVersion:
        return MessageVersion(
            text=self.text,
            entities=tuple(self.entities),
            caption=self.caption,
            reply_markup=self.reply_markup,
            date=time.time(),
            raw_text=self.raw_text,
        )

    def to_api(self, *, with_reply: bool = True) -> JsonDict:
        """The ``Message`` object exactly as Telegram returns or delivers it."""
        body: JsonDict = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "date": self.date,
            "chat": self.chat.to_api(),
        }
        if self.thread_id is not None:
            body["message_thread_id"] = self.thread_id
            if self.chat.is_forum:
                body["is_topic_message"] = True
        if with_reply and self.reply_to is not None:
            body["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        if self.edit_date is not None:
            body["edit_date"] = self.edit_date
        if self.text is not None:
            body["text"] = self.text
            if self.entities:
                body["entities"] = [dict(entity) for entity in self.entities]
        if self.caption is not None:
            body["caption"] = self.caption
            if self.caption_entities:
                body["caption_entities"] = [dict(entity) for entity in self.caption_entities]
        body.update(self.extra)
        if self.reply_markup:
            body["reply_markup"] = self.reply_markup
        return body

    def describe(self) -> str:
        """One line for assertion messages: who, id, kind, text and buttons."""
        who = "bot" if self.from_bot else self.sender.get("first_name", "user")
        flags = []
        if self.edited:
            flags.append(f"edited x{len(self.edits)}")
        if self.deleted:
            flags.append("deleted")
        suffix = f" ({', '.join(flags)})" if flags else ""
        text = self.content if self.kind in ("text", "photo", "document") else f"<{self.kind}>"
        line = f"#{self.message_id} {who}{suffix}: {text!r}"
        if self.buttons:
            line += " " + " | ".join(f"[{label}]" for label in self.button_texts)
        if self.keyboard and "keyboard" in self.keyboard:
            labels = [_button_text(b) for row in self.keyboard["keyboard"] for b in row]
            line += " keyboard: " + " | ".join(f"[{label}]" for label in labels)
        return line


def _button_text(button: Any) -> str:
    if isinstance(button, str):
        return button
    if isinstance(button, dict):
        return str(button.get("text", ""))
    return str(button)


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A change the user saw: a bot message appeared, was edited or was deleted."""

    seq: int
    kind: Literal["new", "edit", "delete"]
    message: StoredMessage
    version: MessageVersion | None


@dataclass(slots=True)
class RequestRecord:
    """One Bot API call as the stand-in received and answered it."""

    method: str
    params: JsonDict
    time: float
    token: str = ""
    ok: bool | None = None
    status: int = 0
    result: Any = None
    error: str | None = None
    #: the injected fault kind ("429", "500", "drop") or "limit" for enforced flood control.
    fault: str | None = None
    #: "http" for a normal call, "webhook-reply" for a method returned in a webhook response.
    source: str = "http"

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    def describe(self) -> str:
        outcome = "ok" if self.ok else f"{self.status} {self.error}"
        shown = {k: v for k, v in self.params.items() if k not in ("reply_markup",)}
        return f"{self.method}({shown}) -> {outcome}"


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What the bot answered to a callback query (answerCallbackQuery parameters)."""

    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass(eq=False)
class CallbackQueryState:
    """A pressed button awaiting the bot's answerCallbackQuery."""

    id: str
    user_id: int
    message: StoredMessage | None
    data: str | None
    created: float
    answer: CallbackAnswer | None = None


@dataclass(eq=False)
class PendingUpdate:
    """An update waiting to be fetched by getUpdates or delivered to the webhook."""

    update_id: int
    type: str
    body: JsonDict
    #: updates with the same key (chat or user) are delivered to a webhook in order.
    key: int
    created: float
    next_attempt: float = 0.0
    in_flight: bool = False
    attempts: int = 0
