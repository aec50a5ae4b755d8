"""Scoring a candidate and its champion on the same rows: the candidate's ``holdout.csv`` (rows neither
model trained on, by the stable hash split), every metric of the task for both, plus the candidate's
single-row latency. The figures are what ``chalicelib.registry.gates.evaluate`` judges."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.registry.candidate import Candidate
from chalicelib.registry.metrics import class_indices, compute
from chalicelib.serving import InputSchema, InvalidInput, OnnxModel
from chalicelib.training.settings import METRICS

LATENCY_ROWS = 200


@dataclass
class Scored:
    """The candidate's scores on its holdout, and the rows (as text) to score the champion on."""

    schema: InputSchema
    header: list[str]
    rows: list[list[str]]
    y_raw: list[str]
    y_true: np.ndarray
    scores: np.ndarray
    metrics: dict[str, float]
    latency: dict[str, float]
    model_bytes: int


def score_candidate(candidate: Candidate) -> Scored:
    schema = InputSchema(candidate.json("input_schema.json"))
    model = OnnxModel(candidate.files["model.onnx"], schema)
    header, rows, y_raw = _holdout(candidate.files["holdout.csv"], schema.target_name or "")
    feed = schema.encode_text(header, rows, withheld_features(schema, header))
    scores = model.run(feed).for_metrics
    y_true = _targets(schema, y_raw)
    return Scored(
        schema=schema,
        header=header,
        rows=rows,
        y_raw=y_raw,
        y_true=y_true,
        scores=scores,
        metrics=_metrics(schema.task, y_true, scores),
        latency=model.latency_ms(feed, rows=LATENCY_ROWS),
        model_bytes=model.model_bytes,
    )


def candidate_figures(candidate: Candidate, scored: Scored) -> dict[str, Any]:
    """The candidate as the gates take it."""
    primary = candidate.json("metrics.json").get("primary_metric") or candidate.manifest.get("primary_metric")
    return {
        "task": scored.schema.task,
        "primary_metric": primary,
        "metrics": scored.metrics,
        "parity": candidate.json("parity.json"),
        "schema": scored.schema.doc,
        "latency_ms": scored.latency,
        "model_bytes": scored.model_bytes,
        "holdout": {"y_true": scored.y_raw, "predictions": scored.scores},
    }


def champion_figures(champion: OnnxModel, version: int, scored: Scored) -> tuple[dict[str, Any], str | None]:
    """The champion scored on the candidate's holdout, as the gates take it, and a note when it
    cannot score those rows (its schema differs: the gates then judge on the schema alone)."""
    figures: dict[str, Any] = {"schema": champion.schema.doc, "metrics": {}}
    try:
        feed = champion.schema.encode_text(
            scored.header, scored.rows, withheld_features(champion.schema, scored.header)
        )
    except InvalidInput as exc:
        return figures, f"the champion v{version} cannot score the candidate's holdout: {exc}"
    scores = champion.run(feed).for_metrics
    y_true = scored.y_true
    if scored.schema.classification and champion.classes != scored.schema.classes:
        y_true = _targets(champion.schema, scored.y_raw)
    figures.update(
        {"metrics": _metrics(scored.schema.task, y_true, scores), "holdout": {"predictions": scores}}
    )
    return figures, None


def withheld_features(schema: InputSchema, header: list[str]) -> list[str]:
    """The pii features a holdout leaves out (the training job never writes them there): both models
    score them as missing, so the gates compare them on the same rows without pii."""
    return [
        str(f.get("name"))
        for f in schema.doc.get("features", [])
        if f.get("classification") == "pii" and f.get("name") not in header
    ]


def finite(values: dict[str, float]) -> dict[str, float | None]:
    """Figures for a record: NaN (a metric undefined on these rows) as None."""
    return {k: (v if np.isfinite(v) else None) for k, v in values.items()}


def _holdout(data: bytes, target: str) -> tuple[list[str], list[list[str]], list[str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, None)
    if not header or target not in header:
        raise ValueError(f"holdout.csv has no {target!r} column")
    rows = list(reader)
    j = header.index(target)
    return header, rows, [row[j] for row in rows]


def _targets(schema: InputSchema, y_raw: list[str]) -> np.ndarray:
    if schema.classification:
        return class_indices(y_raw, schema.classes)
    return np.asarray([float(v) for v in y_raw], dtype=np.float64)


def _metrics(task: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {metric: compute(metric, y_true, scores) for metric in METRICS[task]}
