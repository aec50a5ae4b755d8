"""The promotion gates: is a candidate good enough to replace the champion (or to be the first model)?

Pure functions, numpy and the standard library only (this runs in Lambda). Each gate returns a
``GateResult``: ``figure`` holds the numbers it judged (plain JSON values, None for undefined) and
goes into the registry record as it is; ``reason`` is a sentence a person can act on. ``evaluate``
runs the gates a policy asks for and turns them into a ``Verdict``.

What ``evaluate`` takes, all JSON-like (the evaluator assembles it from the candidate's artifacts
under ``models/<dataset>/candidates/<run-id>/`` and the champion's registry record)::

    candidate = {
        "task": "classification",               # optional; must be the policy's task
        "primary_metric": "roc_auc",            # metrics.json; default: the task's DEFAULT_METRIC
        "metrics": {"roc_auc": 0.97, ...},      # measured on the evaluation rows: the candidate's holdout
        "parity": {"passed": true, "max_abs_diff": 1e-7, "label_flips": 0, "tolerance": 1e-5, ...},
        "schema": {...},                        # input_schema.json: features, target, task, classes
        "latency_ms": {"p50": 0.4, "p99": 1.9}, # single-row predictions of model.onnx, measured
        "model_bytes": 48213,                   # size of model.onnx
        "holdout": {                            # needed only when the policy asks for significance
            "y_true": [0, 1, ...],              # the holdout target, as labels (mapped by schema.classes)
            "classes": [0, 1],                  # optional: the probability columns' labels if not schema's
            "predictions": [[0.9, 0.1], ...],   # probabilities (n, classes) or predictions (n,)
        },
    }
    champion = {                                # None for a dataset's first model
        "metrics": {...},                       # the champion scored ON THE SAME ROWS as the candidate
        "schema": {...},
        "holdout": {"predictions": [...]},      # the champion's predictions on those rows, same order
        "comparison": {"rows": 180, "problem": None, ...},  # optional: rows compared (0: none could
                                                # be: the comparison gate), why some could not
        "slices": {"earlier": {...}, "new": {...}},  # optional: rows, uploads and both models'
                                                # metrics per slice (chalicelib.registry.scoring)
        "earlier_positions": [...],             # optional: which compared rows are earlier (bootstrap)
    }

The champion's metrics must come from the candidate's holdout rows (the evaluator runs the
champion's ONNX on ``holdout.csv``; ``chalicelib.registry.metrics.compute`` gives the numbers), not
from the champion's own training run: both models must be measured on the same rows, which neither
was trained on (the split is a stable hash of the row id: while the contract's split fractions stay
the same, a candidate's holdout row was never among the champion's training rows either).

With a champion: parity, schema, primary metric, significance (if the policy asks), guard metrics
(if any), the earlier slice (``slices.combine`` "guard", when slices are given), latency, size; a
champion that could score no row gives the comparison gate instead of the metric gates. Without
one: parity, floors, latency, size. The decision:

* ``reject`` when any gate failed, except for failures marked ``needs_approval`` (a breaking schema,
  the earlier slice under ``on_earlier_worse`` "approval", the comparison);
* ``pending_approval`` when the only failures need approval, or when every gate passed and the
  policy's mode is ``manual``;
* ``promote`` otherwise.

``Verdict.passed`` is strict, every gate passed; act on ``decision``. A breaking schema that needs
approval therefore gives ``passed=False`` with ``decision="pending_approval"``, and a manual policy
gives ``passed=True`` with ``decision="pending_approval"``.

Comparisons against thresholds allow a relative slack of 1e-12: an improvement of "exactly"
``min_delta`` (0.3 - 0.2 against 0.1, say) passes though floating point makes it 0.09999999999999998.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from chalicelib.registry.metrics import (
    CLASSIFICATION_METRICS,
    class_indices,
    prepare,
)
from chalicelib.registry.policy import PromotionPolicy
from chalicelib.training.settings import DEFAULT_METRIC, METRICS

Decision = Literal["promote", "pending_approval", "reject"]
PROMOTE: Decision = "promote"
PENDING_APPROVAL: Decision = "pending_approval"
REJECT: Decision = "reject"

# Relative slack of threshold comparisons (see the module docstring).
_SLACK = 1e-12
# Largest resample-weight block held at once (cells of float64): 2,000,000 cells = 16 MB, whatever
# the holdout size, so 100,000 resamples of a large holdout fit a small Lambda.
_BLOCK_CELLS = 2_000_000
_SHOWN_UPLOADS = 5  # uploads a reason names


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    figure: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "figure": self.figure, "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    gates: list[GateResult]
    decision: Decision
    first_model: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def reason(self) -> str:
        """One paragraph for a person: why this decision."""
        # A change the policy accepted is still named (a breaking schema change, say).
        accepted = "".join(
            f" ({g.name}: {g.reason})" for g in self.gates if g.passed and g.figure.get("breaking")
        )
        if self.decision == PROMOTE:
            return f"every gate passed: promote{accepted}"
        if self.decision == PENDING_APPROVAL and not self.failed:
            return f"every gate passed; the policy's mode is manual: a person must approve the promotion{accepted}"
        # Each gate's reason its own clause (a reason may end in its own separator or full stop).
        return "; ".join(f"{g.name}: {g.reason.strip().rstrip(';.').rstrip()}" for g in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "decision": self.decision,
            "first_model": self.first_model,
            "reason": self.reason,
            "gates": [g.to_dict() for g in self.gates],
            "notes": list(self.notes),
        }


# --- helpers --------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """A plain float for a figure, None when missing or not finite (NaN is not JSON)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _slack(*values: float) -> float:
    return _SLACK * max(1.0, *(abs(v) for v in values))


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.6g}"


