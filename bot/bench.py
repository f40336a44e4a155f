"""`invataxi bench`: how fast the bot handles updates and drains its outbox, measured.

Mode `updates` drives the real Dispatcher, routers, middlewares, services and database with a
fake Bot API session (answered in-process, no network): riders talk to the bot concurrently
while dispatchers act on the cards the real outbox sender posts in their groups. Each update is
stored in the inbox and fed with `from_inbox=True`, as the inbox worker does. The simulated
people follow whatever conversation the handlers offer: they read the bot's last message, find
its message id in the catalogs, and answer it, press a button or type what is asked.

Every measured configuration runs in a subprocess of its own, so the peak resident memory
reported is that configuration's alone:
- the floor: a bare aiogram Dispatcher with one echo handler on the same fake session;
- the bot on SQLite (a temporary file), and on PostgreSQL when `--postgres URL` is given (a
  temporary database is created on that server and dropped afterwards).

Throughput is measured with every conversation sending its next update as soon as the last one
is handled; latency with the same number of conversations at a person's pace (a pause of 5 s
on average between one person's steps, `--pace` to change it), because at saturation latency
only measures the queue.

Mode `report` builds the monthly report (workbook, CSV, both charts) of a month of 10,000 rides
with their events, bulk-inserted into a temporary SQLite file, and of a month of 1,000 rides in
the same file; each report runs in a subprocess of its own, so the peak resident memory of the
two shows whether memory grows with the number of rides (`bot.reports.bench`).

Mode `outbox` sends a backlog through a local Bot API stand-in that enforces Telegram's flood
limits, with the real `bot.delivery.OutboxSender`, and reports messages per second against the
30 per second ceiling and the 429 answers it provoked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import itertools
import json
import logging
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.clock import DEFAULT_TIMEZONE
from bot.measure import ROOT, measure_apart, peak_rss_mb
from bot.reports.bench import print_report, run_report_bench

log = logging.getLogger(__name__)

TOKEN = "123456789:BENCH-token-not-a-real-one"
BOT_ID = 123456789
TELEGRAM_CEILING_PER_S = 30.0
# A person reads the bot's question, then taps or types: a few seconds for a button, longer for
# an address. 5 s on average (exponentially spread, so many steps come much faster) is brisk
# for riders who are often elderly or use a screen reader; `--pace 1` is a harsher run.
DEFAULT_PACE_S = 5.0
# After the first message of an answer, the rest of it counts as arrived after this much calm.
QUIET_S = 0.03
# Telegram seen from Kazakhstan answers 50-300 ms late; the benchmark's Bot API does too.
DEFAULT_API_LATENCY_MS = 100.0


@dataclass(frozen=True)
class Plan:
    """How much work one run does; `--quick` is for smoke tests, not for figures."""

    riders: int
    conversations: int
    throughput_updates: int
    latency_updates: int
    think_mean_s: float
    districts: int
    outbox_messages: int
    report_rides: int
    api_latency_s: float = DEFAULT_API_LATENCY_MS / 1000
    # The people counted: riders stop waiting for an answer after this long.
    reply_timeout_s: float = 10.0
    # The measurement has a process of its own (`phase_main`), set up as a running bot's.
    own_process: bool = False

    @classmethod
    def for_args(
        cls,
        quick: bool,
        pace: float | None = None,
        api_latency_ms: float | None = None,
        people: int | None = None,
    ) -> Plan:
        """`pace`: the mean pause in seconds between one person's steps, for the latency;
        `api_latency_ms`: how late every Bot API answer comes; `people`: conversations at once."""
        latency = (DEFAULT_API_LATENCY_MS if api_latency_ms is None else api_latency_ms) / 1000
        if quick:
            plan = cls(40, 10, 60, 40, 0.02 if pace is None else pace, 2, 60, 200, latency)
        else:
            think = DEFAULT_PACE_S if pace is None else pace
            plan = cls(10_000, 200, 6000, 4000, think, 10, 10_000, 10_000, latency)
        if people:
            plan = dataclasses.replace(
                plan,
                conversations=people,
                latency_updates=min(plan.latency_updates, people * 40),
                throughput_updates=min(plan.throughput_updates, people * 40),
            )
        return plan


# -- the fake Bot API ----------------------------------------------------------------------------


@dataclass
class Shown:
    """A bot message as the person sees it: text and inline buttons."""

    message_id: int
    text: str
    inline: InlineKeyboardMarkup | None
    keyboard: ReplyKeyboardMarkup | None = None
    seq: int = 0


@dataclass
class ChatView:
    """What one chat shows: recent bot messages, the reply keyboard, and a change counter."""

    messages: OrderedDict[int, Shown] = field(default_factory=OrderedDict)
    keyboard: ReplyKeyboardMarkup | None = None
    seq: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, shown: Shown, keep: int) -> None:
        self.seq += 1
        shown.seq = self.seq
        self.messages[shown.message_id] = shown
        self.messages.move_to_end(shown.message_id)
        while len(self.messages) > keep:
            self.messages.popitem(last=False)
        self.changed.set()


class FakeApiSession(BaseSession):
    """Answers every Bot API method in-process with a plausible result.

    Requests are serialized and results decoded exactly as over HTTP (`prepare_value`, JSON,
    `check_response`), so the cost aiogram pays per call is in the measurement; only the network
    is missing. What the bot shows is kept per chat for the simulated people to read.
    """

    def __init__(
        self, *, keep_per_chat: int = 8, keep_per_group: int = 300, latency_s: float = 0.0
    ) -> None:
        from bot.app import keep_response_models

        super().__init__()
        # Telegram is 50-300 ms away from Kazakhstan: every answer comes this much later.
        self.latency_s = latency_s
        # The same session setup as the real bot's (`bot.app.create_bot`), floor included.
        keep_response_models(self)
        self.keep_per_chat = keep_per_chat
        self.keep_per_group = keep_per_group
        self.chats: dict[int, ChatView] = {}
        self.calls = 0
        # CPU spent making up results and recording what each chat shows: the stand-in's cost,
        # not the bot's (the serializing and decoding around it are what aiogram always pays).
        self.sim_cpu_s = 0.0
        self._message_ids = itertools.count(1)

    def view(self, chat_id: int) -> ChatView:
        found = self.chats.get(chat_id)
        if found is None:
            found = self.chats[chat_id] = ChatView()
        return found

    async def close(self) -> None:
        """Nothing to close: there is no connection."""

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,
    ) -> TelegramType:
        self.calls += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        files: dict[str, Any] = {}
        for value in method.model_dump(warnings=False).values():
            self.prepare_value(value, bot=bot, files=files)
        began = time.thread_time()
        result = self._result(method)
        self.sim_cpu_s += time.thread_time() - began
        content = self.json_dumps({"ok": True, "result": result})
        response = self.check_response(bot, method, HTTPStatus.OK, content)
        return response.result  # type: ignore[return-value]

    def _result(self, method: TelegramMethod[Any]) -> Any:
        name = method.__api_method__
        chat_id = _int_or_none(getattr(method, "chat_id", None))
        markup = getattr(method, "reply_markup", None)
        if name.startswith("send") and chat_id is not None and name != "sendChatAction":
            text = getattr(method, "text", None) or getattr(method, "caption", None) or ""
            message_id = next(self._message_ids)
            self._record_send(chat_id, message_id, str(text), markup)
            return _message_json(chat_id, message_id, str(text), markup)
        if name.startswith("edit") and chat_id is not None:
            message_id = int(getattr(method, "message_id", 0) or 0)
            text = self._record_edit(chat_id, message_id, getattr(method, "text", None), markup)
            return _message_json(chat_id, message_id, text, markup)
        if name == "copyMessage":
            return {"message_id": next(self._message_ids)}
        if name == "getMe":
            return _bot_user()
        if name == "getChatMember":
            user_id = int(getattr(method, "user_id", 0))
            return {"status": "member", "user": _user_json(user_id)}
        if name == "getUpdates":
            return []
        if name == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True

    def _record_send(self, chat_id: int, message_id: int, text: str, markup: Any) -> None:
        view = self.view(chat_id)
        if isinstance(markup, ReplyKeyboardMarkup):
            view.keyboard = markup
        elif isinstance(markup, ReplyKeyboardRemove):
            view.keyboard = None
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        keep = self.keep_per_group if chat_id < 0 else self.keep_per_chat
        keyboard = markup if isinstance(markup, ReplyKeyboardMarkup) else None
        view.show(Shown(message_id, text, inline, keyboard), keep)

    def _record_edit(self, chat_id: int, message_id: int, text: Any, markup: Any) -> str:
        view = self.view(chat_id)
        old = view.messages.get(message_id)
        new_text = str(text) if text is not None else (old.text if old else "")
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        keep = self.keep_per_group if chat_id < 0 else self.keep_per_chat
        view.show(Shown(message_id, new_text, inline), keep)
        return new_text


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Invataxi", "username": "invataxi_bot"}


def _user_json(user_id: int, lang: str = "ru") -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": f"Person{user_id}",
        "language_code": lang,
    }


def _chat_json(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"Person{chat_id}"}
    return {"id": chat_id, "type": "supergroup", "title": f"Dispatchers {chat_id}"}


def _message_json(chat_id: int, message_id: int, text: str, markup: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": _chat_json(chat_id),
        "from": _bot_user(),
        "text": text or "…",
    }
    if isinstance(markup, InlineKeyboardMarkup):
        message["reply_markup"] = markup.model_dump(mode="json", exclude_none=True)
    return message


# -- updates as Telegram sends them --------------------------------------------------------------


class Updates:
    """Raw update dicts with the shape Telegram gives them."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(1_000_000)
        self._message_ids = itertools.count(10_000_000)
        self._callback_ids = itertools.count(1)

    def text(
        self, user_id: int, text: str, *, chat_id: int | None = None, lang: str = "ru"
    ) -> dict[str, Any]:
        message: dict[str, Any] = self._message(user_id, chat_id, lang)
        message["text"] = text
        command = re.match(r"/[A-Za-z0-9_]+", text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        return {"update_id": next(self._update_ids), "message": message}

    def contact(self, user_id: int, phone: str, lang: str = "ru") -> dict[str, Any]:
        message = self._message(user_id, None, lang)
        message["contact"] = {
            "phone_number": phone,
            "first_name": f"Person{user_id}",
            "user_id": user_id,
        }
        return {"update_id": next(self._update_ids), "message": message}

    def location(self, user_id: int, lat: float, lon: float, lang: str = "ru") -> dict[str, Any]:
        message = self._message(user_id, None, lang)
        message["location"] = {"latitude": lat, "longitude": lon}
        return {"update_id": next(self._update_ids), "message": message}

    def press(
        self, user_id: int, chat_id: int, shown: Shown, data: str, lang: str = "ru"
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": shown.message_id,
            "date": int(time.time()),
            "chat": _chat_json(chat_id),
            "from": _bot_user(),
            "text": shown.text or "…",
        }
        if shown.inline is not None:
            message["reply_markup"] = shown.inline.model_dump(mode="json", exclude_none=True)
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._callback_ids)),
                "from": _user_json(user_id, lang),
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            },
        }

    def _message(self, user_id: int, chat_id: int | None, lang: str) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat_json(chat_id if chat_id is not None else user_id),
            "from": _user_json(user_id, lang),
        }


