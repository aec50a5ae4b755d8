"""Documents as a DynamoDB adapter gives them back, for the in-memory adapters to store.

The AWS adapters write through ``chalicelib.adapters.aws.dynamo``: a None attribute is not stored,
floats become Decimal (a non-finite one becomes null) and come back as int when integral, tuples
come back as lists. Storing ``stored(doc)`` gives the in-memory adapters the same answers, and a
deep copy, so no caller can change what is stored by mutating what it passed or got.
"""

from __future__ import annotations

import math
from typing import Any


def stored_value(value: Any) -> Any:
    """One attribute value as it reads back from DynamoDB."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, list | tuple):
        return [stored_value(v) for v in value]
    if isinstance(value, dict):
        return {k: stored_value(v) for k, v in value.items()}
    return value


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as it reads back: None-valued attributes left out, values as ``stored_value``."""
    return {k: stored_value(v) for k, v in doc.items() if v is not None}
