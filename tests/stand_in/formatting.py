"""Telegram's text formatting: HTML, MarkdownV2 and legacy Markdown -> plain text + entities.

The stand-in has to parse markup for three reasons: Telegram limits the length of the *parsed*
text (4096 characters), it stores and echoes the plain text with entities (so a test reading the
chat must see ``Order #5``, not ``<b>Order #5</b>``), and it refuses malformed markup — an
unescaped ``<`` in a user's name or an unescaped ``.`` in MarkdownV2 is one of the most common
ways a bot breaks in production. Error texts follow Telegram's ``can't parse entities: ...``.
Offsets and lengths are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .models import ApiError, JsonDict, bad_request

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTRIBUTE = re.compile(
    r"\s*([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?"
)
_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")

_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "`": "Code",
    "```": "Pre",
    "[": "TextUrl",
}
_MD2_TYPES = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
    "`": "code",
    "```": "pre",
}
_ENTITY_KEYS = ("type", "offset", "length", "url", "language", "custom_emoji_id", "user")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units — the unit of every Bot API offset and length."""
    return len(text.encode("utf-16-le")) // 2


def parse_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


@dataclass
class FormattedText:
    """Plain text and entities after parsing, trimmed the way Telegram trims messages."""

    text: str
    entities: list[JsonDict] = field(default_factory=list)

    @property
    def length(self) -> int:
        return utf16_len(self.text)


def format_text(
    text: str | None,
    parse_mode: str | None,
    entities: Any = None,
) -> FormattedText:
    """Parse ``text`` like Telegram: explicit ``entities`` win over ``parse_mode``."""
    source = text or ""
    if entities:
        if not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        parsed = FormattedText(source, normalize_entities(entities))
    elif not parse_mode:
        parsed = FormattedText(source)
    else:
        mode = parse_mode.lower()
        if mode == "html":
            parsed = _parse_html(source)
        elif mode == "markdownv2":
            parsed = _parse_markdown_v2(source)
        elif mode == "markdown":
            parsed = _parse_markdown(source)
        else:
            raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    return _strip(parsed)


def normalize_entities(entities: Iterable[Any]) -> list[JsonDict]:
    """Entities reduced to the keys Telegram keeps, sorted like Telegram returns them."""
    result: list[JsonDict] = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise bad_request("can't parse entities JSON object")
        kept = {key: entity[key] for key in _ENTITY_KEYS if entity.get(key) is not None}
        try:
            kept["offset"] = int(kept["offset"])
            kept["length"] = int(kept["length"])
        except (KeyError, TypeError, ValueError):
            raise bad_request(
                "can't parse MessageEntity: field offset/length is missing"
            ) from None
        if kept["length"] > 0:
            result.append(kept)
    result.sort(key=lambda item: (item["offset"], -item["length"]))
    return result


def same_entities(left: Iterable[JsonDict], right: Iterable[JsonDict]) -> bool:
    """Order-insensitive comparison used for "message is not modified"."""

    def canonical(items: Iterable[JsonDict]) -> list[str]:
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return canonical(left) == canonical(right)


def _strip(parsed: FormattedText) -> FormattedText:
    """Trim surrounding whitespace and shift entities, as Telegram does before storing."""
    stripped = parsed.text.strip()
    if stripped == parsed.text:
        return parsed
    lead = utf16_len(parsed.text) - utf16_len(parsed.text.lstrip())
    total = utf16_len(stripped)
    entities: list[JsonDict] = []
    for entity in parsed.entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(stripped, entities)


