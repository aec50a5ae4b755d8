"""A window's primary metric on the predictions its outcomes judge, with a bootstrap interval.

The metric is the registry's (``chalicelib.registry.metrics``: the training job's definitions,
computed from per-row predictions and resample weights), so the live figure and the champion's
holdout figure mean the same thing. The interval is a percentile bootstrap over the joined pairs:
``rule.bootstrap_samples`` resamples drawn at once as a weight matrix (seeded: the same pairs give the
same report). Each end is a one-sided bound at ``rule.confidence``.

The verdict (docs/monitoring.md): ``insufficient_data`` below ``rule.min_outcomes`` pairs (or a
metric undefined on them); ``breach`` when even the interval's better end is on the wrong side of
the floor (for a higher-is-better metric, the upper bound below it; for a lower-is-better one, the
lower bound above it): the model is worse than the floor with at least that confidence. ``ok``
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chalicelib.capture.policy import PerformanceRule
from chalicelib.monitoring.join import JoinResult, Pair, label_key
from chalicelib.registry import metrics

VERDICTS = ("ok", "breach", "insufficient_data")


# Metrics in the target's units (or unbounded): their tolerance is a share of the holdout value.
RELATIVE_METRICS = frozenset({"rmse", "mae", "log_loss"})
DEFAULT_TOLERANCE = {"absolute": 0.01, "relative": 0.10}


def default_floor(
    holdout_value: float, rule: PerformanceRule, greater_is_better: bool, metric: str | None = None
) -> float:
    """The floor a window is held to: the contract's ``performance.floor`` if set, else the champion's
    holdout value made worse by ``performance.tolerance``: an amount for bounded metrics (accuracy,
    f1, roc_auc, r2; default 0.01), a share of the holdout value for rmse, mae and log_loss (default
    0.10: they are in the target's units, and a holdout of a hundred rows puts its rmse a few
    percent off the live one by chance)."""
    if rule.floor is not None:
        return float(rule.floor)
    if metric in RELATIVE_METRICS:
        share = DEFAULT_TOLERANCE["relative"] if rule.tolerance is None else rule.tolerance
        margin = abs(holdout_value) * share
    else:
        margin = DEFAULT_TOLERANCE["absolute"] if rule.tolerance is None else rule.tolerance
    return float(holdout_value - margin if greater_is_better else holdout_value + margin)


def performance_report(
    pairs: JoinResult,
    *,
    task: str,
    metric: str,
    greater_is_better: bool,
    floor: float,
    rule: PerformanceRule,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"metric", "value", "low", "high", "confidence", "n", "coverage", "floor", "verdict",
    "reason"}`` for the joined pairs (plain JSON; None for figures not computed)."""
    n = pairs.matched
    report: dict[str, Any] = {
        "metric": metric,
        "value": None,
        "low": None,
        "high": None,
        "confidence": rule.confidence,
        "n": n,
        "coverage": pairs.coverage,
        "floor": floor,
        "greater_is_better": greater_is_better,
        "verdict": "insufficient_data",
        "reason": "",
    }
    if n < rule.min_outcomes:
        report["reason"] = (
            f"{n} predictions have outcomes, fewer than performance.min_outcomes {rule.min_outcomes}"
        )
        return report
    y_true, scores = truth_and_scores(pairs.pairs, task)
    weighted = metrics.prepare(metric, y_true, scores)
    value = float(weighted(np.ones((1, n)))[0])
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=rule.bootstrap_samples).astype(np.float64)
    resampled = weighted(weights)
    resampled = resampled[np.isfinite(resampled)]
    if not math.isfinite(value) or resampled.size == 0:
        report["reason"] = f"{metric} is undefined on these outcomes (one class only?)"
        return report
    low = float(np.quantile(resampled, 1.0 - rule.confidence))
    high = float(np.quantile(resampled, rule.confidence))
    better = high if greater_is_better else low
    breach = better < floor if greater_is_better else better > floor
    side = "upper" if greater_is_better else "lower"
    report.update(value=value, low=low, high=high)
    if breach:
        report["verdict"] = "breach"
        report["reason"] = (
            f"{metric} {value:.4g} on {n} outcomes; its {side} bound {better:.4g} ({rule.confidence:.0%} "
            f"one-sided) is {'below' if greater_is_better else 'above'} the floor {floor:.4g}"
        )
    else:
        report["verdict"] = "ok"
        report["reason"] = f"{metric} {value:.4g} on {n} outcomes; the floor {floor:.4g} is within reach"
    return report


def truth_and_scores(pairs: Sequence[Pair], task: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth and scores of joined pairs as ``metrics.prepare`` takes them (the rollout guards use it
    too: the candidate's and the champion's answers judged by the same outcomes).

    Classification: the probability columns are the classes of the first record's probabilities
    (records without probabilities score 1 on their predicted class); a label the model never
    predicts gets a column of zeros, so it counts as a miss rather than an error.
    """
    records = [pair.record for pair in pairs]
    if task == "regression":
        truth = np.array([float(pair.label) for pair in pairs], dtype=np.float64)
        predicted = np.array([float(r["prediction"]) for r in records], dtype=np.float64)
        return truth, predicted
    classes: list[str] = []
    for record in records:
        for name in record.get("probabilities") or {}:
            if _class_key(name) not in classes:
                classes.append(_class_key(name))
    for record in records:
        key = label_key(record.get("prediction"))
        if key not in classes:
            classes.append(key)
    for pair in pairs:
        key = label_key(pair.label)
        if key not in classes:
            classes.append(key)
    if len(classes) < 2:
        classes.append("\x00other")  # one class seen: a second column so accuracy is defined
    column = {name: j for j, name in enumerate(classes)}
    scores = np.zeros((len(records), len(classes)))
    for i, record in enumerate(records):
        probabilities = record.get("probabilities")
        if probabilities:
            for name, p in probabilities.items():
                scores[i, column[_class_key(name)]] = float(p)
        else:
            scores[i, column[label_key(record.get("prediction"))]] = 1.0
    truth = np.array([column[label_key(pair.label)] for pair in pairs], dtype=np.int64)
    return truth, scores


def _class_key(name: Any) -> str:
    """A probability's class name as ``label_key`` writes labels (JSON keys are text: "True" is True)."""
    return (
        {"True": "true", "False": "false"}.get(name, label_key(name))
        if isinstance(name, str)
        else label_key(name)
    )