# -- reading what the bot says -------------------------------------------------------------------


class TextIndex:
    """Finds the English message id behind a text the bot showed, in either language."""

    def __init__(self, catalogs: dict[str, dict[str, str]]) -> None:
        self.exact: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        for catalog in catalogs.values():
            for msgid, text in catalog.items():
                self.exact.setdefault(text.strip(), msgid)
                head = text.split("{", 1)[0].strip()
                if "{" in text and len(head) >= 8:
                    prefixes.append((head, msgid))
        self.prefixes = sorted(prefixes, key=lambda item: -len(item[0]))
        # The simulated people read the same buttons over and over; their reading is the
        # client's cost, not the bot's, so it is kept small.
        self._seen: dict[str, str | None] = {}

    def msgid(self, text: str) -> str | None:
        if text in self._seen:
            return self._seen[text]
        found = self.exact.get(text.strip())
        if found is None:
            found = next((m for head, m in self.prefixes if text.strip().startswith(head)), None)
        if len(self._seen) < 100_000:
            self._seen[text] = found
        return found

    def question(self, text: str) -> str:
        """The message id of the last recognised paragraph (questions come last), lower-case."""
        found = self.msgid(text)
        if found is None:
            for part in reversed([p for p in text.split("\n\n") if p.strip()]):
                found = self.msgid(part)
                if found is not None:
                    break
        # Placeholders like {name} or {address} say nothing about what is asked.
        return re.sub(r"\{[^}]*\}", "", found or "").lower()