def shown_uploads(uploads: Sequence[Mapping[str, Any]]) -> str:
    """Uploads for a sentence: the first few by name, then how many more (the record lists them all)."""
    names = [str(u.get("upload")) for u in uploads]
    more = len(names) - _SHOWN_UPLOADS
    return ", ".join(names[:_SHOWN_UPLOADS]) + (f" and {more} more" if more > 0 else "")


def _direction(metric: str, directions: Mapping[str, bool]) -> bool:
    if metric not in directions:
        raise ValueError(f"no direction known for metric {metric!r} (known: {', '.join(directions)})")
    return directions[metric]


def _better(greater_is_better: bool) -> str:
    return "higher" if greater_is_better else "lower"


# --- the gates -------------------------------------------------------------------------------------


def primary_metric_gate(
    metric: str,
    candidate_value: float | None,
    champion_value: float | None,
    min_delta: float,
    greater_is_better: bool,
) -> GateResult:
    """The candidate improves the primary metric by at least ``min_delta``, in its better direction."""
    candidate, champion = _num(candidate_value), _num(champion_value)
    figure: dict[str, Any] = {
        "metric": metric,
        "candidate": candidate,
        "champion": champion,
        "improvement": None,
        "min_delta": float(min_delta),
        "greater_is_better": greater_is_better,
    }
    if candidate is None or champion is None:
        which = "candidate's" if candidate is None else "champion's"
        return GateResult(
            "primary_metric",
            False,
            figure,
            f"the {which} {metric} is undefined on the evaluation rows, so the models cannot be compared; "
            "check that the holdout holds enough rows (and every class)",
        )
    improvement = candidate - champion if greater_is_better else champion - candidate
    figure["improvement"] = improvement
    passed = improvement >= min_delta - _slack(candidate, champion, min_delta)
    values = f"{_fmt(candidate)} vs {_fmt(champion)} for the champion, {_better(greater_is_better)} is better"
    if passed:
        reason = (
            f"{metric} improves by {_fmt(improvement)} ({values}), at least the {_fmt(min_delta)} required"
        )
    elif improvement < 0:
        reason = (
            f"{metric} is worse than the champion's by {_fmt(-improvement)} ({values}); "
            "keep the champion, or retrain with more data or another model"
        )
    else:
        reason = (
            f"{metric} improves by only {_fmt(improvement)} ({values}), less than the {_fmt(min_delta)} "
            "required by promotion.min_delta; keep the champion, or lower min_delta if such gains matter"
        )
    return GateResult("primary_metric", passed, figure, reason)


class BootstrapInterval(NamedTuple):
    low: float  # NaN when too few resamples had the metric defined
    high: float
    point: float  # the difference on all rows
    resamples: int
    defined: int  # resamples on which both metrics were defined (the interval's basis)


