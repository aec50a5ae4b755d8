"""Drift statistics (chalicelib/validation/drift.py) against scipy, the reservoir, and the drift report.

scipy is the reference here only: the module under test must not import it (Lambda package size).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from chalicelib.validation import drift
from chalicelib.validation.contract import DriftThresholds
from chalicelib.validation.drift import (
    Reservoir,
    bin_fractions,
    categorical_column_profile,
    chi_square,
    compare,
    gammaincc,
    js_distance,
    ks_2samp,
    numeric_column_profile,
    pool_sparse_cells,
    pooled_chi_square,
    psi,
    quantile_edges,
)

TOL = 1e-9


def close(actual: float, expected: float, tol: float = TOL) -> bool:
    """Equal to within tol, relative for values above 1e-300 (tiny p-values must match too)."""
    return math.isclose(actual, expected, rel_tol=tol, abs_tol=1e-300)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- Kolmogorov-Smirnov ---------------------------------------------------------------------------


def assert_ks_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    statistic, pvalue = ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert abs(statistic - float(expected.statistic)) <= TOL
    assert close(pvalue, float(expected.pvalue)), (len(a), len(b), pvalue, float(expected.pvalue))
    assert type(statistic) is float and type(pvalue) is float


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "seed"),
    [
        (500, 400, 0.0, 1),
        (500, 400, 0.3, 2),
        (1000, 1000, 0.1, 3),  # equal sizes: scipy's closed form for the square lattice
        (569, 5000, 0.0, 4),  # a small upload against a full reference reservoir
        (569, 5000, 0.5, 5),
        (4000, 5000, 0.5, 6),  # p-value near 1e-80: must match in relative terms
        (5000, 5000, 0.05, 7),
    ],
)
def test_ks_matches_scipy_on_shifted_normals(n1: int, n2: int, shift: float, seed: int) -> None:
    r = rng(seed)
    assert_ks_matches_scipy(r.normal(size=n1), r.normal(shift, 1.0, size=n2))


@pytest.mark.parametrize(
    ("n1", "n2"), [(1, 1), (1, 7), (3, 5), (5, 7), (10, 10), (13, 29), (50, 37), (99, 100)]
)
def test_ks_matches_scipy_exact_method_on_small_samples(n1: int, n2: int) -> None:
    r = rng(n1 * 100 + n2)
    for shift in (0.0, 0.7, 2.0):
        assert_ks_matches_scipy(r.normal(size=n1), r.normal(shift, 1.0, size=n2))


def test_ks_matches_scipy_on_many_random_small_samples() -> None:
    r = rng(11)
    for _ in range(150):
        n1, n2 = int(r.integers(1, 80)), int(r.integers(1, 80))
        assert_ks_matches_scipy(r.normal(size=n1), r.normal(r.uniform(0, 1.5), 1.0, size=n2))


def test_ks_matches_scipy_with_ties_and_discrete_values() -> None:
    r = rng(12)
    assert_ks_matches_scipy(r.integers(0, 5, 200).astype(float), r.integers(0, 6, 300).astype(float))
    assert_ks_matches_scipy(r.integers(0, 3, 40).astype(float), r.integers(0, 3, 40).astype(float))
    assert_ks_matches_scipy(np.round(r.normal(size=1500), 1), np.round(r.normal(0.1, size=1200), 1))


def test_ks_matches_scipy_on_constant_and_identical_samples() -> None:
    assert_ks_matches_scipy(np.full(50, 3.0), np.full(70, 3.0))
    assert_ks_matches_scipy(np.full(50, 3.0), np.full(70, 4.0))
    same = rng(13).normal(size=300)
    assert_ks_matches_scipy(same, same.copy())


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (20000, 15000, 0.0),  # Pelz-Good region of the kstwo distribution
        (20000, 15000, 0.05),  # Smirnov's one-sided sum
        (12000, 11000, 0.3),  # p-value near 1e-80
        (20000, 150, 0.2),  # n <= 140 after rounding n1*n2/(n1+n2): Pomeranz / Durbin
        (30000, 120, 0.0),
        (11000, 300, 0.0),
        (50000, 40000, 0.02),
    ],
)
def test_ks_matches_scipy_asymptotic_method_above_10000_values(n1: int, n2: int, shift: float) -> None:
    r = rng(n1 + n2)
    assert_ks_matches_scipy(r.normal(size=n1), r.normal(shift, 1.0, size=n2))


@pytest.mark.parametrize("n", [1, 3, 10, 60, 140, 141, 500, 8571, 100000])
def test_kstwo_survival_matches_scipy_across_its_methods(n: int) -> None:
    # Each (n, x) region of Simard & L'Ecuyer's algorithm: Ruben-Gambino ends, Durbin, Pomeranz,
    # Pelz-Good, Smirnov's sum.
    for x in np.concatenate((np.linspace(0.001, 0.999, 120), [0.5 / n, 1.0 / n, 1.5 / n, 2.0 / n])):
        x = float(min(x, 1.0))
        assert close(drift._kstwo_sf(x, n), float(stats.kstwo.sf(x, n))), (n, x)


def test_smirnov_one_sided_matches_scipy_special() -> None:
    for n in (2, 10, 141, 1000, 8571, 100000):
        for x in (0.01, 0.02, 0.1, 0.3, 0.5, 0.7, 0.95):
            assert close(drift._smirnov_sf(n, x), float(special.smirnov(n, x))), (n, x)


def test_ks_rejects_empty_or_nan_samples() -> None:
    with pytest.raises(ValueError):
        ks_2samp([], [1.0])
    with pytest.raises(ValueError):
        ks_2samp([1.0, math.nan], [1.0])


# --- PSI and bins -----------------------------------------------------------------------------------


def reference_psi(expected: list[float], actual: list[float], eps: float = 1e-4) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, eps), max(a, eps)
        total += (a - e) * math.log(a / e)
    return total


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_psi_matches_direct_computation_with_eps_floor(seed: int) -> None:
    r = rng(seed)
    expected = r.dirichlet(np.ones(10))
    actual = r.dirichlet(np.ones(10))
    actual[3] = 0.0  # an empty bin is floored at eps instead of making PSI infinite
    assert close(psi(expected, actual), reference_psi(list(expected), list(actual)), 1e-12)
    assert close(psi(expected, actual, eps=0.01), reference_psi(list(expected), list(actual), 0.01), 1e-12)


def test_psi_is_zero_for_identical_fractions_and_grows_with_shift() -> None:
    fractions = [0.1] * 10
    assert psi(fractions, fractions) == 0.0
    assert psi(fractions, [0.05] * 5 + [0.15] * 5) < psi(fractions, [0.0] * 5 + [0.2] * 5)


def test_quantile_edges_put_every_value_in_a_bin_with_equal_shares() -> None:
    sample = rng(4).normal(size=10000)
    edges = quantile_edges(sample, 10)
    assert edges[0] == -np.inf and edges[-1] == np.inf and len(edges) == 11
    fractions = bin_fractions(sample, edges)
    assert fractions.sum() == pytest.approx(1.0)
    assert np.allclose(fractions, 0.1, atol=1e-3)
    outside = bin_fractions([-1e9, 1e9], edges)
    assert outside[0] == 0.5 and outside[-1] == 0.5


def test_quantile_edges_collapse_ties_and_handle_constant_and_empty_samples() -> None:
    discrete = rng(5).integers(0, 3, 1000).astype(float)
    edges = quantile_edges(discrete, 10)
    assert list(edges) == [-np.inf, 0.0, 1.0, 2.0, np.inf]
    constant_edges = quantile_edges(np.full(100, 7.0), 10)
    assert list(constant_edges) == [-np.inf, 7.0, np.inf]
    assert list(bin_fractions(np.full(5, 7.0), constant_edges)) == [0.0, 1.0]
    assert list(quantile_edges([], 10)) == [-np.inf, np.inf]
    assert list(bin_fractions([], [-np.inf, 0.0, np.inf])) == [0.0, 0.0]


# --- Jensen-Shannon and chi-square ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_js_distance_matches_scipy_base_2(seed: int) -> None:
    r = rng(seed)
    k = int(r.integers(2, 30))
    p = r.integers(0, 500, k).astype(float)
    q = r.integers(0, 500, k).astype(float)
    q[0] = 0.0  # a category seen on one side only
    assert close(js_distance(p, q), float(jensenshannon(p, q, base=2)))


def test_js_distance_is_zero_for_same_mix_and_one_for_disjoint_categories() -> None:
    assert js_distance([10, 20, 30], [1, 2, 3]) == 0.0
    assert js_distance([5, 0], [0, 9]) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError):
        js_distance([0, 0], [1, 2])


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_chi_square_matches_scipy_contingency_without_correction(seed: int) -> None:
    r = rng(seed)
    k = int(r.integers(2, 40))
    ref = r.integers(1, 1000, k)
    cur = np.maximum(ref + r.integers(-60, 60, k), 0)
    statistic, pvalue = chi_square(ref, cur)
    expected = stats.chi2_contingency(np.vstack((ref, cur)), correction=False)
    assert close(statistic, float(expected.statistic))
    assert close(pvalue, float(expected.pvalue))


def test_chi_square_matches_scipy_for_two_categories_and_tiny_pvalues() -> None:
    for ref, cur in (([30, 70], [45, 55]), ([500, 500], [900, 100]), ([5000, 10, 3000], [100, 4000, 3000])):
        statistic, pvalue = chi_square(ref, cur)
        expected = stats.chi2_contingency(np.array([ref, cur]), correction=False)
        assert close(statistic, float(expected.statistic))
        assert close(pvalue, float(expected.pvalue))


def test_chi_square_drops_categories_empty_in_both_and_degenerates_to_one_category() -> None:
    statistic, pvalue = chi_square([10, 0, 20], [15, 0, 25])
    expected = stats.chi2_contingency(np.array([[10, 20], [15, 25]]), correction=False)
    assert close(statistic, float(expected.statistic)) and close(pvalue, float(expected.pvalue))
    assert chi_square([10, 0], [4, 0]) == (0.0, 1.0)
    with pytest.raises(ValueError):
        chi_square([0, 0], [1, 2])


def test_upper_incomplete_gamma_matches_scipy() -> None:
    for a in (0.5, 1.0, 1.5, 2.0, 4.5, 10.0, 49.5, 100.0, 500.0, 1250.0):
        for x in (1e-3, 0.1, 1.0, 3.0, 0.5 * a, a, a + 1, 1.5 * a, 3 * a, a + 40):
            expected = float(special.gammaincc(a, x))
            assert close(gammaincc(a, x), expected, 1e-11), (a, x)
    assert gammaincc(3.0, 0.0) == 1.0


# --- reservoir ----------------------------------------------------------------------------------


def test_reservoir_keeps_everything_when_fewer_values_than_capacity() -> None:
    reservoir = Reservoir(capacity=100, seed=1)
    reservoir.add(np.arange(30.0))
    reservoir.add(np.arange(30.0, 60.0))
    assert reservoir.seen == 60 and len(reservoir) == 60
    assert sorted(reservoir.values().tolist()) == list(np.arange(60.0))


def test_reservoir_size_is_bounded_by_capacity() -> None:
    reservoir = Reservoir(capacity=500, seed=2)
    for i in range(50):
        reservoir.add(rng(i).normal(size=20000))
    assert len(reservoir) == 500 and reservoir.values().shape == (500,)
    assert reservoir.seen == 1_000_000


def test_reservoir_is_deterministic_for_a_seed_and_independent_of_chunking() -> None:
    data = np.arange(100000.0)
    whole, chunked, other_seed = Reservoir(1000, seed=7), Reservoir(1000, seed=7), Reservoir(1000, seed=8)
    whole.add(data)
    for chunk in np.array_split(data, 13):
        chunked.add(chunk)
    other_seed.add(data)
    assert np.array_equal(whole.values(), chunked.values())
    assert not np.array_equal(whole.values(), other_seed.values())


def test_reservoir_sample_is_roughly_uniform() -> None:
    n = 200000
    reservoir = Reservoir(capacity=5000, seed=3)
    for chunk in np.array_split(np.arange(float(n)), 10):
        reservoir.add(chunk)
    values = reservoir.values()
    assert len(np.unique(values)) == 5000  # without replacement
    # The mean of 5000 draws from 0..n-1 has standard error n/sqrt(12*5000) ~ 816: allow 5 of them.
    assert abs(values.mean() - (n - 1) / 2) < 5 * n / math.sqrt(12 * 5000)
    counts, _ = np.histogram(values, bins=10, range=(0, n))
    assert counts.min() > 400 and counts.max() < 600


def test_reservoir_skips_nan_and_infinities() -> None:
    reservoir = Reservoir(capacity=10)
    reservoir.add([1.0, math.nan, math.inf, -math.inf, 2.0])
    assert reservoir.seen == 2 and sorted(reservoir.values().tolist()) == [1.0, 2.0]
    with pytest.raises(ValueError):
        Reservoir(capacity=0)


# --- profiles and compare ---------------------------------------------------------------------------


def numeric(values: np.ndarray | list[float], nulls: int = 0, seed: int = 0) -> dict[str, Any]:
    reservoir = Reservoir(capacity=5000, seed=seed)
    reservoir.add(np.asarray(values, dtype=float))
    return numeric_column_profile(len(values) + nulls, nulls, reservoir)


def profile(columns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = max((c["count"] for c in columns.values()), default=0)
    return {"rows": rows, "columns": columns}


def assert_json(report: dict[str, Any]) -> None:
    json.dumps(report, allow_nan=False)

    def walk(value: Any) -> None:
        assert not isinstance(value, np.generic), value
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(report)


def test_profile_helpers_build_json_serialisable_dicts() -> None:
    reservoir = Reservoir(capacity=3, seed=1)
    reservoir.add(np.array([1.5, 2.5]))
    assert numeric_column_profile(3, 1, reservoir) == {
        "kind": "numeric",
        "count": 3,
        "nulls": 1,
        "invalid": 0,
        "sample": reservoir.values().tolist(),
    }
    assert sorted(numeric_column_profile(3, 1, reservoir)["sample"]) == [1.5, 2.5]
    assert numeric_column_profile(4, 1, reservoir, invalid=1)["invalid"] == 1
    cat = categorical_column_profile(5, 1, {"b": 1, "a": np.int64(3)})
    assert cat == {"kind": "categorical", "count": 5, "nulls": 1, "invalid": 0, "counts": {"a": 3, "b": 1}}
    json.dumps(cat, allow_nan=False)


def test_compare_flags_a_shifted_numeric_column_with_a_reason_and_not_an_unchanged_one() -> None:
    r = rng(20)
    reference = profile({"shifted": numeric(r.normal(size=3000)), "steady": numeric(r.normal(size=3000))})
    current = profile({"shifted": numeric(r.normal(1.0, size=2000)), "steady": numeric(r.normal(size=2000))})
    report = compare(reference, current, DriftThresholds())
    shifted, steady = report["features"]["shifted"], report["features"]["steady"]
    assert shifted["drifted"] and shifted["psi"] > 0.2 and shifted["ks_pvalue"] < 0.01
    assert any(
        reason.startswith("PSI ") and "the distribution shifted" in reason for reason in shifted["reasons"]
    )
    assert any(reason.startswith("KS p-value") for reason in shifted["reasons"])
    assert not steady["drifted"] and steady["reasons"] == []
    assert report["drifted_features"] == ["shifted"]
    assert report["drifted_fraction"] == 0.5
    assert report["verdict"] == "drifted"  # 0.5 > 0.3
    ref_sample, cur_sample = (
        reference["columns"]["shifted"]["sample"],
        current["columns"]["shifted"]["sample"],
    )
    expected = stats.ks_2samp(ref_sample, cur_sample)
    assert close(shifted["ks_pvalue"], float(expected.pvalue))
    assert_json(report)


def test_compare_psi_uses_quantile_bins_of_the_reference_sample() -> None:
    r = rng(21)
    reference = profile({"x": numeric(r.normal(size=2000))})
    current = profile({"x": numeric(r.normal(0.3, size=1500))})
    thresholds = DriftThresholds(bins=5)
    report = compare(reference, current, thresholds)
    ref_sample = np.array(reference["columns"]["x"]["sample"])
    cur_sample = np.array(current["columns"]["x"]["sample"])
    edges = np.quantile(ref_sample, [0.2, 0.4, 0.6, 0.8])
    e = np.histogram(ref_sample, bins=[-np.inf, *edges, np.inf])[0] / ref_sample.size
    a = np.histogram(cur_sample, bins=[-np.inf, *edges, np.inf])[0] / cur_sample.size
    assert report["features"]["x"]["psi"] == pytest.approx(reference_psi(list(e), list(a)), rel=1e-12)


def verdict_for(drifted: int, total: int) -> dict[str, Any]:
    r = rng(22)
    ref_cols, cur_cols = {}, {}
    for i in range(total):
        ref_cols[f"f{i}"] = numeric(r.normal(size=1000))
        cur_cols[f"f{i}"] = numeric(r.normal(3.0 if i < drifted else 0.0, size=1000))
    return compare(profile(ref_cols), profile(cur_cols), DriftThresholds())


def test_one_drifted_feature_among_stable_ones_makes_the_dataset_drifted() -> None:
    one = verdict_for(drifted=1, total=10)
    assert one["drifted_features"] == ["f0"] and one["drifted_fraction"] == 0.1
    assert one["verdict"] == "drifted"
    assert one["reasons"] == ["1 of 10 features drifted: one is enough"]
    none = verdict_for(drifted=0, total=4)
    assert none["verdict"] == "stable" and none["drifted_features"] == [] and none["reasons"] == []


def test_every_test_runs_at_the_budget_divided_by_the_number_of_tests() -> None:
    report = verdict_for(drifted=0, total=3)
    assert report["tests"] == 3 * drift.NUMERIC_TESTS
    assert report["test_level"] == pytest.approx(0.01 / (3 * drift.NUMERIC_TESTS))
    mixed = compare(
        profile({"x": numeric(rng(1).normal(size=500)), "c": categorical_column_profile(500, 0, {"a": 500})}),
        profile({"x": numeric(rng(2).normal(size=500)), "c": categorical_column_profile(500, 0, {"a": 500})}),
        DriftThresholds(ks_pvalue=0.05),
    )
    assert mixed["tests"] == drift.NUMERIC_TESTS + drift.CATEGORICAL_TESTS
    assert mixed["test_level"] == pytest.approx(0.05 / mixed["tests"])


def test_compare_lists_new_categories_and_flags_a_changed_category_mix() -> None:
    reference = profile(
        {
            "region": categorical_column_profile(1000, 0, {"north": 500, "south": 500}),
            "colour": categorical_column_profile(1000, 0, {"red": 500, "blue": 500}),
        }
    )
    current = profile(
        {
            "region": categorical_column_profile(1000, 0, {"north": 490, "south": 500, "west": 10}),
            "colour": categorical_column_profile(1000, 0, {"red": 900, "blue": 100}),
        }
    )
    report = compare(reference, current, DriftThresholds())
    region, colour = report["features"]["region"], report["features"]["colour"]
    assert region["new_categories"] == ["west"] and not region["drifted"]
    assert colour["drifted"] and colour["new_categories"] == []
    assert any("Jensen-Shannon distance" in reason for reason in colour["reasons"])
    assert any(reason.startswith("PSI ") for reason in colour["reasons"])
    expected = stats.chi2_contingency(np.array([[100, 900], [500, 500]]), correction=False)
    assert close(colour["chi2"], float(expected.statistic)) and close(
        colour["chi2_pvalue"], float(expected.pvalue)
    )
    assert close(colour["js_distance"], float(jensenshannon([100, 900], [500, 500], base=2)))
    assert_json(report)


def test_compare_flags_a_change_in_missing_rate() -> None:
    r = rng(23)
    values = r.normal(size=900)
    reference = profile({"x": numeric(values, nulls=100)})
    current = profile({"x": numeric(values[:600], nulls=400)})
    feature = compare(reference, current, DriftThresholds())["features"]["x"]
    assert feature["missing_rate_reference"] == 0.1 and feature["missing_rate_current"] == 0.4
    assert feature["missing_rate_delta"] == pytest.approx(0.3)
    assert feature["drifted"]
    assert any(reason.startswith("missing rate rose from 10.0% to 40.0%") for reason in feature["reasons"])


def test_compare_survives_all_null_constant_and_one_sided_columns() -> None:
    reference = profile(
        {
            "all_null": numeric([], nulls=50),
            "becomes_null": numeric(rng(24).normal(size=50)),
            "constant": numeric([5.0] * 50),
            "cat_all_null": categorical_column_profile(50, 50, {}),
            "cat": categorical_column_profile(50, 0, {"a": 50}),
            "only_in_reference": numeric([1.0, 2.0]),
            "empty": numeric([]),
        }
    )
    current = profile(
        {
            "all_null": numeric([], nulls=40),
            "becomes_null": numeric([], nulls=50),
            "constant": numeric([5.0] * 40),
            "cat_all_null": categorical_column_profile(40, 0, {"a": 40}),
            "cat": categorical_column_profile(40, 0, {"b": 40}),
            "only_in_current": categorical_column_profile(3, 0, {"z": 3}),
            "empty": numeric([]),
        }
    )
    report = compare(reference, current, DriftThresholds(min_values=10))
    assert_json(report)
    features = report["features"]
    assert features["all_null"]["verdict"] == "insufficient_data"
    assert features["all_null"]["psi"] is None and features["all_null"]["ks_pvalue"] is None
    assert not features["all_null"]["drifted"]
    assert features["becomes_null"]["drifted"] and features["becomes_null"]["missing_rate_current"] == 1.0
    assert features["constant"]["psi"] == 0.0 and features["constant"]["ks_pvalue"] == 1.0
    assert not features["constant"]["drifted"]
    assert features["cat_all_null"]["js_distance"] is None and features["cat_all_null"]["drifted"]
    assert features["cat"]["js_distance"] == 1.0 and features["cat"]["new_categories"] == ["b"]
    assert features["cat"]["drifted"]
    assert features["empty"]["missing_rate_reference"] is None and not features["empty"]["drifted"]
    assert report["not_compared"] == ["only_in_current", "only_in_reference"]


def test_compare_restricts_to_requested_columns_and_reports_a_kind_change() -> None:
    reference = profile({"a": numeric([1.0, 2.0, 3.0]), "b": numeric([1.0, 2.0])})
    current = profile({"a": categorical_column_profile(3, 0, {"x": 3}), "b": numeric([1.0, 2.0])})
    report = compare(reference, current, DriftThresholds(), columns=["a", "missing"])
    assert list(report["features"]) == ["a"]
    assert report["features"]["a"]["drifted"] and report["features"]["a"]["reference_kind"] == "numeric"
    assert report["not_compared"] == ["missing"]
    assert report["drifted_fraction"] == 1.0


def test_compare_of_empty_profiles_is_insufficient_data_and_of_featureless_ones_stable() -> None:
    report = compare({"rows": 0, "columns": {}}, {"rows": 0, "columns": {}}, DriftThresholds())
    assert report["features"] == {} and report["drifted_fraction"] == 0.0
    assert report["verdict"] == "insufficient_data"
    assert report["reasons"] == ["0 rows, fewer than drift.min_values 100: too few to judge drift"]
    assert_json(report)
    featureless = compare({"rows": 500, "columns": {}}, {"rows": 500, "columns": {}}, DriftThresholds())
    assert featureless["verdict"] == "stable"


def test_compare_report_survives_a_json_round_trip_of_the_profiles() -> None:
    r = rng(25)
    reference = json.loads(json.dumps(profile({"x": numeric(r.normal(size=500))})))
    current = json.loads(json.dumps(profile({"x": numeric(r.normal(size=400))})))
    report = compare(reference, current, DriftThresholds())
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_drift_module_imports_only_numpy_and_the_standard_library() -> None:
    source = Path(drift.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert (
        imported - {"__future__", "math", "collections", "fractions", "typing", "numpy", "chalicelib"}
        == set()
    )


# --- properties against scipy (hypothesis) ---------------------------------------------------------

PROPERTY = settings(max_examples=60, deadline=None)
counts_vector = st.lists(st.integers(0, 2000), min_size=2, max_size=25)


@PROPERTY
@given(
    n1=st.integers(1, 120),
    n2=st.integers(1, 120),
    shift=st.floats(0.0, 2.0),
    decimals=st.sampled_from([None, 0, 1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_ks_statistic_and_pvalue_match_scipy_on_generated_samples(
    n1: int, n2: int, shift: float, decimals: int | None, seed: int
) -> None:
    r = rng(seed)
    a, b = r.normal(size=n1), r.normal(shift, 1.0, size=n2)
    if decimals is not None:  # ties, as rounded measurements have them
        a, b = np.round(a, decimals), np.round(b, decimals)
    assert_ks_matches_scipy(a, b)


@PROPERTY
@given(m=st.integers(2, 600), n=st.integers(1, 120), d=st.floats(0.005, 1.0))
def test_the_column_and_anti_diagonal_lattice_walks_agree(m: int, n: int, d: float) -> None:
    m, n = max(m, n), min(m, n)
    if m == n:
        return
    g = math.gcd(m, n)
    h = max(1, round(d * (m // g) * n))
    by_columns, by_diagonals = (
        drift._ks_outer_prob_columns(m, n, g, h),
        drift._ks_outer_prob_diagonals(m, n, g, h),
    )
    assert close(by_columns, by_diagonals, 1e-11), (m, n, h, by_columns, by_diagonals)


@settings(max_examples=15, deadline=None)
@given(n1=st.integers(2000, 5000), n2=st.integers(100, 5000), shift=st.floats(0.0, 0.3))
def test_ks_matches_scipy_at_the_sizes_drift_compares(n1: int, n2: int, shift: float) -> None:
    r = rng(n1 * 7919 + n2)
    assert_ks_matches_scipy(r.normal(size=n1), r.normal(shift, 1.0, size=n2))


@PROPERTY
@given(
    pair=st.integers(2, 25).flatmap(
        lambda k: st.tuples(*[st.lists(st.integers(0, 2000), min_size=k, max_size=k)] * 2)
    )
)
def test_chi_square_matches_scipy_on_generated_tables(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = np.array(pair[0]), np.array(pair[1])
    keep = (ref + cur) > 0
    if ref.sum() == 0 or cur.sum() == 0:
        with pytest.raises(ValueError):
            chi_square(ref, cur)
        return
    statistic, pvalue = chi_square(ref, cur)
    if keep.sum() < 2:
        assert (statistic, pvalue) == (0.0, 1.0)
        return
    expected = stats.chi2_contingency(np.vstack((ref[keep], cur[keep])), correction=False)
    assert close(statistic, float(expected.statistic), 1e-9)
    assert close(pvalue, float(expected.pvalue), 1e-8)


@PROPERTY
@given(statistic=st.floats(0.0, 5000.0), dof=st.integers(1, 1000))
def test_chi_square_survival_matches_scipy(statistic: float, dof: int) -> None:
    expected = float(stats.chi2.sf(statistic, dof))
    assert close(drift.chi_square_sf(statistic, dof), expected, 1e-9), (statistic, dof)


@PROPERTY
@given(ref=counts_vector, data=st.data())
def test_pooling_keeps_totals_and_leaves_no_sparse_cell(ref: list[int], data: st.DataObject) -> None:
    cur = data.draw(st.lists(st.integers(0, 300), min_size=len(ref), max_size=len(ref)))
    if sum(ref) == 0 or sum(cur) == 0:
        return
    pooled_ref, pooled_cur = pool_sparse_cells(ref, cur)
    assert pooled_ref.sum() == sum(ref) and pooled_cur.sum() == sum(cur)
    assert 1 <= pooled_ref.size <= len(ref)
    if pooled_ref.size > 1:
        table = np.vstack((pooled_ref, pooled_cur))
        expected = np.multiply.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        assert expected.min() >= drift.MIN_EXPECTED
        statistic, pvalue = pooled_chi_square(ref, cur)
        reference = stats.chi2_contingency(table, correction=False)
        assert close(statistic, float(reference.statistic)) and close(pvalue, float(reference.pvalue), 1e-8)
    else:
        assert pooled_chi_square(ref, cur) == (0.0, 1.0)


def test_pooling_leaves_well_filled_tables_alone() -> None:
    ref, cur = pool_sparse_cells([500, 300, 200], [60, 30, 10])
    assert ref.tolist() == [500, 300, 200] and cur.tolist() == [60, 30, 10]


@PROPERTY
@given(
    ref_missing=st.integers(0, 5000),
    ref_rows=st.integers(1, 5000),
    cur_missing=st.integers(0, 10000),
    cur_rows=st.integers(1, 10000),
)
def test_the_missing_rate_test_is_scipys_2x2_chi_square(
    ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int
) -> None:
    ref_missing, cur_missing = min(ref_missing, ref_rows), min(cur_missing, cur_rows)
    reference = {
        "kind": "categorical",
        "count": ref_rows,
        "nulls": ref_missing,
        "counts": {"a": ref_rows - ref_missing},
    }
    current = {
        "kind": "categorical",
        "count": cur_rows,
        "nulls": cur_missing,
        "counts": {"a": cur_rows - cur_missing},
    }
    feature = compare(
        {"rows": ref_rows, "columns": {"c": reference}},
        {"rows": cur_rows, "columns": {"c": current}},
        DriftThresholds(min_values=10),
    )["features"]["c"]
    if min(ref_rows, cur_rows) < 10:
        assert feature["missing_pvalue"] is None
        return
    table = np.array([[ref_missing, ref_rows - ref_missing], [cur_missing, cur_rows - cur_missing]])
    table = table[:, table.sum(axis=0) > 0]
    expected = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table, correction=False).pvalue)
    assert close(feature["missing_pvalue"], expected, 1e-8)


# --- the verdict rules --------------------------------------------------------------------------------


def test_a_sparse_column_is_insufficient_data_while_the_upload_is_judged() -> None:
    r = rng(30)
    reference = profile({"x": numeric(r.normal(size=2000)), "sparse": numeric(r.normal(size=60), nulls=1940)})
    current = profile({"x": numeric(r.normal(size=1000)), "sparse": numeric(r.normal(size=30), nulls=970)})
    report = compare(reference, current, DriftThresholds())
    sparse = report["features"]["sparse"]
    assert sparse["verdict"] == "insufficient_data" and not sparse["drifted"] and sparse["ks_pvalue"] is None
    assert sparse["reasons"][0].startswith("30 usable values, fewer than drift.min_values 100")
    assert any(reason.startswith("the reference has 60 usable values") for reason in sparse["reasons"])
    assert report["insufficient_features"] == ["sparse"] and report["verdict"] == "stable"


def test_a_small_reference_makes_every_feature_insufficient_data() -> None:
    r = rng(31)
    reference = profile({"x": numeric(r.normal(size=50)), "y": numeric(r.normal(size=50))})
    current = profile({"x": numeric(r.normal(size=1000)), "y": numeric(r.normal(size=1000))})
    report = compare(reference, current, DriftThresholds())
    assert report["verdict"] == "insufficient_data"
    assert report["reasons"] == ["no feature has drift.min_values 100 usable values on both sides"]


def test_all_missing_is_not_drift_when_the_reference_makes_it_likely() -> None:
    r = rng(32)
    reference = profile({"x": numeric(r.normal(size=500), nulls=500)})  # half of the values missing
    three = profile({"x": numeric([], nulls=3)})
    feature = compare(reference, three, DriftThresholds())["features"]["x"]
    assert feature["verdict"] == "insufficient_data"  # 0.5 ** 3 = 0.125: no evidence of a change
    many = profile({"x": numeric([], nulls=40)})
    feature = compare(reference, many, DriftThresholds())["features"]["x"]
    assert feature["verdict"] == "drifted"  # 0.5 ** 40 ~ 1e-12
    assert feature["reasons"][0].startswith("no usable value left: all 40 values are empty")


def test_a_small_category_change_in_a_large_upload_is_significant_but_too_small_to_count() -> None:
    reference = profile({"c": categorical_column_profile(100_000, 0, {"a": 50_000, "b": 50_000})})
    current = profile({"c": categorical_column_profile(100_000, 0, {"a": 51_000, "b": 49_000})})
    feature = compare(reference, current, DriftThresholds())["features"]["c"]
    assert feature["chi2_pvalue"] < 1e-5 and feature["js_distance"] < 0.1 and feature["psi"] < 0.2
    assert feature["verdict"] == "stable"


def test_unreadable_values_count_as_missing() -> None:
    r = rng(33)
    reference = profile({"x": numeric(r.normal(size=1000))})
    values = r.normal(size=700)
    current = {"rows": 1000, "columns": {"x": {**numeric(values), "count": 1000, "invalid": 300}}}
    feature = compare(reference, current, DriftThresholds())["features"]["x"]
    assert feature["missing_rate_current"] == 0.3 and feature["unreadable_rate_current"] == 0.3
    assert feature["drifted"] and "300 of 1000 values unreadable" in feature["reasons"][0]


def stable_upload(r: np.random.Generator, n: int) -> dict[str, Any]:
    """Two numeric features and a categorical one, always drawn from the same distribution."""
    cats = r.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    values, counts = np.unique(cats, return_counts=True)
    return profile(
        {
            "x": numeric(r.normal(size=n)),
            "y": numeric(r.exponential(size=n)),
            "c": categorical_column_profile(n, 0, dict(zip(values.tolist(), counts.tolist(), strict=True))),
        }
    )


def test_stable_uploads_are_called_drifted_at_most_at_the_budget() -> None:
    # 300 uploads from the reference's distribution: the budget is 1%; more than 5% would take a
    # binomial tail of about 1e-9.
    alarms = 0
    for seed in range(300):
        r = rng(1000 + seed)
        alarms += (
            compare(stable_upload(r, 500), stable_upload(r, 500), DriftThresholds())["verdict"] == "drifted"
        )
    assert alarms <= 15, alarms
