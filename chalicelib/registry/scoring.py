"""Scoring a candidate and its champion on the same rows, each through its own input schema.

The rows are the candidate's ``holdout.csv``: rows neither model trained on (the stable hash split),
with every column of the contract that may leave the data zones, not only the candidate's features
(``jobs/training/main.py::holdout_csv``). So a champion that reads a column the candidate dropped,
or reads it with another type, scores the very same rows, and a schema change is judged by the
schema gate, never mistaken for a metric that cannot be computed.

* ``score_candidate``: the candidate on every holdout row, every metric of the task, its single-row
  latency.
* ``compare``: the champion on the rows it can score (a value its schema refuses, a column the
  holdout cannot carry: those rows are left out, and counted, with the first reason), both models'
  metrics on exactly those rows, and the rows in two slices by the upload each came from
  (``UPLOAD_COLUMN``): ``earlier``, uploads in the champion's own training snapshot (the data it was
  judged on), and ``new``, uploads that arrived since. The gates judge what ``Comparison.figures``
  gives them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.registry.candidate import Candidate
from chalicelib.registry.metrics import class_indices, compute
from chalicelib.serving import InputSchema, InvalidInput, OnnxModel
from chalicelib.training.lineage import UPLOAD_COLUMN
from chalicelib.training.settings import METRICS

LATENCY_ROWS = 200
EARLIER, NEW = "earlier", "new"
UNKNOWN_UPLOAD = "unknown"  # rows of a holdout that does not say where they came from


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
    origins: list[str]  # per row, the upload it came from ("" when the holdout does not say)

    def uploads(self, rows: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The uploads of these rows (all by default) with their row counts, largest first."""
        picked = self.origins if rows is None else [self.origins[i] for i in rows]
        return _uploads(picked)


def score_candidate(candidate: Candidate) -> Scored:
    schema = InputSchema(candidate.json("input_schema.json"))
    model = OnnxModel(candidate.files["model.onnx"], schema)
    header, rows, y_raw, origins = _holdout(candidate.files["holdout.csv"], schema.target_name or "")
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
        origins=origins,
    )


def candidate_figures(candidate: Candidate, scored: Scored) -> dict[str, Any]:
    """The candidate as the gates take it, on every holdout row (a first model: no champion)."""
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


@dataclass
class Comparison:
    """The candidate and the champion on the same rows: the holdout rows the champion can score."""

    version: int
    schema: dict[str, Any]
    rows: np.ndarray  # indices of the compared holdout rows
    candidate_scores: np.ndarray  # on those rows
    champion_scores: np.ndarray
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float]
    holdout_rows: int
    problem: str | None  # why the champion cannot score the other rows (None: it scores every row)
    slices: dict[str, dict[str, Any]]
    earlier_positions: np.ndarray  # which of the compared rows (positions in ``rows``) are earlier

    @property
    def unscorable(self) -> int:
        return self.holdout_rows - len(self.rows)

    def figures(self, candidate: dict[str, Any], scored: Scored) -> tuple[dict[str, Any], dict[str, Any]]:
        """(candidate, champion) as the gates take them: both measured on the compared rows."""
        y_raw = [scored.y_raw[i] for i in self.rows]
        mine = {
            **candidate,
            "metrics": self.candidate_metrics,
            "holdout": {"y_true": y_raw, "predictions": self.candidate_scores},
        }
        theirs = {
            "version": self.version,
            "schema": self.schema,
            "metrics": self.champion_metrics,
            "holdout": {"predictions": self.champion_scores},
            "comparison": self.summary(),
            "slices": self.slices,
            "earlier_positions": self.earlier_positions,
        }
        return mine, theirs

    def summary(self) -> dict[str, Any]:
        """What the record keeps of the comparison's rows."""
        return {
            "champion": self.version,
            "rows": len(self.rows),
            "holdout_rows": self.holdout_rows,
            "champion_cannot_score": self.unscorable,
            "problem": self.problem,
        }


