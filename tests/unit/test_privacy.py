"""What drift profiles and reports keep of pii and confidential columns (chalicelib.validation.privacy):
aggregates that cannot reveal a value, and still good enough for drift statistics."""

from __future__ import annotations

import io
import json
import string
from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.validation import Contract, drift, privacy
from chalicelib.validation.validator import validate_stream


def _contract(**classifications: str) -> Contract:
    columns = [
        {"name": "id", "type": "string", "classification": "internal"},
        {"name": "amount", "type": "float", "classification": classifications.get("amount", "confidential")},
        {
            "name": "account",
            "type": "string",
            "classification": classifications.get("account", "confidential"),
        },
        {
            "name": "tier",
            "type": "category",
            "classification": classifications.get("tier", "confidential"),
            "allowed": ["gold", "silver"],
        },
        {"name": "email", "type": "string", "classification": "pii", "nullable": True},
        {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
    ]
    return Contract.parse(
        {"dataset": "d", "columns": columns, "target": "y", "task": "classification", "row_id": "id"}
    )


def _csv(amounts: list[str], accounts: list[str], emails: list[str]) -> bytes:
    lines = ["id,amount,account,tier,email,y"]
    for i, (amount, account, email) in enumerate(zip(amounts, accounts, emails, strict=True)):
        lines.append(f"r{i},{amount},{account},{'gold' if i % 3 else 'silver'},{email},{i % 2}")
    return ("\n".join(lines) + "\n").encode()


# --- microaggregation -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=0, max_size=300))
def test_microaggregated_sample_is_made_of_group_means_only(values):
    out = privacy.microaggregate(values)
    if len(values) < privacy.MIN_GROUP:
        assert out == []
        return
    data = np.sort(np.asarray(values))
    k = privacy.MIN_GROUP
    bounds = [i * k for i in range(len(data) // k)] + [len(data)]
    means = np.array([data[lo:hi].mean() for lo, hi in pairwise(bounds)])
    assert len(out) == len(values)
    assert out == sorted(out)
    # each value lies between two neighbouring group means (a mean of >= k rows, or a blend of two)
    tolerance = 1e-9 * max(1.0, float(np.abs(data).max()))
    assert all(means.min() - tolerance <= v <= means.max() + tolerance for v in out)


def test_a_sample_of_distinct_values_keeps_none_of_them():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(5000, 900, 2000), 4)
    masked = set(privacy.microaggregate(values))
    assert not masked & set(values.tolist())


def test_drift_alarms_on_microaggregated_samples_match_the_raw_ones():
    """False alarms and detection of a 0.5-standard-deviation shift, raw and masked, at 1,000 rows."""
    rng = np.random.default_rng(20261130)
    th = _contract().drift
    alarms = {(shift, masked): 0 for shift in (0.0, 0.5) for masked in (False, True)}
    trials = 30
    for _ in range(trials):
        reference = rng.normal(0, 1, 2000)
        for shift in (0.0, 0.5):
            current = rng.normal(shift, 1, 1000)
            for masked in (False, True):
                ref = np.array(privacy.microaggregate(reference)) if masked else reference
                cur = np.array(privacy.microaggregate(current)) if masked else current
                edges = drift.quantile_edges(ref, th.bins)
                score = drift.psi(drift.bin_fractions(ref, edges), drift.bin_fractions(cur, edges))
                _, pvalue = drift.ks_2samp(ref, cur)
                alarms[(shift, masked)] += score > th.psi or pvalue < th.ks_pvalue
    assert alarms[(0.0, True)] <= alarms[(0.0, False)] + 2 and alarms[(0.0, True)] <= 0.1 * trials
    assert alarms[(0.5, True)] >= alarms[(0.5, False)] - 2 and alarms[(0.5, True)] >= 0.95 * trials


# --- hash buckets and profiles --------------------------------------------------------------------


def test_bucket_labels_are_stable_and_few():
    labels = {privacy.bucket_of(f"ACCT-{i}") for i in range(5000)}
    assert len(labels) == privacy.BUCKETS and all(privacy.is_bucket_label(label) for label in labels)
    assert privacy.bucket_of("ACCT-1") == privacy.bucket_of("ACCT-1")


def test_column_profiles_keep_no_value_of_sensitive_columns():
    contract = _contract()
    rng = np.random.default_rng(5)
    amounts = [f"{v:.6f}" for v in rng.uniform(100, 900, 300)]
    accounts = [f"ACCT{i:07d}X" for i in rng.permutation(300)]
    emails = [f"person{i}@example.com" for i in range(300)]
    result = validate_stream(io.BytesIO(_csv(amounts, accounts, emails)), contract)
    assert result.status == "valid", result.report["issues"]
    profile = result.profile
    assert profile is not None
    text = json.dumps(profile)
    assert not any(a in text for a in accounts) and not any(e in text for e in emails)
    assert not set(profile["columns"]["amount"]["sample"]) & {float(a) for a in amounts}
    assert profile["columns"]["amount"]["masked"] == privacy.MICROAGGREGATED
    assert set(profile["columns"]["account"]["counts"]) <= {privacy.bucket_of(a) for a in accounts}
    assert "email" not in profile["columns"]  # pii: no profile at all
    # a category the contract lists is the contract's label, not the data's: its counts stay
    assert profile["columns"]["tier"]["counts"] == {"gold": 200, "silver": 100}


def test_public_columns_keep_their_values():
    contract = _contract(amount="public", account="public")
    accounts = [f"A{i % 7}" for i in range(50)]
    result = validate_stream(io.BytesIO(_csv([f"{i}.5" for i in range(50)], accounts, ["x"] * 50)), contract)
    columns = result.profile["columns"]
    assert "masked" not in columns["amount"] and 0.5 in columns["amount"]["sample"]
    assert set(columns["account"]["counts"]) == set(accounts)


def test_masking_is_idempotent_and_masks_a_legacy_reference():
    contract = _contract()
    legacy = {
        "rows": 30,
        "columns": {
            "amount": drift.numeric_column_profile(30, 0, _reservoir(AMOUNTS)),
            "account": drift.categorical_column_profile(30, 0, {f"ACCT{i}": 1 for i in range(30)}),
            "email": drift.categorical_column_profile(30, 0, {"a@example.com": 30}),
            "gone": drift.categorical_column_profile(30, 0, {"x": 30}),
        },
    }
    once = privacy.mask_profile(legacy, contract)
    assert privacy.mask_profile(once, contract) == once
    assert set(once["columns"]) == {"amount", "account"}
    assert "ACCT" not in json.dumps(once)
    assert not set(once["columns"]["amount"]["sample"]) & set(AMOUNTS)


AMOUNTS = np.round(np.random.default_rng(8).lognormal(6, 1, 30), 3).tolist()


def _reservoir(values: list[float]) -> drift.Reservoir:
    reservoir = drift.Reservoir(capacity=1000)
    reservoir.add(values)
    return reservoir


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.text(string.ascii_letters + string.digits, min_size=6, max_size=10),
        min_size=12,
        max_size=40,
        unique=True,
    )
)
def test_no_confidential_text_value_reaches_a_profile_or_its_drift_report(tails):
    contract = _contract()
    values = [f"ZQ{t}" for t in tails]  # marked, so a hit is a value, not a word of the report
    n = len(values)
    data = _csv([f"{100 + i}.5" for i in range(n)], values, [""] * n)
    first = validate_stream(io.BytesIO(data), contract)
    assert first.status == "valid", first.report["issues"]
    other = [f"ZX{t}" for t in tails]  # all new values: every one a "new category"
    second = validate_stream(
        io.BytesIO(_csv([f"{200 + i}.5" for i in range(n)], other, [""] * n)),
        contract,
        reference=first.profile,
    )
    shown = json.dumps({"profile": second.profile, "report": second.report})
    assert not any(v in shown for v in values + other)


