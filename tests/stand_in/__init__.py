"""A local stand-in for the Telegram Bot API, for end-to-end tests of the bot.

Typical use::

    async with BotApiStandIn() as stand_in:
        bot = stand_in.make_bot()            # or Bot(token, session=AiohttpSession(
                                             #     api=TelegramAPIServer.from_base(base_url)))
        user = stand_in.private_chat(1001, "Асель", language_code="kk")
        user.send_text("/start")
        reply = await user.wait_for("Сәлем")
        user.press("Заказать")
"""

from __future__ import annotations

from .faults import FAULT_KINDS, FaultKind, RateLimits
from .formatting import FormattedText, format_text, utf16_len
from .models import (
    BOT_FIRST_NAME,
    BOT_USERNAME,
    ApiError,
    CallbackAnswer,
    MessageEvent,
    MessageVersion,
    RequestRecord,
    SimChat,
    StoredMessage,
)
from .server import DEFAULT_TOKEN, BotApiStandIn
from .spec import ApiSpec
from .users import PressedButton, SimUser
from .webhook import SECRET_HEADER, Delivery

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "SECRET_HEADER",
    "ApiError",
    "ApiSpec",
    "BotApiStandIn",
    "CallbackAnswer",
    "Delivery",
    "FaultKind",
    "FormattedText",
    "MessageEvent",
    "MessageVersion",
    "PressedButton",
    "RateLimits",
    "RequestRecord",
    "SimChat",
    "SimUser",
    "StoredMessage",
    "format_text",
    "utf16_len",
]
