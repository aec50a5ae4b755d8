"""The DynamoDB codec and condition checks every DynamoDB adapter shares.

Documents are plain dicts of str, int, float, bool, None, lists and dicts. DynamoDB stores numbers as
Decimal and has no NaN: floats go in as Decimal (exact repr), come back as int or float; a None value
is not stored (the attribute is absent).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.adapters.aws import error_code

_ser = TypeSerializer()
_des = TypeDeserializer()

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"


def storable(value: Any) -> Any:
    """A value DynamoDB takes: floats as Decimal (non-finite ones as None), recursively."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    return value


def plain(value: Any) -> Any:
    """A value read back: Decimal as int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def to_value(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire format."""
    return dict(_ser.serialize(storable(value)))


def to_item(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as a DynamoDB item (None-valued attributes left out)."""
    return {k: to_value(v) for k, v in doc.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain document."""
    return {k: plain(_des.deserialize(v)) for k, v in item.items()}


def cancellation_codes(exc: Exception) -> list[str] | None:
    """The per-item codes of a cancelled transaction (None if ``exc`` is not a cancellation)."""
    if error_code(exc) != TRANSACTION_CANCELLED:
        return None
    response: dict[str, Any] = getattr(exc, "response", {})
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]


def condition_failed(exc: Exception) -> bool:
    """A conditional write (or a transaction because of one of its conditions) was refused."""
    if error_code(exc) == CONDITION_FAILED:
        return True
    codes = cancellation_codes(exc)
    return codes is not None and "ConditionalCheckFailed" in codes