def test_mask_drift_hides_categories_of_sensitive_features_that_are_not_bucket_labels():
    contract = _contract()
    section = {
        "verdict": "drifted",
        "features": {
            "account": {"new_categories": ["ACCT-9", "bucket-03"], "missing_categories": ["ACCT-1"]},
            "tier": {"new_categories": ["gold", "platinum"]},
            "y": {"new_categories": ["2"]},
        },
    }
    masked = privacy.mask_drift(section, contract)["features"]
    assert masked["account"] == {"new_categories": ["***", "bucket-03"], "missing_categories": ["***"]}
    assert masked["tier"]["new_categories"] == ["gold", "***"]  # a listed value is the contract's
    assert masked["y"] == {"new_categories": ["2"]}  # public


def test_a_data_row_read_as_a_header_is_not_shown():
    contract = _contract()
    result = validate_stream(io.BytesIO(b"r1,12.5,ACCT-SECRET,gold,me@example.com,1\n"), contract)
    issues = privacy.mask_header_issues(result.report["issues"], contract)
    assert "SECRET" in json.dumps(result.report["issues"])  # what the validator found...
    assert "SECRET" not in json.dumps(issues) and "me@example" not in json.dumps(issues)  # ...and shows
    unexpected = [i for i in issues if i["code"] == "UNEXPECTED_COLUMN"]
    assert len(unexpected) == 1 and unexpected[0]["count"] == 6 and unexpected[0]["column"] == "***"


