"""The Bot API specification the stand-in checks every request against.

The stand-in must accept exactly what Telegram accepts, otherwise a test passes against it while
the real API refuses the same call. Instead of hand-writing a list of methods and parameters
(which silently goes stale), it loads ``telegram-bot-api.json`` — the machine-readable Bot API
spec kept next to this module, so tests never read anything outside the repository.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiogram.types
from pydantic import BaseModel

from .models import JsonDict, UploadedFile, bad_request

SPEC_PATH = Path(__file__).with_name("telegram-bot-api.json")

_SCALARS = frozenset({"String", "Integer", "Float", "Boolean", "True", "InputFile"})
_ALWAYS = re.compile(r'always "([^"]+)"')
_TRUE = frozenset({"true", "1", "True", "TRUE"})
_FALSE = frozenset({"false", "0", "False", "FALSE", ""})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One parameter of a method or one field of a type."""

    name: str
    types: tuple[str, ...]
    required: bool
    description: str = ""


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A Bot API method: its canonical name, parameters and return types."""

    name: str
    fields: tuple[FieldSpec, ...]
    returns: tuple[str, ...]

    def field(self, name: str) -> FieldSpec | None:
        """The parameter called ``name``, or None when Telegram does not know it."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the mandatory parameters, in the order the docs list them."""
        return tuple(spec.name for spec in self.fields if spec.required)


