"""Request-body parsing for the API: strict JSON, errors that name the problem.

Chalice's ``json_body`` turns a deeply nested body into a 500 and, like Python's json, accepts NaN
and duplicate keys. Bodies are parsed here instead: anything malformed is a ``BadRequest`` (400).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import InvalidInput

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32


class BadRequest(InvalidInput):
    """A request body that is not acceptable JSON (too large, too deep, NaN, duplicate keys...)."""


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


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except BadRequest:
        raise
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
