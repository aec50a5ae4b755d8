"""Request bodies for the API: strict JSON, declared shapes, errors that name the field.

Two steps, both here, for every JSON body of every route:

1. ``parse_json_body``: the bytes as JSON, strictly. Chalice's ``json_body`` turns a deeply nested
   body into a 500 and, like Python's json, accepts NaN and duplicate keys; and Python's ``int()``
   refuses to read more than 4,300 digits (a ``ValueError`` from inside ``json.loads``). Here each of
   those is a ``BadRequest`` (400), the too-long number with the path of its field.
2. ``Body.parse``: the document checked against the route's declared body, a msgspec struct: each
   field with its type, its range (every number has one) and whether it is required; a field the
   body does not declare is refused (400 naming it and listing the allowed ones), never ignored.

A body declares itself once (see ``chalicelib.registry.requests`` for examples)::

    class Approval(Body):
        reason: Annotated[str, Meta(pattern=r"\\S", description="why (it goes into the audit trail)")]
        expected_champion: Annotated[int, Meta(ge=1, le=MAX_VERSION)] | None = None

msgspec (strict structs, ~0.7 MB, no dependencies) checks it; this module turns its findings into
messages a person can act on. Decision: docs/decisions/008-declared-request-bodies.md.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Self

import msgspec
from msgspec import Meta

from chalicelib.errors import InvalidInput

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32
# Python's int() refuses longer digit strings (sys.get_int_max_str_digits); json.loads then raises
# ValueError. No field holds a number of even 310 digits (beyond any double), so none is lost.
MAX_INT_DIGITS = 4300
# A model version, an expected champion...: a sane positive integer (DynamoDB numbers hold 38 digits).
MAX_VERSION = 99_999_999


class BadRequest(InvalidInput):
    """A request body that cannot be accepted. ``field`` is where (``expected_champion``,
    ``include_pii[2]``; None for the whole body), ``problem`` what is wrong there, and ``allowed`` the
    fields the body takes when the problem is an unknown one. The 400 carries ``field`` and
    ``allowed`` beside the message."""

    def __init__(self, problem: str, field: str | None = None, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem
        self.allowed = allowed

    def details(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.field:
            out["field"] = self.field
        if self.allowed:
            out["allowed"] = list(self.allowed)
        return out


# --- step 1: the bytes as JSON -------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) == len(pairs):  # the common case, checked in C
        return doc
    doc = {}
    for key, value in pairs:
        if key in doc:
            raise BadRequest(f"key {key!r} appears twice in one object")
        doc[key] = value
    return doc


def parse_json_body(raw: bytes | None, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    if not raw:
        raise BadRequest("the request body is empty: send a JSON document")
    if len(raw) > max_bytes:
        raise BadRequest(f"the request body is {len(raw):,} bytes, over the limit of {max_bytes:,}")
    # Nesting is bounded before parsing: json.loads recurses and would fail with RecursionError.
    try:
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8: {exc}") from exc
    # Fast path: with no more brackets than the limit, nothing can be nested deeper (str.count is C).
    if text.count("[") + text.count("{") <= max_depth:
        return _loads(text)
    opened = 0
    deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            opened += 1
            deepest = max(deepest, opened)
            if deepest > max_depth:
                raise BadRequest(f"the JSON body is nested deeper than {max_depth} levels")
        elif char in "]}":
            opened -= 1
    return _loads(text)


_fast_decode = msgspec.json.Decoder().decode


def _keys(doc: Any) -> int:
    """How many keys the document's top object and the objects directly inside it or inside its
    lists hold: a predict body's ``records`` exactly. Deeper objects are not counted: never more
    than the text's keys, so a document with any deeper keys takes the exact path (walking every
    value of every record to look for them would cost more than it saves)."""
    if type(doc) is list:
        return sum([len(v) for v in doc if type(v) is dict])
    if type(doc) is not dict:
        return 0
    count = len(doc)
    for value in doc.values():
        kind = type(value)
        if kind is list:
            count += sum([len(v) for v in value if type(v) is dict])
        elif kind is dict:
            count += len(value)
    return count


def _loads(text: str) -> Any:
    # Fast path: msgspec parses in C about 5-10x faster than json.loads with its Python hook, but keeps
    # the last of duplicate keys. Every key of the text is followed by one colon outside strings, so
    # if the parsed objects hold as many keys as the text has colons, no key was dropped: no
    # duplicates (``_keys`` may count fewer, never more: then the exact path decides). Anything else (a colon inside a string, a duplicate key, NaN, a number json.loads
    # reads differently, a lone surrogate...) takes the exact path below, which names the problem.
    try:
        doc = _fast_decode(text)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        pass
    else:
        if _keys(doc) == text.count(":"):
            return doc
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except BadRequest:
        raise
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    except ValueError:  # int() refused a number's digits: parse again, slowly, to name its field
        raise _too_long(text) from None


class _TooLong:
    """Stands in for an integer literal too long for ``int()`` while its field is looked for."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _too_long(text: str) -> BadRequest:
    def read_int(literal: str) -> Any:
        digits = len(literal.lstrip("-"))
        return _TooLong(digits) if digits > MAX_INT_DIGITS else int(literal)

    doc = json.loads(text, parse_int=read_int, parse_constant=_reject_constant)
    found = _find(doc, lambda v: isinstance(v, _TooLong))
    if found is None:  # pragma: no cover - json.loads raised ValueError for another reason
        return BadRequest("the request body is not valid JSON")
    path, value = found
    return BadRequest(f"a number of {value.digits:,} digits: far beyond what any field holds", path or None)


