"""Promotion gates (chalicelib/registry): policy parsing, numpy metrics and the paired bootstrap
against scikit-learn, each gate at its boundaries in both metric directions, and evaluate's decisions.

scikit-learn is the reference here only: the modules under test must not import it (decision 002).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from chalicelib.registry import gates as gates_module
from chalicelib.registry.gates import (
    PENDING_APPROVAL,
    PROMOTE,
    REJECT,
    GateResult,
    comparison_gate,
    earlier_slice_gate,
    evaluate,
    floors_gate,
    guard_metrics_gate,
    latency_gate,
    paired_bootstrap,
    paired_bootstrap_ci,
    parity_gate,
    primary_metric_gate,
    schema_gate,
    significance_gate,
    size_gate,
)
from chalicelib.registry.metrics import class_indices, compute
from chalicelib.registry.policy import DEFAULT_FLOORS, PromotionPolicy, parse_promotion
from chalicelib.registry.rollout import Guards
from chalicelib.training.settings import METRICS
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError

TOL = 1e-12
CLASSIFICATION = METRICS["classification"]
REGRESSION = METRICS["regression"]


def assert_json(result: GateResult) -> None:
    """A figure goes into the registry record as it is: strict JSON, no NaN."""
    json.dumps(result.figure, allow_nan=False)
    assert result.reason


# --- data -----------------------------------------------------------------------------------------


def binary_data(
    n: int, seed: int, signal: float = 1.0, decimals: int | None = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and (n, 2) probabilities; rounded so that tied scores occur (AUC's average ranks)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    logit = signal * (2 * y - 1) + rng.normal(size=n)
    p1 = 1 / (1 + np.exp(-logit))
    if decimals is not None:
        p1 = np.round(p1, decimals)
    return y, np.column_stack([1 - p1, p1])


def multiclass_data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.arange(k), rng.integers(0, k, size=n - k)]  # every class present
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def regression_data(n: int, seed: int, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, size=n)
    return y, y + rng.normal(0, noise, size=n)


def sk_metric(metric: str, y: np.ndarray, scores: np.ndarray) -> float:
    """The training job's definitions (jobs/training/core.py), through scikit-learn."""
    if metric == "rmse":
        return math.sqrt(mean_squared_error(y, scores))
    if metric == "mae":
        return float(mean_absolute_error(y, scores))
    if metric == "r2":
        return float(r2_score(y, scores))
    k = scores.shape[1]
    labels = list(range(k))
    predicted = np.argmax(scores, axis=1)
    if metric == "accuracy":
        return float(accuracy_score(y, predicted))
    if metric == "f1":
        if k == 2:
            return float(f1_score(y, predicted, pos_label=1, average="binary", zero_division=0))
        return float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0))
    if metric == "log_loss":
        return float(log_loss(y, scores, labels=labels))
    if metric == "roc_auc":
        if k == 2:
            return float(roc_auc_score(y == 1, scores[:, 1]))
        return float(roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=labels))
    raise AssertionError(metric)


# --- numpy metrics vs scikit-learn -------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["accuracy", "f1", "roc_auc", "log_loss"])
@pytest.mark.parametrize("seed", [0, 1])
def test_binary_metrics_match_sklearn(metric: str, seed: int) -> None:
    y, p = binary_data(300, seed, decimals=1)  # one decimal: many ties
    assert abs(compute(metric, y, p) - sk_metric(metric, y, p)) <= TOL


@pytest.mark.parametrize("metric", ["accuracy", "f1", "roc_auc", "log_loss"])
def test_multiclass_metrics_match_sklearn(metric: str) -> None:
    y, p = multiclass_data(240, 4, seed=3)
    assert abs(compute(metric, y, p) - sk_metric(metric, y, p)) <= TOL


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_metrics_match_sklearn(metric: str) -> None:
    y, predicted = regression_data(200, seed=5)
    assert abs(compute(metric, y, predicted) - sk_metric(metric, y, predicted)) <= TOL


def test_log_loss_clips_certain_wrong_predictions_as_sklearn() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert abs(compute("log_loss", y, p) - sk_metric("log_loss", y, p)) <= TOL


def test_auc_is_the_rank_statistic_with_ties_as_halves() -> None:
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.5, 0.5, 0.9])  # pairs: (0.5 vs 0.1) win, (0.5 vs 0.5) half, 0.9 wins both
    p = np.column_stack([1 - p1, p1])
    assert compute("roc_auc", y, p) == pytest.approx(3.5 / 4, abs=TOL)


def test_f1_of_a_class_never_predicted_nor_present_is_zero() -> None:
    y = np.array([0, 0, 1])
    p = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])  # class 2: nowhere
    assert abs(compute("f1", y, p) - sk_metric("f1", y, p)) <= TOL


def test_undefined_metrics_are_nan() -> None:
    y = np.zeros(5, dtype=int)
    assert math.isnan(compute("roc_auc", y, np.full((5, 2), 0.5)))
    assert math.isnan(compute("r2", np.full(5, 0.1), np.arange(5.0)))
    assert math.isnan(compute("rmse", np.array([]), np.array([])))


def test_labels_map_to_probability_columns() -> None:
    classes = ["no", "yes"]
    labels = np.array(["yes", "no", "yes"], dtype=object)
    assert class_indices(labels, classes).tolist() == [1, 0, 1]
    assert class_indices(np.array([1, 0]), [np.int64(0), np.int64(1)]).tolist() == [1, 0]
    assert class_indices(["1", "0"], [0, 1]).tolist() == [1, 0]  # labels read back from CSV text
    assert class_indices(["1", 1], [1, "1"]).tolist() == [1, 0]  # text ambiguous: exact labels only
    with pytest.raises(ValueError, match="'2'"):
        class_indices(["2"], [0, 1])
    with pytest.raises(ValueError, match="maybe"):
        class_indices(["maybe"], classes)


