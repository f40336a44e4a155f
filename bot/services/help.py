"""/help in plain words, and the desk's phone in every text that tells someone to call.

A rider must never be told "call the dispatcher" without a number (DOMAIN.md, "The dispatch
desk"). The texts are built here from the district's rules and desk, as `Reason`s (msgid and
params) that the handler renders in the person's language; nothing here knows a language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bot.services import booking_rules as br
from bot.services.i18n_types import N_, Msg, Reason

DATES_IN_WORDS: Final = Reason(
    "help_dates",
    N_(
        "You can type the date as you say it: «ертең», «завтра», «бүрсігүні», «послезавтра», "
        "«4 желтоқсан», «25 декабря», «жұма», «пятница», or just the day: «25»."
    ),
)
HOW_TO_REGISTER: Final = Reason(
    "help_register",
    N_(
        "How to start: send /start, choose who will ride (you, or someone you book for) and "
        "answer the questions. A dispatcher checks the documents, the VKK conclusion among "
        "them, and the bot tells you when you can book."
    ),
)
HOW_TO_CANCEL_EARLY: Final = N_(
    "How to cancel: open «{my_rides}», choose the ride and press «{cancel_ride}». Please cancel "
    "at least {hours} h before the pickup: a later cancellation counts as late."
)
HOW_TO_CANCEL_EARLY_MINUTES: Final = N_(
    "How to cancel: open «{my_rides}», choose the ride and press «{cancel_ride}». Please cancel "
    "at least {minutes} min before the pickup: a later cancellation counts as late."
)
# Button names are passed as message ids, so the help always names the buttons as they read.
_BUTTONS: Final[dict[str, object]] = {
    "book": Msg(N_("Book a ride")),
    "my_rides": Msg(N_("My rides")),
    "cancel_ride": Msg(N_("Cancel this ride")),
}
VOICE_NOT_UNDERSTOOD: Final = N_(
    "I can't listen to voice messages. Please type your answer, or call the dispatcher: {phone}."
)
VOICE_NOT_UNDERSTOOD_NO_PHONE: Final = N_(
    "I can't listen to voice messages. Please type your answer, or use the buttons below."
)

# "Call the dispatcher" texts and their versions with the desk's number. Services and handlers
# keep using the left-hand ids; `with_desk_phone` swaps in the right-hand one when a number is
# known. Phase 2 changes the call sites to the new ids and drops this table.
CALL_WITH_PHONE: Final[dict[str, str]] = {
    N_("This ride can't be cancelled here now: {state}. Please call the dispatcher."): N_(
        "This ride can't be cancelled here now: {state}. Please call the dispatcher: {phone}."
    ),
    N_("Sorry, no date can be booked now. Please call the dispatcher."): N_(
        "Sorry, no date can be booked now. Please call the dispatcher: {phone}."
    ),
    N_(
        "A dispatcher will assign a car, and we will write to you here. Quote the number "
        "{number} if you call the dispatcher."
    ): N_(
        "A dispatcher will assign a car, and we will write to you here. If you call the "
        "dispatcher ({phone}), quote ride №{number}."
    ),
    N_(
        "Ride №{number}: the driver waited at the pickup address, but nobody came out. The ride "
        "is closed. If this is a mistake, please call the dispatcher."
    ): N_(
        "Ride №{number}: the driver waited at the pickup address, but nobody came out. The ride "
        "is closed. If this is a mistake, please call the dispatcher: {phone}."
    ),
    N_(
        "Sorry, nobody handled ride №{number} ({date} at {time}) in time, so it is closed. "
        "Please book again or call the dispatcher."
    ): N_(
        "Sorry, nobody handled ride №{number} ({date} at {time}) in time, so it is closed. "
        "Please book again or call the dispatcher: {phone}."
    ),
    N_(
        "Without your consent the bot can't keep your data, so it can't book rides for you. "
        "You can still call the dispatcher. If you change your mind, press “Read the consent "
        "again” or send /start."
    ): N_(
        "Without your consent the bot can't keep your data, so it can't book rides for you. "
        "You can still book by phone:\n{phone}\nIf you change your mind, press “Read the "
        "consent again” or send /start."
    ),
    N_(
        "This IIN is already registered. If it is yours or your relative's, please call the "
        "dispatcher of your district: they will help."
    ): N_(
        "This IIN is already registered. If it is yours or your relative's, please call the "
        "dispatcher of your district: {phone}. They will help."
    ),
    N_(
        "The dispatcher did not approve the profile of {name}. Reason: {reason}.\nCorrect the "
        "profile in /profile (it goes back for checking), or call the dispatcher."
    ): N_(
        "The dispatcher did not approve the profile of {name}. Reason: {reason}.\nCorrect the "
        "profile in /profile (it goes back for checking), or call the dispatcher: {phone}."
    ),
    N_(
        "This district does not serve your category of riders. Please call the dispatcher: "
        "they will explain what is possible."
    ): N_(
        "This district does not serve your category of riders. Please call the dispatcher, "
        "{phone}: they will explain what is possible."
    ),
    N_(
        "This category is for people with group I disability. Please choose another category "
        "or call the dispatcher."
    ): N_(
        "This category is for people with group I disability. Please choose another category "
        "or call the dispatcher: {phone}."
    ),
    N_(
        "This category is for children under 18. Please choose another category or call the "
        "dispatcher."
    ): N_(
        "This category is for children under 18. Please choose another category or call the "
        "dispatcher: {phone}."
    ),
    N_(
        "The dispatcher did not approve your documents. Please correct them in /profile or "
        "call the dispatcher."
    ): N_(
        "The dispatcher did not approve your documents. Please correct them in /profile or "
        "call the dispatcher: {phone}."
    ),
    N_(
        "Elderly people can ride from the age of {age}. Please choose another category or call "
        "the dispatcher."
    ): N_(
        "Elderly people can ride from the age of {age}. Please choose another category or call "
        "the dispatcher: {phone}."
    ),
    N_("No dates are open for booking right now. Please call the dispatcher."): N_(
        "No dates are open for booking right now. Please call the dispatcher: {phone}."
    ),
    N_("The cancellation was late: less than the district's notice before pickup."): N_(
        "The cancellation was late: less than the district's notice before pickup. If the car "
        "is already on its way, please call the dispatcher: {phone}."
    ),
}


@dataclass(frozen=True, slots=True)
class Desk:
    """A district's dispatch desk as riders know it: its phone and working hours."""

    phone: str | None  # +7XXXXXXXXXX, or None when the districts file has none yet
    hours: str | None = None  # "HH:MM-HH:MM", or None: the service hours