def test_a_header_with_a_typo_still_names_the_column():
    contract = _contract()
    result = validate_stream(io.BytesIO(b"id,amount,acount,tier,email,y\nr1,1.5,A,gold,,1\n"), contract)
    issues = privacy.mask_header_issues(result.report["issues"], contract)
    assert {i["code"]: i["column"] for i in issues} == {
        "UNEXPECTED_COLUMN": "acount",
        "MISSING_COLUMN": "account",
    }


def test_means_of_sensitive_columns_need_enough_rows():
    contract = _contract()
    few = validate_stream(io.BytesIO(_csv(["123.456"] * 3, ["A", "B", "C"], ["", "", ""])), contract)
    stats = few.report["column_statistics"]["amount"]
    assert "mean" not in stats and "min" not in stats and stats["count"] == 3
    many = validate_stream(
        io.BytesIO(_csv([f"{i}.5" for i in range(12)], [f"A{i}" for i in range(12)], [""] * 12)),
        contract,
    )
    assert many.report["column_statistics"]["amount"]["mean"] == 6.0


# --- logs and failure reasons -----------------------------------------------------------------------


def test_a_challenger_refusing_records_logs_their_fields_not_their_values(caplog):
    from chalicelib.serving import predict
    from chalicelib.serving.schema import InvalidInput, Problem

    class Refusing:
        class schema:  # stands in for the session's attribute
            @staticmethod
            def encode_records(records):
                raise InvalidInput([Problem(0, "account", "'ACCT-SECRET' is not an allowed value")])

        def run(self, feed):
            raise AssertionError("never reached: the records are refused first")

    predictor = predict.Predictor(registry=None, artifacts=None, ttl_s=1.0)  # type: ignore[arg-type]
    predictor.challenger = lambda model: 2  # type: ignore[method-assign]
    predictor.session = lambda model, version: Refusing()  # type: ignore[method-assign,assignment,return-value]
    predictor.check_servable = lambda model, version: None  # type: ignore[method-assign]  # servable
    caplog.set_level("WARNING")
    predictor._shadow("m", 1, [{"account": "ACCT-SECRET"}], None, None)  # type: ignore[arg-type]
    (record,) = [r for r in caplog.records if r.getMessage() == "shadow scoring skipped"]
    assert record.fields == ["account"] and "SECRET" not in json.dumps(record.__dict__, default=str)