def test_metric_errors_are_explicit() -> None:
    with pytest.raises(ValueError, match="not a metric"):
        compute("precision", np.array([0, 1]), np.eye(2))
    with pytest.raises(ValueError, match="class indices"):
        compute("accuracy", np.array([0, 2]), np.eye(2))
    with pytest.raises(ValueError, match="probabilities"):
        compute("roc_auc", np.array([0, 1]), np.array([0.2, 0.8]))


# --- paired bootstrap vs a straightforward reference ------------------------------------------------


def reference_bootstrap(
    candidate: np.ndarray,
    champion: np.ndarray,
    metric: str,
    y: np.ndarray,
    n_samples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float, int]:
    """The documented procedure, one resample at a time, through scikit-learn."""
    rng = np.random.default_rng(seed)
    n = len(y)
    differences = []
    for _ in range(n_samples):
        idx = rng.integers(0, n, size=n)
        yb = y[idx]
        if metric == "roc_auc" and len(np.unique(yb)) < (candidate.shape[1] if candidate.ndim == 2 else 2):
            continue  # undefined on this resample: one class missing
        differences.append(sk_metric(metric, yb, candidate[idx]) - sk_metric(metric, yb, champion[idx]))
    alpha = 1 - confidence
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    point = sk_metric(metric, y, candidate) - sk_metric(metric, y, champion)
    return float(low), float(high), point, len(differences)


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("accuracy", "binary"),
        ("f1", "binary"),
        ("roc_auc", "binary"),
        ("log_loss", "binary"),
        ("roc_auc", "multiclass"),
        ("f1", "multiclass"),
        ("rmse", "regression"),
        ("mae", "regression"),
        ("r2", "regression"),
    ],
)
def test_bootstrap_matches_reference(metric: str, kind: str) -> None:
    if kind == "binary":
        y, candidate = binary_data(120, seed=11, signal=1.5)
        _, champion = binary_data(120, seed=12, signal=0.5)
    elif kind == "multiclass":
        y, candidate = multiclass_data(90, 3, seed=13)
        _, champion = multiclass_data(90, 3, seed=14)
    else:
        y, candidate = regression_data(100, seed=15, noise=1.0)
        champion = y + np.random.default_rng(16).normal(0, 1.3, size=100)
    low, high, point = paired_bootstrap_ci(candidate, champion, metric, y, 150, 0.9, seed=7)
    ref_low, ref_high, ref_point, _ = reference_bootstrap(candidate, champion, metric, y, 150, 0.9, seed=7)
    assert abs(low - ref_low) <= TOL and abs(high - ref_high) <= TOL and abs(point - ref_point) <= TOL
    assert low <= high


def test_bootstrap_skips_resamples_where_the_metric_is_undefined() -> None:
    # 12 rows, 3 positives: about 3% of resamples hold no positive, and AUC is undefined there.
    y, candidate = binary_data(12, seed=21, signal=2.0)
    y[:] = 0
    y[:3] = 1
    _, champion = binary_data(12, seed=22, signal=0.0)
    result = paired_bootstrap(candidate, champion, "roc_auc", y, 400, 0.95, seed=3)
    ref_low, ref_high, _, ref_defined = reference_bootstrap(
        candidate, champion, "roc_auc", y, 400, 0.95, seed=3
    )
    assert result.defined == ref_defined < 400
    assert abs(result.low - ref_low) <= TOL and abs(result.high - ref_high) <= TOL


def test_bootstrap_interval_is_nan_when_most_resamples_are_undefined() -> None:
    y = np.array([0, 1, 2])  # all three classes in a resample of 3: 2 chances in 9
    p = np.full((3, 3), 1 / 3)
    result = paired_bootstrap(p, p, "roc_auc", y, 200, 0.95, seed=0)
    assert math.isnan(result.low) and math.isnan(result.high) and 2 * result.defined < 200


def test_bootstrap_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    y, candidate = binary_data(101, seed=31)  # odd n: numpy's bounded-integer buffer would show
    _, champion = binary_data(101, seed=32, signal=0.3)
    whole = paired_bootstrap_ci(candidate, champion, "roc_auc", y, 300, 0.95, seed=5)
    monkeypatch.setattr(gates_module, "_BLOCK_CELLS", 101 * 7)  # blocks of 7 resamples
    assert paired_bootstrap_ci(candidate, champion, "roc_auc", y, 300, 0.95, seed=5) == whole


def test_bootstrap_takes_labels_with_classes() -> None:
    y, candidate = binary_data(80, seed=41)
    _, champion = binary_data(80, seed=42, signal=0.2)
    labels = np.where(y == 1, "yes", "no")
    with_labels = paired_bootstrap_ci(
        candidate, champion, "accuracy", labels, 200, 0.95, 1, classes=["no", "yes"]
    )
    assert with_labels == paired_bootstrap_ci(candidate, champion, "accuracy", y, 200, 0.95, 1)


def test_a_clearly_better_model_excludes_zero_identical_models_do_not() -> None:
    y, good = binary_data(400, seed=51, signal=2.0, decimals=None)
    _, poor = binary_data(400, seed=52, signal=0.0, decimals=None)
    low, high, point = paired_bootstrap_ci(good, poor, "roc_auc", y, 1000, 0.95, seed=0)
    assert 0 < low <= point <= high
    assert significance_gate(low, high, greater_is_better=True).passed
    # Lower is better: the good model's log loss difference lies below zero.
    low, high, _ = paired_bootstrap_ci(good, poor, "log_loss", y, 1000, 0.95, seed=0)
    assert low <= high < 0
    assert significance_gate(low, high, greater_is_better=False).passed
    # Identical models: every difference is 0, the interval holds 0 and proves nothing.
    low, high, point = paired_bootstrap_ci(good, good.copy(), "roc_auc", y, 300, 0.95, seed=0)
    assert low <= 0 <= high and point == 0
    assert not significance_gate(low, high, greater_is_better=True).passed