def _find(doc: Any, match: Any, path: str = "") -> tuple[str, Any] | None:
    """The first value in ``doc`` that ``match``es, with its path (``records[3].age``)."""
    if match(doc):
        return path, doc
    items: Any = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        found = _find(value, match, where)
        if found is not None:
            return found
    return None


# --- step 2: the document against its declared body ----------------------------------------------------


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every declared request body: a strict msgspec struct that refuses unknown fields.

    Declare each field with its type and, for numbers, its range (``Meta(ge=..., le=...)``), and
    say what it takes in ``Meta(description=...)``: the description is part of the 400 for that
    field. ``tests/service/test_request_bodies.py`` checks that every number of every body the app
    declares has a range."""

    @classmethod
    def parse(cls, doc: Any) -> Self:
        """The document (parsed JSON) as this body; ``BadRequest`` naming the field otherwise."""
        try:
            return msgspec.convert(doc, cls, strict=True)
        except msgspec.ValidationError as exc:
            raise body_error(cls, str(exc)) from None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__struct_fields__}


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*)`$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>.*)`$", re.DOTALL)
_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
}


def _types(match: re.Match[str]) -> str:
    names = match.group(1).split(" | ")
    if names == ["float"] and match.start() > 0:  # "got `float`": the JSON had a fraction or exponent
        return "a decimal number"
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def body_error(cls: type[Body], text: str) -> BadRequest:
    """msgspec's finding (``Expected `int` <= 99999999 - at `$.expected_champion```) as a
    ``BadRequest`` naming the field, saying what it takes, and for an unknown field which ones the
    body has."""
    parts = _AT.match(text)
    message, path = (parts.group("message"), parts.group("path") or "") if parts else (text, "")
    field = path.lstrip(".")
    top = re.split(r"[.\[]", field, maxsplit=1)[0]
    allowed = cls.field_names()
    unknown = _UNKNOWN.match(message)
    if unknown:
        name = f"{field}.{unknown.group('name')}" if field else unknown.group("name")
        where = "this body" if not field else f"{field!r}"
        return BadRequest(f"unknown field; {where} takes: {', '.join(allowed)}", name, allowed)
    missing = _MISSING.match(message)
    if missing:
        name = f"{field}.{missing.group('name')}" if field else missing.group("name")
        return BadRequest(_with_help("required", cls, name), name)
    if not field:
        if message.startswith("Expected `object`"):
            return BadRequest(
                f"the body must be a JSON object with the fields {', '.join(allowed)}", None, allowed
            )
        return BadRequest(message)
    return BadRequest(_with_help(_plain(message), cls, top), field)


_SIZE = re.compile(r"^Expected `(array|str|object)` of length (>=|<=) (\d+)$")
_RANGE = re.compile(r"^Expected `(int|float)` (>=|<=|>|<) (\S+)$")
_WHAT = {"array": "items", "str": "characters", "object": "fields"}
_BOUND = {">=": "below the minimum", "<=": "above the maximum", ">": "not above", "<": "not below"}


def _plain(message: str) -> str:
    """msgspec's wording as a person's: "Expected `array` of length <= 1000" -> "more than the limit
    of 1,000 items"."""
    if " matching regex " in message:  # the pattern means little to a person: the help says it
        return "not in the expected form"
    size = _SIZE.match(message)
    if size:
        kind, op, length = size.group(1), size.group(2), int(size.group(3))
        if op == ">=":
            return "empty" if length == 1 else f"fewer than {length:,} {_WHAT[kind]}"
        return f"more than the limit of {length:,} {_WHAT[kind]}"
    bound = _RANGE.match(message)
    if bound:
        limit = float(bound.group(3))
        shown = f"{int(limit):,}" if limit.is_integer() and abs(limit) < 1e15 else f"{limit:g}"
        return f"{_BOUND[bound.group(2)]} {shown}"
    if message == "Number out of range":
        return "out of range"
    plain = re.sub(r"^Invalid enum value (.*)$", r"\1 is not one of the choices", message)
    plain = re.sub(r"`([^`]*)`", _types, plain)
    return plain[:1].lower() + plain[1:]


def _with_help(problem: str, cls: type[Body], name: str) -> str:
    help_text = field_help(cls).get(name)
    return f"{problem}; {help_text}" if help_text else problem


def field_help(cls: type[Body]) -> dict[str, str]:
    """Each field's ``Meta(description=...)``, by name (read on the error path only)."""
    from msgspec import inspect

    info = inspect.type_info(cls)
    assert isinstance(info, inspect.StructType)
    return {f.name: text for f in info.fields if (text := _description(f.type))}


def _description(kind: Any) -> str | None:
    from msgspec import inspect

    if isinstance(kind, inspect.Metadata):
        text = (kind.extra_json_schema or {}).get("description")
        return str(text) if text else _description(kind.type)
    if isinstance(kind, inspect.UnionType):
        return next((d for t in kind.types if (d := _description(t))), None)
    return None


# --- what every change takes ---------------------------------------------------------------------------

Reason = Annotated[
    str, Meta(pattern=r"\S", description="a non-empty string saying why (it goes into the audit trail)")
]


class Change(Body):
    """The body of a change that needs only a reason (reject, rollback, retrain): ``{"reason": "..."}``."""

    reason: Reason
