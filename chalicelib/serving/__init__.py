"""Scoring with ONNX: input schemas, model sessions. Shared by the promotion evaluator and /predict.

The names below load on first use (PEP 562), not when the package is imported: the API imports
``chalicelib.serving.requests`` (the predict body) when it starts, and must not pay for numpy there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.serving.model import IntegrityError, OnnxModel, Scores, verify
    from chalicelib.serving.schema import InputSchema, InvalidInput, Problem

__all__ = ["InputSchema", "IntegrityError", "InvalidInput", "OnnxModel", "Problem", "Scores", "verify"]

_HOMES = {
    "IntegrityError": "model",
    "OnnxModel": "model",
    "Scores": "model",
    "verify": "model",
    "InputSchema": "schema",
    "InvalidInput": "schema",
    "Problem": "schema",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
