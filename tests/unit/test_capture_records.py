"""Inference records and capture lines: masking by classification, sampling, line splitting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.capture import records as rec
from chalicelib.capture.policy import parse_monitoring
from chalicelib.capture.service import Answer, encode_answer
from chalicelib.validation.contract import Contract

KEY = b"k" * 32


def contract(confidential: str = "drop") -> Contract:
    return Contract.parse(
        {
            "dataset": "people",
            "columns": [
                {"name": "age", "type": "integer", "classification": "public"},
                {"name": "city", "type": "string", "classification": "internal"},
                {"name": "email", "type": "string", "classification": "pii"},
                {"name": "income", "type": "float", "classification": "confidential"},
                {"name": "segment", "type": "string", "classification": "confidential", "nullable": True},
                {"name": "churn", "type": "boolean", "classification": "internal"},
            ],
            "target": "churn",
            "task": "classification",
            "monitoring": {"confidential": confidential},
        }
    )


def masking(mode: str) -> rec.Masking:
    c = contract(mode)
    return rec.Masking.for_contract(c, parse_monitoring(c.extensions["monitoring"]), KEY)


SENSITIVE = ("email", "income", "segment")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
# Values long enough to be told apart from anything else in a line (hex digests, field names, numbers).
canaries = st.text(alphabet="QXZWJVKYqxzwjvky", min_size=12, max_size=40)
any_field = st.sampled_from(["age", "city", "email", "income", "segment", "churn"]) | st.text(max_size=8)


@st.composite
def records_with_canaries(draw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    n = draw(st.integers(1, 6))
    records, secrets = [], []
    for _ in range(n):
        record = draw(st.dictionaries(any_field, json_values, max_size=6))
        for name in SENSITIVE:
            if draw(st.booleans()):
                secret = draw(canaries)
                record[name] = secret
                secrets.append(secret)
        # An undeclared field whose name is itself a secret: names leave only if declared.
        if draw(st.booleans()):
            secret = draw(canaries)
            record[secret] = draw(json_values)
            secrets.append(secret)
        records.append(record)
    return records, secrets


def answer(records: list[Any], outputs: list[dict[str, Any]] | None = None, **kw: Any) -> Answer:
    return Answer(
        model="people",
        version=3,
        role=kw.pop("role", "champion"),
        request_id=kw.pop("request_id", "a" * 32),
        records=records,
        latency_ms=1.5,
        outputs=outputs,
        **kw,
    )


@settings(max_examples=150)
@given(records_with_canaries(), st.sampled_from(["drop", "hash"]), st.booleans())
def test_no_pii_or_raw_confidential_value_ever_appears_in_a_line(
    drawn: tuple[list[dict[str, Any]], list[str]], mode: str, refused: bool
) -> None:
    records, secrets = drawn
    problems = {i: list(r) for i, r in enumerate(records)} if refused else None
    outputs = None if refused else [{"prediction": True, "probabilities": {"true": 0.9}} for _ in records]
    lines = encode_answer(
        answer(records, outputs, problems=problems), masking(mode), "2026-12-01T10:00:00.000Z"
    )
    text = b"\n".join(lines).decode()
    for secret in secrets:
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text


def test_each_classification_is_masked_as_the_contract_says() -> None:
    record = {"age": 40, "city": "Oslo", "email": "a@b.c", "income": 52000.5, "segment": None, "extra": 1}
    dropped = masking("drop").inputs(record)
    assert dropped == {"age": 40, "city": "Oslo"}
    hashed = masking("hash").inputs(record)
    assert set(hashed) == {"age", "city", "income", "segment"}
    assert hashed["segment"] is None  # a null reveals no value; its rate is a quality statistic
    assert hashed["income"].startswith(rec.HASH_PREFIX) and len(hashed["income"]) == 2 + 64


def test_keyed_hashes_compare_equal_values_and_depend_on_the_key() -> None:
    one = masking("hash")
    other = rec.Masking(kept=one.kept, hashed=one.hashed, key=b"z" * 32)
    assert one.inputs({"income": 7.5}) == one.inputs({"income": 7.5})
    assert one.inputs({"income": 7.5}) != one.inputs({"income": 7.25})
    assert one.inputs({"income": 7.5}) != other.inputs({"income": 7.5})


def test_hashing_without_a_key_is_refused() -> None:
    c = contract("hash")
    with pytest.raises(ValueError, match="key"):
        rec.Masking.for_contract(c, parse_monitoring({"confidential": "hash"}), None)
    assert rec.Masking.needs_key(c, parse_monitoring({"confidential": "hash"}))
    assert not rec.Masking.needs_key(c, parse_monitoring({}))


def test_a_refused_request_names_declared_fields_only_and_has_no_prediction() -> None:
    lines = encode_answer(
        answer([{"age": "old"}, {"age": 3}], problems={0: ["age", "hunter2@example.com"], None: []}),
        masking("drop"),
        "2026-12-01T10:00:00.000Z",
    )
    first, second = rec.decode_line(lines[0])
    assert first["status"] == "invalid" and first["problems"] == [rec.UNDECLARED, "age"]
    assert second["status"] == "invalid" and second["problems"] == []
    assert first["prediction"] is None and first["probabilities"] is None
    rec.check_record(first)


big_records = st.lists(
    st.dictionaries(st.sampled_from(["age", "city"]), st.text(max_size=30_000), min_size=1),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(big_records)
def test_lines_fit_the_limit_and_reassemble_to_the_same_records(records: list[dict[str, Any]]) -> None:
    lines = encode_answer(answer(records), masking("drop"), "2026-12-01T10:00:00.000Z")
    assert all(len(line) <= rec.MAX_LINE_BYTES for line in lines)
    back = [r for line in lines for r in rec.decode_line(line)]
    assert [r["index"] for r in back] == list(range(len(records)))
    assert [r["inputs"] for r in back] == records
    assert all(b"\n" not in line for line in lines)


def test_a_record_too_big_for_a_line_alone_keeps_everything_but_its_inputs() -> None:
    lines = encode_answer(answer([{"city": "x" * 300_000}]), masking("drop"), "2026-12-01T10:00:00.000Z")
    (record,) = rec.decode_line(lines[0])
    assert len(lines[0]) <= rec.MAX_LINE_BYTES and record["inputs"] == {} and record["index"] == 0


@given(st.text(min_size=1), st.floats(0, 1))
def test_sampling_is_deterministic_per_request_id(request_id: str, rate: float) -> None:
    assert rec.sampled(request_id, rate) == rec.sampled(request_id, rate)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_sampling_keeps_close_to_the_rate(rate: float) -> None:
    n = 20_000
    kept = sum(rec.sampled(f"{i:032x}", rate) for i in range(n))
    # Binomial: 5 standard deviations either side (0 and 1 are exact).
    spread = 5 * (n * rate * (1 - rate)) ** 0.5
    assert abs(kept - n * rate) <= spread


@given(st.floats(0, 1), st.floats(0, 1), st.text(min_size=1))
def test_a_request_sampled_at_a_rate_is_sampled_at_every_higher_rate(
    low: float, high: float, rid: str
) -> None:
    low, high = min(low, high), max(low, high)
    assert not rec.sampled(rid, low) or rec.sampled(rid, high)


def test_time_and_keys() -> None:
    moment = datetime(2026, 12, 1, 9, 5, 7, 123456, tzinfo=UTC)
    assert rec.timestamp(moment) == "2026-12-01T09:05:07.123Z"
    assert rec.parse_time("2026-12-01T09:05:07.123Z") == moment.replace(microsecond=123000)
    assert (
        rec.batch_key("m", "j1", 3, moment)
        == "capture/batch/model=m/date=2026-12-01/hour=09/j1-00003.jsonl.gz"
    )
    assert len(rec.new_request_id()) == 32


def test_decode_lines_skips_what_is_not_a_capture_line() -> None:
    line = rec.encode_lines([{"a": 1}])[0]
    text = b"START RequestId: x\n" + line + b'\n{"level":"INFO","message":"mlops_capture"}\n'
    assert list(rec.decode_lines(text)) == [{"a": 1}]
    with pytest.raises(ValueError):
        rec.decode_line(b'{"records": []}')


def test_a_refused_value_is_never_captured_even_in_a_public_field() -> None:
    """A value that failed its field's check may be anything: an e-mail typed into ``city``."""
    records = [{"age": 3, "city": "CANARY-a@b.c"}, {"age": 4, "city": "Oslo"}]
    lines = encode_answer(
        answer(records, problems={0: ["city"]}), masking("drop"), "2026-12-01T10:00:00.000Z"
    )
    first, second = rec.decode_line(lines[0])
    assert first["inputs"] == {"age": 3} and second["inputs"] == {"age": 4, "city": "Oslo"}
    assert b"CANARY" not in lines[0]
    unnamed = answer(records, problems={0: ["city"]}, all_problems_named=False)
    _, second = rec.decode_line(encode_answer(unnamed, masking("drop"), "2026-12-01T10:00:00.000Z")[0])
    assert second["inputs"] == {}  # the refusal named only some problems: it might have been at fault


@given(json_values, st.binary(min_size=1, max_size=100))
def test_the_keyed_hash_is_hmac_sha256_of_the_canonical_json(value: Any, key: bytes) -> None:
    import hashlib
    import hmac

    import msgspec

    expected = hmac.new(key, msgspec.json.encode(value), hashlib.sha256).hexdigest()
    assert (
        rec.Masking(kept=frozenset(), hashed=frozenset({"x"}), key=key).keyed_hash(value) == "h:" + expected
    )


def test_now_text_is_the_timestamp_of_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    text = rec.now_text()
    after = datetime.now(UTC)
    assert len(text) == len("2026-12-01T10:00:00.000Z") and text.endswith("Z")
    assert before <= rec.parse_time(text) <= after
