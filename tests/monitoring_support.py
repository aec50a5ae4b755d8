"""Helpers of the monitor's unit tests: a small contract, inference records in capture's format, a
reference profile made by the validator (the format the training job writes), and outcomes."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from chalicelib.monitoring.outcomes import Outcome
from chalicelib.validation import Contract, validate_stream

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
FEATURES = ("a", "b", "c", "n", "flag")


def contract(**extra: Any) -> Contract:
    """Numbers with bounds, a nullable number, a category, an integer, a boolean; a confidential
    number (``secret``) and a pii one (``email``) that capture masks."""
    return Contract.parse(
        {
            "dataset": "gen",
            "target": "y",
            "task": "classification",
            "row_id": "rid",
            "columns": [
                {"name": "rid", "type": "string", "classification": "internal"},
                {"name": "a", "type": "float", "classification": "public", "min": -10, "max": 10},
                {"name": "b", "type": "float", "classification": "public", "nullable": True},
                {"name": "c", "type": "category", "classification": "public", "allowed": ["x", "y", "z"]},
                {"name": "n", "type": "integer", "classification": "internal", "min": 0, "max": 20},
                {"name": "flag", "type": "boolean", "classification": "internal"},
                {"name": "secret", "type": "float", "classification": "confidential"},
                {"name": "email", "type": "string", "classification": "pii"},
                {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
            ],
            **extra,
        }
    )


def rows(n: int, seed: int, shift: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """``n`` input rows from one fixed distribution (``shift``: added to numeric features)."""
    rng = np.random.default_rng(seed)
    shift = shift or {}
    a = rng.normal(0, 1, n) + shift.get("a", 0.0)
    b = rng.normal(5, 2, n) + shift.get("b", 0.0)
    c = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    k = rng.poisson(4, n)
    flag = rng.random(n) < 0.3
    secret = rng.normal(100, 10, n)
    return [
        {
            "a": float(a[i]),
            "b": float(b[i]),
            "c": str(c[i]),
            "n": int(min(k[i], 20)),
            "flag": bool(flag[i]),
            "secret": float(secret[i]),
        }
        for i in range(n)
    ]


def predict(row: dict[str, Any]) -> int:
    return int(row["a"] > 0)


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def reference_profile(reference_rows: list[dict[str, Any]], doc: Contract | None = None) -> dict[str, Any]:
    """The validator's drift profile of the rows written as a CSV upload."""
    doc = doc or contract()
    lines = ["rid,a,b,c,n,flag,secret,email,y"]
    for i, row in enumerate(reference_rows):
        cells = [f"r-{i}", *(csv_text(row[f]) for f in (*FEATURES, "secret")), f"p{i}@example.com"]
        lines.append(",".join([*cells, str(predict(row))]))
    result = validate_stream(io.BytesIO("\n".join(lines).encode()), doc)
    assert result.profile is not None, result.report
    return result.profile


def record(
    inputs: dict[str, Any],
    i: int = 0,
    *,
    role: str = "champion",
    status: str = "ok",
    request_id: str | None = None,
    index: int = 0,
    row_id: str | None = None,
    latency_ms: float = 3.0,
    time: datetime = T0,
    prediction: Any = "auto",
    probabilities: dict[str, float] | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """An inference record as capture writes it; inputs masked (pii dropped, confidential dropped)."""
    masked = {k: v for k, v in inputs.items() if k not in ("secret", "email")}
    if prediction == "auto":
        prediction = predict(inputs) if status == "ok" else None
    return {
        "request_id": request_id or f"{i:032x}",
        "index": index,
        "row_id": row_id,
        "model": "gen",
        "version": version,
        "role": role,
        "time": time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "latency_ms": latency_ms,
        "status": status,
        "problems": [],
        "inputs": masked,
        "prediction": prediction,
        "probabilities": probabilities,
        "job_id": None,
    }


def outcome(label: Any, minutes: float, **ids: Any) -> Outcome:
    return Outcome("gen", label, T0 + timedelta(minutes=minutes), "api", **ids)
