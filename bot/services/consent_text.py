"""The consent as a short summary first, with the full legal text one tap away.

The full text (102 words in Russian) was the only message over ~60 words; read aloud by a
screen reader it is a minute long. The summary says the four things the law wants a person to
know before agreeing (who, what, how long, abroad) and what they can do; the full text is what
is stored with the agreement, as before.
"""

from __future__ import annotations

from typing import Final

from bot.services.i18n_types import N_, Translate
from bot.services.registration import retention_words

FULL_TEXT_BUTTON: Final = N_("Read the full text")
CONSENT_SUMMARY: Final = N_(
    "Consent to the processing of personal data (version {version}), in short:\n"
    "• your district's department of employment and social programmes and its invataxi "
    "provider keep your name, phone, IIN, address, VKK conclusion, needs and rides, to arrange "
    "the rides;\n"
    "• kept {retention} after the last ride; messages pass through Telegram's servers abroad;\n"
    "• /mydata shows what is kept, /forget withdraws the consent and erases the data.\n"
    "The full text: «{full_text}»."
)
CONSENT_FULL: Final = N_(
    "Consent to the processing of personal data (version {version}), full text.\n\n"
    "Who processes the data: the department of employment and social programmes of your "
    "district or city, and its invataxi provider.\n"
    "What is kept: full name, phone, IIN, home address, category, the number and expiry date "
    "of the medical consultative commission (VKK) conclusion, mobility needs, and the rides. "
    "The same for each person you register and book rides for.\n"
    "For how long: {retention} after the last ride; then the data is erased.\n"
    "Messages to and from this bot pass through Telegram's servers abroad.\n"
    "With /mydata you can see what is kept. With /forget you can withdraw this consent and erase "
    "the data at any time when no ride is open."
)


def consent_summary(t: Translate, version: str, retention_days: int) -> str:
    """What the consent step shows, with the «Read the full text» button under it."""
    return t(
        CONSENT_SUMMARY,
        version=version,
        retention=retention_words(t, retention_days),
        full_text=t(FULL_TEXT_BUTTON),
    )


def consent_full(t: Translate, version: str, retention_days: int) -> str:
    """The full text: shown on «Read the full text», and stored with the person's agreement."""
    return t(CONSENT_FULL, version=version, retention=retention_words(t, retention_days))
