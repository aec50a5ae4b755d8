"""What a DynamoDB round trip does to a document, for in-memory stores that must answer the same.

A stored document comes back as a copy (a caller changing it changes nothing stored), without its
None-valued attributes (DynamoDB leaves them out; None inside a map or a list stays, as NULL), with
tuples as lists and whole floats as ints (a number is a Decimal there: ``1.0`` reads back as ``1``),
exactly as ``chalicelib.adapters.aws.dynamo`` reads it.
"""

from __future__ import annotations

import math
from typing import Any


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as a DynamoDB item reads back (its None-valued attributes left out)."""
    return {k: value(v) for k, v in doc.items() if v is not None}


def value(item: Any) -> Any:
    """One attribute's value as it reads back."""
    if isinstance(item, float):
        if not math.isfinite(item):
            return None
        return int(item) if item.is_integer() else item
    if isinstance(item, list | tuple):
        return [value(v) for v in item]
    if isinstance(item, dict):
        return {k: value(v) for k, v in item.items()}
    return item