class ApiSpec:
    """Methods and types of the Bot API, with the conversions Telegram applies to parameters."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        self.version: str = raw.get("version", "")
        self.methods: dict[str, MethodSpec] = {}
        self._by_lower: dict[str, str] = {}
        for name, body in raw["methods"].items():
            fields = tuple(_field(item) for item in body.get("fields", []))
            self.methods[name] = MethodSpec(name, fields, tuple(body.get("returns", [])))
            # Telegram matches method names case-insensitively (/bot<token>/SENDMESSAGE works).
            self._by_lower[name.lower()] = name
        self.types: dict[str, JsonDict] = raw["types"]

    def method(self, name: str) -> MethodSpec | None:
        """The method called ``name`` (any letter case), or None when it does not exist."""
        canonical = self._by_lower.get(name.lower())
        return self.methods[canonical] if canonical else None

    def type_fields(self, type_name: str) -> tuple[FieldSpec, ...]:
        """Fields of an object type; empty for scalars and unions."""
        body = self.types.get(type_name, {})
        return tuple(_field(item) for item in body.get("fields", []))

    def subtypes(self, type_name: str) -> tuple[str, ...]:
        """Members of a union type such as ChatMember; empty for ordinary types."""
        return tuple(self.types.get(type_name, {}).get("subtypes", []))

    # -- request decoding --------------------------------------------------------------------

    def decode(self, method: MethodSpec, raw: Mapping[str, Any]) -> JsonDict:
        """Convert wire values to Python values the way Telegram reads them.

        Multipart and urlencoded bodies carry only strings: aiogram sends strings as they are and
        JSON-encodes everything else (numbers, booleans, keyboards). A JSON body already has the
        right types. Parameters the spec does not know are kept undecoded: Telegram ignores them,
        but the request log should still show what the bot sent.
        """
        params: JsonDict = {}
        for name, value in raw.items():
            spec = method.field(name)
            params[name] = value if spec is None else _decode_value(spec, value)
        return params

    def missing_required(self, method: MethodSpec, params: Mapping[str, Any]) -> str | None:
        """The first mandatory parameter absent from ``params`` (empty strings count as absent)."""
        for name in method.required:
            value = params.get(name)
            if value is None or value == "":
                return name
        return None

    # -- response synthesis ------------------------------------------------------------------

    def required_fields(self, type_name: str) -> dict[str, str]:
        """Required fields of an object type: field name -> first declared type.

        The spec file may be older than the installed aiogram (which can require fields added
        by a later Bot API version), so aiogram's own model contributes its required fields too;
        otherwise aiogram would refuse the stand-in's answers with a decode error. A fixed value
        ("always \"member\"" in the docs, or a Literal in aiogram) is given as ``=value``.
        """
        result: dict[str, str] = {}
        for spec in self.type_fields(type_name):
            if spec.required:
                fixed = _ALWAYS.search(spec.description)
                use_fixed = fixed is not None and "String" in spec.types
                result[spec.name] = f"={fixed.group(1)}" if fixed and use_fixed else spec.types[0]
        for name, kind in _aiogram_required(type_name).items():
            result.setdefault(name, kind)
        return result

    def placeholder(self, type_name: str, depth: int = 0) -> Any:
        """A minimal valid object of ``type_name``: every required field filled in.

        Methods the stand-in does not model still have to return something aiogram can parse
        into the declared return type, otherwise the bot would see a decode error that real
        Telegram never causes.
        """
        if type_name.startswith("="):
            return type_name[1:]
        if type_name.startswith("Array of "):
            return []
        if type_name in ("Boolean", "True"):
            return True
        if type_name == "Integer":
            return 0
        if type_name == "Float":
            return 0.0
        if type_name == "String":
            return ""
        union = self.subtypes(type_name)
        if union:
            return self.placeholder(union[0], depth)
        result: JsonDict = {}
        if depth > 6:  # recursive types (Chat -> Message -> Chat) stop here
            return result
        for name, kind in self.required_fields(type_name).items():
            if name in ("file_id", "file_unique_id"):
                result[name] = f"stand-in-{type_name.lower()}"
            else:
                result[name] = self.placeholder(kind, depth + 1)
        return result


@functools.cache
def _aiogram_required(type_name: str) -> dict[str, str]:
    """Required fields of aiogram's model for ``type_name`` in the spec's type notation."""
    model = getattr(aiogram.types, type_name, None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return {}
    return {
        info.alias or name: _spec_kind(info.annotation)
        for name, info in model.model_fields.items()
        if info.is_required()
    }


def _spec_kind(annotation: Any) -> str:
    """Translate a Python annotation into the spec's notation ("Integer", "Array of X", ...)."""
    scalars = {bool: "Boolean", int: "Integer", float: "Float", str: "String"}
    if annotation in scalars:
        return scalars[annotation]
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal and arguments:
        value = arguments[0]
        return f"={value.value if isinstance(value, enum.Enum) else value}"
    if origin is list and arguments:
        return f"Array of {_spec_kind(arguments[0])}"
    if origin in (typing.Union, types.UnionType) and arguments:
        return _spec_kind(arguments[0])
    if isinstance(annotation, type):
        return annotation.__name__
    return "String"


def _field(item: Mapping[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=item["name"],
        types=tuple(item.get("types", [])),
        required=bool(item.get("required", False)),
        description=str(item.get("description", "")),
    )


def _decode_value(spec: FieldSpec, value: Any) -> Any:
    """Decode one parameter; a malformed value is a 400 like Telegram's."""
    if isinstance(value, UploadedFile):
        return value
    types = spec.types
    if not isinstance(value, str):
        if "Integer" in types and isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if "String" in types and not (set(types) - {"String", "InputFile"}):
        return value
    if types == ("Integer", "String"):
        # chat_id: a number, or "@channelusername".
        try:
            return int(value)
        except ValueError:
            return value
    if "String" in types:
        return value
    if types == ("Integer",):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise bad_request(f"invalid {spec.name} specified") from None
            if not number.is_integer():
                raise bad_request(f"invalid {spec.name} specified") from None
            return int(number)
    if types == ("Float",):
        try:
            return float(value)
        except ValueError:
            raise bad_request(f"invalid {spec.name} specified") from None
    if types in (("Boolean",), ("True",)):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise bad_request(f"invalid {spec.name} specified")
    if set(types) <= _SCALARS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        what = "reply keyboard markup" if spec.name == "reply_markup" else spec.name
        raise bad_request(f"can't parse {what} JSON object") from None
