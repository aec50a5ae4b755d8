"""One window's statistics of a model's captured records (docs/monitoring.md): pure, plain JSON out.

The records are inference records (``chalicelib.capture.records``), masked before they were written:
pii features absent, confidential ones absent (``drop``) or keyed hashes ``"h:<hex>"`` (``hash``).
Only the answers people received count: records of role ``champion``, ``canary`` (a rollout
candidate's answers), ``pinned`` and ``batch``; shadow records (the challenger's, the champion's
beside a canary answer) are counted apart.

* **volume, errors, latency**: records, requests, by role and version; ``invalid`` (refused by the
  input schema) and ``error`` shares; latency percentiles over requests (a request's records share
  its latency).
* **input quality**: each feature value checked by the validator's own ``ColumnChecker`` (the rules
  an upload is held to: empty where not nullable, unreadable, out of range, not an allowed value,
  pattern, length), after the JSON value is written as the text a CSV would hold. A JSON value of
  the wrong kind (text for a number, a number for a category) is unreadable. Hashed values cannot be
  checked and are not counted; a feature no record carries is not judged (the model does not take
  it: serving refuses a request that lacks a feature it needs, which the error share shows).
* **drift**: the live profile (the validator's format: numeric columns as a ``Reservoir`` sample,
  categories by counts, built by the same checkers) against the champion's ``reference_profile.json``
  by ``chalicelib.validation.drift.compare`` with the contract's thresholds and sample-size rules.
  Hashed features are profiled as categories but not compared: the reference buckets a confidential
  column by another hash, so the two cannot meet. The window drifts when the share of drifted
  features is above ``policy.drift.threshold``.
* **prediction drift**: predicted classes (chi-square over pooled cells, PSI, Jensen-Shannon) or
  regression predictions (KS, PSI) against ``reference_predictions`` (the champion's holdout
  predictions), by the same ``compare``.

Every verdict is ``insufficient_data`` below ``policy.min_requests`` records.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.monitoring.join import JOINED_ROLES, label_key
from chalicelib.validation import drift
from chalicelib.validation.columns import RESERVOIR_SIZE, ColumnChecker
from chalicelib.validation.contract import Column, Contract
from chalicelib.validation.issues import IssueLog

HASH_PREFIX = "h:"
PREDICTION = "prediction"
# The validator's issue codes, grouped into the reasons a report shows.
REASONS = {
    "NULL_NOT_ALLOWED": "missing",
    "INVALID_INTEGER": "unreadable",
    "INVALID_FLOAT": "unreadable",
    "INVALID_BOOLEAN": "unreadable",
    "INVALID_TIMESTAMP": "unreadable",
    "NON_FINITE_NUMBER": "unreadable",
    "OUT_OF_RANGE": "out_of_range",
    "UNKNOWN_CATEGORY": "unknown_category",
    "NOT_ALLOWED_VALUE": "unknown_category",
    "PATTERN_MISMATCH": "pattern",
    "VALUE_TOO_LONG": "too_long",
    "FORMULA_INJECTION": "formula",
}
WRONG_TYPE = "unreadable"
_NUMERIC = ("integer", "float")


# --- reference predictions -------------------------------------------------------------------------


def reference_predictions(predictions: Iterable[Any], task: str | None = None) -> dict[str, Any]:
    """What a window's predictions are compared with, from the champion's holdout predictions:
    ``{"kind": "labels", "counts": {...}}`` (classification) or ``{"kind": "numeric", "sample":
    [...]}`` (regression; a uniform sample of at most ``RESERVOIR_SIZE``). Without ``task``, numbers
    that are not all whole are taken for a regression's."""
    values = list(predictions)
    if task is None:
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        whole = all(float(v).is_integer() for v in values) if numeric else False
        task = "regression" if numeric and not whole else "classification"
    if task == "regression":
        reservoir = drift.Reservoir(capacity=RESERVOIR_SIZE, seed=0)
        reservoir.add(np.asarray([float(v) for v in values], dtype=np.float64))
        return {"kind": "numeric", "sample": [float(v) for v in reservoir.values().tolist()]}
    counts = Counter(label_key(v) for v in values if v is not None)
    return {"kind": "labels", "counts": dict(sorted(counts.items()))}