def test_two_similar_models_interval_contains_zero() -> None:
    y, _ = regression_data(300, seed=61, noise=1.0)
    rng = np.random.default_rng(62)
    a = y + rng.normal(0, 1.0, size=300)
    b = y + rng.normal(0, 1.0, size=300)
    low, high, _ = paired_bootstrap_ci(a, b, "rmse", y, 1000, 0.95, seed=0)
    assert low < 0 < high


def test_bootstrap_is_deterministic_per_seed() -> None:
    y, candidate = binary_data(60, seed=71)
    _, champion = binary_data(60, seed=72)
    first = paired_bootstrap_ci(candidate, champion, "log_loss", y, 200, 0.9, seed=9)
    assert paired_bootstrap_ci(candidate, champion, "log_loss", y, 200, 0.9, seed=9) == first
    assert paired_bootstrap_ci(candidate, champion, "log_loss", y, 200, 0.9, seed=10) != first


def test_bootstrap_refuses_mismatched_inputs() -> None:
    y, p = binary_data(10, seed=0)
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap_ci(p, p[:5], "accuracy", y, 100, 0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci(p, p, "accuracy", y, 100, 1.0, 0)
    with pytest.raises(ValueError, match="n_samples"):
        paired_bootstrap_ci(p, p, "accuracy", y, 0, 0.95, 0)


# --- policy -----------------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = parse_promotion({}, "classification")
    assert (policy.mode, policy.min_delta, policy.significance) == ("auto", 0.0, False)
    assert (policy.confidence, policy.bootstrap_samples, policy.seed) == (0.95, 2000, 0)
    assert dict(policy.guard_metrics) == {} and dict(policy.floors or {}) == {"roc_auc": 0.6}
    assert (policy.max_latency_ms, policy.max_model_bytes) == (50.0, 50 * 1024 * 1024)
    assert policy.require_approval_on_breaking_schema is True
    assert dict(parse_promotion({}, "regression").floors or {}) == DEFAULT_FLOORS["regression"] == {"r2": 0.0}
    # Constructed directly, the same defaults.
    assert PromotionPolicy(task="classification") == policy


def test_policy_full_section_and_round_trip() -> None:
    doc = {
        "mode": "manual",
        "min_delta": 0.002,
        "significance": True,
        "confidence": 0.9,
        "bootstrap_samples": 500,
        "seed": 42,
        "guard_metrics": {"log_loss": 0.01, "f1": 0},
        "floors": {},  # written out empty: no floors at all
        "max_latency_ms": 20,
        "max_model_bytes": 1_000_000,
        "require_approval_on_breaking_schema": False,
        "slices": {
            "combine": "earlier",
            "earlier_tolerance": 0.01,
            "on_earlier_worse": "reject",
            "min_rows": 50,
            "significance": False,
        },
        "revocation": {"fallback": False, "retrain": True},
        "rollout": {
            "strategy": "canary",
            "canary_percent": 5.0,
            "bake": "300s",
            "guards": {"max_error_rate": 0.02},
        },
    }
    policy = parse_promotion(doc, "classification")
    assert policy.floors == {} and dict(policy.guard_metrics) == {"log_loss": 0.01, "f1": 0.0}
    assert policy.to_dict() == {
        **doc,
        "min_delta": 0.002,
        "max_latency_ms": 20.0,
        "guard_metrics": {"log_loss": 0.01, "f1": 0.0},
        "rollout": {**doc["rollout"], "guards": {**Guards().to_dict(), "max_error_rate": 0.02}},
    }
    assert parse_promotion(policy.to_dict(), "classification") == policy
    with pytest.raises(TypeError):
        policy.guard_metrics["f1"] = 1.0  # type: ignore[index]  # read-only: shared between threads


def test_policy_from_contract() -> None:
    doc = {
        "dataset": "orders",
        "target": "returned",
        "task": "classification",
        "columns": [
            {"name": "amount", "type": "float", "classification": "internal"},
            {"name": "returned", "type": "boolean", "classification": "internal"},
        ],
        "promotion": {"mode": "manual", "floors": {"accuracy": 0.7}},
    }
    policy = PromotionPolicy.from_contract(Contract.parse(doc))
    assert policy.mode == "manual" and dict(policy.floors or {}) == {"accuracy": 0.7}
    bad = {**doc, "promotion": {"min_delta": -1}}
    with pytest.raises(ContractError) as err:
        PromotionPolicy.from_contract(Contract.parse(bad))
    assert err.value.field == "promotion.min_delta"


@pytest.mark.parametrize(
    ("doc", "task", "field"),
    [
        ([], "classification", "promotion"),
        ({"min_detla": 0.1}, "classification", "promotion.min_detla"),
        ({"mode": "yolo"}, "classification", "promotion.mode"),
        ({"min_delta": -0.001}, "classification", "promotion.min_delta"),
        ({"min_delta": "0.1"}, "classification", "promotion.min_delta"),
        ({"min_delta": True}, "classification", "promotion.min_delta"),
        ({"min_delta": float("nan")}, "classification", "promotion.min_delta"),
        ({"significance": "yes"}, "classification", "promotion.significance"),
        ({"confidence": 1.0}, "classification", "promotion.confidence"),
        ({"confidence": 0.4}, "classification", "promotion.confidence"),
        ({"bootstrap_samples": 99}, "classification", "promotion.bootstrap_samples"),
        ({"bootstrap_samples": 100_001}, "classification", "promotion.bootstrap_samples"),
        ({"bootstrap_samples": 1000.5}, "classification", "promotion.bootstrap_samples"),
        ({"seed": -1}, "classification", "promotion.seed"),
        ({"guard_metrics": ["f1"]}, "classification", "promotion.guard_metrics"),
        ({"guard_metrics": {"rmse": 0.1}}, "classification", "promotion.guard_metrics.rmse"),
        ({"guard_metrics": {"f1": -0.01}}, "classification", "promotion.guard_metrics.f1"),
        ({"guard_metrics": {"f1": None}}, "classification", "promotion.guard_metrics.f1"),
        ({"floors": {"roc_auc": 0.6}}, "regression", "promotion.floors.roc_auc"),
        ({"floors": {"r2": "high"}}, "regression", "promotion.floors.r2"),
        ({"max_latency_ms": 0}, "regression", "promotion.max_latency_ms"),
        ({"max_model_bytes": 0}, "regression", "promotion.max_model_bytes"),
        ({"max_model_bytes": 1.5}, "regression", "promotion.max_model_bytes"),
        (
            {"require_approval_on_breaking_schema": 1},
            "regression",
            "promotion.require_approval_on_breaking_schema",
        ),
        ({"slices": []}, "regression", "promotion.slices"),
        ({"slices": {"combin": "guard"}}, "regression", "promotion.slices.combin"),
        ({"slices": {"combine": "best"}}, "regression", "promotion.slices.combine"),
        ({"slices": {"earlier_tolerance": -1}}, "regression", "promotion.slices.earlier_tolerance"),
        ({"slices": {"on_earlier_worse": "ignore"}}, "regression", "promotion.slices.on_earlier_worse"),
        ({"slices": {"min_rows": 0}}, "regression", "promotion.slices.min_rows"),
        ({"slices": {"significance": "no"}}, "regression", "promotion.slices.significance"),
        ({"revocation": True}, "regression", "promotion.revocation"),
        ({"revocation": {"fallbak": True}}, "regression", "promotion.revocation.fallbak"),
        ({"revocation": {"fallback": 1}}, "regression", "promotion.revocation.fallback"),
        ({"revocation": {"retrain": "yes"}}, "regression", "promotion.revocation.retrain"),
        ({"rollout": "canary"}, "regression", "promotion.rollout"),
        ({"rollout": {"strategy": "blue-green"}}, "regression", "promotion.rollout.strategy"),
        ({"rollout": {"stratgy": "canary"}}, "regression", "promotion.rollout.stratgy"),
        ({"rollout": {"canary_percent": 100}}, "regression", "promotion.rollout.canary_percent"),
        ({"rollout": {"canary_percent": True}}, "regression", "promotion.rollout.canary_percent"),
        ({"rollout": {"linear_percent": 0}}, "regression", "promotion.rollout.linear_percent"),
        ({"rollout": {"bake": "soon"}}, "regression", "promotion.rollout.bake"),
        ({"rollout": {"bake": "8d"}}, "regression", "promotion.rollout.bake"),
        ({"rollout": {"guards": []}}, "regression", "promotion.rollout.guards"),
        ({"rollout": {"guards": {"max_errors": 0.1}}}, "regression", "promotion.rollout.guards.max_errors"),
        (
            {"rollout": {"guards": {"max_error_rate": 2}}},
            "regression",
            "promotion.rollout.guards.max_error_rate",
        ),
        (
            {"rollout": {"guards": {"min_requests": 1.5}}},
            "regression",
            "promotion.rollout.guards.min_requests",
        ),
        (
            {"rollout": {"guards": {"max_disagreement": "x"}}},
            "regression",
            "promotion.rollout.guards.max_disagreement",
        ),
    ],
)
def test_policy_errors_name_the_field(doc: Any, task: str, field: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_promotion(doc, task)
    assert err.value.field == field, err.value


def test_the_rollout_section_defaults_to_a_switch_and_reads_back_from_the_record() -> None:
    assert not parse_promotion({}, "classification").rollout.enabled
    policy = parse_promotion(
        {
            "rollout": {
                "strategy": "linear",
                "linear_percent": 25,
                "bake": "10m",
                "guards": {"min_requests": 50},
            }
        },
        "classification",
    )
    assert policy.rollout.enabled and policy.rollout.schedule.steps == (25.0, 50.0, 75.0, 100.0)
    assert policy.rollout.schedule.bake_s == 600 and policy.rollout.guards.min_requests == 50
    record = policy.to_dict()["rollout"]
    assert record["strategy"] == "linear" and record["linear_percent"] == 25 and record["bake"] == "600s"
    assert parse_promotion(policy.to_dict(), "classification") == policy
    canary = parse_promotion({"rollout": {"strategy": "canary", "canary_percent": 5}}, "regression")
    assert canary.rollout.schedule.steps == (5.0, 100.0) and canary.rollout.schedule.bake_s == 900


def test_policy_boundaries_accepted() -> None:
    policy = parse_promotion(
        {"confidence": 0.5, "bootstrap_samples": 100, "min_delta": 0, "seed": 2**32 - 1}, "classification"
    )
    assert policy.bootstrap_samples == 100 and policy.seed == 2**32 - 1
    assert parse_promotion({"bootstrap_samples": 100_000.0}, "regression").bootstrap_samples == 100_000


# --- the gates at their boundaries ---------------------------------------------------------------------


def test_primary_metric_boundaries_greater_is_better() -> None:
    # 0.3 - 0.2 is 0.09999999999999998 in floating point: still "exactly" min_delta.
    result = primary_metric_gate("roc_auc", 0.3, 0.2, 0.1, greater_is_better=True)
    assert result.passed and result.figure["improvement"] == pytest.approx(0.1)
    assert_json(result)
    assert not primary_metric_gate("roc_auc", 0.3 - 1e-9, 0.2, 0.1, True).passed
    assert primary_metric_gate("roc_auc", 0.9, 0.9, 0.0, True).passed  # min_delta 0: a tie passes
    worse = primary_metric_gate("roc_auc", 0.85, 0.9, 0.0, True)
    assert not worse.passed and "worse" in worse.reason


def test_primary_metric_boundaries_lower_is_better() -> None:
    result = primary_metric_gate("rmse", 0.2, 0.3, 0.1, greater_is_better=False)
    assert result.passed and result.figure["improvement"] == pytest.approx(0.1)
    short = primary_metric_gate("rmse", 0.2 + 1e-9, 0.3, 0.1, False)
    assert not short.passed and "min_delta" in short.reason
    assert not primary_metric_gate("rmse", 0.31, 0.3, 0.0, False).passed
    # A large-valued metric: the slack is relative, the boundary still holds.
    assert primary_metric_gate("rmse", 1e6 - 0.5, 1e6, 0.5, False).passed
    assert not primary_metric_gate("rmse", 1e6 - 0.5 + 1e-4, 1e6, 0.5, False).passed


def test_primary_metric_undefined_fails() -> None:
    for candidate, champion in [(None, 0.9), (0.9, None), (float("nan"), 0.9)]:
        result = primary_metric_gate("roc_auc", candidate, champion, 0.0, True)
        assert not result.passed and "undefined" in result.reason
        assert_json(result)


def test_significance_gate_boundaries() -> None:
    assert not significance_gate(0.0, 0.1, greater_is_better=True).passed  # touching 0 is not excluding it
    assert significance_gate(1e-12, 0.1, greater_is_better=True).passed
    assert not significance_gate(-0.1, 0.0, greater_is_better=False).passed
    assert significance_gate(-0.1, -1e-12, greater_is_better=False).passed
    # The better side only: a significantly worse model does not pass.
    assert not significance_gate(0.01, 0.1, greater_is_better=False).passed
    assert not significance_gate(-0.1, -0.01, greater_is_better=True).passed
    undefined = significance_gate(float("nan"), float("nan"), True, metric="roc_auc", confidence=0.95)
    assert not undefined.passed and "undefined" in undefined.reason
    assert_json(undefined)


def test_guard_metrics_boundaries_both_directions() -> None:
    candidate = {"f1": 0.7, "log_loss": 0.4}
    champion = {"f1": 0.8, "log_loss": 0.3}
    # f1 worse by 0.1 (greater is better), log_loss worse by 0.1 (lower is better): tolerance 0.1 holds.
    result = guard_metrics_gate(candidate, champion, {"f1": 0.1, "log_loss": 0.1}, CLASSIFICATION)
    assert result.passed, result.reason
    assert_json(result)
    tight_f1 = guard_metrics_gate(candidate, champion, {"f1": 0.1 - 1e-9}, CLASSIFICATION)
    assert not tight_f1.passed and "f1" in tight_f1.reason
    tight_loss = guard_metrics_gate(candidate, champion, {"log_loss": 0.1 - 1e-9}, CLASSIFICATION)
    assert not tight_loss.passed and "log_loss" in tight_loss.reason
    # Getting better is always within tolerance, even 0.
    assert guard_metrics_gate(champion, candidate, {"f1": 0, "log_loss": 0}, CLASSIFICATION).passed
    missing = guard_metrics_gate({"f1": 0.9}, champion, {"log_loss": 1.0}, CLASSIFICATION)
    assert not missing.passed and "undefined" in missing.reason
    assert guard_metrics_gate(candidate, champion, {}, CLASSIFICATION).passed
    with pytest.raises(ValueError, match="direction"):
        guard_metrics_gate(candidate, champion, {"rmse": 0.1}, CLASSIFICATION)


def test_floors_boundaries_both_directions() -> None:
    assert floors_gate({"roc_auc": 0.6}, {"roc_auc": 0.6}, CLASSIFICATION).passed
    below = floors_gate({"roc_auc": 0.6 - 1e-9}, {"roc_auc": 0.6}, CLASSIFICATION)
    assert not below.passed and "below" in below.reason
    assert_json(below)
    # Lower is better: the floor is a ceiling.
    assert floors_gate({"rmse": 2.0}, {"rmse": 2.0}, REGRESSION).passed
    above = floors_gate({"rmse": 2.0 + 1e-9}, {"rmse": 2.0}, REGRESSION)
    assert not above.passed and "ceiling" in above.reason
    assert floors_gate({"r2": 0.0}, {"r2": 0.0}, REGRESSION).passed
    assert not floors_gate({"r2": None}, {"r2": 0.0}, REGRESSION).passed
    assert floors_gate({}, {}, REGRESSION).passed


def test_latency_boundaries() -> None:
    at = latency_gate(3.0, 50.0, 50.0)
    assert at.passed and at.figure == {"p50_ms": 3.0, "p99_ms": 50.0, "budget_ms": 50.0}
    over = latency_gate(3.0, 50.0 + 1e-9, 50.0)
    assert not over.passed and "max_latency_ms" in over.reason
    assert not latency_gate(3.0, None, 50.0).passed
    assert not latency_gate(None, float("nan"), 50.0).passed
    assert latency_gate(None, 1.0, 50.0).passed  # p50 is recorded, the budget is on p99


def test_size_boundaries() -> None:
    assert size_gate(1000, 1000).passed
    over = size_gate(1001, 1000)
    assert not over.passed and "max_model_bytes" in over.reason
    assert not size_gate(None, 1000).passed
    assert_json(over)


def test_parity_gate() -> None:
    good = {"passed": True, "max_abs_diff": 1e-7, "label_flips": 0, "tolerance": 1e-5, "rows": 80}
    assert parity_gate(good).passed
    assert parity_gate({**good, "max_abs_diff": 1e-5}).passed  # equal to the tolerance
    failed = parity_gate({**good, "passed": False, "max_abs_diff": 0.2})
    assert not failed.passed and "differ" in failed.reason
    # A report claiming success against its own numbers is not trusted.
    assert not parity_gate({**good, "label_flips": 1}).passed
    assert not parity_gate({**good, "max_abs_diff": None}).passed
    assert not parity_gate({**good, "max_abs_diff": 2e-5}).passed
    assert not parity_gate(None).passed and not parity_gate({}).passed
    assert_json(parity_gate(good))


# --- schema -------------------------------------------------------------------------------------------


def schema(*features: dict[str, Any], classes: list[Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "dataset": "orders",
        "task": "classification",
        "target": {"name": "returned", "type": "boolean"},
        "features": list(features),
        "classes": classes if classes is not None else [0, 1],
    }
    return doc


AMOUNT = {"name": "amount", "type": "float", "nullable": False, "min": 0}
CHANNEL = {"name": "channel", "type": "category", "nullable": True, "allowed": ["web", "shop"]}


def test_schema_identical_is_compatible() -> None:
    result = schema_gate(schema(AMOUNT, CHANNEL), schema(AMOUNT, CHANNEL), True)
    assert result.passed and result.figure == {"breaking": [], "compatible": [], "needs_approval": False}


@pytest.mark.parametrize(
    ("candidate", "fragment"),
    [
        (schema(AMOUNT), "channel removed"),
        (
            schema(AMOUNT, CHANNEL, {"name": "age", "type": "integer", "nullable": False}),
            "age added and required",
        ),
        (schema({**AMOUNT, "type": "integer"}, CHANNEL), "changed type"),
        (schema(AMOUNT, {**CHANNEL, "allowed": ["web"]}), "no longer allows ['shop']"),
        (schema(AMOUNT, {**CHANNEL, "nullable": False}), "no longer accepts null"),
        (schema({**AMOUNT, "min": 1}, CHANNEL), "min narrowed"),
        (schema({**AMOUNT, "max": 100}, CHANNEL), "max narrowed"),
        (schema(AMOUNT, CHANNEL, classes=[1, 0]), "classes changed"),
    ],
)
def test_schema_breaking_changes_need_approval(candidate: dict[str, Any], fragment: str) -> None:
    champion = schema(AMOUNT, CHANNEL)
    result = schema_gate(candidate, champion, require_approval_on_breaking=True)
    assert not result.passed and result.figure["needs_approval"] is True
    assert any(fragment in change for change in result.figure["breaking"]), result.figure
    assert "approve" in result.reason
    assert_json(result)
    accepted = schema_gate(candidate, champion, require_approval_on_breaking=False)
    assert accepted.passed and accepted.figure["needs_approval"] is False and accepted.figure["breaking"]


def test_schema_widening_is_compatible() -> None:
    candidate = schema(
        {**AMOUNT, "min": -10, "nullable": True},
        {**CHANNEL, "allowed": ["web", "shop", "phone"]},
        {"name": "coupon", "type": "string", "nullable": True},
    )
    result = schema_gate(candidate, schema(AMOUNT, CHANNEL), True)
    assert result.passed and not result.figure["breaking"]
    assert len(result.figure["compatible"]) == 4  # null accepted, min widened, phone allowed, coupon added
    unrestricted = schema_gate(
        schema(AMOUNT, {k: v for k, v in CHANNEL.items() if k != "allowed"}), schema(AMOUNT, CHANNEL), True
    )
    assert unrestricted.passed


def test_schema_missing_fails() -> None:
    assert not schema_gate(None, schema(AMOUNT), True).passed
    assert not schema_gate(schema(AMOUNT), {}, True).passed


# --- evaluate -------------------------------------------------------------------------------------------

PARITY = {"passed": True, "max_abs_diff": 1e-8, "label_flips": 0, "tolerance": 1e-5, "rows": 200}


def candidate_doc(metrics: dict[str, float], **extra: Any) -> dict[str, Any]:
    doc = {
        "task": "classification",
        "primary_metric": "roc_auc",
        "metrics": metrics,
        "parity": PARITY,
        "schema": schema(AMOUNT, CHANNEL),
        "latency_ms": {"p50": 0.5, "p99": 2.0},
        "model_bytes": 40_000,
    }
    doc.update(extra)
    return doc


def champion_doc(metrics: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"metrics": metrics, "schema": schema(AMOUNT, CHANNEL), **extra}


def names(verdict: Any) -> list[str]:
    return [g.name for g in verdict.gates]


def test_first_model_is_judged_on_floors_parity_latency_size() -> None:
    policy = parse_promotion({}, "classification")
    verdict = evaluate(policy, candidate_doc({"roc_auc": 0.61}), None)
    assert names(verdict) == ["parity", "floors", "latency", "size"]
    assert verdict.decision == PROMOTE and verdict.passed and verdict.first_model
    json.dumps(verdict.to_dict(), allow_nan=False)
    weak = evaluate(policy, candidate_doc({"roc_auc": 0.55}), None)
    assert weak.decision == REJECT and not weak.passed and "floors" in weak.reason
    manual = evaluate(parse_promotion({"mode": "manual"}, "classification"), candidate_doc({"roc_auc": 0.9}))
    assert manual.decision == PENDING_APPROVAL and manual.passed and "manual" in manual.reason


def test_auto_promotes_and_manual_waits() -> None:
    candidate = candidate_doc({"roc_auc": 0.93, "log_loss": 0.30})
    champion = champion_doc({"roc_auc": 0.91, "log_loss": 0.31})
    auto = evaluate(
        parse_promotion({"min_delta": 0.02, "guard_metrics": {"log_loss": 0}}, "classification"),
        candidate,
        champion,
    )
    assert names(auto) == ["parity", "schema", "primary_metric", "guard_metrics", "latency", "size"]
    assert auto.decision == PROMOTE and auto.passed and auto.reason == "every gate passed: promote"
    manual = evaluate(parse_promotion({"mode": "manual"}, "classification"), candidate, champion)
    assert manual.decision == PENDING_APPROVAL and manual.passed
    json.dumps(manual.to_dict(), allow_nan=False)


def test_any_failed_gate_rejects() -> None:
    policy = parse_promotion({"max_latency_ms": 10}, "classification")
    champion = champion_doc({"roc_auc": 0.91})
    assert evaluate(policy, candidate_doc({"roc_auc": 0.90}), champion).decision == REJECT
    slow = evaluate(policy, candidate_doc({"roc_auc": 0.95}, latency_ms={"p50": 5, "p99": 12}), champion)
    assert slow.decision == REJECT and [g.name for g in slow.failed] == ["latency"]
    no_parity = evaluate(policy, candidate_doc({"roc_auc": 0.95}, parity=None), champion)
    assert no_parity.decision == REJECT and [g.name for g in no_parity.failed] == ["parity"]


def test_breaking_schema_waits_for_approval_unless_policy_allows() -> None:
    candidate = candidate_doc({"roc_auc": 0.95}, schema=schema(AMOUNT))  # channel removed
    champion = champion_doc({"roc_auc": 0.91})
    verdict = evaluate(parse_promotion({}, "classification"), candidate, champion)
    assert verdict.decision == PENDING_APPROVAL and not verdict.passed
    assert "channel removed" in verdict.reason
    # Approval cannot make up for a worse model.
    worse = evaluate(
        parse_promotion({}, "classification"), {**candidate, "metrics": {"roc_auc": 0.90}}, champion
    )
    assert worse.decision == REJECT
    allowed = evaluate(
        parse_promotion({"require_approval_on_breaking_schema": False}, "classification"), candidate, champion
    )
    assert allowed.decision == PROMOTE and allowed.passed


def test_evaluate_with_significance() -> None:
    y, good = binary_data(300, seed=81, signal=2.0, decimals=None)
    _, poor = binary_data(300, seed=82, signal=0.3, decimals=None)
    labels = np.where(y == 1, "yes", "no").tolist()
    policy = parse_promotion({"significance": True, "bootstrap_samples": 300}, "classification")
    metrics_good = {"roc_auc": compute("roc_auc", y, good)}
    metrics_poor = {"roc_auc": compute("roc_auc", y, poor)}
    yes_no = schema(AMOUNT, CHANNEL, classes=["no", "yes"])
    candidate = candidate_doc(
        metrics_good, schema=yes_no, holdout={"y_true": labels, "predictions": good.tolist()}
    )
    champion = champion_doc(metrics_poor, schema=yes_no, holdout={"predictions": poor.tolist()})
    verdict = evaluate(policy, candidate, champion)
    assert verdict.decision == PROMOTE, verdict.reason
    significance = next(g for g in verdict.gates if g.name == "significance")
    assert significance.figure["low"] > 0 and significance.figure["resamples"] == 300
    json.dumps(verdict.to_dict(), allow_nan=False)

    # The same model again: the primary metric ties (min_delta 0 passes), significance does not.
    same = evaluate(
        policy, candidate, champion_doc(metrics_good, schema=yes_no, holdout={"predictions": good.tolist()})
    )
    assert same.decision == REJECT and [g.name for g in same.failed] == ["significance"]

    # Champion columns in another class order are realigned (the schema gate flags the order).
    swapped = champion_doc(
        metrics_poor,
        schema=schema(AMOUNT, CHANNEL, classes=["yes", "no"]),
        holdout={"predictions": poor[:, ::-1].tolist()},
    )
    realigned = next(g for g in evaluate(policy, candidate, swapped).gates if g.name == "significance")
    assert realigned.figure["low"] == significance.figure["low"]

    missing = evaluate(policy, candidate_doc(metrics_good), champion)
    assert missing.decision == REJECT and "predictions" in missing.reason


def test_regression_evaluate_uses_directions() -> None:
    policy = parse_promotion({"min_delta": 0.1, "guard_metrics": {"r2": 0.01}}, "regression")
    base = {
        "task": "regression",
        "primary_metric": "rmse",
        "parity": PARITY,
        "schema": schema(AMOUNT),
        "latency_ms": {"p50": 0.1, "p99": 0.2},
        "model_bytes": 1000,
    }
    champion = {"metrics": {"rmse": 3.0, "r2": 0.80}, "schema": schema(AMOUNT)}
    better = evaluate(policy, {**base, "metrics": {"rmse": 2.9, "r2": 0.79}}, champion)
    assert better.decision == PROMOTE, better.reason
    assert evaluate(policy, {**base, "metrics": {"rmse": 2.95, "r2": 0.81}}, champion).decision == REJECT
    first = evaluate(policy, {**base, "metrics": {"rmse": 2.9, "r2": -0.1}})
    assert first.decision == REJECT and "r2" in first.reason
    with pytest.raises(ValueError, match="policy"):
        evaluate(parse_promotion({}, "classification"), base, champion)


# --- slices and comparisons (issue 14) ---------------------------------------------------------------


def slice_doc(
    rows: int, candidate: float | None, champion: float | None, metric: str = "rmse"
) -> dict[str, Any]:
    return {
        "rows": rows,
        "uploads": [{"upload": "u2", "rows": rows}],
        "metrics": {"candidate": {metric: candidate}, "champion": {metric: champion}},
    }


def test_earlier_slice_gate_boundaries_both_directions() -> None:
    new = slice_doc(40, 10.0, 90.0)
    at = earlier_slice_gate("rmse", slice_doc(100, 10.5, 10.0), new, False, 0.5, 20, "approval")
    assert at.passed and at.figure["worsening"] == 0.5
    beyond = earlier_slice_gate("rmse", slice_doc(100, 10.6, 10.0), new, False, 0.5, 20, "approval")
    assert not beyond.passed and beyond.figure["needs_approval"] is True
    assert "u2" in beyond.reason and "approve" in beyond.reason
    auc = earlier_slice_gate(
        "roc_auc",
        slice_doc(100, 0.93, 0.95, "roc_auc"),
        slice_doc(9, 0.9, 0.5, "roc_auc"),
        True,
        0.0,
        20,
        "reject",
    )
    assert not auc.passed and auc.figure["needs_approval"] is False and "rejected" in auc.reason
    better = earlier_slice_gate(
        "roc_auc", slice_doc(100, 0.96, 0.95, "roc_auc"), {}, True, 0.0, 20, "approval"
    )
    assert better.passed
    for result in (at, beyond, auc, better):
        assert_json(result)


def test_earlier_slice_gate_does_not_judge_small_or_undefined_slices() -> None:
    small = earlier_slice_gate("rmse", slice_doc(19, 50.0, 10.0), {}, False, 0.0, 20, "approval")
    assert small.passed and "not judged" in small.reason and "min_rows 20" in small.reason
    undefined = earlier_slice_gate(
        "roc_auc", slice_doc(50, None, 0.9, "roc_auc"), {}, True, 0.0, 20, "approval"
    )
    assert undefined.passed and "not judged" in undefined.reason


def test_earlier_slice_gate_with_an_interval_needs_the_whole_of_it_beyond_the_tolerance() -> None:
    earlier, new = slice_doc(100, 11.0, 10.0), slice_doc(40, 10.0, 90.0)
    chance = earlier_slice_gate(
        "rmse", earlier, new, False, 0.0, 20, "approval", interval=(-0.2, 2.1), confidence=0.95
    )
    assert chance.passed and chance.figure["worsening_low"] == -0.2 and "95% interval" in chance.reason
    real = earlier_slice_gate(
        "rmse", earlier, new, False, 0.0, 20, "approval", interval=(0.4, 1.6), confidence=0.95
    )
    assert not real.passed and "[0.4, 1.6]" in real.reason
    within = earlier_slice_gate(
        "rmse", earlier, new, False, 0.5, 20, "approval", interval=(0.4, 1.6), confidence=0.95
    )
    assert within.passed
    unknown = earlier_slice_gate("rmse", earlier, new, False, 0.0, 20, "approval", interval=(None, None))
    assert unknown.passed and "undefined" in unknown.reason


def _sliced(
    earlier: tuple[float, float], new: tuple[float, float], overall: tuple[float, float]
) -> tuple[Any, Any]:
    base = {
        "task": "regression",
        "primary_metric": "rmse",
        "parity": PARITY,
        "schema": schema(AMOUNT),
        "latency_ms": {"p50": 0.1, "p99": 0.2},
        "model_bytes": 1000,
        "metrics": {"rmse": overall[0]},
    }
    champion = {
        "metrics": {"rmse": overall[1]},
        "schema": schema(AMOUNT),
        "comparison": {"rows": 160, "holdout_rows": 160, "problem": None},
        "slices": {"earlier": slice_doc(120, *earlier), "new": slice_doc(40, *new)},
    }
    return base, champion


@pytest.mark.parametrize(
    ("combine", "decision", "failed"),
    [
        ("guard", PENDING_APPROVAL, ["earlier_slice"]),
        ("earlier", REJECT, ["primary_metric"]),
        ("pooled", PROMOTE, []),
    ],
)
def test_the_policy_says_how_slices_combine(combine: str, decision: str, failed: list[str]) -> None:
    """Worse on the rows of the champion's uploads, much better on new ones: better on all rows."""
    candidate, champion = _sliced(earlier=(12.0, 10.0), new=(11.0, 60.0), overall=(11.8, 32.0))
    policy = parse_promotion({"slices": {"combine": combine, "significance": False}}, "regression")
    verdict = evaluate(policy, candidate, champion)
    assert verdict.decision == decision and [g.name for g in verdict.failed] == failed
    json.dumps(verdict.to_dict(), allow_nan=False)
    if combine == "earlier":
        primary = next(g for g in verdict.gates if g.name == "primary_metric")
        assert primary.figure["slice"] == "earlier" and primary.figure["candidate"] == 12.0
    strict = parse_promotion({"slices": {"on_earlier_worse": "reject", "significance": False}}, "regression")
    assert evaluate(strict, candidate, champion).decision == REJECT


def test_a_champion_that_scores_no_row_is_a_stated_reason_for_approval() -> None:
    candidate = candidate_doc({"roc_auc": 0.95}, schema=schema(AMOUNT, {**CHANNEL, "type": "integer"}))
    problem = "the champion v1 cannot score 80 of the 80 holdout rows: its input schema refuses them"
    champion = champion_doc({}, comparison={"rows": 0, "holdout_rows": 80, "problem": problem})
    verdict = evaluate(parse_promotion({}, "classification"), candidate, champion)
    assert verdict.decision == PENDING_APPROVAL and [g.name for g in verdict.failed] == [
        "schema",
        "comparison",
    ]
    assert problem in verdict.reason and "undefined" not in verdict.reason
    assert "primary_metric" not in names(verdict)
    assert_json(comparison_gate({"rows": 0, "problem": problem}))


def test_an_accepted_breaking_change_is_named_in_the_reason_of_a_promotion() -> None:
    candidate = candidate_doc({"roc_auc": 0.95}, schema=schema(AMOUNT))  # channel removed
    policy = parse_promotion({"require_approval_on_breaking_schema": False}, "classification")
    verdict = evaluate(policy, candidate, champion_doc({"roc_auc": 0.91}))
    assert verdict.decision == PROMOTE and "feature channel removed" in verdict.reason


def test_a_reason_of_several_failed_gates_keeps_each_one_apart():
    """Each failed gate's reason reads as its own clause: 'gate: reason; gate: reason', never one
    gate's last word run into the next gate's name."""
    failed = [
        GateResult("primary_metric", False, {}, "roc_auc is worse than the champion's; "),
        GateResult("guard_metrics", False, {}, "log_loss is worse by 0.17"),
        GateResult("latency", False, {}, "p95 is 12 ms over the 10 ms budget."),
    ]
    verdict = gates_module.Verdict(passed=False, gates=failed, decision=REJECT)
    assert verdict.reason == (
        "primary_metric: roc_auc is worse than the champion's; "
        "guard_metrics: log_loss is worse by 0.17; "
        "latency: p95 is 12 ms over the 10 ms budget"
    )