def valid_iin(n: int) -> str:
    """A well-formed IIN (checksum included), different for every `n` below 400,000."""
    serial = n % 10_000
    year = 50 + (n // 10_000) % 40
    for day in itertools.count(1 + n % 28):
        born = f"{year:02d}{1 + n % 12:02d}{1 + day % 28:02d}"
        digits = [int(c) for c in f"{born}{3 + n % 2}{serial:04d}"]
        check = sum(d * w for d, w in zip(digits, range(1, 12), strict=True)) % 11
        if check == 10:
            weights = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
            check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check < 10:
            return "".join(map(str, digits)) + str(check)
    raise AssertionError("unreachable")


@dataclass
class Persona:
    user_id: int
    lang: str
    number: int

    @property
    def phone(self) -> str:
        return f"+7701{self.number % 10_000_000:07d}"

    @property
    def name(self) -> str:
        first = ("Айгерім", "Нұрлан", "Светлана", "Ерлан", "Гүлнар", "Дмитрий")[self.number % 6]
        last = ("Сейітова", "Ахметов", "Ким", "Нұрланов", "Иванова", "Жұмабаев")[self.number % 6]
        return f"{first} {last}"


# What a person types when asked: keywords of the question's English message id, then answers
# (the next one is tried when the bot asks again).
TYPED_ANSWERS: tuple[tuple[tuple[str, ...], Callable[[Persona], list[str]]], ...] = (
    (("way back", "return"), lambda p: ["15:00", "16:30"]),
    (("iin",), lambda p: [valid_iin(p.number)]),
    (("phone",), lambda p: [p.phone, "87011234567"]),
    (("birth",), lambda p: [f"{1 + p.number % 28:02d}.05.19{50 + p.number % 40}"]),
    (("commission", "vkk", "conclusion number"), lambda p: [f"{100 + p.number % 900}/24"]),
    (("valid until", "expir", "until"), lambda p: [f"31.12.{local_today().year + 1}"]),
    (("power of attorney",), lambda p: [f"{p.number % 9000 + 1000}"]),
    (("date", "which day", "what day"), lambda p: [_day_after(2), _day_after(3)]),
    (("time",), lambda p: ["10:30", "11:00", "14:00"]),
    (("name",), lambda p: [p.name]),
    (
        ("where to", "destination", "going"),
        lambda p: [f"Толе би көшесі, {2 + p.number % 70}", "Областная больница"],
    ),
    (
        ("address", "where from", "pick", "car come", "from where"),
        lambda p: [f"ул. Абая, {1 + p.number % 90}", f"Толе би көшесі, {2 + p.number % 70}"],
    ),
    (("centre", "center", "school"), lambda p: ["Оңалту орталығы"]),
    (("comment", "note", "anything else"), lambda p: ["Подъезд 2"]),
)

# Buttons a rider prefers and avoids, by keywords of their English message id.
RIDER_PREFERS = (
    "book a ride",
    "i agree",
    "agree",
    "confirm",
    "accept",
    "yes",
    "continue",
    "send",
    "myself",
    "for me",
    "clinic",
    "wheelchair",
    "done",
    "skip",
)
RIDER_AVOIDS = (
    "back",
    "cancel",
    "language",
    "help",
    "withdraw",
    "forget",
    "erase",
    "delete",
    "my data",
    "profile",
    "change",
    "decline",
    "refuse",
)
DISPATCHER_PREFERS = (
    "take",
    "approve",
    "verify",
    "confirm",
    "assign",
    "schedule",
    "en route",
    "on the way",
    "arrived",
    "on board",
    "complete",
    "done",
)
DISPATCHER_AVOIDS = (
    "reject",
    "cancel",
    "no-show",
    "no show",
    "propose",
    "another time",
    "release",
    "back",
    "refuse",
    "call",
)
# A conversation that takes more steps than this has gone in circles: the person starts over.
MAX_STEPS = 40
STUCK_MSGIDS = ("i did not understand", "please answer the question above")


def local_today() -> date:
    """Today in Kazakhstan, where booking windows are computed."""
    return datetime.now(ZoneInfo(DEFAULT_TIMEZONE)).date()


def _day_after(days: int) -> str:
    return (local_today() + timedelta(days=days)).strftime("%d.%m.%Y")


def _choose(
    labels: list[tuple[str, str]], prefers: tuple[str, ...], avoids: tuple[str, ...], turn: int
) -> str | None:
    """(msgid, value) pairs: the preferred one, else the `turn`-th of those not avoided."""
    for wanted in prefers:
        for msgid, value in labels:
            if wanted in msgid:
                return value
    allowed = [value for msgid, value in labels if not any(a in msgid for a in avoids)]
    return allowed[turn % len(allowed)] if allowed else None


# -- the simulated people ------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    conversations_done: int = 0
    resets: int = 0
    presses: int = 0
    unanswered: int = 0
    # CPU the simulated people spent deciding what to send (not the bot's cost).
    sim_cpu_s: float = 0.0


Feed = Callable[[dict[str, Any]], Awaitable[None]]


class Budget:
    """Updates left to send in this measurement, shared by every simulated person."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class Rider:
    """A rider (or a newcomer) talking to the bot, one conversation after another."""

    def __init__(
        self,
        personas: Iterator[Persona],
        api: FakeApiSession,
        updates: Updates,
        index: TextIndex,
        book_msgid: str,
    ) -> None:
        self.personas = personas
        self.api = api
        self.updates = updates
        self.index = index
        self.book_msgid = book_msgid.lower()
        self.persona = next(personas)
        self.cursor = 0
        self.started = False
        self.booking = False
        self.last_question = ""
        self.repeats = 0
        self.steps = 0

    def _next_person(self) -> None:
        self.persona = next(self.personas)
        self.cursor = 0
        self.started = False
        self.booking = False
        self.last_question = ""
        self.repeats = 0
        self.steps = 0

    def next_update(self, stats: Stats) -> dict[str, Any]:
        p = self.persona
        if not self.started:
            self.started = True
            return self.updates.text(p.user_id, "/start", lang=p.lang)
        view = self.api.view(p.user_id)
        new = [m for m in view.messages.values() if m.seq > self.cursor]
        self.cursor = view.seq
        last = new[-1] if new else None
        question = self.index.question(last.text) if last else ""
        if question and question == self.last_question:
            self.repeats += 1
        else:
            self.repeats = 0
        self.last_question = question
        keyboard = _reply_labels(view.keyboard, self.index)
        self.steps += 1
        stuck = any(s in question for s in STUCK_MSGIDS) or self.repeats >= 3
        if stuck or last is None or self.steps > MAX_STEPS:
            stats.resets += 1
            self._next_person()
            return self.next_update(stats)
        menu_again = any(
            m == self.book_msgid
            for shown in new
            for m, _ in _reply_labels(shown.keyboard, self.index)
        )
        if self.booking and menu_again:
            # Back at the main menu after a booking: this conversation is over.
            stats.conversations_done += 1
            self._next_person()
            return self.next_update(stats)
        for shown in reversed(new):
            if shown.inline is None:
                continue
            data = _calendar_day(shown.inline, self.repeats) or _choose(
                _inline_labels(shown.inline, self.index, lang=p.lang),
                RIDER_PREFERS,
                RIDER_AVOIDS,
                self.repeats,
            )
            if data is not None:
                stats.presses += 1
                return self.updates.press(p.user_id, p.user_id, shown, data, p.lang)
        if (
            view.keyboard is not None
            and any(b.request_contact for row in view.keyboard.keyboard for b in row)
            and "phone" in question
        ):
            return self.updates.contact(p.user_id, p.phone, p.lang)
        for keywords, answers in TYPED_ANSWERS:
            if any(k in question for k in keywords):
                options = answers(p)
                return self.updates.text(
                    p.user_id, options[self.repeats % len(options)], lang=p.lang
                )
        choice = _choose(keyboard, RIDER_PREFERS, RIDER_AVOIDS, self.repeats)
        if choice is not None:
            if choice in self.index_variants(self.book_msgid, keyboard):
                self.booking = True
            return self.updates.text(p.user_id, choice, lang=p.lang)
        stats.resets += 1
        self._next_person()
        return self.next_update(stats)

    @staticmethod
    def index_variants(msgid: str, keyboard: list[tuple[str, str]]) -> set[str]:
        return {value for m, value in keyboard if m == msgid}


def _calendar_day(markup: InlineKeyboardMarkup, turn: int) -> str | None:
    """On a month calendar, the day after tomorrow (or a later day when asked again)."""
    days = {
        int(b.text): b.callback_data
        for row in markup.inline_keyboard
        for b in row
        if b.text.isdigit() and b.callback_data
    }
    if len(days) < 7:
        return None
    wanted = local_today() + timedelta(days=2 + turn)
    return days.get(wanted.day) or days[max(days)]


def _reply_labels(keyboard: ReplyKeyboardMarkup | None, index: TextIndex) -> list[tuple[str, str]]:
    if keyboard is None:
        return []
    return [
        ((index.msgid(b.text) or b.text).lower(), b.text)
        for row in keyboard.keyboard
        for b in row
        if not (b.request_contact or b.request_location)
    ]


def _inline_labels(
    markup: InlineKeyboardMarkup, index: TextIndex, *, lang: str | None = None
) -> list[tuple[str, str]]:
    labels: list[tuple[str, str]] = []
    for row in markup.inline_keyboard:
        for button in row:
            if not button.callback_data:
                continue
            if lang and button.callback_data.startswith("lang1:"):
                # The language keyboard: a person picks their own language.
                if button.callback_data.endswith(lang):
                    return [("language choice", button.callback_data)]
                continue
            labels.append(
                ((index.msgid(button.text) or button.text).lower(), button.callback_data)
            )
    return labels


class DispatcherPerson:
    """A dispatcher in a district group, acting on the cards the sender posts there."""

    def __init__(
        self, user_id: int, group_id: int, api: FakeApiSession, updates: Updates, index: TextIndex
    ) -> None:
        self.user_id = user_id
        self.group_id = group_id
        self.api = api
        self.updates = updates
        self.index = index
        self.tried: set[tuple[int, str]] = set()
        self.turn = 0

    def next_update(self, stats: Stats) -> dict[str, Any] | None:
        view = self.api.view(self.group_id)
        for shown in list(view.messages.values()):
            if shown.inline is None:
                continue
            labels = [
                (m, d)
                for m, d in _inline_labels(shown.inline, self.index)
                if (shown.message_id, d) not in self.tried
            ]
            data = _choose(labels, DISPATCHER_PREFERS, DISPATCHER_AVOIDS, self.turn)
            if data is None:
                continue
            self.tried.add((shown.message_id, data))
            stats.presses += 1
            return self.updates.press(self.user_id, self.group_id, shown, data)
        self.turn += 1
        if self.turn % 20 == 0:
            # Between cards a dispatcher looks at the queue.
            return self.updates.text(self.user_id, "/queue", chat_id=self.group_id)
        return None


# -- running a measurement ----------------------------------------------------------------------


async def drive(
    riders: Sequence[Rider],
    dispatchers: Sequence[DispatcherPerson],
    feed: Feed,
    budget: Budget,
    stats: Stats,
    *,
    think_mean_s: float,
    seed: int,
    reply_timeout_s: float = 10.0,
) -> float:
    """Run every person until the budget is spent; returns the elapsed seconds."""
    rng = random.Random(seed)

    async def rider_loop(rider: Rider) -> None:
        if think_mean_s:
            await asyncio.sleep(rng.uniform(0, think_mean_s))
        while budget.take():
            began = time.thread_time()
            update = rider.next_update(stats)
            stats.sim_cpu_s += time.thread_time() - began
            await timed_feed(update, rider.api.view(rider.persona.user_id))
            if think_mean_s:
                await asyncio.sleep(rng.expovariate(1 / think_mean_s))

    async def dispatcher_loop(person: DispatcherPerson) -> None:
        view = person.api.view(person.group_id)
        while budget.left > 0:
            began = time.thread_time()
            update = person.next_update(stats)
            stats.sim_cpu_s += time.thread_time() - began
            if update is None:
                view.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(view.changed.wait(), 0.2)
                continue
            if not budget.take():
                return
            await timed_feed(update)
            if think_mean_s:
                await asyncio.sleep(rng.expovariate(1 / think_mean_s))

    async def timed_feed(update: dict[str, Any], view: ChatView | None = None) -> None:
        """From the person's action to the bot's next message in their chat (for a rider), or
        to the step's commit (for a dispatcher, whose card is edited at the group's pace)."""
        seen = view.seq if view is not None else 0
        started = time.perf_counter()
        try:
            await feed(update)
        except Exception:
            stats.errors += 1
            if len(stats.error_samples) < 3:
                stats.error_samples.append(traceback.format_exc())
        if view is not None:
            await answered(view, seen)
        stats.latencies.append(time.perf_counter() - started)
        if view is not None:
            await quiet(view)

    async def answered(view: ChatView, seen: int) -> None:
        deadline = time.perf_counter() + reply_timeout_s
        while view.seq <= seen:
            left = deadline - time.perf_counter()
            if left <= 0:
                stats.unanswered += 1
                return
            view.changed.clear()
            if view.seq > seen:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(view.changed.wait(), left)

    async def quiet(view: ChatView) -> None:
        """Let the rest of the bot's answer arrive (not timed) before the person reads it."""
        while True:
            view.changed.clear()
            try:
                await asyncio.wait_for(view.changed.wait(), QUIET_S)
            except TimeoutError:
                return

    started = time.perf_counter()
    await asyncio.gather(
        *(rider_loop(r) for r in riders), *(dispatcher_loop(d) for d in dispatchers)
    )
    return time.perf_counter() - started


