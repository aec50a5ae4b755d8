"""Sustained breaches: a kind's verdict ``breach`` in the last ``persistence`` windows in a row;
insufficient data, an ok window or a gap breaks the run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.capture.policy import MonitoringPolicy, parse_monitoring
from chalicelib.monitoring.breach import sustained_breaches
from tests.monitoring_support import T0

POLICY = MonitoringPolicy()  # drift and quality: 2 windows; performance: 1


def window(k: int, drift: str = "ok", quality: str = "ok", performance: str | None = None) -> dict[str, Any]:
    start, end = T0 + timedelta(hours=k), T0 + timedelta(hours=k + 1)
    report: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "verdicts": {"drift": drift, "prediction_drift": "ok", "quality": quality},
        "drift": {"drifted_share": 0.2 if drift == "breach" else 0.0, "drifted_features": ["b"]},
        "quality": {"quality": 0.9, "rejected": 10},
    }
    if performance is not None:
        report["performance"] = {
            "metric": "accuracy",
            "value": 0.8,
            "low": 0.77,
            "high": 0.83,
            "floor": 0.89,
            "n": 500,
            "verdict": performance,
        }
    return report


def kinds(reports: list[dict[str, Any]], policy: MonitoringPolicy = POLICY) -> list[str]:
    return [b["kind"] for b in sustained_breaches(reports, policy)]


def test_one_drifted_window_is_not_a_breach_and_two_in_a_row_are() -> None:
    assert kinds([window(0), window(1, drift="breach")]) == []
    found = sustained_breaches([window(0), window(1, drift="breach"), window(2, drift="breach")], POLICY)
    assert [b["kind"] for b in found] == ["drift"]
    assert found[0]["windows"] == [window(1)["start"], window(2)["start"]]
    assert found[0]["figures"]["drifted_features"] == ["b"]
    assert "2 windows in a row" in found[0]["reason"]


def test_persistence_comes_from_the_policy() -> None:
    three = parse_monitoring({"drift": {"persistence": 3}})
    run = [window(k, drift="breach") for k in range(3)]
    assert kinds(run[:2], three) == []
    assert kinds(run, three) == ["drift"]


def test_insufficient_data_and_gaps_break_a_run() -> None:
    assert (
        kinds(
            [window(0, quality="breach"), window(1, quality="insufficient_data"), window(2, quality="breach")]
        )
        == []
    )
    assert kinds([window(0, quality="breach"), window(2, quality="breach")]) == []  # hour 1 is missing
    assert kinds([window(0, quality="breach"), window(1, quality="breach")]) == ["quality"]


def test_performance_breaches_in_one_window_by_default_from_its_section() -> None:
    assert kinds([window(0, performance="breach")]) == ["performance"]
    assert kinds([window(0, performance="insufficient_data")]) == []


_verdicts = st.sampled_from(["ok", "breach", "insufficient_data"])


@given(st.lists(st.tuples(_verdicts, _verdicts, _verdicts), min_size=0, max_size=8))
def test_a_breach_needs_persistence_breaching_windows_in_a_row_and_never_insufficient_data(verdicts) -> None:
    reports = [window(k, d, q, p) for k, (d, q, p) in enumerate(verdicts)]
    found = set(kinds(reports))
    for position, kind in enumerate(("drift", "quality", "performance")):
        needed = {"drift": 2, "quality": 2, "performance": 1}[kind]
        tail = [v[position] for v in verdicts[-needed:]]
        expected = len(verdicts) >= needed and all(v == "breach" for v in tail)
        assert (kind in found) == expected
        if any(v[position] == "insufficient_data" for v in verdicts[-needed:]):
            assert kind not in found
