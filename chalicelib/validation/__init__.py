"""Validation: data contracts, streaming CSV checks, quarantine, drift against a reference."""

from chalicelib.validation.capacity import Capacity
from chalicelib.validation.contract import Column, Contract, DriftThresholds, FileFormat, Limits
from chalicelib.validation.exceptions import ContractError, NoContract
from chalicelib.validation.issues import CODES
from chalicelib.validation.ports import ContractStore
from chalicelib.validation.validator import ValidationResult, validate_stream

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
