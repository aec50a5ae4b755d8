"""The primary metric on joined outcomes: the registry's metric, a seeded bootstrap interval, and the
breach rule (the interval's better end on the wrong side of the floor)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from chalicelib.capture.policy import PerformanceRule
from chalicelib.monitoring.join import JoinResult, join
from chalicelib.monitoring.performance import default_floor, performance_report
from tests.monitoring_support import outcome, record

RULE = PerformanceRule()


def joined(correct: int, wrong: int, *, task: str = "classification") -> JoinResult:
    """``correct + wrong`` predictions of class 1 (probability 0.8), each with its outcome."""
    n = correct + wrong
    records = [
        record({"a": 1.0}, i, request_id=f"r{i}", prediction=1, probabilities={"0": 0.2, "1": 0.8})
        for i in range(n)
    ]
    outcomes = [outcome(1 if i < correct else 0, 5, request_id=f"r{i}") for i in range(n)]
    return join(records, outcomes, timedelta(days=7))


def test_accuracy_of_450_right_in_500_is_0_9_with_a_one_sided_bootstrap_bound_near_the_normal_one() -> None:
    out = performance_report(
        joined(450, 50),
        task="classification",
        metric="accuracy",
        greater_is_better=True,
        floor=0.85,
        rule=RULE,
    )
    assert out["value"] == 0.9 and out["n"] == 500 and out["coverage"] == 1.0
    # One-sided 95% bounds of a proportion: 0.9 -/+ 1.645 * sqrt(0.9 * 0.1 / 500) = 0.878 .. 0.922.
    half = 1.645 * math.sqrt(0.9 * 0.1 / 500)
    assert out["low"] == pytest.approx(0.9 - half, abs=0.006)
    assert out["high"] == pytest.approx(0.9 + half, abs=0.006)
    assert out["verdict"] == "ok"


def test_a_floor_above_the_intervals_upper_end_is_a_breach_and_one_inside_it_is_not() -> None:
    pairs = joined(450, 50)
    kwargs = {"task": "classification", "metric": "accuracy", "greater_is_better": True, "rule": RULE}
    assert performance_report(pairs, floor=0.93, **kwargs)["verdict"] == "breach"
    assert performance_report(pairs, floor=0.91, **kwargs)["verdict"] == "ok"  # 0.9 < 0.91 < upper bound


def test_a_lower_is_better_metric_breaches_when_the_lower_end_is_above_the_floor() -> None:
    pairs = joined(450, 50)
    kwargs = {"task": "classification", "metric": "log_loss", "greater_is_better": False, "rule": RULE}
    out = performance_report(pairs, floor=0.2, **kwargs)
    # log loss: 450 rows of -log(0.8), 50 of -log(0.2).
    assert out["value"] == pytest.approx((450 * -math.log(0.8) + 50 * -math.log(0.2)) / 500)
    assert out["low"] > 0.2 and out["verdict"] == "breach"
    assert performance_report(pairs, floor=1.0, **kwargs)["verdict"] == "ok"


def test_fewer_outcomes_than_min_outcomes_is_insufficient_data_however_bad() -> None:
    out = performance_report(
        joined(10, 489),
        task="classification",
        metric="accuracy",
        greater_is_better=True,
        floor=0.9,
        rule=RULE,
    )
    assert out["n"] == 499 and out["verdict"] == "insufficient_data" and out["value"] is None


def test_the_same_pairs_and_seed_give_the_same_report() -> None:
    kwargs = {
        "task": "classification",
        "metric": "roc_auc",
        "greater_is_better": True,
        "floor": 0.5,
        "rule": RULE,
    }
    pairs = joined(400, 150)
    assert performance_report(pairs, seed=3, **kwargs) == performance_report(pairs, seed=3, **kwargs)


def test_regression_rmse_by_hand() -> None:
    records = [record({"a": 1.0}, i, request_id=f"r{i}", prediction=float(i % 2)) for i in range(600)]
    outcomes = [outcome(0.0, 1, request_id=f"r{i}") for i in range(600)]  # error 1 on half the rows
    out = performance_report(
        join(records, outcomes, timedelta(days=1)),
        task="regression",
        metric="rmse",
        greater_is_better=False,
        floor=0.5,
        rule=RULE,
    )
    assert out["value"] == pytest.approx(math.sqrt(0.5)) and out["verdict"] == "breach"


def test_the_default_floor_is_the_contracts_or_the_holdout_value_less_the_tolerance() -> None:
    assert default_floor(0.9, PerformanceRule(), greater_is_better=True) == pytest.approx(0.89)
    assert default_floor(0.3, PerformanceRule(tolerance=0.05), greater_is_better=False) == pytest.approx(0.35)
    assert default_floor(0.9, PerformanceRule(floor=0.7), greater_is_better=True) == 0.7


def test_an_error_metrics_default_floor_is_a_share_of_its_holdout_value() -> None:
    """rmse and mae are in the target's units: a fixed 0.01 would call a clean window of store sales
    (holdout rmse 7.59, live 8.15 on other rows, as the demo found) a breach."""
    assert default_floor(7.59, PerformanceRule(), greater_is_better=False, metric="rmse") == pytest.approx(
        7.59 * 1.1
    )
    assert default_floor(120.0, PerformanceRule(), greater_is_better=False, metric="mae") == pytest.approx(
        132.0
    )
    assert default_floor(7.59, PerformanceRule(tolerance=0.25), greater_is_better=False, metric="rmse") == (
        pytest.approx(7.59 * 1.25)
    )
    # Bounded metrics keep an absolute tolerance.
    assert default_floor(0.9, PerformanceRule(), greater_is_better=True, metric="accuracy") == pytest.approx(
        0.89
    )
