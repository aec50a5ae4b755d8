"""Validation: data contracts, streaming CSV checks, quarantine, drift against a reference.

The streaming validator (``validate_stream``, ``ValidationResult``) is imported on first use: the
API function reads contracts on its predict path (capture's masking) but never validates a file,
and importing the validator costs its cold start tens of milliseconds."""

from typing import TYPE_CHECKING, Any

from chalicelib.validation.capacity import Capacity
from chalicelib.validation.contract import Column, Contract, DriftThresholds, FileFormat, Limits
from chalicelib.validation.exceptions import ContractError, NoContract
from chalicelib.validation.issues import CODES
from chalicelib.validation.ports import ContractStore

if TYPE_CHECKING:
    from chalicelib.validation.validator import ValidationResult, validate_stream

_LAZY = frozenset({"ValidationResult", "validate_stream"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from chalicelib.validation import validator

        return getattr(validator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CODES",
    "Capacity",
    "Column",
    "Contract",
    "ContractError",
    "ContractStore",
    "DriftThresholds",
    "FileFormat",
    "Limits",
    "NoContract",
    "ValidationResult",
    "validate_stream",
]