def paired_bootstrap(
    candidate_scores_per_row: Any,
    champion_scores_per_row: Any,
    metric: str,
    y_true: Any,
    n_samples: int,
    confidence: float,
    seed: int,
    classes: Sequence[Any] | None = None,
) -> BootstrapInterval:
    """The paired bootstrap of ``metric(candidate) - metric(champion)``, with its bookkeeping.

    Resampling is of rows, the same rows for both models (paired: the noise of which rows happen to
    be in the holdout cancels, which is what makes small improvements detectable). Resample ``b``
    is, in order, ``idx = rng.integers(0, n, size=n)`` with ``rng = np.random.default_rng(seed)``;
    the interval is the percentile one, ``np.quantile`` (linear) at ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` of the differences. Resamples on which the metric is undefined (AUC of
    a resample holding one class) are left out; if more than half are, the interval is NaN.

    Classification: scores are probabilities ``(n, k)`` in the order of ``classes``, and ``y_true``
    labels (mapped through ``classes``) or, without ``classes``, column indices. Regression: scores
    are predictions ``(n,)``.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    candidate = np.asarray(candidate_scores_per_row, dtype=np.float64)
    champion = np.asarray(champion_scores_per_row, dtype=np.float64)
    if candidate.shape != champion.shape:
        raise ValueError(f"the models' predictions differ in shape: {candidate.shape} vs {champion.shape}")
    if classes is not None:
        y = class_indices(y_true, classes)
    elif metric in CLASSIFICATION_METRICS:
        y = np.asarray(y_true).astype(np.int64)
    else:
        y = np.asarray(y_true, dtype=np.float64)
    n = len(y)
    if n == 0:
        raise ValueError("no rows to resample")
    metric_of_candidate = prepare(metric, y, candidate)
    metric_of_champion = prepare(metric, y, champion)
    ones = np.ones((1, n))
    point = float(metric_of_candidate(ones)[0] - metric_of_champion(ones)[0])

    rng = np.random.default_rng(seed)
    differences = np.empty(n_samples)
    block = max(1, min(n_samples, _BLOCK_CELLS // n))
    for start in range(0, n_samples, block):
        size = min(block, n_samples - start)
        weights = np.empty((size, n))
        for b in range(size):
            # One draw per resample, in order: the documented stream a reference can reproduce
            # (numpy's bounded-integer buffer makes one (size, n) draw differ from size draws of n).
            weights[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        differences[start : start + size] = metric_of_candidate(weights) - metric_of_champion(weights)
    defined = differences[np.isfinite(differences)]
    if len(defined) == 0 or 2 * len(defined) < n_samples:
        low = high = float("nan")
    else:
        alpha = 1.0 - confidence
        low, high = (float(q) for q in np.quantile(defined, [alpha / 2, 1 - alpha / 2]))
    return BootstrapInterval(low, high, point, n_samples, len(defined))


def paired_bootstrap_ci(
    candidate_scores_per_row: Any,
    champion_scores_per_row: Any,
    metric: str,
    y_true: Any,
    n_samples: int,
    confidence: float,
    seed: int,
    classes: Sequence[Any] | None = None,
) -> tuple[float, float, float]:
    """``(low, high, point)`` of the paired bootstrap interval of candidate - champion (see ``paired_bootstrap``)."""
    result = paired_bootstrap(
        candidate_scores_per_row,
        champion_scores_per_row,
        metric,
        y_true,
        n_samples,
        confidence,
        seed,
        classes,
    )
    return result.low, result.high, result.point


def significance_gate(
    low: float,
    high: float,
    greater_is_better: bool,
    *,
    metric: str | None = None,
    confidence: float | None = None,
    point: float | None = None,
) -> GateResult:
    """The interval of candidate - champion excludes zero on the better side (low > 0, or high < 0)."""
    lo, hi = _num(low), _num(high)
    figure: dict[str, Any] = {
        "metric": metric,
        "low": lo,
        "high": hi,
        "point": _num(point),
        "confidence": confidence,
        "greater_is_better": greater_is_better,
    }
    what = f"{metric} difference" if metric else "difference"
    level = f"{confidence:.0%} " if confidence is not None else ""
    if lo is None or hi is None:
        return GateResult(
            "significance",
            False,
            figure,
            f"the {level}interval of the {what} is undefined: the metric was undefined on most "
            "resamples (a holdout this small, or with a rare class, cannot show an improvement)",
        )
    passed = lo > 0 if greater_is_better else hi < 0
    interval = f"[{_fmt(lo)}, {_fmt(hi)}]"
    if passed:
        reason = f"the {level}interval of the {what} (candidate - champion) {interval} excludes 0: a real improvement"
    else:
        reason = (
            f"the {level}interval of the {what} (candidate - champion) {interval} does not lie "
            f"{'above' if greater_is_better else 'below'} 0: the improvement may be chance; "
            "wait for more holdout rows, or turn promotion.significance off"
        )
    return GateResult("significance", passed, figure, reason)


def guard_metrics_gate(
    candidate_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any],
    tolerances: Mapping[str, float],
    directions: Mapping[str, bool],
) -> GateResult:
    """No guard metric gets worse than the champion's by more than its tolerance."""
    per_metric: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for metric, tolerance in tolerances.items():
        greater = _direction(metric, directions)
        candidate, champion = _num(candidate_metrics.get(metric)), _num(champion_metrics.get(metric))
        entry: dict[str, Any] = {
            "candidate": candidate,
            "champion": champion,
            "worsening": None,
            "tolerance": float(tolerance),
            "greater_is_better": greater,
            "passed": False,
        }
        per_metric[metric] = entry
        if candidate is None or champion is None:
            problems.append(
                f"{metric} is undefined for the {'candidate' if candidate is None else 'champion'}"
            )
            continue
        worsening = champion - candidate if greater else candidate - champion
        entry["worsening"] = worsening
        entry["passed"] = worsening <= tolerance + _slack(candidate, champion, tolerance)
        if not entry["passed"]:
            problems.append(
                f"{metric} is worse by {_fmt(worsening)} ({_fmt(candidate)} vs {_fmt(champion)}), "
                f"more than its tolerance {_fmt(tolerance)}"
            )
    figure = {"metrics": per_metric}
    if not tolerances:
        return GateResult("guard_metrics", True, figure, "no guard metrics in the policy")
    if problems:
        return GateResult(
            "guard_metrics",
            False,
            figure,
            "; ".join(problems)
            + ": the gain in the primary metric costs too much elsewhere; keep the champion, "
            "or widen promotion.guard_metrics if that trade is acceptable",
        )
    return GateResult(
        "guard_metrics",
        True,
        figure,
        f"{', '.join(tolerances)} within tolerance of the champion",
    )


