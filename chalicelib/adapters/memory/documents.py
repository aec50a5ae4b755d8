"""What a DynamoDB round trip does to a document, for in-memory stores that must answer the same.

A stored document comes back as a copy (a caller changing it changes nothing stored), without its
None-valued attributes (DynamoDB leaves them out), with tuples as lists and whole floats as ints (a
number is a Decimal there: ``1.0`` reads back as ``1``), exactly as ``chalicelib.adapters.aws.dynamo``
reads it.
"""

from __future__ import annotations

import math
from typing import Any


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as a DynamoDB item reads back."""
    return {k: _value(v) for k, v in doc.items() if v is not None}


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value
