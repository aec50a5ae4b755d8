"""A window report's figures as CloudWatch metrics: (name, unit, value), the ones the window has."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


FIGURES = (
    ("Records", "Count", ("volume", "records")),
    ("InvalidRate", "None", ("errors", "invalid_rate")),
    ("LatencyP99", "Milliseconds", ("latency", "p99")),
    ("DriftedShare", "None", ("drift", "drifted_share")),
    ("PredictionPSI", "None", ("prediction_drift", "psi")),
    ("InputQuality", "None", ("quality", "quality")),
    ("PerformanceValue", "None", ("performance", "value")),
    ("LabelCoverage", "None", ("performance", "coverage")),
)


def window_metrics(report: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """Every figure of ``FIGURES`` the report has as a finite number (a window without traffic has
    records 0 and nothing else)."""
    found = []
    for name, unit, path in FIGURES:
        value = _get(report, *path)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found.append((name, unit, float(value)))
    return found