class _Builder:
    """Accumulates plain text while tracking the UTF-16 position for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.position = 0
        self.entities: list[JsonDict] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.position += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.position > start:
            item: JsonDict = {"type": kind, "offset": start, "length": self.position - start}
            item.update({key: value for key, value in extra.items() if value is not None})
            self.entities.append(item)

    def result(self) -> FormattedText:
        self.entities.sort(key=lambda item: (item["offset"], -item["length"]))
        return FormattedText("".join(self.parts), self.entities)


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


# -- HTML ------------------------------------------------------------------------------------


@dataclass
class _OpenTag:
    name: str
    start: int
    attributes: dict[str, str]
    #: for <pre><code class="language-x">: the language goes to the pre entity.
    language: str | None = None
    merged_into_pre: bool = False


def _parse_html(source: str) -> FormattedText:
    out = _Builder()
    stack: list[_OpenTag] = []
    index = 0
    length = len(source)
    while index < length:
        char = source[index]
        if char == "<":
            end = source.find(">", index)
            if end == -1:
                raise parse_error(
                    f"Unclosed start tag at byte offset {_byte_offset(source, index)}"
                )
            inner = source[index + 1 : end]
            if inner.startswith("/"):
                _close_html_tag(source, index, inner[1:].strip().lower(), stack, out)
            else:
                stack.append(_open_html_tag(source, index, inner, stack, out))
            index = end + 1
        elif char == "&":
            match = _CHAR_REF.match(source, index)
            if match is None:
                out.add("&")
                index += 1
                continue
            out.add(_decode_char_ref(match.group(1)))
            index = match.end()
        else:
            out.add(char)
            index += 1
    if stack:
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _decode_char_ref(body: str) -> str:
    if body.startswith(("#x", "#X")):
        return chr(int(body[2:], 16))
    if body.startswith("#"):
        return chr(int(body[1:]))
    # Telegram knows only these four named entities; others stay as typed.
    return _NAMED_ENTITIES.get(body.lower(), f"&{body};")


def _open_html_tag(
    source: str, index: int, inner: str, stack: list[_OpenTag], out: _Builder
) -> _OpenTag:
    offset = _byte_offset(source, index)
    match = _TAG_NAME.match(inner)
    name = match.group(0).lower() if match else ""
    if not match or name not in _HTML_TAGS:
        shown = (name or inner.split()[0]) if inner.strip() else ""
        raise parse_error(f'Unsupported start tag "{shown}" at byte offset {offset}')
    attributes: dict[str, str] = {}
    rest = inner[match.end() :].rstrip().removesuffix("/")
    position = 0
    while position < len(rest):
        attribute = _ATTRIBUTE.match(rest, position)
        if attribute is None or attribute.end() == position:
            raise parse_error(f"Empty attribute name in the tag at byte offset {offset}")
        value = next((g for g in attribute.groups()[1:] if g is not None), "")
        attributes[attribute.group(1).lower()] = _unescape(value)
        position = attribute.end()
        if not rest[position:].strip():
            break
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    tag = _OpenTag(name, out.position, attributes)
    css = attributes.get("class", "")
    if name == "code" and stack and stack[-1].name == "pre" and css.startswith("language-"):
        stack[-1].language = css.removeprefix("language-")
        tag.merged_into_pre = True
    return tag


def _close_html_tag(
    source: str, index: int, name: str, stack: list[_OpenTag], out: _Builder
) -> None:
    offset = _byte_offset(source, index)
    if not stack:
        raise parse_error(f"Unexpected end tag at byte offset {offset}")
    tag = stack.pop()
    if name != tag.name:
        raise parse_error(
            f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", '
            f'found "</{name}>"'
        )
    kind = _HTML_TAGS[tag.name]
    if tag.merged_into_pre:
        return
    if kind == "text_link":
        href = tag.attributes.get("href")
        if not href:
            return
        user = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if user:
            mention = {"id": int(user.group(1)), "is_bot": False, "first_name": ""}
            out.entity("text_mention", tag.start, user=mention)
        else:
            out.entity("text_link", tag.start, url=href)
    elif kind == "pre":
        out.entity("pre", tag.start, language=tag.language)
    elif kind == "blockquote":
        expandable = "expandable" in tag.attributes
        out.entity("expandable_blockquote" if expandable else "blockquote", tag.start)
    elif kind == "custom_emoji":
        out.entity("custom_emoji", tag.start, custom_emoji_id=tag.attributes.get("emoji-id"))
    else:
        out.entity(kind, tag.start)


def _unescape(value: str) -> str:
    return _CHAR_REF.sub(lambda match: _decode_char_ref(match.group(1)), value)


# -- MarkdownV2 ------------------------------------------------------------------------------


@dataclass
class _OpenMarker:
    marker: str
    start: int
    byte_offset: int
    language: str | None = None


def _parse_markdown_v2(source: str) -> FormattedText:
    out = _Builder()
    stack: list[_OpenMarker] = []
    index = 0
    length = len(source)
    line_start = True
    while index < length:
        char = source[index]
        top = stack[-1].marker if stack else None
        if char == "\\" and index + 1 < length and 0 < ord(source[index + 1]) < 127:
            out.add(source[index + 1])
            index += 2
            line_start = False
            continue
        if top in ("`", "```"):
            if top == "```" and source.startswith("```", index):
                opened = stack.pop()
                out.entity("pre", opened.start, language=opened.language)
                index += 3
            elif top == "`" and char == "`":
                out.entity("code", stack.pop().start)
                index += 1
            else:
                out.add(char)
                index += 1
            continue
        offset = _byte_offset(source, index)
        if source.startswith("```", index):
            body = index + 3
            newline = source.find("\n", body)
            first_line = source[body:newline] if newline != -1 else ""
            language = (
                first_line if first_line and not any(c.isspace() for c in first_line) else None
            )
            stack.append(_OpenMarker("```", out.position, offset, language))
            index = newline + 1 if newline != -1 and (language or newline == body) else body
            continue
        if line_start and source.startswith("**>", index):
            index += 3  # expandable block quote: markers only, no entity kept
            line_start = False
            continue
        if line_start and char == ">":
            index += 1
            line_start = False
            continue
        marker_text = next(
            (m for m in ("||", "__", "*", "_", "~", "`") if source.startswith(m, index)), None
        )
        if marker_text is not None:
            if any(item.marker == marker_text for item in stack):
                if top != marker_text:
                    assert top is not None
                    raise parse_error(
                        f"Can't find end of {_MD2_NAMES[top]} entity at byte offset "
                        f"{stack[-1].byte_offset}"
                    )
                out.entity(_MD2_TYPES[marker_text], stack.pop().start)
            else:
                stack.append(_OpenMarker(marker_text, out.position, offset))
            index += len(marker_text)
            line_start = False
            continue
        if char == "[":
            stack.append(_OpenMarker("[", out.position, offset))
            index += 1
            continue
        if char == "]" and top == "[":
            if not source.startswith("(", index + 1):
                raise parse_error(f"Can't find end of a URL at byte offset {offset}")
            url, index = _read_md2_url(source, index + 2, offset)
            out.entity("text_link", stack.pop().start, url=url)
            continue
        if char in _MD2_RESERVED:
            raise parse_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.add(char)
        index += 1
        line_start = char == "\n"
    if stack:
        opened = stack[-1]
        raise parse_error(
            f"Can't find end of {_MD2_NAMES[opened.marker]} entity at byte offset "
            f"{opened.byte_offset}"
        )
    return out.result()


def _read_md2_url(source: str, index: int, offset: int) -> tuple[str, int]:
    url: list[str] = []
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            url.append(source[index + 1])
            index += 2
            continue
        if char == ")":
            return "".join(url), index + 1
        url.append(char)
        index += 1
    raise parse_error(f"Can't find end of a URL at byte offset {offset}")


# -- legacy Markdown -------------------------------------------------------------------------

_MD_TYPES = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}


def _parse_markdown(source: str) -> FormattedText:
    out = _Builder()
    index = 0
    length = len(source)
    while index < length:
        char = source[index]
        if char == "\\" and index + 1 < length and source[index + 1] in "_*`[":
            out.add(source[index + 1])
            index += 2
            continue
        marker = "```" if source.startswith("```", index) else char
        if marker in _MD_TYPES:
            offset = _byte_offset(source, index)
            end = source.find(marker, index + len(marker))
            if end == -1:
                raise parse_error(f"Can't find end of the entity starting at byte offset {offset}")
            start = out.position
            out.add(source[index + len(marker) : end])
            out.entity(_MD_TYPES[marker], start)
            index = end + len(marker)
            continue
        if char == "[":
            offset = _byte_offset(source, index)
            close = source.find("](", index)
            end = source.find(")", close + 2) if close != -1 else -1
            if close == -1 or end == -1:
                raise parse_error(f"Can't find end of the entity starting at byte offset {offset}")
            start = out.position
            out.add(source[index + 1 : close])
            out.entity("text_link", start, url=source[close + 2 : end])
            index = end + 1
            continue
        out.add(char)
        index += 1
    return out.result()