class StatementCount:
    """SQL statements the whole process sends (handlers, sender, sweeps) while it runs."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        self.engine = engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1

    def stop(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._seen)


class GcPauses:
    """The pauses of full garbage collections (generation 2) while it is entered."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self._began = 0.0

    def _seen(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif info.get("generation") == 2:
            self.full.append(time.perf_counter() - self._began)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._seen)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[rank]


async def measure_floor(plan: Plan) -> dict[str, Any]:
    """A bare Dispatcher with one echo handler: what aiogram itself costs per update."""
    api = FakeApiSession(latency_s=plan.api_latency_s)
    bot = Bot(TOKEN, session=api)
    dp = Dispatcher()
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    dp.include_router(router)
    updates = Updates()

    async def feed(raw: dict[str, Any]) -> None:
        await dp.feed_raw_update(bot, raw)

    class Echoer(Rider):
        def next_update(self, stats: Stats) -> dict[str, Any]:
            return self.updates.text(self.persona.user_id, "Сәлем", lang=self.persona.lang)

    personas = (Persona(5_000_000 + n, "kk", n) for n in itertools.count())
    index = TextIndex({})
    people = [Echoer(personas, api, updates, index, "") for _ in range(plan.conversations)]
    warm = Stats()
    await drive(people, [], feed, Budget(plan.conversations), warm, think_mean_s=0, seed=1)
    stats = Stats()
    elapsed = await drive(
        people, [], feed, Budget(plan.throughput_updates), stats, think_mean_s=0, seed=2
    )
    await bot.session.close()
    return {
        "updates_per_s": len(stats.latencies) / elapsed,
        "errors": stats.errors,
        "rss_mb": peak_rss_mb(),
    }


