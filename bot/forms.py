"""One engine for conversations that ask questions one after another: registration, booking.

A form is a list of `Question`s over a draft (a pydantic model kept in the conversation state).
The engine does what every question needs the same way: Back, a sticker or a photo where words
are expected, an answer that is not understood (the question's hint), an answer refused with a
reason, an answer that keeps the question open (a need toggled), and on to the next question
or to the end. Each form says only what differs: where its draft lives, which question comes
after or before another, and what happens at the start and at the end.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar

from aiogram.fsm.state import State
from aiogram.types import Message

from bot.context import Context
from bot.i18n import N_
from bot.services.help import voice_reply
from bot.services.i18n_types import Reason

D = TypeVar("D")

NOT_TEXT = N_("I can read only typed text at this step.")

Accepts = Literal["text", "choice", "location", "contact"]


@dataclass(frozen=True)
class Stay(Generic[D]):
    """A valid answer that keeps the question open (a need toggled): ask it again."""

    draft: D


class Replied:
    """The parser has answered already, with buttons of its own (a day that is full, with the
    days that are not): the question stays, nothing more is said."""


Answer: TypeAlias = D | Reason | Stay[D] | Replied | None
"""What a question's parser returns: the updated draft (go on), a Reason (say why and stay),
`Stay`, `Replied`, or None (not understood: show the hint)."""


@dataclass(frozen=True)
class Question(Generic[D]):
    state: State
    ask: Callable[[Context, D], Awaitable[None]]
    parse: Callable[[Message, Context, D], Awaitable[Answer[D]]]
    hint: Callable[[Context, D], str]
    # What else than typed text the question takes: "location" (a pin) or "contact" (a
    # shared phone number); "choice": buttons, whose hint already says to press one.
    accepts: Accepts = "text"


class Form(ABC, Generic[D]):
    """The engine; a form subclasses it with its questions and its own few decisions."""

    def __init__(self, questions: Sequence[Question[D]]) -> None:
        self.questions = list(questions)
        self.by_state = {q.state.state: q for q in self.questions}

    # -- what each form decides -------------------------------------------------------------

    @abstractmethod
    async def load(self, ctx: Context) -> D: ...

    @abstractmethod
    async def save(self, ctx: Context, draft: D) -> None: ...

    @abstractmethod
    def after(self, draft: D, question: Question[D]) -> Question[D] | None:
        """The question after this answer; None when the form is complete."""

    @abstractmethod
    def before(self, draft: D, question: Question[D]) -> Question[D] | None:
        """Where Back leads from this question; None at the start."""

    @abstractmethod
    async def complete(self, ctx: Context, draft: D) -> None:
        """Every question answered (an edit of one part, for instance)."""

    @abstractmethod
    async def back_at_start(self, ctx: Context, draft: D, question: Question[D]) -> None:
        """Back on the first question."""

    @abstractmethod
    def is_back(self, ctx: Context, message: Message) -> bool: ...

    async def intercept(
        self, message: Message, ctx: Context, draft: D, question: Question[D]
    ) -> bool:
        """A form's own answer before everything else (Confirm on a summary, a profile that is
        no longer the person's); True when handled."""
        return False

    # Whether a refused answer is followed by the question's hint (what to type instead).
    hint_after_reason = True

    def reason_text(self, ctx: Context, draft: D, reason: Reason) -> str:
        return reason.render(ctx.t)

    async def desk_phone(self, ctx: Context, draft: D) -> str | None:
        """The phone a voice message is told to call instead (the district's desk)."""
        return None

    async def lost(self, ctx: Context) -> None:
        """The conversation's state names no question of this form (an old state)."""
        await ctx.fsm.clear()

    # -- the engine --------------------------------------------------------------------------

    async def go_to(self, ctx: Context, draft: D, question: Question[D]) -> None:
        await ctx.fsm.set_state(question.state)
        await self.save(ctx, draft)
        await question.ask(ctx, draft)

    async def current(self, ctx: Context) -> Question[D] | None:
        return self.by_state.get(await ctx.fsm.get_state() or "")

    async def handle(self, message: Message, ctx: Context) -> None:
        """Every answer to every question of the form."""
        question = await self.current(ctx)
        if question is None:
            await self.lost(ctx)
            return
        draft = await self.load(ctx)
        if await self.intercept(message, ctx, draft, question):
            return
        if self.is_back(ctx, message):
            await self.back(ctx, draft, question)
            return
        if message.voice or message.audio or message.video_note:
            phone = await self.desk_phone(ctx, draft)
            await self.explain(ctx, draft, question, voice_reply(phone).render(ctx.t))
            return
        if not acceptable(message, question):
            intro = ctx.t(NOT_TEXT) if question.accepts != "choice" else None
            await self.explain(ctx, draft, question, intro)
            return
        result = await question.parse(message, ctx, draft)
        if result is None:
            await self.explain(ctx, draft, question, None)
        elif isinstance(result, Reason):
            text = self.reason_text(ctx, draft, result)
            if self.hint_after_reason:
                await self.explain(ctx, draft, question, text)
            else:
                ctx.reply(text)
        elif isinstance(result, Replied):
            return
        elif isinstance(result, Stay):
            await self.save(ctx, result.draft)
            await question.ask(ctx, result.draft)
        else:
            following = self.after(result, question)
            if following is None:
                await self.save(ctx, result)
                await self.complete(ctx, result)
            else:
                await self.go_to(ctx, result, following)

    async def back(self, ctx: Context, draft: D, question: Question[D]) -> None:
        previous = self.before(draft, question)
        if previous is None:
            await self.back_at_start(ctx, draft, question)
        else:
            await self.go_to(ctx, draft, previous)

    async def explain(
        self, ctx: Context, draft: D, question: Question[D], issue: str | None
    ) -> None:
        """What is wrong (if known), then what the question expects; the place is kept."""
        hint = question.hint(ctx, draft)
        ctx.reply(f"{issue}\n{hint}" if issue else hint)


def acceptable(message: Message, question: Question[D]) -> bool:
    """Typed text everywhere; a pin or a shared contact where the question takes one."""
    if message.text:
        return True
    if question.accepts == "location":
        return message.location is not None
    if question.accepts == "contact":
        return message.contact is not None
    return False