def parity_gate(parity: Mapping[str, Any] | None) -> GateResult:
    """The ONNX model computes what the measured scikit-learn model did (the training run's check)."""
    if not parity:
        return GateResult(
            "parity",
            False,
            {"passed": False, "max_abs_diff": None, "label_flips": None, "tolerance": None},
            "the candidate has no parity report: the served model was never compared with the measured "
            "one; retrain so the job writes parity.json",
        )
    diff, tolerance = _num(parity.get("max_abs_diff")), _num(parity.get("tolerance"))
    flips = parity.get("label_flips")
    figure = {
        "passed": bool(parity.get("passed")),
        "max_abs_diff": diff,
        "label_flips": int(flips) if isinstance(flips, int | float) and math.isfinite(flips) else None,
        "tolerance": tolerance,
        "rows": parity.get("rows"),
    }
    # Re-checked rather than trusting "passed" alone: a record edited by hand or by a bug must not
    # promote a model whose ONNX outputs differ from what was measured.
    consistent = (
        diff is not None and tolerance is not None and diff <= tolerance and figure["label_flips"] == 0
    )
    if parity.get("passed") is True and consistent:
        return GateResult(
            "parity",
            True,
            figure,
            f"onnxruntime matches scikit-learn within {_fmt(diff)} (tolerance {_fmt(tolerance)}), no label flips",
        )
    if parity.get("passed") is True:
        reason = (
            f"the parity report says passed but its figures do not hold (max difference {_fmt(diff)}, "
            f"tolerance {_fmt(tolerance)}, label flips {figure['label_flips']}); retrain to regenerate it"
        )
    else:
        reason = (
            f"onnxruntime and scikit-learn differ by {_fmt(diff)} (tolerance {_fmt(tolerance)}) with "
            f"{figure['label_flips']} label flip(s): the served model would not be the measured one; "
            "check the ONNX conversion of this model family"
        )
    return GateResult("parity", False, figure, reason)


def _features(schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f["name"]: f for f in schema.get("features", [])}


