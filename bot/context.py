"""One typed context per update: what a step reads (the person, their language, the clock) and
where it writes (the session, the outbox).

A handler never talks to Telegram. Everything a step wants the person (or anyone else) to see is
written as outbox rows in the step's own transaction, through `Context.reply`, `Context.edit`
and friends; the rows meant for the person who is waiting are handed to this process's sender
right after the commit (`Replies`), so they go out in milliseconds, and a step that is rolled
back says nothing at all. The one exception is the answer to a button press (the spinner), which
`bot.middlewares.DatabaseMiddleware` gives after the commit from `Context.answer`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessageUnion,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.callback_answer import CallbackAnswer
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session

from bot.clock import Clock
from models import OutboxMessage, utcnow

if TYPE_CHECKING:
    from aiogram.fsm.context import FSMContext

    from bot.i18n import I18n, Translator
    from bot.services.crypto import DataKey
    from bot.settings import Settings
    from models import Account

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply

# How long a step's own answers stay claimed by the process that wrote them (as the sender's).
CLAIM_SECONDS = 30.0
# Outbox kinds written here; `bot.delivery` sends them.
SEND = "send"
EDIT = "edit"
# A button's url "start-link:<parameter>" is written by the sender as the bot's own link opening a
# private chat with `/start <parameter>` (a card in a group can't name the bot: see bot.delivery).
START_LINK_URL = "start-link:"


def dump_markup(markup: Markup | None) -> dict[str, Any] | None:
    """A keyboard as JSON for the outbox row, with its kind so it can be rebuilt exactly."""
    if markup is None:
        return None
    kinds: dict[type, str] = {
        InlineKeyboardMarkup: "inline",
        ReplyKeyboardMarkup: "reply",
        ReplyKeyboardRemove: "remove",
        ForceReply: "force",
    }
    return {
        "kind": kinds[type(markup)],
        "data": markup.model_dump(mode="json", exclude_none=True),
    }


def load_markup(stored: dict[str, Any] | None) -> Markup | None:
    if not stored:
        return None
    kinds: dict[str, type[Markup]] = {
        "inline": InlineKeyboardMarkup,
        "reply": ReplyKeyboardMarkup,
        "remove": ReplyKeyboardRemove,
        "force": ForceReply,
    }
    return kinds[stored["kind"]].model_validate(stored["data"])


# Outbox rows a session inserted (`session.info`), whoever wrote them: a step's answers handed
# straight to the sender are not the only rows a step may leave (cards, notifications).
OUTBOX_INSERTED = "invataxi_outbox_inserted"


@event.listens_for(OutboxMessage, "after_insert")
def _inserted(_mapper: Any, _connection: Any, target: OutboxMessage) -> None:
    session = object_session(target)
    if session is not None:
        session.info[OUTBOX_INSERTED] = session.info.get(OUTBOX_INSERTED, 0) + 1


def outbox_inserted(session: AsyncSession) -> int:
    """How many outbox rows this session has inserted so far."""
    count: int = session.info.get(OUTBOX_INSERTED, 0)
    return count


class Replies:
    """Outbox rows a step wrote for the person who is waiting; delivered right after the commit.

    Shared between the update's middleware and the process's sender. The rows are committed
    already claimed by this process (`Outbox.hurry`), so the sender puts them straight into its
    chat queues without another transaction; if the process dies first, the claim runs out and
    any process sends them.

    A step's order check counts the rows this process holds as in order: they sit in its
    sender's chat queue, and the step's answers are sent after them. A held row can go back to
    the table meanwhile (its send failed, or its chat must wait out Telegram's pace), and then
    the answers would overtake it. So the sender notes each chat whose rows went back
    (`handed_back`), the step notes the count before its check (`mark`), and answers whose chat
    had rows go back since then are queued behind them instead (`overtaking`).
    """

    def __init__(self) -> None:
        self.ready: list[OutboxMessage] = []
        # Rows in the database for the sender's next claim round.
        self.wakeup = asyncio.Event()
        # Rows handed over here, already claimed: no claim round needed for them.
        self.arrived = asyncio.Event()
        # The running sender's way to take answers the moment a step commits (`committed`).
        self.listener: Callable[[], object] | None = None
        self._hand_backs = 0
        self._chat_handed_back: dict[int, int] = {}
        self._checked: dict[int, int] = {}

    def mark(self) -> int:
        """Taken before a step's order check: what the check has seen of the hand-backs."""
        return self._hand_backs

    def handed_back(self, chat_id: int) -> None:
        """The sender returned rows of this chat to the table (after that was committed)."""
        self._hand_backs += 1
        self._chat_handed_back[chat_id] = self._hand_backs
        if len(self._chat_handed_back) > 10_000:
            # Only checks still running need these; a check lasts one transaction.
            oldest = self._hand_backs - 5_000
            self._chat_handed_back = {
                c: n for c, n in self._chat_handed_back.items() if n > oldest
            }

    def committed(
        self, rows: list[OutboxMessage], *, queued: bool = True, mark: int | None = None
    ) -> None:
        """`queued`: the step also left rows in the database for any sender to claim;
        `mark`: `mark()` as taken before the step's order check."""
        if rows:
            self.ready.extend(rows)
            checked = self._hand_backs if mark is None else mark
            for row in rows:
                self._checked[row.id] = checked
            self.arrived.set()
            if self.listener is not None:
                # Outside the step's context (its session is closing): at once, by the loop.
                asyncio.get_running_loop().call_soon(self.listener, context=contextvars.Context())
        if queued:
            self.wakeup.set()

    def take(self) -> list[OutboxMessage]:
        rows, self.ready = self.ready, []
        return rows

    def overtaking(self, rows: list[OutboxMessage]) -> list[OutboxMessage]:
        """Of rows just taken, those whose chat had rows go back to the table after their
        step's order check: sent now, they could overtake those."""
        late = []
        for row in rows:
            checked = self._checked.pop(row.id, self._hand_backs)
            if self._chat_handed_back.get(row.chat_id, 0) > checked:
                late.append(row)
        return late


@dataclass
class Outbox:
    """Writes the step's messages into the outbox, in the step's transaction."""

    session: AsyncSession
    chat_id: int | None = None
    topic_id: int | None = None
    # This process's name in claims (`bot.app.process_owner`); None: leave rows to any sender.
    owner: str | None = None
    urgent: list[OutboxMessage] = field(default_factory=list)

    def send(
        self,
        chat_id: int,
        text: str,
        markup: Markup | None = None,
        *,
        topic_id: int | None = None,
        urgent: bool = False,
        reply_to: int | None = None,
        start_link: str | None = None,
    ) -> OutboxMessage:
        """A new message with a text already in the recipient's language.

        `start_link`: the message is the bot's own link that opens it with `/start <that>`;
        the sender writes the link, since only it knows the bot's name (see `bot.delivery`)."""
        payload: dict[str, Any] = {"text": text}
        if markup is not None:
            payload["markup"] = dump_markup(markup)
        if reply_to:
            payload["reply_to"] = reply_to
        if start_link is not None:
            payload["start_link"] = start_link
        return self._add(chat_id, topic_id, SEND, payload, urgent)

    def edit(
        self,
        chat_id: int,
        message_id: int,
        text: str | None,
        markup: Markup | None = None,
        *,
        urgent: bool = True,
    ) -> OutboxMessage:
        """Change a message the bot sent: its text and buttons, or (text None) its buttons only.

        An edit that changes nothing, or of a message the person deleted, is an outcome the
        sender accepts, not an error (a replayed step edits to what is already there)."""
        payload: dict[str, Any] = {"message_id": message_id, "text": text}
        payload["markup"] = dump_markup(markup)
        return self._add(chat_id, None, EDIT, payload, urgent)

    def hurry(self, row: OutboxMessage) -> OutboxMessage:
        """Deliver a row right after the commit, by this process: it is saved already claimed
        (for `CLAIM_SECONDS`), so no other process takes it meanwhile."""
        if self.owner is not None:
            now = utcnow()
            row.status = "sending"
            row.claimed_by = self.owner
            row.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
            row.next_attempt_at = now
            self.urgent.append(row)
        return row

    def _add(
        self, chat_id: int, topic_id: int | None, kind: str, payload: dict[str, Any], urgent: bool
    ) -> OutboxMessage:
        row = OutboxMessage(chat_id=chat_id, topic_id=topic_id, kind=kind, payload=payload)
        self.session.add(row)
        if urgent:
            self.hurry(row)
        return row


@dataclass
class Context:
    """Everything one update's handler needs; built by the middlewares for every update.

    `account` is None only in group chats (dispatchers act there under their Telegram id);
    `t` speaks the person's language (in a dispatcher group, the district's: see `Desk`).
    """

    session: AsyncSession
    account: Account | None
    lang: str
    t: Translator
    i18n: I18n
    settings: Settings
    clock: Clock
    now: datetime
    outbox: Outbox
    data_key: DataKey | None
    state: FSMContext | None = None
    chat_id: int | None = None
    topic_id: int | None = None
    user_id: int | None = None
    answer: CallbackAnswer | None = None
    # What the step reads more than once (the rider a booking is for), read once per update.
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.settings.tz).date()

    @property
    def fsm(self) -> FSMContext:
        assert self.state is not None, "a private chat or a group member always has a state"
        return self.state

    @property
    def person(self) -> Account:
        assert self.account is not None, "private chats always have an account"
        return self.account

    # -- what the person sees ----------------------------------------------------------------

    def reply(self, text: str, markup: Markup | None = None) -> OutboxMessage:
        """A message to the chat the update came from, delivered as soon as the step commits."""
        assert self.chat_id is not None
        return self.outbox.send(self.chat_id, text, markup, topic_id=self.topic_id, urgent=True)

    def reply_to(self, message_id: int, text: str, markup: Markup | None = None) -> OutboxMessage:
        """A reply quoting one message of this chat (a dispatcher's typed answer, a card)."""
        assert self.chat_id is not None
        return self.outbox.send(
            self.chat_id, text, markup, topic_id=self.topic_id, urgent=True, reply_to=message_id
        )

    def reply_start_link(self, parameter: str) -> OutboxMessage:
        """A message that is only the bot's link opening it with `/start <parameter>` (an invite).

        A step can't know the bot's username without asking Telegram inside its transaction;
        the sender asks (once per process) and writes the link."""
        assert self.chat_id is not None
        return self.outbox.send(
            self.chat_id, "", topic_id=self.topic_id, urgent=True, start_link=parameter
        )

    def send(self, chat_id: int, text: str, markup: Markup | None = None) -> OutboxMessage:
        """A message to another chat, at Telegram's pace (already in that person's language)."""
        return self.outbox.send(chat_id, text, markup, urgent=chat_id == self.chat_id)

    def edit(
        self,
        message: MaybeInaccessibleMessageUnion | None,
        text: str,
        markup: Markup | None = None,
    ) -> None:
        """Replace the text (and buttons) of the message whose button was pressed."""
        if message is not None:
            self.outbox.edit(message.chat.id, message.message_id, text, markup)

    def edit_markup(
        self, message: MaybeInaccessibleMessageUnion | None, markup: Markup | None = None
    ) -> None:
        """Replace (or with None remove) the buttons of the pressed message, keeping its text."""
        if message is not None:
            self.outbox.edit(message.chat.id, message.message_id, None, markup)

    def toast(self, text: str, *, alert: bool = False) -> None:
        """The answer to the pressed button: a short notice, or a pop-up to confirm."""
        if self.answer is not None:
            self.answer.text = text
            self.answer.show_alert = alert
