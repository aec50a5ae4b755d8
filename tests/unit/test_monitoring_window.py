"""A window's statistics: volume, errors and latency by hand; input quality against the validator's
own rejections; feature and prediction drift at their documented false-alarm rate and against a
0.5-SD shift; masked features; too few records is never a breach."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.capture.policy import MonitoringPolicy, parse_monitoring
from chalicelib.monitoring.window import live_profile, reference_predictions, window_report
from chalicelib.validation import Contract, validate_stream
from tests.monitoring_support import T0, contract, csv_text, predict, record, reference_profile, rows

POLICY = MonitoringPolicy()


@cache
def _reference() -> tuple[dict[str, Any], dict[str, Any]]:
    reference_rows = rows(5000, seed=1)
    return reference_profile(reference_rows), reference_predictions([predict(r) for r in reference_rows])


def report(
    records: list[dict[str, Any]], policy: MonitoringPolicy = POLICY, doc: Contract | None = None
) -> dict:
    profile, predictions = _reference()
    return window_report(
        records,
        contract=doc or contract(),
        policy=policy,
        reference_profile=profile,
        reference_predictions=predictions,
        start=T0,
        end=T0 + timedelta(hours=1),
    )


def window(n: int, seed: int, **shift: float) -> list[dict[str, Any]]:
    return [record(r, i) for i, r in enumerate(rows(n, seed, shift))]


def test_volume_errors_and_latency_count_answers_given_and_leave_the_shadow_apart() -> None:
    base = rows(6, seed=3)
    records = [
        record(base[0], request_id="q1", index=0, latency_ms=10.0),
        record(base[1], request_id="q1", index=1, latency_ms=10.0),  # same request, same latency
        record(base[2], request_id="q2", latency_ms=20.0, status="invalid"),
        record(base[3], request_id="q3", latency_ms=30.0, role="batch", version=2),
        record(base[4], request_id="q4", latency_ms=40.0, status="error", role="pinned"),
        record(base[5], request_id="q1", index=0, latency_ms=10.0, role="shadow", version=2),
    ]
    out = report(records)
    assert out["volume"] == {
        "records": 5,
        "requests": 4,
        "by_role": {"batch": 1, "champion": 3, "pinned": 1},
        "by_version": {"1": 4, "2": 1},
        "shadow_records": 1,
    }
    assert out["errors"] == {"invalid": 1, "error": 1, "invalid_rate": 0.2, "error_rate": 0.2}
    # A rollout candidate's answer (canary) was received by somebody: it counts; the champion's shadow
    # beside it does not.
    canary = [
        record(base[0], request_id="q5", latency_ms=5.0, role="canary", version=3),
        record(base[0], request_id="q5", latency_ms=4.0, role="shadow", version=1),
    ]
    with_canary = report(records + canary)["volume"]
    assert with_canary["by_role"] == {"batch": 1, "canary": 1, "champion": 3, "pinned": 1}
    assert with_canary["shadow_records"] == 2
    # numpy's linear percentiles of the four requests' latencies 10, 20, 30, 40.
    latency = out["latency"]
    assert latency["requests"] == 4 and latency["p50"] == 25.0
    assert abs(latency["p95"] - 38.5) < 1e-9 and abs(latency["p99"] - 39.7) < 1e-9


def test_too_few_records_is_insufficient_data_for_every_verdict_even_when_shifted() -> None:
    out = report(window(199, seed=4, a=3.0), parse_monitoring({"min_requests": 200}))
    assert out["drift"]["verdict"] == "drifted"  # the statistic still says so...
    assert out["verdicts"] == {
        "drift": "insufficient_data",
        "prediction_drift": "insufficient_data",
        "quality": "insufficient_data",
    }  # ...but 199 < min_requests 200 is never a breach


def test_quality_counts_each_rejected_value_by_its_reason() -> None:
    records = window(200, seed=5)
    records[0]["inputs"]["a"] = None  # missing: a is not nullable
    records[1]["inputs"]["a"] = 99.5  # out of range
    records[2]["inputs"]["c"] = "w"  # unknown category
    records[3]["inputs"]["b"] = "12"  # text for a number
    records[4]["inputs"]["n"] = 2.5  # not an integer
    records[5]["inputs"]["b"] = None  # b is nullable: accepted
    records[6]["inputs"]["n"] = 3.0  # JSON 3.0 is the integer 3: accepted
    del records[7]["inputs"]["flag"]  # a feature left out is missing
    out = report(records)["quality"]
    assert out["values"] == 200 * 5
    assert out["rejected"] == 6
    assert out["by_reason"] == {"missing": 2, "out_of_range": 1, "unknown_category": 1, "unreadable": 2}
    assert out["by_feature"]["a"]["reasons"] == {"missing": 1, "out_of_range": 1}
    assert out["quality"] == 1 - 6 / 1000
    assert out["verdict"] == "ok"


def test_quality_below_the_floor_is_a_breach() -> None:
    records = window(200, seed=6)
    for r in records[:60]:  # 60 of 1,000 values: quality 0.94 < 0.95
        r["inputs"]["c"] = "unknown"
    out = report(records)
    assert out["quality"]["quality"] == 0.94
    assert out["verdicts"]["quality"] == "breach"


_cell = {
    "a": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-20, 20)),
    "c": st.one_of(st.none(), st.sampled_from(["x", "y", "z", "w", "X", ""])),
    "n": st.one_of(st.none(), st.integers(-3, 25)),
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries(_cell), min_size=1, max_size=40))
def test_quality_counts_match_the_validators_rejections_of_the_same_values(cells) -> None:
    doc = contract()
    records = [record({**rows(1, seed=0)[0], **cell}, i, prediction=0) for i, cell in enumerate(cells)]
    ours = report(records, doc=doc)["quality"]["by_feature"]
    # The same values as an upload: the validator's issue counts per column.
    lines = ["rid,a,b,c,n,flag,secret,email,y"]
    for i, r in enumerate(records):
        inputs = r["inputs"]
        lines.append(
            ",".join(
                [f"r-{i}", *(csv_text(inputs[f]) for f in ("a", "b", "c", "n", "flag")), "1.0", "e", "0"]
            )
        )
    result = validate_stream(io.BytesIO("\n".join(lines).encode()), doc)
    theirs: dict[str, int] = {}
    for issue in result.report["issues"]:
        if issue["column"] in ("a", "c", "n"):
            theirs[issue["column"]] = theirs.get(issue["column"], 0) + issue["count"]
    for name in ("a", "c", "n"):
        assert ours[name]["rejected"] == theirs.get(name, 0), (name, result.report["issues"])


def test_the_live_profile_is_the_validators_format_without_masked_features() -> None:
    records = window(150, seed=7)
    profile = live_profile(records, contract(), POLICY)
    assert profile["rows"] == 150
    assert set(profile["columns"]) == {"a", "b", "c", "n", "flag"}  # no secret (dropped), no email (pii)
    assert profile["columns"]["a"]["kind"] == "numeric" and len(profile["columns"]["a"]["sample"]) == 150
    assert profile["columns"]["flag"]["kind"] == "categorical"
    assert sum(profile["columns"]["c"]["counts"].values()) == 150


def test_hashed_confidential_values_are_categories_and_are_not_compared_with_the_reference() -> None:
    policy = parse_monitoring({"confidential": "hash"})
    records = window(300, seed=8)
    for i, r in enumerate(records):
        r["inputs"]["secret"] = f"h:{i % 7:064x}"
    out = report(records, policy)
    assert out["drift"]["hashed_features"] == ["secret"]
    assert "secret" not in out["drift"]["features"]
    assert out["quality"]["by_feature"]["secret"] == {
        "values": 0, "rejected": 0, "quality": None, "reasons": {}, "hashed": 300
    }  # fmt: skip
    assert live_profile(records, contract(), policy)["columns"]["secret"]["kind"] == "categorical"


def test_windows_drawn_from_the_reference_drift_no_more_often_than_the_contracts_level() -> None:
    # Each window's tests run at ks_pvalue 0.01 in all (Bonferroni over features): over 60 windows
    # about 0.6 are expected to drift; 4 or more would happen by chance with probability 0.3%.
    breaches = [report(window(500, seed=100 + k))["verdicts"]["drift"] for k in range(60)]
    assert breaches.count("insufficient_data") == 0
    assert breaches.count("breach") <= 3


def test_a_half_sd_shift_of_one_feature_in_500_records_is_drifted() -> None:
    for seed in range(200, 210):
        out = report(window(500, seed=seed, b=1.0))  # b's SD is 2
        assert out["verdicts"]["drift"] == "breach", seed
        assert out["drift"]["drifted_features"] == ["b"]
        assert out["drift"]["drifted_share"] == 1 / 5


def test_prediction_drift_judges_predicted_classes_against_the_reference_shares() -> None:
    reference = reference_predictions([0] * 500 + [1] * 500)
    assert reference == {"kind": "labels", "counts": {"0": 500, "1": 500}}
    profile, _ = _reference()

    def verdict(zeros: int, ones: int) -> dict:
        records = [
            record(r, i, prediction=0 if i < zeros else 1) for i, r in enumerate(rows(zeros + ones, 9))
        ]
        return window_report(
            records,
            contract=contract(),
            policy=POLICY,
            reference_profile=profile,
            reference_predictions=reference,
            start=T0,
            end=T0,
        )["prediction_drift"]

    even, skewed = verdict(250, 250), verdict(400, 100)
    assert even["verdict"] == "ok" and even["chi2"] == 0.0 and even["psi"] == 0.0
    assert skewed["verdict"] == "breach"
    # 2 x 2 table [[500, 500], [400, 100]]: chi-square by hand, (observed - expected)^2 / expected.
    expected = np.outer([1000, 500], [900, 600]) / 1500
    observed = np.array([[500, 500], [400, 100]])
    assert abs(skewed["chi2"] - float(((observed - expected) ** 2 / expected).sum())) < 1e-9


def test_regression_predictions_are_judged_by_ks_against_a_sample() -> None:
    rng = np.random.default_rng(10)
    reference = reference_predictions(rng.normal(0, 1, 3000).tolist(), task="regression")
    assert reference["kind"] == "numeric" and len(reference["sample"]) == 3000
    profile, _ = _reference()

    def verdict(shift: float) -> str:
        predictions = rng.normal(shift, 1, 500)
        records = [
            record(r, i, prediction=float(p))
            for i, (r, p) in enumerate(zip(rows(500, 11), predictions, strict=True))
        ]
        out = window_report(
            records,
            contract=contract(),
            policy=POLICY,
            reference_profile=profile,
            reference_predictions=reference,
            start=T0,
            end=T0,
        )
        return str(out["verdicts"]["prediction_drift"])

    assert verdict(0.0) == "ok"
    assert verdict(0.5) == "breach"


def test_without_reference_predictions_prediction_drift_is_insufficient_data() -> None:
    profile, _ = _reference()
    out = window_report(
        window(200, 12),
        contract=contract(),
        policy=POLICY,
        reference_profile=profile,
        reference_predictions=None,
        start=T0,
        end=T0,
    )
    assert out["verdicts"]["prediction_drift"] == "insufficient_data"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(
                st.sampled_from(["a", "b", "c", "n", "flag", "secret", "extra"]), _json, max_size=7
            ),
            _json,
        ),
        min_size=0,
        max_size=30,
    )
)
def test_any_json_inputs_give_a_well_formed_report(inputs) -> None:
    records = [record({}, i, prediction=0) | {"inputs": value} for i, value in enumerate(inputs)]
    out = report(records, parse_monitoring({"min_requests": 1, "confidential": "hash"}))
    quality = out["quality"]
    assert quality["quality"] is None or 0.0 <= quality["quality"] <= 1.0
    assert quality["rejected"] <= quality["values"]
    assert set(out["verdicts"].values()) <= {"ok", "breach", "insufficient_data"}
    json.dumps(out, allow_nan=False)  # plain JSON: the report is stored and served as it is