def format_phone(phone: str) -> str:
    """+77282241122 as «+7 728 224 11 22»: groups a person can read out and dial."""
    if phone.startswith("+7") and len(phone) == 12 and phone[1:].isdigit():
        n = phone[2:]
        return f"+7 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"
    return phone


def with_desk_phone(reason: Reason, phone: str | None) -> Reason:
    """The same refusal or notice, with the desk's number when the text says to call.

    Without a number (none in the districts file yet) the old text stays: better no number
    than an empty one.
    """
    new = CALL_WITH_PHONE.get(reason.msgid)
    if new is None or not phone:
        return reason
    return Reason(reason.code, new, {**reason.params, "phone": format_phone(phone)})


def desk_phones(desks: Sequence[tuple[str, str]]) -> str:
    """«name: phone» lines, for someone whose district is not known yet (consent refused)."""
    return "\n".join(f"{name}: {format_phone(phone)}" for name, phone in desks if phone)


def voice_reply(phone: str | None) -> Reason:
    """What a voice message, or a video note, gets instead of "I didn't understand"."""
    if phone:
        return Reason("voice", VOICE_NOT_UNDERSTOOD, {"phone": format_phone(phone)})
    return Reason("voice", VOICE_NOT_UNDERSTOOD_NO_PHONE)


def _hours(start: str, end: str) -> dict[str, object]:
    return {"start": start, "end": end}


def _service_days(rules: br.BookingRules) -> Reason:
    """The service hours and days, in one sentence; the days as a range where they are one."""
    start, end = br.fmt_time(rules.service_start), br.fmt_time(rules.service_end)
    days = sorted(rules.service_days)
    if days == list(range(1, 8)):
        if rules.around_the_clock:
            return Reason("help_hours", N_("Cars run around the clock, every day."))
        return Reason(
            "help_hours",
            N_("Cars pick riders up every day between {start}–{end}."),
            _hours(start, end),
        )
    first, last = _range(days)
    if first is None or last is None:
        return Reason(
            "help_hours",
            N_(
                "Cars pick riders up between {start}–{end}, not every day: the date buttons "
                "show the days you can book."
            ),
            _hours(start, end),
        )
    params: dict[str, object] = {
        "first_day": Msg(br.WEEKDAYS[first - 1]),
        "last_day": Msg(br.WEEKDAYS[last - 1]),
        **_hours(start, end),
    }
    if rules.around_the_clock:
        return Reason(
            "help_hours", N_("Cars run around the clock. Days: {first_day} to {last_day}."), params
        )
    return Reason(
        "help_hours",
        N_("Cars pick riders up between {start}–{end}. Days: {first_day} to {last_day}."),
        params,
    )