def compare(
    champion: OnnxModel, version: int, scored: Scored, earlier_uploads: Collection[str]
) -> Comparison:
    """The champion scored on the candidate's holdout through its own schema, both models measured on
    the rows it could score, and those rows in slices (``earlier_uploads``: what the champion was
    trained on). See the module docstring."""
    n = len(scored.rows)
    withheld = withheld_features(champion.schema, scored.header)
    problem: str | None = None
    try:
        rows = np.arange(n)
        feed = champion.schema.encode_text(scored.header, scored.rows, withheld)
    except InvalidInput as exc:
        rows, reason = _scorable_rows(champion.schema, scored, withheld, exc)
        problem = f"the champion v{version} cannot score {n - len(rows)} of the {n} holdout rows: {reason}"
        feed = (
            champion.schema.encode_text(scored.header, [scored.rows[i] for i in rows], withheld)
            if len(rows)
            else {}
        )
    task = scored.schema.task
    y_true = scored.y_true[rows]
    champion_y = y_true
    if scored.schema.classification and champion.classes != scored.schema.classes:
        try:
            champion_y = _targets(champion.schema, [scored.y_raw[i] for i in rows])
        except ValueError as exc:  # a class the champion never knew: its probabilities cannot be scored
            problem = f"the champion v{version} cannot score the {n} holdout rows: {exc}"
            rows, y_true, champion_y, feed = np.arange(0), y_true[:0], y_true[:0], {}
    champion_scores = champion.run(feed).for_metrics if len(rows) else np.empty((0,))
    candidate_scores = scored.scores[rows]
    earlier = set(earlier_uploads)
    in_earlier = np.array([scored.origins[i] in earlier for i in rows], dtype=bool)
    slices = {}
    for name, member in ((EARLIER, in_earlier), (NEW, ~in_earlier)):
        picked = np.flatnonzero(member)
        slices[name] = {
            "rows": len(picked),
            "uploads": scored.uploads(rows[picked]),
            "metrics": {
                "candidate": finite(_metrics(task, y_true[picked], candidate_scores[picked])),
                "champion": finite(_metrics(task, champion_y[picked], champion_scores[picked]))
                if len(picked)
                else dict.fromkeys(METRICS[task]),
            },
        }
    return Comparison(
        version=version,
        schema=champion.schema.doc,
        rows=rows,
        candidate_scores=candidate_scores,
        champion_scores=champion_scores,
        candidate_metrics=_metrics(task, y_true, candidate_scores),
        champion_metrics=_metrics(task, champion_y, champion_scores)
        if len(rows)
        else {m: float("nan") for m in METRICS[task]},
        holdout_rows=n,
        problem=problem,
        slices=slices,
        earlier_positions=np.flatnonzero(in_earlier),
    )


def _scorable_rows(
    schema: InputSchema, scored: Scored, withheld: Collection[str], error: InvalidInput
) -> tuple[np.ndarray, str]:
    """The rows the schema can encode (row by row: only when some cannot), and the first reason."""
    if any(p.record is None for p in error.problems):  # a whole column missing: no row can be scored
        missing = [p.field for p in error.problems if p.record is None]
        return np.arange(0), (
            f"it needs column(s) {', '.join(map(str, missing))}, which the holdout does not carry "
            "(no longer in the contract, or pii, which never leaves the data zones)"
        )
    good = []
    for i, row in enumerate(scored.rows):
        try:
            schema.encode_text(scored.header, [row], withheld)
        except InvalidInput:
            continue
        good.append(i)
    first = error.problems[0]
    return np.asarray(
        good, dtype=np.int64
    ), f"its input schema refuses them (first: field {first.field!r}: {first.problem})"


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
    return {k: (v if v is not None and np.isfinite(v) else None) for k, v in values.items()}


def _uploads(origins: Sequence[str]) -> list[dict[str, Any]]:
    counts = Counter(origin or UNKNOWN_UPLOAD for origin in origins)
    return [{"upload": u, "rows": n} for u, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _holdout(data: bytes, target: str) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, None)
    if not header or target not in header:
        raise ValueError(f"holdout.csv has no {target!r} column")
    rows = list(reader)
    j = header.index(target)
    k = header.index(UPLOAD_COLUMN) if UPLOAD_COLUMN in header else None
    origins = [row[k] if k is not None and k < len(row) else "" for row in rows]
    return header, rows, [row[j] for row in rows], origins


def _targets(schema: InputSchema, y_raw: list[str]) -> np.ndarray:
    if schema.classification:
        return class_indices(y_raw, schema.classes)
    return np.asarray([float(v) for v in y_raw], dtype=np.float64)


def _metrics(task: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {metric: compute(metric, y_true, scores) for metric in METRICS[task]}