BENCH_DISTRICT = """
[[districts]]
id = "d{n}"
name_kk = "Аудан {n}"
name_ru = "Район {n}"
chat_id = {chat_id}
language = "{lang}"
dispatchers = [{{ id = {d1}, name = "Айгүл" }}, {{ id = {d2}, name = "Марат" }}]

[[districts.vehicles]]
plate = "{n:03d}ABC05"
make = "Ford Transit"
colour_kk = "ақ"
colour_ru = "белый"
ramp = true
seats = 6
wheelchair_places = 2
driver_name = "Ерлан Сейітов"
driver_phone = "+7 701 000 {n:02d} 01"

[[districts.vehicles]]
plate = "{n:03d}DEF05"
make = "Hyundai Accent"
colour_kk = "сұр"
colour_ru = "серый"
seats = 4
driver_name = "Дмитрий Ким"
driver_phone = "+7 701 000 {n:02d} 02"
"""


def group_of(n: int) -> int:
    return -1002000000000 - n


def dispatchers_of(n: int) -> tuple[int, int]:
    return 800_000 + 2 * n, 800_001 + 2 * n


def write_districts(path: Path, count: int) -> None:
    path.write_text(
        "".join(
            BENCH_DISTRICT.format(
                n=n,
                chat_id=group_of(n),
                lang="kk" if n % 2 else "ru",
                d1=dispatchers_of(n)[0],
                d2=dispatchers_of(n)[1],
            )
            for n in range(1, count + 1)
        ),
        encoding="utf-8",
    )


RIDER_IDS = 2_000_000
NEWCOMER_IDS = 3_000_000


