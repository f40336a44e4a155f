"""Files the bot sends as documents, built from the database when the outbox row is sent.

An outbox row of kind "document" names a renderer and its arguments (`enqueue_document`); the
sender calls `DOCUMENT_RENDERERS[name](session, args, lang)` and sends each `Document` it returns.
Building at send time keeps the outbox small (no file bytes in a row) and the file current.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Document:
    """One file: its name as the recipient sees it, its bytes, and an optional caption."""

    filename: str
    content: bytes
    caption: str | None = None


# (a read-only session, the row's args, the language code) -> the files to send, in order.
DocumentRenderer = Callable[[AsyncSession, dict[str, Any], str], Awaitable[list[Document]]]

DOCUMENT_RENDERERS: dict[str, DocumentRenderer] = {}

# Modules whose import registers renderers.
RENDERER_MODULES: Final = ("bot.reports.monthly",)


def document_renderer(name: str) -> Callable[[DocumentRenderer], DocumentRenderer]:
    """Register a renderer under the name outbox rows carry."""

    def register(renderer: DocumentRenderer) -> DocumentRenderer:
        if DOCUMENT_RENDERERS.get(name, renderer) is not renderer:
            raise ValueError(f"document renderer {name!r} is registered twice")
        DOCUMENT_RENDERERS[name] = renderer
        return renderer

    return register


def load_all() -> dict[str, DocumentRenderer]:
    """Import every module that registers renderers; returns the registry."""
    for module in RENDERER_MODULES:
        importlib.import_module(module)
    return DOCUMENT_RENDERERS