def _prediction_profile(reference: Mapping[str, Any]) -> dict[str, Any]:
    if reference.get("kind") == "numeric":
        sample = [float(v) for v in reference.get("sample") or []]
        reservoir = drift.Reservoir(capacity=RESERVOIR_SIZE, seed=0)
        reservoir.add(np.asarray(sample, dtype=np.float64))
        column = drift.numeric_column_profile(len(sample), 0, reservoir)
    else:
        counts = {str(k): int(v) for k, v in (reference.get("counts") or {}).items()}
        column = drift.categorical_column_profile(sum(counts.values()), 0, counts)
    return {"rows": column["count"], "columns": {PREDICTION: column}}


def _live_prediction_profile(records: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    values = [r.get("prediction") for r in records if r.get("status") == "ok"]
    present = [v for v in values if v is not None]
    if kind == "numeric":
        reservoir = drift.Reservoir(capacity=RESERVOIR_SIZE, seed=0)
        numbers = [float(v) for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
        reservoir.add(np.asarray(numbers, dtype=np.float64))
        column = drift.numeric_column_profile(len(values), len(values) - len(present), reservoir)
    else:
        counts = Counter(label_key(v) for v in present)
        column = drift.categorical_column_profile(len(values), len(values) - len(present), dict(counts))
    return {"rows": len(values), "columns": {PREDICTION: column}}


# --- live profile and quality ----------------------------------------------------------------------


def monitored_columns(contract: Contract, policy: MonitoringPolicy) -> list[Column]:
    """The features whose values reach the capture: never pii; confidential only when hashed."""
    return [
        c
        for c in contract.features
        if c.classification != "pii"
        and not (c.classification == "confidential" and policy.confidential == "drop")
    ]


def _json_kind_fits(column: Column, value: Any) -> bool:
    """Whether a JSON value is of the kind the column's type is sent as (serving's rule)."""
    if column.type in _NUMERIC:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if column.type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def _as_text(column: Column, value: Any, null_text: str) -> str:
    """A JSON value as the CSV text the validator reads: null empty, booleans ``true``/``false``,
    a whole float of an integer column without its ``.0`` (JSON ``3.0`` is the integer 3)."""
    if value is None:
        return null_text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if column.type == "integer" and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


class _FeatureValues:
    """One feature's values in a window, sorted into what the checker reads and what it cannot."""

    def __init__(self, column: Column, null_text: str) -> None:
        self.column = column
        self.texts: list[str] = []
        self.hashed: list[str] = []
        self.wrong_type = 0
        self.absent = 0
        self._null_text = null_text

    def add(self, inputs: Mapping[str, Any]) -> None:
        if self.column.name not in inputs:
            self.absent += 1
            self.texts.append(self._null_text)  # a feature left out is a value missing
            return
        value = inputs[self.column.name]
        if isinstance(value, str) and value.startswith(HASH_PREFIX) and self.column.sensitive:
            self.hashed.append(value)
        elif value is None or _json_kind_fits(self.column, value):
            self.texts.append(_as_text(self.column, value, self._null_text))
        else:
            self.wrong_type += 1


def _inputs(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A record's inputs; a request item that was not a JSON object (refused as invalid) has none."""
    inputs = record.get("inputs")
    return inputs if isinstance(inputs, Mapping) else {}


def _checker_issues(
    column: Column, contract: Contract, texts: Sequence[str]
) -> tuple[ColumnChecker, IssueLog]:
    checker = ColumnChecker(column, contract.format, unique=None, seed=0)
    log = IssueLog()
    if texts:
        rows = np.arange(1, len(texts) + 1)
        checker.feed(list(texts), rows, rows, log)
    return checker, log


def _rejected_values(column: Column, contract: Contract, texts: Sequence[str], log: IssueLog) -> int:
    """How many values the log's issues cover: the issue count when one code fired; else each distinct
    offending value checked alone (a value may break several rules, and counts once)."""
    codes = [(code, issue.count) for (code, _), issue in log.issues.items() if code in REASONS]
    if len(codes) <= 1:
        return sum(n for _, n in codes)
    rejected = 0
    for text, n in Counter(texts).items():
        _, alone = _checker_issues(column, contract, [text])
        if alone:
            rejected += n
    return rejected


def _quality_and_profiles(
    records: Sequence[Mapping[str, Any]], contract: Contract, policy: MonitoringPolicy
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    null_text = contract.format.null_values[0] if contract.format.null_values else ""
    inputs_of = [_inputs(r) for r in records]
    carried = {name for inputs in inputs_of for name in inputs}
    features = [c for c in monitored_columns(contract, policy) if c.name in carried]
    values = {c.name: _FeatureValues(c, null_text) for c in features}
    for inputs in inputs_of:
        for feature in values.values():
            feature.add(inputs)

    profile_columns: dict[str, Any] = {}
    hashed_features: list[str] = []
    by_feature: dict[str, Any] = {}
    by_reason: Counter[str] = Counter()
    checked_total = rejected_total = 0
    for name, feature in values.items():
        column = feature.column
        checker, log = _checker_issues(column, contract, feature.texts)
        reasons: Counter[str] = Counter()
        for (code, _), issue in log.issues.items():
            if code in REASONS:
                reasons[REASONS[code]] += issue.count
        if feature.wrong_type:
            reasons[WRONG_TYPE] += feature.wrong_type
        rejected = _rejected_values(column, contract, feature.texts, log) + feature.wrong_type
        checked = len(feature.texts) + feature.wrong_type
        checked_total += checked
        rejected_total += rejected
        by_reason.update(reasons)
        by_feature[name] = {
            "values": checked,
            "rejected": rejected,
            "quality": (checked - rejected) / checked if checked else None,
            "reasons": dict(sorted(reasons.items())),
            "hashed": len(feature.hashed),
        }
        if feature.hashed:
            hashed_features.append(name)
            counts = Counter(feature.hashed)
            nulls = sum(1 for t in feature.texts if t == null_text)
            profile_columns[name] = drift.categorical_column_profile(
                len(records), nulls, dict(counts), len(feature.texts) - nulls
            )
            continue
        column_profile = checker.profile()
        if column_profile is not None:
            # Wrong-kind values are in no sample or count: like unreadable cells, they count as missing.
            column_profile["count"] += feature.wrong_type
            column_profile["invalid"] += feature.wrong_type
            profile_columns[name] = column_profile
    quality = (checked_total - rejected_total) / checked_total if checked_total else None
    report = {
        "quality": quality,
        "values": checked_total,
        "rejected": rejected_total,
        "floor": policy.quality.floor,
        "by_reason": dict(sorted(by_reason.items())),
        "by_feature": by_feature,
    }
    return report, {"rows": len(records), "columns": profile_columns}, hashed_features


def live_profile(
    records: Sequence[Mapping[str, Any]], contract: Contract, policy: MonitoringPolicy | None = None
) -> dict[str, Any]:
    """The drift profile (the validator's format) of the records' masked inputs."""
    _, profile, _ = _quality_and_profiles(
        records, contract, policy or MonitoringPolicy.from_contract(contract)
    )
    return profile


def input_quality(
    records: Sequence[Mapping[str, Any]], contract: Contract, policy: MonitoringPolicy | None = None
) -> dict[str, Any]:
    """The share of input values the contract would accept, by feature and reason."""
    quality, _, _ = _quality_and_profiles(
        records, contract, policy or MonitoringPolicy.from_contract(contract)
    )
    return quality


# --- the window --------------------------------------------------------------------------------------


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    finite = np.asarray(
        [v for v in values if isinstance(v, int | float) and math.isfinite(v)], dtype=np.float64
    )
    if finite.size == 0:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(finite, [50, 95, 99]).tolist()
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _volume(monitored: Sequence[Mapping[str, Any]], shadow: int) -> dict[str, Any]:
    return {
        "records": len(monitored),
        "requests": len({r.get("request_id") for r in monitored}),
        "by_role": dict(sorted(Counter(str(r.get("role")) for r in monitored).items())),
        "by_version": dict(sorted(Counter(str(r.get("version")) for r in monitored).items())),
        "shadow_records": shadow,
    }


def _errors(monitored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    status = Counter(str(r.get("status")) for r in monitored)
    n = len(monitored)
    return {
        "invalid": status.get("invalid", 0),
        "error": status.get("error", 0),
        "invalid_rate": status.get("invalid", 0) / n if n else None,
        "error_rate": status.get("error", 0) / n if n else None,
    }


def _latency(monitored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    per_request: dict[Any, float] = {}
    for record in monitored:
        latency = record.get("latency_ms")
        if record.get("request_id") not in per_request and isinstance(latency, int | float):
            per_request[record.get("request_id")] = float(latency)
    return {"requests": len(per_request), **_percentiles(list(per_request.values()))}


def _drift_section(
    profile: dict[str, Any],
    reference_profile: Mapping[str, Any],
    contract: Contract,
    hashed: Sequence[str],
    policy: MonitoringPolicy,
    enough: bool,
) -> dict[str, Any]:
    compared = [name for name in profile["columns"] if name not in hashed]
    report = drift.compare(reference_profile, profile, contract.drift, columns=compared)
    features = report["features"]
    share = len(report["drifted_features"]) / len(features) if features else 0.0
    if not enough or report["verdict"] == "insufficient_data" or not features:
        verdict = "insufficient_data"
    elif report["verdict"] == "drifted" and share > policy.drift.threshold:
        verdict = "breach"
    else:
        verdict = "ok"
    report.update(
        drifted_share=share,
        threshold=policy.drift.threshold,
        hashed_features=sorted(hashed),
        window_verdict=verdict,
    )
    return report


def _prediction_drift_section(
    monitored: Sequence[Mapping[str, Any]],
    reference: Mapping[str, Any] | None,
    contract: Contract,
    enough: bool,
) -> dict[str, Any]:
    if not reference:
        return {"verdict": "insufficient_data", "reasons": ["no reference predictions for this version"]}
    kind = "numeric" if reference.get("kind") == "numeric" else "labels"
    current = _live_prediction_profile(monitored, kind)
    report = drift.compare(_prediction_profile(reference), current, contract.drift, columns=[PREDICTION])
    feature = report["features"].get(PREDICTION, {})
    if not enough or report["verdict"] == "insufficient_data":
        verdict = "insufficient_data"
    else:
        verdict = "breach" if report["verdict"] == "drifted" else "ok"
    statistics = {
        k: feature.get(k)
        for k in ("psi", "ks_statistic", "ks_pvalue", "chi2", "chi2_pvalue", "js_distance")
        if k in feature
    }
    if kind == "labels":
        statistics["counts"] = current["columns"][PREDICTION]["counts"]
    return {
        "kind": kind,
        **statistics,
        "verdict": verdict,
        "drift_verdict": report["verdict"],
        "reasons": feature.get("reasons", report["reasons"]),
    }


def window_report(
    records: Sequence[Mapping[str, Any]],
    *,
    contract: Contract,
    policy: MonitoringPolicy,
    reference_profile: Mapping[str, Any],
    reference_predictions: Mapping[str, Any] | None,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """The window's report (plain JSON): volume, errors, latency, quality, drift, prediction_drift and
    ``verdicts`` {"drift", "prediction_drift", "quality"}: each ``ok``, ``breach`` or
    ``insufficient_data``."""
    monitored = [r for r in records if r.get("role") in JOINED_ROLES]
    shadow = sum(1 for r in records if r.get("role") == "shadow")
    enough = len(monitored) >= policy.min_requests
    quality, profile, hashed = _quality_and_profiles(monitored, contract, policy)
    drift_report = _drift_section(profile, reference_profile, contract, hashed, policy, enough)
    prediction_drift = _prediction_drift_section(monitored, reference_predictions, contract, enough)
    if not enough or quality["quality"] is None:
        quality_verdict = "insufficient_data"
    else:
        quality_verdict = "breach" if quality["quality"] < policy.quality.floor else "ok"
    quality["verdict"] = quality_verdict
    reasons = []
    if not enough:
        reasons.append(
            f"{len(monitored)} records, fewer than monitoring.min_requests {policy.min_requests}: too few to judge"
        )
    return {
        "model": contract.dataset,
        "start": _iso(start),
        "end": _iso(end),
        "volume": _volume(monitored, shadow),
        "errors": _errors(monitored),
        "latency": _latency(monitored),
        "quality": quality,
        "drift": drift_report,
        "prediction_drift": prediction_drift,
        "verdicts": {
            "drift": drift_report["window_verdict"],
            "prediction_drift": prediction_drift["verdict"],
            "quality": quality_verdict,
        },
        "reasons": reasons,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