async def seed_riders(sessions: Any, count: int, districts: int, data_key: str) -> None:
    """Registered, verified riders with accounts, inserted in bulk."""
    from sqlalchemy import insert, select

    from bot.services.crypto import DataKey, seal_iin
    from bot.services.registration import CONSENT_VERSION
    from models import Account, utcnow
    from models import Rider as RiderRow

    key = DataKey.from_secret(data_key)
    now = utcnow()
    expires = local_today() + timedelta(days=365)
    chunk = 1000
    for start in range(0, count, chunk):
        numbers = range(start, min(count, start + chunk))
        async with sessions() as session, session.begin():
            await session.execute(
                insert(Account),
                [
                    {
                        "telegram_id": RIDER_IDS + n,
                        "language": "kk" if n % 2 else "ru",
                        "display_name": Persona(RIDER_IDS + n, "ru", n).name,
                        "consent_version": CONSENT_VERSION,
                        "consent_at": now,
                        "role": "rider",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in numbers
                ],
            )
            found = await session.execute(
                select(Account.telegram_id, Account.id).where(
                    Account.telegram_id.between(RIDER_IDS + numbers[0], RIDER_IDS + numbers[-1])
                )
            )
            ids = {int(telegram_id): int(account_id) for telegram_id, account_id in found.all()}
            sealed = {n: seal_iin(key, valid_iin(n)) for n in numbers}
            await session.execute(
                insert(RiderRow),
                [
                    {
                        "account_id": ids[RIDER_IDS + n],
                        "district_id": f"d{1 + n % districts}",
                        "full_name": Persona(RIDER_IDS + n, "ru", n).name,
                        "phone": Persona(RIDER_IDS + n, "ru", n).phone,
                        "iin_encrypted": sealed[n].encrypted,
                        "iin_hash": sealed[n].lookup_hash,
                        "birth_date": date(1950 + n % 40, 1 + n % 12, 1 + n % 28),
                        "home_address": f"ул. Абая, {1 + n % 90}",
                        "category": "group1_mobility",
                        "disability_group": 1,
                        "vkk_number": f"{100 + n % 900}/24",
                        "vkk_expires_on": expires,
                        "needs_wheelchair": n % 5 == 0,
                        "verification": "verified",
                        "verified_at": now,
                        "created_by": ids[RIDER_IDS + n],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in numbers
                ],
            )


def bench_settings(database_url: str, workdir: Path, districts: int) -> Any:
    from bot.settings import load_settings

    districts_file = workdir / "districts.toml"
    write_districts(districts_file, districts)
    return load_settings(
        bot_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9",
        database_url=database_url,
        districts_file=districts_file,
        data_key="bench-data-key-0123456789abcdef0123456789abcdef",
        default_language="kk",
        sweep_interval_seconds=3600,
        # The simulated people act faster than any person: the storm guard would answer them
        # "slow down" instead of the step being measured.
        throttle_burst=100_000,
        throttle_per_minute=100_000,
    )


async def measure_bot(plan: Plan, database_url: str, workdir: Path) -> dict[str, Any]:
    """The real bot on one database: throughput at saturation, latency at a person's pace."""
    from bot.delivery import Limits, OutboxSender
    from bot.inbox import store_updates
    from bot.keyboards.common import BOOK
    from bot.runner import freeze_startup_objects, prepare

    # Private chats keep Telegram's pacing (a burst of three, then 1/s), which a person waiting
    # for an answer feels; the fake API has no group or overall flood limits to respect, and
    # pacing them would only measure sleep.
    unlimited = Limits(global_per_second=10**6, group_per_window=10**6, group_spacing=0.0)

    settings = bench_settings(database_url, workdir, plan.districts)
    app = await prepare(settings)
    await app.bot.session.close()
    api = FakeApiSession(latency_s=plan.api_latency_s)
    bot = Bot(TOKEN, session=api)
    await seed_riders(
        app.sessions, plan.riders, plan.districts, settings.data_key.get_secret_value()
    )
    if plan.own_process:
        # As `bot.runner.serve` does once the bot is up.
        freeze_startup_objects()
    sender = OutboxSender(
        bot, app.sessions, app.i18n, app.owner, replies=app.replies, limits=unlimited
    )
    stop_sender = asyncio.Event()
    sender_task = asyncio.create_task(sender.run(stop_sender))
    index = TextIndex(app.i18n.catalogs)
    updates = Updates()

    async def feed(raw: dict[str, Any]) -> None:
        await store_updates(app.sessions, [raw])
        await app.dp.feed_raw_update(bot, raw, from_inbox=True)

    def personas(seed: int) -> Iterator[Persona]:
        rng = random.Random(seed)
        for n in itertools.count():
            if n % 10 == 9:
                yield Persona(NEWCOMER_IDS + n, "kk" if n % 2 else "ru", 10_000 + n)
            else:
                k = rng.randrange(plan.riders)
                yield Persona(RIDER_IDS + k, "kk" if k % 2 else "ru", k)

    pool = personas(1)
    riders = [Rider(pool, api, updates, index, BOOK) for _ in range(plan.conversations)]
    dispatchers = [
        DispatcherPerson(user_id, group_of(n), api, updates, index)
        for n in range(1, plan.districts + 1)
        for user_id in dispatchers_of(n)
    ]
    try:
        await drive(
            riders, dispatchers, feed, Budget(plan.conversations), Stats(), think_mean_s=0, seed=3
        )
        latency = Stats()
        with GcPauses() as pauses:
            await drive(
                riders,
                dispatchers,
                feed,
                Budget(plan.latency_updates),
                latency,
                think_mean_s=plan.think_mean_s,
                seed=4,
            )
        throughput = Stats()
        statements = StatementCount(app.engine)
        cpu_before, api_sim_before = time.process_time(), api.sim_cpu_s
        elapsed = await drive(
            riders,
            dispatchers,
            feed,
            Budget(plan.throughput_updates),
            throughput,
            think_mean_s=0,
            seed=5,
        )
        cpu_s = time.process_time() - cpu_before
        sim_s = throughput.sim_cpu_s + api.sim_cpu_s - api_sim_before
        statements.stop()
    finally:
        stop_sender.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(sender_task, 30)
        await bot.session.close()
        await app.close()
    errors = latency.errors + throughput.errors
    samples = latency.error_samples + throughput.error_samples
    handled = max(1, len(throughput.latencies))
    return {
        "updates_per_s": len(throughput.latencies) / elapsed,
        # What one update costs the process at saturation, sending included; the simulated
        # people's own CPU (they run in this process) is not the bot's and is counted apart.
        "cpu_ms_per_update": (cpu_s - sim_s) * 1000 / handled,
        "sim_cpu_ms_per_update": sim_s * 1000 / handled,
        "statements_per_update": statements.count / handled,
        "p50_ms": percentile(latency.latencies, 0.50) * 1000,
        "p95_ms": percentile(latency.latencies, 0.95) * 1000,
        "p99_ms": percentile(latency.latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latency.latencies) * 1000 if latency.latencies else 0.0,
        "rss_mb": peak_rss_mb(),
        "updates": len(latency.latencies) + len(throughput.latencies),
        "errors": errors,
        "error_samples": samples,
        "conversations_done": latency.conversations_done + throughput.conversations_done,
        "resets": latency.resets + throughput.resets,
        "presses": latency.presses + throughput.presses,
        "api_calls": api.calls,
        "api_latency_ms": plan.api_latency_s * 1000,
        "unanswered": latency.unanswered + throughput.unanswered,
        # Full garbage collections stop everyone: how many in the latency run, the longest.
        "full_gc_runs": len(pauses.full),
        "full_gc_max_ms": max(pauses.full, default=0.0) * 1000,
    }


@contextlib.asynccontextmanager
async def temporary_postgres(url: str) -> AsyncGenerator[str, None]:
    """A fresh database on the given server, dropped afterwards; the given one is not touched."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(url).set(drivername="postgresql+asyncpg")
    name = f"invataxi_bench_{uuid.uuid4().hex[:10]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def run_phase(name: str, plan: Plan, postgres: str) -> dict[str, Any]:
    if name == "floor":
        return await measure_floor(plan)
    with tempfile.TemporaryDirectory(prefix="invataxi-bench-") as tmp:
        workdir = Path(tmp)
        if name == "sqlite":
            return await measure_bot(
                plan, f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}", workdir
            )
        async with temporary_postgres(postgres) as url:
            return await measure_bot(plan, url, workdir)


def phase_main(argv: list[str]) -> int:
    """One measurement in this process; prints its result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bot.bench")
    parser.add_argument("--phase", choices=("floor", "sqlite", "postgres"), required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default="")
    parser.add_argument("--pace", type=float, default=None)
    parser.add_argument("--api-latency-ms", type=float, default=None)
    parser.add_argument("--people", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    plan = Plan.for_args(args.quick, args.pace, args.api_latency_ms, args.people)
    plan = dataclasses.replace(plan, own_process=True)
    result = asyncio.run(run_phase(args.phase, plan, args.postgres))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def spawn_phase(name: str, quick: bool, postgres: str, plan: Plan, *extra: str) -> dict[str, Any]:
    args = ["--phase", name, *extra]
    if quick:
        args.append("--quick")
    args += ["--pace", str(plan.think_mean_s)]
    args += ["--api-latency-ms", str(plan.api_latency_s * 1000)]
    args += ["--people", str(plan.conversations)]
    if postgres:
        args += ["--postgres", postgres]
    return measure_apart("bot.bench", args, name)


# -- the outbox ---------------------------------------------------------------------------------


async def measure_outbox(plan: Plan) -> dict[str, Any]:
    """Drain a backlog through the stand-in with Telegram's flood limits enforced."""
    from sqlalchemy import func, insert, select

    from bot.db import create_engine, create_sessionmaker
    from bot.delivery import OutboxSender
    from bot.i18n import I18n
    from bot.migrate import upgrade_async
    from models import Account, OutboxMessage, utcnow

    # The stand-in is the tests' Bot API; the benchmark runs from a checkout of the repository.
    if not (ROOT / "tests" / "stand_in").is_dir():
        raise SystemExit("the outbox benchmark needs a checkout of the repository (tests/)")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.stand_in import BotApiStandIn

    total = plan.outbox_messages
    private_chats = max(50, total // 5)
    groups = [-1003000000001, -1003000000002]
    group_messages = max(1, total // 200)
    stand_in = BotApiStandIn(token=TOKEN, enforce_limits=True)
    for index, chat_id in enumerate(groups):
        stand_in.group(chat_id, f"Dispatchers {index}")
    for n in range(private_chats):
        stand_in.private_chat(4_000_000 + n, f"Person{n}", language_code="kk" if n % 2 else "ru")
    with tempfile.TemporaryDirectory(prefix="invataxi-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.sqlite3'}"
        await upgrade_async(url)
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        now = utcnow()
        async with sessions() as session, session.begin():
            await session.execute(
                insert(Account),
                [
                    {
                        "telegram_id": 4_000_000 + n,
                        "language": "kk" if n % 2 else "ru",
                        "display_name": f"Person{n}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(private_chats)
                ],
            )
            found = await session.execute(select(Account.telegram_id, Account.id))
            accounts = {int(telegram_id): int(account_id) for telegram_id, account_id in found}
            rows: list[dict[str, Any]] = []
            every = max(1, total // group_messages)
            for n in range(total):
                base = {
                    "kind": "send",
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                if n % every == every - 1:
                    rows.append(
                        {
                            **base,
                            "chat_id": groups[n % 2],
                            "payload": {"msgid": "Main menu.", "params": {}, "lang": "ru"},
                        }
                    )
                else:
                    chat_id = 4_000_000 + n % private_chats
                    rows.append(
                        {
                            **base,
                            "chat_id": chat_id,
                            "account_id": accounts[chat_id],
                            "payload": {"msgid": "Main menu.", "params": {}},
                        }
                    )
            for start in range(0, len(rows), 1000):
                await session.execute(insert(OutboxMessage), rows[start : start + 1000])
        async with stand_in:
            bot = stand_in.make_bot()
            sender = OutboxSender(bot, sessions, I18n(), "bench", asyncio.Event())
            stop = asyncio.Event()
            started = time.perf_counter()
            task = asyncio.create_task(sender.run(stop))
            deadline = started + total / 20 + 120
            left = total
            try:
                while time.perf_counter() < deadline:
                    await asyncio.sleep(0.5)
                    async with sessions() as session:
                        left = int(
                            await session.scalar(
                                select(func.count())
                                .select_from(OutboxMessage)
                                .where(OutboxMessage.status.in_(("pending", "sending")))
                            )
                            or 0
                        )
                    if left == 0:
                        break
                elapsed = time.perf_counter() - started
            finally:
                stop.set()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, 30)
                await bot.session.close()
            async with sessions() as session:
                dead = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "dead")
                    )
                    or 0
                )
            sends = [r.time for r in stand_in.calls("sendMessage") if r.ok]
            provoked = stand_in.provoked_429
        await engine.dispose()
    sustained = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    return {
        "messages": total,
        "sent": len(sends),
        "unsent": left,
        "dead": dead,
        "elapsed_s": elapsed,
        "messages_per_s": len(sends) / elapsed if elapsed else 0.0,
        "sustained_per_s": sustained,
        "ceiling_per_s": TELEGRAM_CEILING_PER_S,
        "ratio_to_ceiling": sustained / TELEGRAM_CEILING_PER_S,
        "provoked_429": provoked,
    }


# -- the command ---------------------------------------------------------------------------------

PUBLIC_KEYS = (
    "updates_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rss_mb",
    "ratio_to_floor",
    "cpu_ms_per_update",
    "sim_cpu_ms_per_update",
    "statements_per_update",
    "api_latency_ms",
    "full_gc_runs",
    "full_gc_max_ms",
)


def main(args: argparse.Namespace) -> int:
    """`invataxi bench`: returns 0, or 1 when a measurement failed or handlers raised."""
    plan = Plan.for_args(
        bool(args.quick),
        getattr(args, "pace", None),
        getattr(args, "api_latency_ms", None),
        getattr(args, "people", None),
    )
    if args.mode == "report":
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        try:
            report_result = run_report_bench(plan.report_rides)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(exc, file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(report_result))
        else:
            print_report(report_result)
        return 0
    if args.mode == "outbox":
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        result = asyncio.run(measure_outbox(plan))
        if args.json:
            print(json.dumps(result))
        else:
            print_outbox(result)
        return 0 if result["unsent"] == 0 else 1
    try:
        floor = spawn_phase("floor", args.quick, "", plan)
        runs = {"sqlite": spawn_phase("sqlite", args.quick, "", plan)}
        if args.postgres:
            runs["postgres"] = spawn_phase("postgres", args.quick, args.postgres, plan)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(exc, file=sys.stderr)
        return 1
    for run in runs.values():
        run["ratio_to_floor"] = run["updates_per_s"] / floor["updates_per_s"]
    if args.json:
        report: dict[str, Any] = {"floor_updates_per_s": floor["updates_per_s"]}
        for name, run in runs.items():
            report[name] = {key: run[key] for key in PUBLIC_KEYS}
        print(json.dumps(report))
    else:
        print_updates(plan, floor, runs)
    failed = False
    for name, run in runs.items():
        if run["errors"]:
            failed = True
            print(f"{name}: {run['errors']} updates raised; first:", file=sys.stderr)
            for sample in run["error_samples"]:
                print(sample, file=sys.stderr)
    return 1 if failed else 0


def print_updates(plan: Plan, floor: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    print(
        f"{plan.conversations} concurrent conversations, {plan.riders} registered riders, "
        f"{plan.districts} districts with 2 dispatchers each; latency at a pause of "
        f"{plan.think_mean_s:g} s on average between one person's steps, from a person's "
        f"action to the bot's next message, with every Bot API answer "
        f"{plan.api_latency_s * 1000:g} ms late"
    )
    print(
        f"floor (bare aiogram, echo handler): {floor['updates_per_s']:.0f} updates/s, "
        f"{floor['rss_mb']:.0f} MB"
    )
    header = (
        f"{'database':<10}{'updates/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'RSS MB':>9}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, run in runs.items():
        print(
            f"{name:<10}{run['updates_per_s']:>10.0f}{run['p50_ms']:>9.1f}{run['p95_ms']:>9.1f}"
            f"{run['p99_ms']:>9.1f}{run['rss_mb']:>9.0f}{run['ratio_to_floor']:>8.2f}"
        )
    for name, run in runs.items():
        print(
            f"{name}: {run['updates']} updates, {run['conversations_done']} bookings finished, "
            f"{run['presses']} button presses, {run['resets']} conversations restarted, "
            f"{run['errors']} errors, {run['api_calls']} Bot API calls, "
            f"{run.get('unanswered', 0)} steps without an answer within 10 s; per update "
            f"{run['cpu_ms_per_update']:.1f} ms of CPU (the simulated people's "
            f"{run['sim_cpu_ms_per_update']:.1f} ms apart) and "
            f"{run['statements_per_update']:.1f} SQL statements; "
            f"{run.get('full_gc_runs', 0)} full garbage collections while latency was measured, "
            f"the longest {run.get('full_gc_max_ms', 0.0):.0f} ms"
        )


def print_outbox(result: dict[str, Any]) -> None:
    print(
        f"outbox: {result['sent']} of {result['messages']} messages in "
        f"{result['elapsed_s']:.1f} s: {result['messages_per_s']:.1f}/s overall, "
        f"{result['sustained_per_s']:.1f}/s sustained ({result['ratio_to_ceiling']:.0%} of "
        f"Telegram's {result['ceiling_per_s']:.0f}/s); {result['provoked_429']} answers 429, "
        f"{result['dead']} given up, {result['unsent']} unsent"
    )


if __name__ == "__main__":
    sys.exit(phase_main(sys.argv[1:]))
