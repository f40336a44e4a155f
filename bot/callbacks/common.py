"""Callback data shared by every feature."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

# Every whole number in callback data is bounded: a forged button with a 30-digit id would
# otherwise reach the database (an OverflowError, five retries and "Sorry" each time). Out of
# range, the data does not unpack, so the press matches no handler and gets the usual
# "this button is out of date" answer. Row ids and epoch minutes fit easily.
RowId = Annotated[int, Field(ge=0, lt=2**31)]


class LanguageChoice(CallbackData, prefix="lang1"):
    lang: str