def _feature_changes(
    name: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(breaking, compatible) differences of one feature: what a request valid before would now fail."""
    breaking: list[str] = []
    compatible: list[str] = []
    if old.get("type") != new.get("type"):
        breaking.append(f"feature {name} changed type from {old.get('type')} to {new.get('type')}")
    if old.get("nullable") and not new.get("nullable"):
        breaking.append(f"feature {name} no longer accepts null")
    elif not old.get("nullable") and new.get("nullable"):
        compatible.append(f"feature {name} now accepts null")
    old_allowed, new_allowed = old.get("allowed"), new.get("allowed")
    if new_allowed is not None:
        if old_allowed is None:
            breaking.append(f"feature {name} now only allows {list(new_allowed)}")
        else:
            removed = [v for v in old_allowed if v not in new_allowed]
            added = [v for v in new_allowed if v not in old_allowed]
            if removed:
                breaking.append(f"feature {name} no longer allows {removed}")
            if added:
                compatible.append(f"feature {name} now also allows {added}")
    elif old_allowed is not None:
        compatible.append(f"feature {name} no longer restricts its values")
    for key, narrower in (("min", lambda a, b: a > b), ("max", lambda a, b: a < b)):
        old_bound, new_bound = old.get(key), new.get(key)
        if new_bound is not None and (old_bound is None or narrower(new_bound, old_bound)):
            breaking.append(f"feature {name} {key} narrowed from {old_bound} to {new_bound}")
        elif old_bound is not None and new_bound != old_bound:
            compatible.append(f"feature {name} {key} widened from {old_bound} to {new_bound}")
    return breaking, compatible


def schema_gate(
    candidate_schema: Mapping[str, Any] | None,
    champion_schema: Mapping[str, Any] | None,
    require_approval_on_breaking: bool,
) -> GateResult:
    """Would requests and clients that work with the champion keep working with the candidate?

    Breaking: a task, target or class change; a removed feature; an added feature that is not
    nullable; a changed type; null no longer accepted; allowed values or a min/max range narrowed.
    Compatible (noted): a new nullable feature, widened values or ranges. A breaking change fails
    the gate with ``needs_approval`` when the policy requires approval (the verdict is then
    ``pending_approval``), and passes, noted, when it does not.
    """
    if not candidate_schema or not champion_schema:
        which = "candidate" if not candidate_schema else "champion"
        return GateResult(
            "schema",
            False,
            {"breaking": [], "compatible": [], "needs_approval": False},
            f"the {which} has no input schema to compare; republish it with input_schema.json",
        )
    breaking: list[str] = []
    compatible: list[str] = []
    for key in ("task", "target"):
        if candidate_schema.get(key) != champion_schema.get(key):
            breaking.append(f"{key} changed from {champion_schema.get(key)} to {candidate_schema.get(key)}")
    if candidate_schema.get("classes") != champion_schema.get("classes"):
        # Clients read probabilities by position: another order is as breaking as another set.
        breaking.append(
            f"classes changed from {champion_schema.get('classes')} to {candidate_schema.get('classes')}"
        )
    old, new = _features(champion_schema), _features(candidate_schema)
    for name in old:
        if name not in new:
            breaking.append(f"feature {name} removed")
        else:
            more_breaking, more_compatible = _feature_changes(name, old[name], new[name])
            breaking += more_breaking
            compatible += more_compatible
    for name in new:
        if name not in old:
            if new[name].get("nullable"):
                compatible.append(f"feature {name} added (nullable, may be left out)")
            else:
                breaking.append(f"feature {name} added and required (not nullable)")
    needs_approval = bool(breaking) and require_approval_on_breaking
    figure = {"breaking": breaking, "compatible": compatible, "needs_approval": needs_approval}
    if not breaking:
        extra = f" ({'; '.join(compatible)})" if compatible else ""
        return GateResult(
            "schema", True, figure, f"the input schema is compatible with the champion's{extra}"
        )
    changes = "; ".join(breaking)
    if needs_approval:
        return GateResult(
            "schema",
            False,
            figure,
            f"the input schema changes incompatibly ({changes}): callers of /predict must change; "
            "a person must approve this promotion after telling them",
        )
    return GateResult(
        "schema",
        True,
        figure,
        f"the input schema changes incompatibly ({changes}), accepted because "
        "promotion.require_approval_on_breaking_schema is false",
    )


def latency_gate(p50_ms: float | None, p99_ms: float | None, budget_ms: float) -> GateResult:
    """The single-row p99 latency is within the budget (equal passes); p50 is recorded."""
    p50, p99 = _num(p50_ms), _num(p99_ms)
    figure = {"p50_ms": p50, "p99_ms": p99, "budget_ms": float(budget_ms)}
    if p99 is None:
        return GateResult(
            "latency", False, figure, "no p99 latency was measured; the evaluator must time model.onnx"
        )
    if p99 <= budget_ms:
        return GateResult(
            "latency",
            True,
            figure,
            f"p99 {_fmt(p99)} ms (p50 {_fmt(p50)} ms) within the {_fmt(budget_ms)} ms budget",
        )
    return GateResult(
        "latency",
        False,
        figure,
        f"p99 {_fmt(p99)} ms (p50 {_fmt(p50)} ms) exceeds the {_fmt(budget_ms)} ms budget: use a smaller "
        "model (fewer trees, less depth) or raise promotion.max_latency_ms",
    )


def size_gate(model_bytes: int | None, budget_bytes: int) -> GateResult:
    """The ONNX model fits the size budget (equal passes)."""
    size = None if model_bytes is None or isinstance(model_bytes, bool) else int(model_bytes)
    figure = {"model_bytes": size, "budget_bytes": int(budget_bytes)}
    mib = 1024 * 1024
    if size is None:
        return GateResult("size", False, figure, "the model's size is unknown; the evaluator must record it")
    if size <= budget_bytes:
        return GateResult(
            "size", True, figure, f"{size / mib:.3g} MiB within the {budget_bytes / mib:.3g} MiB budget"
        )
    return GateResult(
        "size",
        False,
        figure,
        f"{size / mib:.3g} MiB exceeds the {budget_bytes / mib:.3g} MiB budget: use a smaller model "
        "(fewer or shallower trees) or raise promotion.max_model_bytes",
    )


def floors_gate(
    candidate_metrics: Mapping[str, Any],
    floors: Mapping[str, float],
    directions: Mapping[str, bool],
) -> GateResult:
    """A first model reaches each floor: at least it when greater is better, at most it otherwise."""
    per_metric: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for metric, floor in floors.items():
        greater = _direction(metric, directions)
        value = _num(candidate_metrics.get(metric))
        entry: dict[str, Any] = {
            "value": value,
            "floor": float(floor),
            "greater_is_better": greater,
            "passed": False,
        }
        per_metric[metric] = entry
        if value is None:
            problems.append(f"{metric} is undefined")
            continue
        slack = _slack(value, floor)
        entry["passed"] = value >= floor - slack if greater else value <= floor + slack
        if not entry["passed"]:
            problems.append(
                f"{metric} {_fmt(value)} is {'below' if greater else 'above'} its "
                f"{'floor' if greater else 'ceiling'} {_fmt(floor)}"
            )
    figure = {"metrics": per_metric}
    if not floors:
        return GateResult("floors", True, figure, "no floors in the policy")
    if problems:
        return GateResult(
            "floors",
            False,
            figure,
            "; ".join(problems) + ": this first model is not good enough to serve; check the data and "
            "the target, or change promotion.floors",
        )
    return GateResult("floors", True, figure, f"{', '.join(floors)} reach their floors")


def comparison_gate(comparison: Mapping[str, Any]) -> GateResult:
    """The champion could score none of the holdout rows: the models cannot be compared on the same
    rows. Not a metric failure (nothing was measured): a person decides, with the schema gate naming
    what changed."""
    figure = {**comparison, "needs_approval": True}
    return GateResult(
        "comparison",
        False,
        figure,
        f"{comparison.get('problem') or 'the champion cannot score the holdout'}; so the two models "
        "cannot be compared on the same rows: a person must approve the promotion (the schema gate "
        "says what changed)",
    )


def earlier_slice_gate(
    metric: str,
    earlier: Mapping[str, Any],
    new: Mapping[str, Any],
    greater_is_better: bool,
    tolerance: float,
    min_rows: int,
    on_worse: str,
    interval: tuple[float | None, float | None] | None = None,
    confidence: float | None = None,
) -> GateResult:
    """On the holdout rows of uploads the champion was trained on, the candidate's primary metric is
    no worse than the champion's beyond ``tolerance``: a candidate may not win on new uploads alone.

    ``interval``: the paired bootstrap interval of the worsening (champion's metric minus the
    candidate's, in the better direction) at ``confidence``; the candidate is then worse only when
    the whole interval lies beyond the tolerance (chance cannot explain it), and an undefined
    interval judges nothing. Without one, the point figures decide. Fewer than ``min_rows`` such
    rows, or a metric undefined on them: not judged (passes, saying so). A failure needs a person's
    approval (``on_worse`` "approval") or rejects ("reject")."""
    rows = int(earlier.get("rows") or 0)
    figures = earlier.get("metrics") or {}
    candidate = _num((figures.get("candidate") or {}).get(metric))
    champion = _num((figures.get("champion") or {}).get(metric))
    new_figures = new.get("metrics") or {}
    figure: dict[str, Any] = {
        "metric": metric,
        "rows": rows,
        "candidate": candidate,
        "champion": champion,
        "worsening": None,
        "tolerance": float(tolerance),
        "min_rows": int(min_rows),
        "greater_is_better": greater_is_better,
        "new_rows": int(new.get("rows") or 0),
        "new_candidate": _num((new_figures.get("candidate") or {}).get(metric)),
        "new_champion": _num((new_figures.get("champion") or {}).get(metric)),
        "needs_approval": False,
    }
    where = f"on the {rows} holdout rows of uploads the champion was trained on"
    if rows < min_rows:
        return GateResult(
            "earlier_slice",
            True,
            figure,
            f"only {rows} holdout rows come from uploads the champion was trained on (fewer than "
            f"promotion.slices.min_rows {min_rows}): not judged; the verdict rests on every row",
        )
    if candidate is None or champion is None:
        return GateResult(
            "earlier_slice",
            True,
            figure,
            f"{metric} is undefined {where}: not judged; the verdict rests on every row",
        )
    worsening = champion - candidate if greater_is_better else candidate - champion
    figure["worsening"] = worsening
    values = f"{_fmt(candidate)} vs {_fmt(champion)} for the champion, {_better(greater_is_better)} is better"
    if interval is not None:
        low, high = interval
        figure.update({"worsening_low": low, "worsening_high": high, "confidence": confidence})
        level = f"{confidence:.0%} " if confidence is not None else ""
        if low is None or high is None:
            return GateResult(
                "earlier_slice",
                True,
                figure,
                f"{where}, {metric} is {values}; the {level}interval of the difference is undefined "
                "(a metric undefined on most resamples): not judged; the verdict rests on every row",
            )
        if low <= tolerance + _slack(low, tolerance):
            return GateResult(
                "earlier_slice",
                True,
                figure,
                f"{where}, {metric} is {values}: not worse beyond promotion.slices.earlier_tolerance "
                f"{_fmt(tolerance)} (the {level}interval of the worsening is [{_fmt(low)}, {_fmt(high)}])",
            )
        values += f"; the {level}interval of the worsening is [{_fmt(low)}, {_fmt(high)}]"
    elif worsening <= tolerance + _slack(candidate, champion, tolerance):
        return GateResult(
            "earlier_slice",
            True,
            figure,
            f"{where}, {metric} is {values}: within promotion.slices.earlier_tolerance {_fmt(tolerance)}",
        )
    approval = on_worse == "approval"
    figure["needs_approval"] = approval
    since = (
        f"; on the {figure['new_rows']} rows of uploads since ({shown_uploads(new.get('uploads') or [])}) "
        f"it is {_fmt(figure['new_candidate'])} vs {_fmt(figure['new_champion'])}"
        if figure["new_rows"]
        else ""
    )
    reason = (
        f"{where}, {metric} is worse than the champion's by {_fmt(worsening)} ({values}), more than "
        f"promotion.slices.earlier_tolerance {_fmt(tolerance)}{since}: any gain comes from the new uploads "
        "alone, which may be wrong (an export error the contract cannot see) or a real change; "
    )
    reason += (
        "a person must approve the promotion after checking those uploads"
        if approval
        else "rejected, as promotion.slices.on_earlier_worse says"
    )
    return GateResult("earlier_slice", False, figure, reason)


# --- the verdict -----------------------------------------------------------------------------------


def _paired_interval(
    policy: PromotionPolicy,
    metric: str,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any],
    positions: Any = None,
) -> BootstrapInterval | str:
    """The paired bootstrap of metric(candidate) - metric(champion) on the holdout predictions (only
    the rows at ``positions``, when given), or why it cannot be had."""
    holdout = candidate.get("holdout") or {}
    champion_holdout = champion.get("holdout") or {}
    y_true = holdout.get("y_true")
    candidate_scores = holdout.get("predictions")
    champion_scores = champion_holdout.get("predictions")
    if y_true is None or candidate_scores is None or champion_scores is None:
        return (
            "the holdout target or a model's predictions on it are missing; the evaluator must score "
            "both models on holdout.csv"
        )
    classes = holdout.get("classes") or (candidate.get("schema") or {}).get("classes")
    candidate_scores = np.asarray(candidate_scores, dtype=np.float64)
    champion_scores = np.asarray(champion_scores, dtype=np.float64)
    champion_classes = (champion.get("schema") or {}).get("classes")
    if metric in CLASSIFICATION_METRICS and classes and champion_classes and champion_classes != classes:
        # Same classes in another order: reorder the champion's columns; other classes: incomparable.
        if sorted(map(str, champion_classes)) != sorted(map(str, classes)):
            return (
                f"the models predict different classes ({classes} vs {champion_classes}): their "
                "probabilities cannot be compared row by row"
            )
        column = {str(c): i for i, c in enumerate(champion_classes)}
        champion_scores = champion_scores[:, [column[str(c)] for c in classes]]
    if positions is not None:
        positions = np.asarray(positions, dtype=np.int64)
        y_true = [y_true[i] for i in positions]
        candidate_scores, champion_scores = candidate_scores[positions], champion_scores[positions]
    try:
        return paired_bootstrap(
            candidate_scores,
            champion_scores,
            metric,
            y_true,
            policy.bootstrap_samples,
            policy.confidence,
            policy.seed,
            classes if metric in CLASSIFICATION_METRICS else None,
        )
    except ValueError as exc:
        return f"the holdout predictions cannot be compared: {exc}"


def _significance(
    policy: PromotionPolicy,
    metric: str,
    greater: bool,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any],
) -> GateResult:
    figure_base = {"metric": metric, "confidence": policy.confidence, "greater_is_better": greater}
    interval = _paired_interval(policy, metric, candidate, champion)
    if isinstance(interval, str):
        missing = interval.startswith("the holdout target")
        return GateResult(
            "significance",
            False,
            {**figure_base, "low": None, "high": None, "point": None},
            f"the policy asks for significance but {interval}" if missing else interval,
        )
    result = significance_gate(
        interval.low,
        interval.high,
        greater,
        metric=metric,
        confidence=policy.confidence,
        point=interval.point,
    )
    result.figure.update({"resamples": interval.resamples, "defined": interval.defined, "seed": policy.seed})
    return result


def _worsening_interval(
    policy: PromotionPolicy,
    metric: str,
    greater: bool,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any],
    positions: Any,
) -> tuple[float | None, float | None]:
    """The interval of how much worse the candidate is on the rows at ``positions`` (None, None when
    it cannot be had: too few rows, a metric undefined on most resamples)."""
    interval = _paired_interval(policy, metric, candidate, champion, positions)
    if isinstance(interval, str):
        return None, None
    low, high = _num(interval.low), _num(interval.high)
    if low is None or high is None:
        return None, None
    return (-high, -low) if greater else (low, high)


def _metric_gates(
    policy: PromotionPolicy,
    metric: str,
    greater: bool,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any],
) -> list[GateResult]:
    """The gates comparing the two models' figures on the same rows, slices as the policy combines them."""
    directions = METRICS[policy.task]
    metrics = candidate.get("metrics") or {}
    champion_metrics = champion.get("metrics") or {}
    slices = champion.get("slices")
    earlier = (slices or {}).get("earlier") or {}
    mode = policy.slices.combine
    if mode == "earlier" and slices is not None and int(earlier.get("rows") or 0) >= policy.slices.min_rows:
        on = earlier.get("metrics") or {}
        primary = primary_metric_gate(
            metric,
            (on.get("candidate") or {}).get(metric),
            (on.get("champion") or {}).get(metric),
            policy.min_delta,
            greater,
        )
        primary = GateResult(
            primary.name,
            primary.passed,
            {**primary.figure, "slice": "earlier", "rows": int(earlier["rows"])},
            f"on the {earlier['rows']} holdout rows of uploads the champion was trained on "
            f"(promotion.slices.combine earlier), {primary.reason}",
        )
    else:
        primary = primary_metric_gate(
            metric, metrics.get(metric), champion_metrics.get(metric), policy.min_delta, greater
        )
    gates = [primary]
    if policy.significance:
        gates.append(_significance(policy, metric, greater, candidate, champion))
    if policy.guard_metrics:
        gates.append(guard_metrics_gate(metrics, champion_metrics, policy.guard_metrics, directions))
    if mode == "guard" and slices is not None:
        interval = None
        positions = champion.get("earlier_positions")
        judged = int(earlier.get("rows") or 0) >= policy.slices.min_rows
        if policy.slices.significance and judged and positions is not None:
            interval = _worsening_interval(policy, metric, greater, candidate, champion, positions)
        gates.append(
            earlier_slice_gate(
                metric,
                earlier,
                slices.get("new") or {},
                greater,
                policy.slices.earlier_tolerance,
                policy.slices.min_rows,
                policy.slices.on_earlier_worse,
                interval=interval,
                confidence=policy.confidence,
            )
        )
    return gates


def evaluate(
    policy: PromotionPolicy,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None = None,
) -> Verdict:
    """Run the gates the policy asks for and decide (the dict shapes are in the module docstring)."""
    task = candidate.get("task", policy.task)
    if task != policy.task:
        raise ValueError(f"the candidate is a {task} model, the policy is for {policy.task}")
    directions = METRICS[task]
    metric = candidate.get("primary_metric") or DEFAULT_METRIC[task]
    greater = _direction(metric, directions)
    metrics = candidate.get("metrics") or {}
    latency = candidate.get("latency_ms") or {}

    gates = [parity_gate(candidate.get("parity"))]
    notes = []
    if champion is None:
        gates.append(floors_gate(metrics, policy.floors or {}, directions))
        notes.append("first model of the dataset: judged against the floors, no champion to beat")
    else:
        gates.append(
            schema_gate(
                candidate.get("schema"), champion.get("schema"), policy.require_approval_on_breaking_schema
            )
        )
        comparison = champion.get("comparison") or {}
        if comparison.get("rows") == 0:
            gates.append(comparison_gate(comparison))
        else:
            if comparison.get("problem"):
                notes.append(
                    f"{comparison['problem']}; both models are compared on the other {comparison['rows']}"
                )
            gates += _metric_gates(policy, metric, greater, candidate, champion)
    gates.append(latency_gate(latency.get("p50"), latency.get("p99"), policy.max_latency_ms))
    gates.append(size_gate(candidate.get("model_bytes"), policy.max_model_bytes))

    failed = [g for g in gates if not g.passed]
    awaiting = [g for g in failed if g.figure.get("needs_approval")]
    decision: Decision
    if len(awaiting) < len(failed):
        decision = REJECT  # an approval cannot make up for a metric, parity, latency or size failure
    elif awaiting or policy.mode == "manual":
        decision = PENDING_APPROVAL
    else:
        decision = PROMOTE
    return Verdict(
        passed=not failed, gates=gates, decision=decision, first_model=champion is None, notes=notes
    )


__all__ = [
    "PENDING_APPROVAL",
    "PROMOTE",
    "REJECT",
    "BootstrapInterval",
    "Decision",
    "GateResult",
    "Verdict",
    "comparison_gate",
    "earlier_slice_gate",
    "evaluate",
    "floors_gate",
    "guard_metrics_gate",
    "latency_gate",
    "paired_bootstrap",
    "paired_bootstrap_ci",
    "parity_gate",
    "primary_metric_gate",
    "schema_gate",
    "significance_gate",
    "size_gate",
]
