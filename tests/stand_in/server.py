# Waits take a ``timeout`` argument on purpose (ASYNC109): on expiry they raise an
# AssertionError describing what the user saw, which a caller-side asyncio.timeout cannot do.
"""A local stand-in for the Telegram Bot API server, for end-to-end tests of the bot.

The bot under test talks HTTP to this server exactly as it talks to api.telegram.org (point
aiogram at it with ``TelegramAPIServer.from_base(stand_in.base_url)``), while the test plays the
users: it types, taps and presses buttons, and reads what the bot showed them. Everything the
real API enforces and a bot can get wrong is enforced here too — the spec of every method, text
limits and markup parsing, keyboard rules, "message is not modified", callback answers, blocked
users, migrated groups, forum threads, offsets and webhooks — and faults (429, 500, dropped
connections, flood control) can be injected to prove the bot survives them.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from .faults import FaultInjector, RateLimiter, RateLimits
from .formatting import (
    MAX_CAPTION_LENGTH,
    MAX_TEXT_LENGTH,
    FormattedText,
    format_text,
    same_entities,
)
from .models import (
    BOT_FIRST_NAME,
    BOT_USERNAME,
    ApiError,
    CallbackAnswer,
    CallbackQueryState,
    ChatType,
    JsonDict,
    MessageEvent,
    RequestRecord,
    SimChat,
    StoredMessage,
    UploadedFile,
    bad_request,
    forbidden,
    too_many_requests,
)
from .spec import ApiSpec, MethodSpec
from .updates import Notifier, UpdateQueue
from .users import ChatRef, MessageMatch, SimUser
from .webhook import WebhookDelivery

DEFAULT_TOKEN = "123456789:AAStandInTokenForInvataxiTests"
TOKEN_PATTERN = re.compile(r"\d+:[^/\s]+")

MESSAGE_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
GETUPDATES_WITH_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
GETUPDATES_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_STYLES = frozenset({"danger", "success", "primary"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
#: send methods whose message consists of one media/service field named after the method.
_MEDIA_FIELDS = {
    "sendPhoto": "photo",
    "sendAudio": "audio",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendVoice": "voice",
    "sendVideoNote": "video_note",
    "sendSticker": "sticker",
    "sendContact": "contact",
    "sendVenue": "venue",
    "sendDice": "dice",
    "sendPoll": "poll",
    "sendLivePhoto": "live_photo",
    "sendPaidMedia": "paid_media",
    "sendInvoice": "invoice",
    "sendGame": "game",
    "sendChecklist": "checklist",
}
_MEMBER_TYPES = {
    "creator": "ChatMemberOwner",
    "administrator": "ChatMemberAdministrator",
    "member": "ChatMemberMember",
    "restricted": "ChatMemberRestricted",
    "left": "ChatMemberLeft",
    "kicked": "ChatMemberBanned",
}
#: service messages every bot in the group receives, privacy mode or not.
_SERVICE_FIELDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
        "forum_topic_closed",
        "forum_topic_reopened",
    }
)
_GROUP_ANONYMOUS_BOT: JsonDict = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}

Handler = Callable[[JsonDict, JsonDict], Any]


class _FloodLimit(ApiError):
    """A 429 provoked by ``enforce_limits`` (counted in ``provoked_429``)."""


@functools.cache
def default_spec() -> ApiSpec:
    """The bundled Bot API spec, parsed once per process (it is close to a megabyte)."""
    return ApiSpec()


def bot_id_from_token(token: str) -> int:
    return int(token.split(":", 1)[0])


class BotApiStandIn:
    """An in-process Bot API server plus the simulated users and chats the tests drive.

    Use it as ``async with BotApiStandIn() as stand_in:`` (or ``await start()``/``stop()``),
    then point the bot at ``stand_in.base_url`` with ``stand_in.token``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_limits: bool = False,
        limits: RateLimits | None = None,
        privacy_mode: bool = True,
        callback_timeout: float | None = 15.0,
        require_https_webhook: bool = False,
        webhook_retry_delay: float = 0.5,
        webhook_timeout: float = 30.0,
        first_update_id: int = 1000,
        spec: ApiSpec | None = None,
    ) -> None:
        if not TOKEN_PATTERN.fullmatch(token):
            msg = f"token must look like <digits>:<text>, got {token!r}"
            raise ValueError(msg)
        #: the bot token; updated to the token of the latest valid request.
        self.token = token
        self.host = host
        self.port = port
        self.spec = spec or default_spec()
        self.enforce_limits = enforce_limits
        self.limiter = RateLimiter(limits or RateLimits())
        #: BotFather's default: in groups where the bot is no admin it sees only commands,
        #: replies to it and mentions.
        self.privacy_mode = privacy_mode
        #: seconds a callback query stays answerable (Telegram: about 15); None: forever.
        self.callback_timeout = callback_timeout
        self.require_https_webhook = require_https_webhook

        self.notifier = Notifier()
        self.queue = UpdateQueue(self.notifier, first_update_id)
        self.webhook = WebhookDelivery(
            self.queue,
            self.notifier,
            self._on_webhook_reply,
            retry_delay=webhook_retry_delay,
            timeout=webhook_timeout,
        )
        self.faults = FaultInjector()
        #: 429 answers caused by ``enforce_limits`` (not by ``inject``/``fail_rate``).
        self.provoked_429 = 0

        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.callbacks: dict[str, CallbackQueryState] = {}
        self.requests: list[RequestRecord] = []
        self.events: list[MessageEvent] = []
        #: crashes of the stand-in itself (answered 500); should stay empty.
        self.internal_errors: list[tuple[RequestRecord, Exception]] = []
        #: setMyCommands storage: (scope key, language_code) -> commands.
        self.bot_commands: dict[tuple[str, str], list[JsonDict]] = {}
        #: setChatMenuButton storage: chat id (None: default for all chats) -> button.
        self.menu_buttons: dict[int | None, JsonDict] = {}

        self._seq = 0
        self._callback_ids = itertools.count(1)
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._webhook_token = token
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendLocation": self._send_location,
            "sendMediaGroup": self._send_media_group,
            "forwardMessage": self._forward_message,
            "copyMessage": self._copy_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatMemberCount": self._get_chat_member_count,
            "getChatAdministrators": self._get_chat_administrators,
            "createForumTopic": self._create_forum_topic,
            "getFile": self._get_file,
        }
        for method in _MEDIA_FIELDS:
            self._handlers[method] = functools.partial(self._send_media, method)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host`` at an ephemeral port (unless ``port`` was given)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_get("/_stand_in/state", self._handle_state)
        app.router.add_post("/_stand_in/users/{user_id}/{action}", self._handle_user_action)
        # handler_cancellation: a client that hangs up mid long-poll must not leave it running.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        # Keep the real port: a stop()/start() cycle (a simulated outage) reuses it.
        self.port = int(self._runner.addresses[0][1])
        self._closing = False
        await self.webhook.start()

    async def stop(self) -> None:
        """Release pending long polls, stop webhook delivery and close the listener."""
        self._closing = True
        self.notifier.notify()
        await self.webhook.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> BotApiStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` — what ``TelegramAPIServer.from_base`` wants."""
        return f"http://{self.host}:{self.port}"

    @property
    def bot_id(self) -> int:
        return bot_id_from_token(self.token)

    @property
    def bot_user(self) -> JsonDict:
        return self._bot_user(self.token)

    def api_server(self) -> TelegramAPIServer:
        """An aiogram ``TelegramAPIServer`` pointing at this stand-in."""
        return TelegramAPIServer.from_base(self.base_url)

    def make_bot(self, **kwargs: Any) -> Bot:
        """An aiogram ``Bot`` talking to this stand-in (close it: ``await bot.session.close()``).

        Keyword arguments go to ``Bot`` (e.g. ``default=DefaultBotProperties(...)``).
        """
        session = AiohttpSession(api=self.api_server())
        return Bot(kwargs.pop("token", self.token), session=session, **kwargs)

    # -- test-side setup ---------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Test User",
        *,
        language_code: str | None = "ru",
        last_name: str | None = None,
        username: str | None = None,
        phone: str | None = None,
    ) -> SimUser:
        """A Telegram user the bot may meet in groups; no private chat yet (see private_chat)."""
        if user_id <= 0:
            msg = f"user ids are positive, got {user_id}"
            raise ValueError(msg)
        existing = self.users.get(user_id)
        if existing is not None:
            return existing
        created = SimUser(
            self,
            user_id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone=phone,
        )
        self.users[user_id] = created
        return created

    def private_chat(
        self,
        user_id: int,
        first_name: str = "Test User",
        language_code: str | None = "ru",
        **details: Any,
    ) -> SimUser:
        """A user who has opened the bot: their private chat exists and sends reach them."""
        person = self.user(user_id, first_name, language_code=language_code, **details)
        self.private_chat_of(person)
        return person

    def private_chat_of(self, user: SimUser) -> SimChat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SimChat(
                id=user.id,
                type="private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
            self.chats[user.id] = chat
        user.started = True
        return chat

    def group(
        self,
        chat_id: int,
        title: str = "Test group",
        forum: bool = False,
        *,
        type: ChatType | None = None,
        username: str | None = None,
        bot_status: str = "administrator",
    ) -> SimChat:
        """Register a group; ids starting with -100 (or forums) are supergroups by default."""
        if chat_id >= 0:
            msg = f"group ids are negative, got {chat_id}"
            raise ValueError(msg)
        kind: ChatType = type or (
            "supergroup" if forum or str(chat_id).startswith("-100") else "group"
        )
        if forum and kind != "supergroup":
            msg = "only supergroups can be forums"
            raise ValueError(msg)
        chat = SimChat(
            id=chat_id,
            type=kind,
            title=title,
            username=username,
            is_forum=forum,
            bot_status=bot_status,
        )
        self.chats[chat_id] = chat
        return chat

    def add_member(
        self,
        group_id: int | SimChat,
        user: SimUser,
        status: str = "member",
        *,
        announce: bool = False,
    ) -> None:
        """Make ``user`` a member (or admin/creator/...) of a group; ``announce`` sends the
        "joined" service message to the bot."""
        chat = self._group(group_id)
        if status not in _MEMBER_TYPES:
            msg = f"unknown member status {status!r}"
            raise ValueError(msg)
        chat.members[user.id] = status
        if announce:
            self.user_message(user, chat, extra={"new_chat_members": [user.to_api()]})

    def topic(self, group_id: int | SimChat, name: str) -> int:
        """Create a forum topic as a user would; returns its message_thread_id."""
        chat = self._group(group_id)
        if not chat.is_forum:
            msg = f"chat {chat.id} is not a forum"
            raise ValueError(msg)
        return self._create_topic(chat, name, dict(_GROUP_ANONYMOUS_BOT), from_bot=False)

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every send to them answers 403 until they unblock it."""
        person = self.users[user_id]
        if person.blocked:
            return
        person.blocked = True
        if person.id in self.chats:
            self._my_chat_member(self.chats[person.id], person.to_api(), "member", "kicked")

    def unblock(self, user_id: int) -> None:
        person = self.users[user_id]
        if not person.blocked:
            return
        person.blocked = False
        if person.id in self.chats:
            self._my_chat_member(self.chats[person.id], person.to_api(), "kicked", "member")

    def migrate(self, group_id: int, new_id: int, by: SimUser | None = None) -> SimChat:
        """Upgrade a basic group to a supergroup, as Telegram does when a group grows."""
        old = self._group(group_id)
        if old.type != "group":
            msg = f"only basic groups migrate; {group_id} is a {old.type}"
            raise ValueError(msg)
        new = SimChat(
            id=new_id,
            type="supergroup",
            title=old.title,
            members=dict(old.members),
            bot_status=old.bot_status,
        )
        self.chats[new_id] = new
        old.migrated_to = new_id
        sender = by.to_api() if by else dict(_GROUP_ANONYMOUS_BOT)
        self._service_message(old, sender, {"migrate_to_chat_id": new_id})
        self._service_message(new, sender, {"migrate_from_chat_id": group_id})
        return new

    def remove_bot(self, group_id: int, status: str = "kicked") -> None:
        """The bot is kicked from (or leaves) a group: sends there answer 403."""
        chat = self._group(group_id)
        old = chat.bot_status
        chat.bot_status = status
        self._my_chat_member(chat, dict(_GROUP_ANONYMOUS_BOT), old, status)

    def chat(self, chat_id: int) -> SimChat:
        return self.chats[chat_id]

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
        count: int | None = 1,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``count`` matching calls fail with ``kind``: "429", "500" or "drop".

        Faults strike before the call changes anything, like Telegram's own: a message refused
        with 429 was not sent. ``count=None`` keeps the fault until ``clear_faults()``.
        """
        self.faults.inject(
            kind, method=method, chat_id=chat_id, count=count, retry_after=retry_after
        )

    def fail_rate(
        self,
        share: float,
        kinds: Iterable[str] = ("429", "500", "drop"),
        methods: Iterable[str] | None = None,
        seed: int = 0,
        retry_after: int = 1,
    ) -> None:
        """Fail a random ``share`` of calls (reproducible by ``seed``); 0 turns it off.

        Without ``methods`` every method except getUpdates is affected (aiogram's polling
        backs off for seconds after an error, which would only slow the tests down).
        """
        chosen = list(methods) if methods is not None else None
        self.faults.fail_rate(share, kinds, chosen, seed=seed, retry_after=retry_after)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- observation -------------------------------------------------------------------------

    def calls(
        self, method: str | None = None, chat_id: int | str | None = None
    ) -> list[RequestRecord]:
        """Logged requests, optionally only one method (any case) and/or one chat."""
        wanted = method.lower() if method else None
        return [
            record
            for record in self.requests
            if (wanted is None or record.method.lower() == wanted)
            and (chat_id is None or str(record.chat_id) == str(chat_id))
        ]

    def errors(self, method: str | None = None) -> list[RequestRecord]:
        """Requests the stand-in answered with an error (including injected faults)."""
        return [record for record in self.calls(method) if record.ok is False]

    def messages(
        self,
        chat_id: int | SimChat,
        thread_id: int | None = None,
        *,
        include_user: bool = False,
    ) -> list[StoredMessage]:
        """Messages visible in the chat now (bot's only unless ``include_user``), oldest first."""
        chat = chat_id if isinstance(chat_id, SimChat) else self.chats.get(chat_id)
        if chat is None:
            return []
        return [
            message
            for message in sorted(chat.messages.values(), key=lambda m: m.message_id)
            if not message.deleted
            and (include_user or message.from_bot)
            and (thread_id is None or message.thread_id == thread_id)
        ]

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        return self.messages(chat_id)

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A message by id, deleted ones included (check ``.deleted``)."""
        chat = self.chats.get(chat_id)
        return chat.messages.get(message_id) if chat else None

    def checkpoint(self) -> int:
        """A position in the event log; pass it as ``after=`` to wait only for later changes."""
        return self._seq

    def commands(
        self, scope: JsonDict | None = None, language_code: str | None = None
    ) -> list[JsonDict]:
        """Commands the bot set with setMyCommands for ``scope``/``language_code``."""
        return list(self.bot_commands.get((_scope_key(scope), language_code or ""), []))

    @property
    def webhook_url(self) -> str | None:
        return self.webhook.url

    @property
    def webhook_targets(self) -> list[str] | None:
        """Instances that share webhook delivery round-robin (overrides the webhook URL)."""
        return self.webhook.targets

    @webhook_targets.setter
    def webhook_targets(self, targets: Iterable[str] | None) -> None:
        self.webhook.targets = list(targets) if targets is not None else None
        self.notifier.notify()

    def pending_updates(self) -> list[JsonDict]:
        """Updates not yet confirmed by getUpdates nor accepted by the webhook."""
        return [update.body for update in self.queue.pending]

    async def wait_for(
        self,
        match: MessageMatch,
        chat_id: int | SimChat,
        *,
        timeout: float = 5.0,
        after: StoredMessage | int | None = 0,
    ) -> StoredMessage:
        """The first bot message in the chat, new or edited after ``after``, that matches.

        ``match`` is a substring of the text/caption, a compiled regex, or a predicate.
        On timeout the AssertionError lists the chat's last messages and failed API calls.
        """
        chat = chat_id if isinstance(chat_id, SimChat) else self.chats.get(chat_id)
        if chat is None:
            msg = f"unknown chat {chat_id}"
            raise AssertionError(msg)
        since = after.seq if isinstance(after, StoredMessage) else int(after or 0)

        def check() -> StoredMessage | None:
            seen: set[int] = set()
            for event in self.events:
                message = event.message
                if event.seq <= since or message.chat is not chat or event.kind == "delete":
                    continue
                if id(message) in seen or message.deleted:
                    continue
                seen.add(id(message))
                if _matches(match, message):
                    return message
            return None

        found = await self.notifier.wait_until(check, timeout)
        if found is None:
            raise AssertionError(self._timeout_report(match, chat, timeout))
        return found

    async def wait_answer(self, callback_id: str, timeout: float = 5.0) -> CallbackAnswer:
        """The answerCallbackQuery the bot gave to ``callback_id``."""
        state = self.callbacks.get(callback_id)
        if state is None:
            msg = f"unknown callback query {callback_id!r}"
            raise AssertionError(msg)
        answer = await self.notifier.wait_until(lambda: state.answer, timeout)
        if answer is None:
            raise AssertionError(
                f"the bot did not answer callback query {callback_id} (data={state.data!r}) "
                f"within {timeout}s; the user would see an endless spinner"
            )
        return answer

    async def wait_call(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        since: int = 0,
        timeout: float = 5.0,
    ) -> RequestRecord:
        """The first answered call of ``method`` at index >= ``since`` of ``requests``."""

        def check() -> RequestRecord | None:
            for record in self.requests[since:]:
                if record.ok is None or record.method.lower() != method.lower():
                    continue
                if chat_id is None or str(record.chat_id) == str(chat_id):
                    return record
            return None

        found = await self.notifier.wait_until(check, timeout)
        if found is None:
            recent = "\n".join(f"  {r.describe()}" for r in self.requests[-10:])
            msg = f"the bot did not call {method} within {timeout}s; last calls:\n{recent}"
            raise AssertionError(msg)
        return found

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the bot has fetched/acknowledged every pending update."""
        done = await self.notifier.wait_until(lambda: not self.queue.pending or None, timeout)
        if done is None:
            pending = ", ".join(f"{u.update_id}:{u.type}" for u in self.queue.pending[:10])
            msg = f"updates still pending after {timeout}s: {pending}"
            raise AssertionError(msg)

    # -- simulated users (called by SimUser) -------------------------------------------------

    def resolve_chat(self, chat: ChatRef, user: SimUser, *, create: bool = True) -> SimChat:
        """The chat a user action refers to; None is the user's private chat with the bot.

        Only actions that send something open that private chat (``create``): merely looking
        must not turn a user who never pressed Start into one the bot may write to.
        """
        if chat is None:
            if create or user.id in self.chats:
                return self.private_chat_of(user)
            msg = f"{user!r} has no private chat with the bot (never started it)"
            raise AssertionError(msg)
        if isinstance(chat, SimChat):
            return chat
        found = self.chats.get(chat)
        if found is None:
            msg = f"unknown chat {chat}; register it with stand_in.group(...) first"
            raise AssertionError(msg)
        return found

    def user_message(
        self,
        user: SimUser,
        chat_ref: ChatRef,
        *,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        text: str | None = None,
        entities: list[JsonDict] | None = None,
        caption: str | None = None,
        extra: JsonDict | None = None,
    ) -> StoredMessage:
        """Store a message the user sent and queue the ``message`` update for the bot."""
        chat = self.resolve_chat(chat_ref, user)
        if chat.migrated_to is not None:
            msg = f"group {chat.id} was migrated to {chat.migrated_to}; write there instead"
            raise AssertionError(msg)
        if chat.is_private:
            if chat.id != user.id:
                msg = f"{user!r} cannot write into the private chat of user {chat.id}"
                raise AssertionError(msg)
            if user.blocked:
                # Writing to a blocked bot means pressing "Restart": the block is lifted.
                self.unblock(user.id)
        elif user.id not in chat.members or chat.members[user.id] in ("left", "kicked"):
            chat.members[user.id] = "member"
        if thread_id is not None:
            if not chat.is_forum:
                msg = f"chat {chat.id} is not a forum; thread_id makes no sense there"
                raise AssertionError(msg)
            chat.topics.setdefault(thread_id, f"Topic {thread_id}")
        self._seq += 1
        message = StoredMessage(
            chat=chat,
            message_id=chat.allocate_message_id(),
            date=int(time.time()),
            sender=user.to_api(),
            from_bot=False,
            text=text,
            entities=list(entities or []),
            caption=caption,
            extra=dict(extra or {}),
            thread_id=thread_id,
            reply_to=reply_to,
            seq=self._seq,
        )
        message.versions.append(message.snapshot())
        chat.messages[message.message_id] = message
        user.last_action[chat.id] = self._seq
        if self._bot_receives(chat, message):
            self.queue.put("message", message.to_api(), key=chat.id)
        self.notifier.notify()
        return message

    def user_callback(
        self, user: SimUser, message: StoredMessage, data: str | None
    ) -> CallbackQueryState:
        """Queue the ``callback_query`` update of a button press."""
        chat = message.chat
        if not chat.is_private and user.id not in chat.members:
            chat.members[user.id] = "member"
        callback_id = str(4_000_000_000_000_000_000 + next(self._callback_ids) * 7919)
        payload: JsonDict = {
            "id": callback_id,
            "from": user.to_api(),
            "message": message.to_api(),
            "chat_instance": str(-5_000_000_000_000_000_000 - abs(chat.id)),
        }
        if data is not None:
            payload["data"] = data
        state = CallbackQueryState(
            id=callback_id,
            user_id=user.id,
            message=message,
            data=data,
            created=time.monotonic(),
        )
        self.callbacks[callback_id] = state
        self._seq += 1
        user.last_action[chat.id] = self._seq
        self.queue.put("callback_query", payload, key=chat.id)
        return state

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not TOKEN_PATTERN.fullmatch(token):
            return _json(ApiError(401, "Unauthorized").to_json(), 401)
        self.token = token
        method = self.spec.method(request.match_info["method"])
        if method is None:
            # Logged too: a test should be able to see that the bot called a missing method.
            missing = RequestRecord(request.match_info["method"], {}, time.monotonic(), token)
            self.requests.append(missing)
            return self._finish(missing, ApiError(404, "Not Found: method not found"))
        record = RequestRecord(method.name, {}, time.monotonic(), token)
        self.requests.append(record)
        try:
            raw = await _read_params(request)
        except ApiError as error:
            return self._finish(record, error)
        record.params = dict(raw)
        try:
            params = self.spec.decode(method, raw)
            record.params = params
            fault = self.faults.pick(method.name, params.get("chat_id"))
            if fault is not None:
                kind, retry_after = fault
                record.fault = kind
                if kind == "drop":
                    record.ok, record.error = False, "connection dropped (injected)"
                    self.notifier.notify()
                    if request.transport is not None:
                        request.transport.close()
                    return web.Response(status=500)
                if kind == "429":
                    raise too_many_requests(retry_after)
                raise ApiError(500, "Internal Server Error")
            result = await self._execute(method, params, token)
        except ApiError as error:
            if isinstance(error, _FloodLimit):
                record.fault = "limit"
            return self._finish(record, error)
        except Exception as error:
            return self._finish(record, self._internal_error(record, error))
        record.ok, record.status, record.result = True, 200, result
        self.notifier.notify()
        return _json({"ok": True, "result": result}, 200)

    def _internal_error(self, record: RequestRecord, error: Exception) -> ApiError:
        """Answer a crash of the stand-in itself with a 500 that names it, and remember it.

        Tests can assert ``stand_in.internal_errors == []`` so that a stand-in bug is never
        mistaken for the bot mishandling a Telegram error.
        """
        self.internal_errors.append((record, error))
        return ApiError(
            500, f"Internal Server Error: stand-in crashed: {type(error).__name__}: {error}"
        )

    def _finish(self, record: RequestRecord, error: ApiError) -> web.Response:
        record.ok, record.status, record.error = False, error.code, error.description
        self.notifier.notify()
        return _json(error.to_json(), error.code)

    async def _execute(self, method: MethodSpec, params: JsonDict, token: str) -> Any:
        missing = self.spec.missing_required(method, params)
        if missing is not None and (method.name, missing) not in _LENIENT_REQUIRED:
            if missing == "chat_id":
                raise bad_request("chat_id is empty")
            if missing == "text":
                raise bad_request("message text is empty")
            raise bad_request(f"{missing} is required")
        bot = self._bot_user(token)
        handler = self._handlers.get(method.name)
        result = handler(params, bot) if handler else self._generic(method, params, bot)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not TOKEN_PATTERN.fullmatch(request.match_info["token"]):
            return _json(ApiError(401, "Unauthorized").to_json(), 401)
        path = request.match_info["path"]
        return web.Response(
            body=f"stand-in file {path}".encode(), content_type="application/octet-stream"
        )

    async def _handle_state(self, request: web.Request) -> web.StreamResponse:
        """Debug view for manual runs: every chat with its messages."""
        state = {
            str(chat.id): [m.describe() for m in self.messages(chat, include_user=True)]
            for chat in self.chats.values()
        }
        return _json({"ok": True, "result": state}, 200)

    async def _handle_user_action(self, request: web.Request) -> web.StreamResponse:
        """Manual runs: ``POST /_stand_in/users/<id>/text`` (or ``press``, ``tap``) with JSON
        ``{"text": ...}`` plays that user."""
        try:
            body = await request.json()
            person = self.private_chat(int(request.match_info["user_id"]))
            action = request.match_info["action"]
            text = str(body.get("text", ""))
            if action == "text":
                result: Any = person.send_text(text).message_id
            elif action == "press":
                result = person.press(text).id
            elif action == "tap":
                result = person.tap(text).message_id
            else:
                return _json({"ok": False, "description": f"unknown action {action}"}, 404)
        except (AssertionError, ValueError) as error:
            return _json({"ok": False, "description": str(error)}, 400)
        return _json({"ok": True, "result": result}, 200)

    async def _on_webhook_reply(self, reply: Mapping[str, object]) -> None:
        """Execute a method the bot returned in its webhook response, as Telegram does."""
        raw = dict(reply)
        method = self.spec.method(str(raw.pop("method", "")))
        if method is None:
            return
        record = RequestRecord(
            method.name, dict(raw), time.monotonic(), self._webhook_token, source="webhook-reply"
        )
        self.requests.append(record)
        try:
            params = self.spec.decode(method, raw)
            record.params = params
            result = await self._execute(method, params, self._webhook_token)
        except ApiError as error:
            self._finish(record, error)
            return
        except Exception as error:
            self._finish(record, self._internal_error(record, error))
            return
        record.ok, record.status, record.result = True, 200, result
        self.notifier.notify()

    # -- generic methods ---------------------------------------------------------------------

    def _true(self, params: JsonDict, bot: JsonDict) -> bool:
        return True

    def _generic(self, method: MethodSpec, params: JsonDict, bot: JsonDict) -> Any:
        """Methods not modelled in detail: validate the chat, then return a well-formed result
        of the declared type (``true`` for the many Boolean methods)."""
        chat: SimChat | None = None
        chat_field = method.field("chat_id")
        if chat_field is not None and params.get("chat_id") not in (None, ""):
            chat = self._lookup_chat(params["chat_id"], for_send=method.name.startswith("send"))
        returns = method.returns
        if not returns or returns == ("Boolean",):
            return True
        if "Message" in returns:
            message = None
            if chat is not None and isinstance(params.get("message_id"), int):
                message = chat.messages.get(params["message_id"])
            if message is not None and not message.deleted:
                return message.to_api()
            if "Boolean" in returns:
                return True
            if chat is not None:
                return self._store_bot_message(chat, params, bot, method.name).to_api()
        return self.spec.placeholder(returns[0])

    # -- identity and updates ----------------------------------------------------------------

    def _bot_user(self, token: str) -> JsonDict:
        return {
            "id": bot_id_from_token(token),
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def _get_me(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        return {
            **bot,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JsonDict, bot: JsonDict) -> list[JsonDict]:
        if self.webhook.active:
            raise ApiError(409, GETUPDATES_WITH_WEBHOOK)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if params.get("allowed_updates") is not None:
            self.queue.set_allowed(params["allowed_updates"])
        if params.get("offset") is not None:
            self.queue.confirm_below(int(params["offset"]))
        # A newer getUpdates terminates an older one still waiting: two bot instances polling
        # the same token is a deployment bug Telegram reports with 409.
        self._poll_generation += 1
        generation = self._poll_generation
        self.notifier.notify()

        def check() -> list[JsonDict] | str | None:
            if generation != self._poll_generation:
                return "terminated"
            if self.webhook.active:
                return "webhook"
            ready = self.queue.peek(limit)
            if ready:
                return [update.body for update in ready]
            return [] if self._closing else None

        outcome = await self.notifier.wait_until(check, timeout)
        if outcome == "terminated":
            raise ApiError(409, GETUPDATES_TERMINATED)
        if outcome == "webhook":
            raise ApiError(409, GETUPDATES_WITH_WEBHOOK)
        return outcome if isinstance(outcome, list) else []

    def _set_webhook(self, params: JsonDict, bot: JsonDict) -> bool:
        url = params.get("url") or ""
        if not url:
            self.webhook.configure(None, None, 40)
            return True
        parts = urlsplit(str(url))
        allowed = ("https",) if self.require_https_webhook else ("http", "https")
        if parts.scheme not in allowed or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        max_connections = int(params.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        if params.get("allowed_updates") is not None:
            self.queue.set_allowed(params["allowed_updates"])
        if params.get("drop_pending_updates"):
            self.queue.clear()
        self.webhook.ip_address = params.get("ip_address")
        self._webhook_token = self.token
        self.webhook.configure(str(url), str(secret) if secret else None, max_connections)
        return True

    def _delete_webhook(self, params: JsonDict, bot: JsonDict) -> bool:
        self.webhook.configure(None, None, 40)
        if params.get("drop_pending_updates"):
            self.queue.clear()
        return True

    def _get_webhook_info(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        info: JsonDict = {
            "url": self.webhook.url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue.pending),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
        if self.webhook.last_error_date is not None:
            info["last_error_date"] = self.webhook.last_error_date
            info["last_error_message"] = self.webhook.last_error_message
        if self.queue.allowed_updates:
            info["allowed_updates"] = list(self.queue.allowed_updates)
        return info

    def _next_event(self, kind: Literal["new", "edit", "delete"], message: StoredMessage) -> None:
        self._seq += 1
        version = message.versions[-1] if message.versions and kind != "delete" else None
        self.events.append(MessageEvent(self._seq, kind, message, version))
        self.notifier.notify()

    def _bot_receives(self, chat: SimChat, message: StoredMessage) -> bool:
        """Privacy mode: a non-admin bot in a group sees only what is addressed to it."""
        if chat.is_private:
            return True
        if chat.bot_status in ("left", "kicked"):
            return False
        if not self.privacy_mode or chat.bot_status in ("administrator", "creator"):
            return True
        text = message.text or ""
        if any(entity.get("type") == "bot_command" for entity in message.entities):
            command = text.split()[0]
            return "@" not in command or command.endswith(f"@{BOT_USERNAME}")
        if message.reply_to is not None and message.reply_to.from_bot:
            return True
        if message.extra.keys() & _SERVICE_FIELDS:
            return True
        return f"@{BOT_USERNAME}" in text or f"@{BOT_USERNAME}" in (message.caption or "")

    def _service_message(self, chat: SimChat, sender: JsonDict, extra: JsonDict) -> StoredMessage:
        self._seq += 1
        message = StoredMessage(
            chat=chat,
            message_id=chat.allocate_message_id(),
            date=int(time.time()),
            sender=sender,
            from_bot=False,
            extra=extra,
            method="service",
            seq=self._seq,
        )
        message.versions.append(message.snapshot())
        chat.messages[message.message_id] = message
        self.queue.put("message", message.to_api(), key=chat.id)
        return message

    def _my_chat_member(self, chat: SimChat, sender: JsonDict, old: str, new: str) -> None:
        payload: JsonDict = {
            "chat": chat.to_api(),
            "from": sender,
            "date": int(time.time()),
            "old_chat_member": self._member(old, self.bot_user),
            "new_chat_member": self._member(new, self.bot_user),
        }
        self.queue.put("my_chat_member", payload, key=chat.id)

    # -- chats -------------------------------------------------------------------------------

    def _group(self, group_id: int | SimChat) -> SimChat:
        chat = group_id if isinstance(group_id, SimChat) else self.chats.get(group_id)
        if chat is None or chat.is_private:
            msg = f"unknown group {group_id}; register it with stand_in.group(...)"
            raise ValueError(msg)
        return chat

    def _lookup_chat(self, value: Any, *, for_send: bool) -> SimChat:
        """The chat a request addresses, with Telegram's refusals for unusable chats."""
        chat: SimChat | None = None
        if isinstance(value, str) and value.startswith("@"):
            name = value[1:].lower()
            chat = next(
                (c for c in self.chats.values() if c.username and c.username.lower() == name),
                None,
            )
        else:
            try:
                chat_id = int(value)
            except (TypeError, ValueError):
                raise bad_request("chat not found") from None
            chat = self.chats.get(chat_id)
            if chat is None and chat_id in self.users:
                if for_send:
                    raise forbidden("bot can't initiate conversation with a user")
                person = self.users[chat_id]
                chat = SimChat(id=chat_id, type="private", first_name=person.first_name)
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=chat.migrated_to,
            )
        if for_send:
            self._check_sendable(chat)
        return chat

    def _check_sendable(self, chat: SimChat) -> None:
        if chat.is_private:
            person = self.users.get(chat.id)
            if person is not None and person.blocked:
                raise forbidden("bot was blocked by the user")
            return
        kind = "supergroup" if chat.type == "supergroup" else "group"
        if chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind} chat")
        if chat.bot_status == "left":
            raise forbidden(f"bot is not a member of the {kind} chat")

    def _check_thread(self, chat: SimChat, thread_id: Any) -> int | None:
        if thread_id in (None, ""):
            return None
        if chat.is_forum and int(thread_id) in chat.topics:
            return int(thread_id)
        raise bad_request("message thread not found")

    def _check_limits(self, chat: SimChat) -> None:
        if not self.enforce_limits:
            return
        retry_after = self.limiter.check(chat.id, is_group=not chat.is_private)
        if retry_after is not None:
            self.provoked_429 += 1
            raise _FloodLimit(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )

    # -- keyboards ---------------------------------------------------------------------------

    def _check_reply_markup(
        self, chat: SimChat, markup: Any
    ) -> tuple[JsonDict | None, JsonDict | None]:
        """(inline keyboard for the message, reply keyboard/removal for the chat)."""
        if markup in (None, ""):
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return _check_inline_keyboard(chat, markup), None
        if "keyboard" in markup:
            _check_reply_keyboard(chat, markup)
            return None, markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return None, markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _check_edit_markup(self, chat: SimChat, markup: Any) -> JsonDict | None:
        if markup in (None, ""):
            return None
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            raise bad_request("can't parse inline keyboard markup JSON object")
        return _check_inline_keyboard(chat, markup)

    # -- sending -----------------------------------------------------------------------------

    def _format(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> FormattedText:
        formatted = format_text(
            None if text is None else str(text),
            str(parse_mode) if parse_mode else None,
            entities,
        )
        if caption:
            if formatted.length > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
            return formatted
        if not formatted.text:
            raise bad_request("message text is empty")
        if formatted.length > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return formatted

    def _store_bot_message(
        self,
        chat: SimChat,
        params: JsonDict,
        bot: JsonDict,
        method: str,
        *,
        text: FormattedText | None = None,
        caption: FormattedText | None = None,
        extra: JsonDict | None = None,
    ) -> StoredMessage:
        """Validate what is common to all sends, apply flood control, then store the message."""
        thread_id = self._check_thread(chat, params.get("message_thread_id"))
        inline, keyboard = self._check_reply_markup(chat, params.get("reply_markup"))
        reply_to = self._check_reply(chat, params.get("reply_parameters"))
        self._check_limits(chat)
        message = StoredMessage(
            chat=chat,
            message_id=chat.allocate_message_id(),
            date=int(time.time()),
            sender=dict(bot),
            from_bot=True,
            text=text.text if text else None,
            entities=list(text.entities) if text else [],
            caption=caption.text if caption and caption.text else None,
            caption_entities=list(caption.entities) if caption else [],
            raw_text=params.get("text") if text else params.get("caption"),
            parse_mode=params.get("parse_mode"),
            reply_markup=inline,
            keyboard=keyboard,
            thread_id=thread_id,
            extra=dict(extra or {}),
            reply_to=reply_to,
            method=method,
        )
        message.versions.append(message.snapshot())
        chat.messages[message.message_id] = message
        if keyboard is not None:
            if "keyboard" in keyboard:
                chat.reply_keyboard = keyboard
            elif keyboard.get("remove_keyboard"):
                chat.reply_keyboard = None
        message.seq = self._seq + 1
        self._next_event("new", message)
        return message

    def _check_reply(self, chat: SimChat, reply: Any) -> StoredMessage | None:
        if not isinstance(reply, dict) or reply.get("message_id") is None:
            return None
        target = chat
        if reply.get("chat_id") not in (None, ""):
            target = self._lookup_chat(reply["chat_id"], for_send=False)
        message = target.messages.get(int(reply["message_id"]))
        if message is None or message.deleted:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return message

    def _send_message(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        text = self._format(params.get("text"), params.get("parse_mode"), params.get("entities"))
        return self._store_bot_message(chat, params, bot, "sendMessage", text=text).to_api()

    def _send_location(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        latitude, longitude = float(params["latitude"]), float(params["longitude"])
        if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
            raise bad_request("wrong coordinates specified")
        location: JsonDict = {"latitude": latitude, "longitude": longitude}
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        message = self._store_bot_message(
            chat, params, bot, "sendLocation", extra={"location": location}
        )
        return message.to_api()

    def _caption(self, params: JsonDict) -> FormattedText | None:
        if params.get("caption") in (None, ""):
            return None
        return self._format(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            caption=True,
        )

    def _send_media(self, method: str, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        caption = self._caption(params)
        field = _MEDIA_FIELDS[method]
        extra = {field: self._media_payload(field, params)}
        message = self._store_bot_message(chat, params, bot, method, caption=caption, extra=extra)
        return message.to_api()

    def _media_payload(self, field: str, params: JsonDict) -> Any:
        """What Telegram would put into the message for an uploaded or referenced file."""
        if field == "contact":
            contact = {"phone_number": params["phone_number"], "first_name": params["first_name"]}
            for key in ("last_name", "vcard"):
                if params.get(key):
                    contact[key] = params[key]
            return contact
        if field == "venue":
            location = {"latitude": params["latitude"], "longitude": params["longitude"]}
            return {"location": location, "title": params["title"], "address": params["address"]}
        if field == "dice":
            return {"emoji": params.get("emoji") or "🎲", "value": 1}
        message_field = next(
            (f for f in self.spec.type_fields("Message") if f.name == field), None
        )
        type_name = message_field.types[0] if message_field else "Document"
        if type_name.startswith("Array of "):
            item = self.spec.placeholder(type_name.removeprefix("Array of "))
            payload: Any = [item]
        else:
            item = self.spec.placeholder(type_name)
            payload = item
        source = params.get(field)
        if isinstance(item, dict) and "file_id" in item:
            if isinstance(source, str):
                item["file_id"] = source
            elif isinstance(source, UploadedFile):
                item["file_id"] = f"uploaded-{source.filename}"
                item["file_unique_id"] = f"uploaded-{source.filename}"
        return payload

    def _send_media_group(self, params: JsonDict, bot: JsonDict) -> list[JsonDict]:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media specified; must be between 2 and 10")
        group_id = f"stand-in-group-{self._seq + 1}"
        result: list[JsonDict] = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "document",
                "audio",
            ):
                raise bad_request("can't parse InputMedia JSON object")
            caption = self._caption(item)
            kind = str(item["type"])
            source = item.get("media")
            if isinstance(source, str) and source.startswith("attach://"):
                # The file is a part of the multipart body, named after "attach://".
                source = params.get(source.removeprefix("attach://"))
                if not isinstance(source, UploadedFile):
                    raise bad_request("wrong file identifier/HTTP URL specified")
            extra = {
                kind: self._media_payload(kind, {**item, kind: source}),
                "media_group_id": group_id,
            }
            message = self._store_bot_message(
                chat, params, bot, "sendMediaGroup", caption=caption, extra=extra
            )
            result.append(message.to_api())
        return result

    def _source_message(self, params: JsonDict) -> StoredMessage:
        source_chat = self._lookup_chat(params["from_chat_id"], for_send=False)
        message = source_chat.messages.get(int(params["message_id"]))
        if message is None or message.deleted:
            raise bad_request("message to copy not found")
        return message

    def _forward_message(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        source = self._source_message(params)
        origin: JsonDict = {"type": "user", "date": source.date, "sender_user": source.sender}
        copy = self._copy_into(chat, source, params, bot, "forwardMessage")
        copy.extra["forward_origin"] = origin
        return copy.to_api()

    def _copy_message(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        source = self._source_message(params)
        return {"message_id": self._copy_into(chat, source, params, bot, "copyMessage").message_id}

    def _copy_into(
        self,
        chat: SimChat,
        source: StoredMessage,
        params: JsonDict,
        bot: JsonDict,
        method: str,
    ) -> StoredMessage:
        if source.extra.keys() & {
            "migrate_to_chat_id",
            "migrate_from_chat_id",
            "new_chat_members",
        }:
            raise bad_request("message can't be copied")
        text = FormattedText(source.text, list(source.entities)) if source.text else None
        caption = self._caption(params) if method == "copyMessage" else None
        if caption is None and source.caption:
            caption = FormattedText(source.caption, list(source.caption_entities))
        extra = {
            key: value
            for key, value in source.extra.items()
            if key not in ("forward_origin", "media_group_id")
        }
        return self._store_bot_message(
            chat, params, bot, method, text=text, caption=caption, extra=extra
        )

    # -- editing -----------------------------------------------------------------------------

    def _edit_target(self, params: JsonDict) -> StoredMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        if params.get("chat_id") in (None, "") or params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        message = chat.messages.get(int(params["message_id"]))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: StoredMessage) -> JsonDict:
        message.edit_date = int(time.time())
        message.versions.append(message.snapshot())
        self._next_event("edit", message)
        return message.to_api()

    def _edit_message_text(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        message = self._edit_target(params)
        if params.get("text") in (None, ""):
            raise bad_request("message text is empty")
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text = self._format(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = self._check_edit_markup(message.chat, params.get("reply_markup"))
        if (
            text.text == message.text
            and same_entities(text.entities, message.entities)
            and markup == message.reply_markup
        ):
            raise bad_request(MESSAGE_NOT_MODIFIED)
        self._check_limits(message.chat)
        message.text, message.entities = text.text, list(text.entities)
        message.raw_text, message.parse_mode = params.get("text"), params.get("parse_mode")
        message.reply_markup = markup
        return self._apply_edit(message)

    def _edit_message_caption(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        message = self._edit_target(params)
        if message.text is not None or not message.extra:
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(params)
        markup = self._check_edit_markup(message.chat, params.get("reply_markup"))
        new_caption = caption.text if caption else None
        new_entities = caption.entities if caption else []
        if (
            new_caption == message.caption
            and same_entities(new_entities, message.caption_entities)
            and markup == message.reply_markup
        ):
            raise bad_request(MESSAGE_NOT_MODIFIED)
        self._check_limits(message.chat)
        message.caption, message.caption_entities = new_caption, list(new_entities)
        message.reply_markup = markup
        return self._apply_edit(message)

    def _edit_message_reply_markup(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        message = self._edit_target(params)
        markup = self._check_edit_markup(message.chat, params.get("reply_markup"))
        if markup == message.reply_markup:
            raise bad_request(MESSAGE_NOT_MODIFIED)
        self._check_limits(message.chat)
        message.reply_markup = markup
        return self._apply_edit(message)

    def _delete_message(self, params: JsonDict, bot: JsonDict) -> bool:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        message = chat.messages.get(int(params["message_id"]))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        self._delete(chat, message)
        return True

    def _delete_messages(self, params: JsonDict, bot: JsonDict) -> bool:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must contain 1-100 identifiers")
        for message_id in ids:
            message = chat.messages.get(int(message_id))
            if message is not None and not message.deleted:
                self._delete(chat, message)
        return True

    def _delete(self, chat: SimChat, message: StoredMessage) -> None:
        admin = chat.bot_status in ("administrator", "creator")
        if not message.from_bot and not chat.is_private and not admin:
            raise bad_request("message can't be deleted")
        message.deleted = True
        self._next_event("delete", message)

    # -- callbacks, commands, menus ----------------------------------------------------------

    def _answer_callback_query(self, params: JsonDict, bot: JsonDict) -> bool:
        state = self.callbacks.get(str(params["callback_query_id"]))
        if state is None or state.answer is not None:
            raise bad_request(QUERY_TOO_OLD)
        if (
            self.callback_timeout is not None
            and time.monotonic() - state.created > self.callback_timeout
        ):
            raise bad_request(QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        state.answer = CallbackAnswer(
            text=str(text) if text else None,
            show_alert=bool(params.get("show_alert")),
            url=params.get("url"),
            cache_time=int(params.get("cache_time") or 0),
        )
        self.notifier.notify()
        return True

    def _scope(self, scope: Any) -> str:
        if scope in (None, ""):
            return _scope_key(None)
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise bad_request("can't parse BotCommandScope JSON object")
        if scope["type"].startswith("chat"):
            if scope.get("chat_id") in (None, ""):
                raise bad_request("chat_id is empty")
            self._lookup_chat(scope["chat_id"], for_send=False)
            if scope["type"] == "chat_member" and scope.get("user_id") is None:
                raise bad_request("user_id is required")
        return _scope_key(scope)

    def _set_my_commands(self, params: JsonDict, bot: JsonDict) -> bool:
        # aiogram leaves an empty list out of the request; Telegram then clears the commands.
        commands = params.get("commands") or []
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        cleaned: list[JsonDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise bad_request("command description is empty or too long")
            cleaned.append({"command": command, "description": description})
        key = (self._scope(params.get("scope")), str(params.get("language_code") or ""))
        if cleaned:
            self.bot_commands[key] = cleaned
        else:
            self.bot_commands.pop(key, None)
        return True

    def _get_my_commands(self, params: JsonDict, bot: JsonDict) -> list[JsonDict]:
        key = (self._scope(params.get("scope")), str(params.get("language_code") or ""))
        return list(self.bot_commands.get(key, []))

    def _delete_my_commands(self, params: JsonDict, bot: JsonDict) -> bool:
        key = (self._scope(params.get("scope")), str(params.get("language_code") or ""))
        self.bot_commands.pop(key, None)
        return True

    def _set_chat_menu_button(self, params: JsonDict, bot: JsonDict) -> bool:
        chat_id = params.get("chat_id")
        if chat_id not in (None, ""):
            chat = self._lookup_chat(chat_id, for_send=False)
            if not chat.is_private:
                raise bad_request("chat must be a private chat")
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise bad_request("can't parse MenuButton JSON object")
        if button["type"] == "web_app":
            web_app = button.get("web_app")
            if not button.get("text") or not isinstance(web_app, dict):
                raise bad_request("can't parse MenuButton JSON object")
            if not str(web_app.get("url", "")).startswith("https://"):
                raise bad_request("BUTTON_URL_INVALID")
        key = None if chat_id in (None, "") else int(chat_id)
        self.menu_buttons[key] = button
        return True

    def _get_chat_menu_button(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        key = None if chat_id in (None, "") else int(chat_id)
        return self.menu_buttons.get(key) or self.menu_buttons.get(None) or {"type": "commands"}

    def _send_chat_action(self, params: JsonDict, bot: JsonDict) -> bool:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_thread(chat, params.get("message_thread_id"))
        return True

    # -- chat information --------------------------------------------------------------------

    def _get_chat(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        info: JsonDict = self.spec.placeholder("ChatFullInfo")
        info.update(chat.to_api())
        info["max_reaction_count"] = 11
        if not chat.is_private:
            info["permissions"] = {
                "can_send_messages": True,
                "can_send_other_messages": True,
                "can_add_web_page_previews": True,
            }
        return info

    def _member(self, status: str, user: JsonDict) -> JsonDict:
        """A ChatMember object of the right subtype with every required field present."""
        type_name = _MEMBER_TYPES[status]
        body: JsonDict = self.spec.placeholder(type_name)
        body["status"] = status
        body["user"] = dict(user)
        for name, kind in self.spec.required_fields(type_name).items():
            if kind == "Boolean":
                if status == "restricted":
                    body[name] = name == "is_member"
                else:
                    body[name] = name not in ("is_anonymous", "can_be_edited")
        return body

    def _get_chat_member(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        user_id = int(params["user_id"])
        if user_id == bot["id"]:
            status = "member" if chat.is_private else chat.bot_status
            return self._member(status, bot)
        person = self.users.get(user_id)
        if person is None:
            raise bad_request("user not found")
        if chat.is_private:
            if user_id != chat.id:
                raise bad_request("user not found")
            return self._member("kicked" if person.blocked else "member", person.to_api())
        return self._member(chat.members.get(user_id, "left"), person.to_api())

    def _get_chat_member_count(self, params: JsonDict, bot: JsonDict) -> int:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        if chat.is_private:
            return 2
        present = [s for s in chat.members.values() if s not in ("left", "kicked")]
        return len(present) + (0 if chat.bot_status in ("left", "kicked") else 1)

    def _get_chat_administrators(self, params: JsonDict, bot: JsonDict) -> list[JsonDict]:
        chat = self._lookup_chat(params["chat_id"], for_send=False)
        if chat.is_private:
            raise bad_request("there are no administrators in the private chat")
        admins = [
            self._member(status, self.users[user_id].to_api())
            for user_id, status in chat.members.items()
            if status in ("creator", "administrator") and user_id in self.users
        ]
        if chat.bot_status == "administrator":
            admins.append(self._member("administrator", bot))
        return admins

    def _create_topic(self, chat: SimChat, name: str, sender: JsonDict, *, from_bot: bool) -> int:
        self._seq += 1
        message = StoredMessage(
            chat=chat,
            message_id=chat.allocate_message_id(),
            date=int(time.time()),
            sender=sender,
            from_bot=from_bot,
            extra={"forum_topic_created": {"name": name, "icon_color": 7322096}},
            method="service",
            seq=self._seq,
        )
        message.thread_id = message.message_id
        message.versions.append(message.snapshot())
        chat.messages[message.message_id] = message
        chat.topics[message.message_id] = name
        self.notifier.notify()
        return message.message_id

    def _create_forum_topic(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        chat = self._lookup_chat(params["chat_id"], for_send=True)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        name = str(params["name"])
        if not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_TITLE_EMPTY" if not name else "topic name is too long")
        thread_id = self._create_topic(chat, name, bot, from_bot=True)
        return {
            "message_thread_id": thread_id,
            "name": name,
            "icon_color": int(params.get("icon_color") or 7322096),
        }

    def _get_file(self, params: JsonDict, bot: JsonDict) -> JsonDict:
        file_id = str(params["file_id"])
        return {
            "file_id": file_id,
            "file_unique_id": f"unique-{file_id}",
            "file_size": len(f"stand-in file files/{file_id}"),
            "file_path": f"files/{file_id}",
        }

    # -- reporting ---------------------------------------------------------------------------

    def _timeout_report(self, match: MessageMatch, chat: SimChat, timeout: float) -> str:
        wanted = (
            repr(match)
            if isinstance(match, str)
            else (f"/{match.pattern}/" if isinstance(match, re.Pattern) else "the predicate")
        )
        lines = [f"no bot message matching {wanted} in chat {chat.id} within {timeout}s"]
        recent = self.messages(chat, include_user=True)[-10:]
        lines.append("last messages:" if recent else "the chat is empty")
        lines.extend(f"  {message.describe()}" for message in recent)
        failed = [r for r in self.requests if r.ok is False and str(r.chat_id) == str(chat.id)]
        if failed:
            lines.append("failed API calls for this chat:")
            lines.extend(f"  {record.describe()}" for record in failed[-5:])
        if self.queue.pending:
            lines.append(f"{len(self.queue.pending)} update(s) not yet fetched by the bot")
        return "\n".join(lines)


#: parameters the spec marks required but Telegram tolerates missing (handled by the method).
_LENIENT_REQUIRED = frozenset({("setWebhook", "url"), ("setMyCommands", "commands")})


def _scope_key(scope: JsonDict | None) -> str:
    if not scope:
        return "default"
    normalized = {key: value for key, value in scope.items() if value is not None}
    if normalized.get("type") == "default":
        return "default"
    if "chat_id" in normalized:
        normalized["chat_id"] = str(normalized["chat_id"])
    return json.dumps(normalized, sort_keys=True)


def _matches(match: MessageMatch, message: StoredMessage) -> bool:
    if isinstance(match, str):
        return match in message.content
    if isinstance(match, re.Pattern):
        return match.search(message.content) is not None
    return bool(match(message))


def _check_inline_keyboard(chat: SimChat, markup: JsonDict) -> JsonDict | None:
    """Telegram's checks on an inline keyboard; an empty keyboard means "no keyboard"."""
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array')
    count = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request("can't parse inline keyboard button: row must be an Array")
        for button in row:
            count += 1
            _check_inline_button(chat, button)
    if count > 100:
        raise bad_request("REPLY_MARKUP_TOO_LONG")
    if count == 0:
        return None
    return {"inline_keyboard": rows}


def _check_inline_button(chat: SimChat, button: Any) -> None:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    if not isinstance(button.get("text"), str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    if not any(key in button for key in _INLINE_ACTIONS):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "style" in button and button["style"] not in _BUTTON_STYLES:
        raise bad_request("can't parse inline keyboard button: invalid button style specified")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"(https?|tg)://\S+$", url):
            raise bad_request("BUTTON_URL_INVALID")
    if "web_app" in button and not chat.is_private:
        raise bad_request("BUTTON_TYPE_INVALID")


def _check_reply_keyboard(chat: SimChat, markup: JsonDict) -> None:
    rows = markup.get("keyboard")
    if not isinstance(rows, list):
        raise bad_request('field "keyboard" of the ReplyKeyboardMarkup should be an Array')
    for row in rows:
        if not isinstance(row, list):
            raise bad_request("can't parse keyboard button: row must be an Array")
        for button in row:
            if isinstance(button, str):
                continue
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse keyboard button: Field "text" must be of type String'
                )
            private_only = ("request_contact", "request_location", "web_app")
            if not chat.is_private and any(button.get(key) for key in private_only):
                # Telegram refuses these in groups: the phone/location would go to everyone.
                raise bad_request("BUTTON_TYPE_INVALID")


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string plus body (multipart, urlencoded or JSON), like Telegram accepts them."""
    raw: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return raw
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("can't parse JSON object")
        raw.update(body)
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                size = len(value.file.read())
                raw[key] = UploadedFile(key, value.filename, size)
            else:
                raw[key] = value
    return raw


def _json(body: Any, status: int) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda data: json.dumps(data, ensure_ascii=False)
    )