def _range(days: list[int]) -> tuple[int | None, int | None]:
    """(first, last) ISO weekdays when the days are one run, possibly across Sunday."""
    for shift in range(7):
        run = [(d - 1 - shift) % 7 for d in days]
        run.sort()
        if run == list(range(run[0], run[0] + len(run))):
            first = (run[0] + shift) % 7 + 1
            last = (run[-1] + shift) % 7 + 1
            return first, last
    return None, None


def _booking_window(rules: br.BookingRules) -> Reason:
    if rules.same_day_allowed:
        return Reason(
            "help_window",
            N_(
                "How to book: press «{book}» or send /book. You can book for today too, "
                "and up to {days} days ahead."
            ),
            {"days": rules.max_days_ahead, "book": _BUTTONS["book"]},
        )
    return Reason(
        "help_window",
        N_(
            "How to book: press «{book}» or send /book, at the latest the day before: "
            "bookings for a date close at {cutoff} the day before. You can book up to {days} "
            "days ahead."
        ),
        {
            "cutoff": br.fmt_time(rules.cutoff_time),
            "days": rules.max_days_ahead,
            "book": _BUTTONS["book"],
        },
    )


def _daily_limit(rules: br.BookingRules) -> Reason:
    return Reason(
        "help_limit",
        N_(
            "At most {limit} rides a day per person; a way back counts as a ride. Who may ride "
            "along: assistants, up to {assistants}; companions, up to {companions}."
        ),
        {
            "limit": rules.max_rides_per_day,
            "assistants": rules.max_assistants,
            "companions": rules.max_companions,
        },
    )


def _cancel(rules: br.BookingRules) -> Reason:
    minutes = rules.late_cancel_minutes
    if minutes % 60 == 0:
        params: dict[str, object] = {"hours": minutes // 60}
        return Reason("help_cancel", HOW_TO_CANCEL_EARLY, {**params, **_BUTTONS})
    return Reason("help_cancel", HOW_TO_CANCEL_EARLY_MINUTES, {"minutes": minutes, **_BUTTONS})


def _desk(rules: br.BookingRules, desk: Desk | None) -> Reason:
    if desk is None or not desk.phone:
        return Reason(
            "help_no_desk",
            N_(
                "The dispatcher's phone is not in the bot yet. Your district's department of "
                "employment and social programmes can give it."
            ),
        )
    if desk.hours:
        start, _, end = desk.hours.partition("-")
    elif rules.around_the_clock:
        return Reason(
            "help_desk",
            N_("The dispatcher's phone: {phone}, around the clock."),
            {"phone": format_phone(desk.phone)},
        )
    else:
        start, end = br.fmt_time(rules.service_start), br.fmt_time(rules.service_end)
    return Reason(
        "help_desk",
        N_("The dispatcher's phone: {phone}, between {start}–{end}."),
        {"phone": format_phone(desk.phone), **_hours(start, end)},
    )


def help_texts(
    rules: br.BookingRules | None, desk: Desk | None, *, registered: bool
) -> list[Reason]:
    """The paragraphs of /help, in the order a person needs them.

    `rules` and `desk` are the person's district's (None when no district is known yet: the
    defaults are explained, and the desk paragraph says where to get the number). Someone not
    registered yet gets "how to start" first; a registered rider gets it last, as a reminder
    for registering someone else.
    """
    effective = rules or br.BookingRules()
    paragraphs = [
        _booking_window(effective),
        DATES_IN_WORDS,
        _service_days(effective),
        _daily_limit(effective),
        _cancel(effective),
        _desk(effective, desk),
    ]
    if registered:
        return [*paragraphs, HOW_TO_REGISTER]
    return [HOW_TO_REGISTER, *paragraphs]
