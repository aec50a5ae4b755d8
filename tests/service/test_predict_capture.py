"""/predict's capture, at the service: every answer (champion, pinned, shadow, refused) captured after
scoring under the response's request id, masked by the contract, sampled, never failing the answer.

A real model (the project's training code, onnxruntime), the in-memory capture and contract store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.memory.capture import MemoryCapture
from chalicelib.adapters.memory.contracts import MemoryContractStore
from chalicelib.capture import records as rec
from chalicelib.capture.service import Capturer
from chalicelib.serving import predict
from chalicelib.serving.model import OnnxModel
from chalicelib.serving.schema import InvalidInput
from chalicelib.validation.contract import Contract
from scripts.mlops.datasets import breast_cancer_contract
from tests.support import DATASET, built, holdout_records


def contract(**monitoring: Any) -> Contract:
    """The breast cancer contract with its first feature pii, its second confidential, the rest public."""
    doc = breast_cancer_contract()
    features = [c for c in doc["columns"] if c["name"] not in ("row_id", doc["target"])]
    features[0].update(classification="pii", feature=True)
    for column in features[2:]:
        column["classification"] = "public"
    doc["monitoring"] = monitoring
    return Contract.parse(doc)


PII, CONFIDENTIAL = (
    next(c.name for c in contract().columns if c.classification == cls and c.name != "diagnosis")
    for cls in ("pii", "confidential")
)


@pytest.fixture(scope="module")
def session() -> OnnxModel:
    artifacts, _ = built("forest")
    return OnnxModel(artifacts["model.onnx"], json.loads(artifacts["input_schema.json"]))


class Setup:
    def __init__(self, session: OnnxModel, doc: Contract, challenger: int | None = None) -> None:
        self.capture = MemoryCapture()
        self.contracts = MemoryContractStore()
        self.contracts.put(doc)
        self.now = [0.0]
        self.capturer = Capturer(self.capture, self.contracts, self.capture, clock=lambda: self.now[0])
        p = predict.Predictor(registry=None, artifacts=None, ttl_s=1.0, capture=self.capturer)  # type: ignore[arg-type]
        p.session = lambda model, version: session  # type: ignore[method-assign]
        p.check_servable = lambda model, version: None  # type: ignore[method-assign]
        p.champion = lambda model: 1  # type: ignore[method-assign]
        p.challenger = lambda model: challenger  # type: ignore[method-assign]
        p.rollout = lambda model: None  # type: ignore[method-assign]
        self.predictor = p

    def records(self) -> list[dict[str, Any]]:
        return [r for line in self.capture.lines for r in rec.decode_line(line)]


def test_a_champion_answer_is_captured_under_the_responses_request_id(session: OnnxModel) -> None:
    setup = Setup(session, contract())
    records = holdout_records(n=4)
    answer = setup.predictor.predict(DATASET, records, request_id="f" * 32)
    assert answer["request_id"] == "f" * 32
    captured = setup.records()
    assert [r["index"] for r in captured] == [0, 1, 2, 3]
    for record, sent, out in zip(captured, records, answer["predictions"], strict=True):
        rec.check_record(record)
        assert record["request_id"] == "f" * 32 and record["role"] == "champion" and record["version"] == 1
        assert record["status"] == "ok" and record["problems"] == []
        assert record["prediction"] == out["prediction"] and record["probabilities"] == out["probabilities"]
        assert PII not in record["inputs"] and CONFIDENTIAL not in record["inputs"]
        public = {k: v for k, v in sent.items() if k not in (PII, CONFIDENTIAL)}
        assert record["inputs"] == public
        assert record["latency_ms"] > 0


def test_confidential_inputs_are_keyed_hashes_when_the_contract_says_hash(session: OnnxModel) -> None:
    setup = Setup(session, contract(confidential="hash"))
    records = holdout_records(n=2)
    setup.predictor.predict(DATASET, records, request_id="e" * 32)
    for record, sent in zip(setup.records(), records, strict=True):
        assert record["inputs"][CONFIDENTIAL].startswith("h:")
        assert str(sent[CONFIDENTIAL]) not in json.dumps(record)
        assert PII not in record["inputs"]


def test_a_pinned_version_is_captured_as_pinned_and_a_challenger_as_shadow(session: OnnxModel) -> None:
    setup = Setup(session, contract(), challenger=2)
    setup.predictor.predict(DATASET, holdout_records(n=3), version=1, request_id="a" * 32)
    assert {r["role"] for r in setup.records()} == {"pinned"}  # a pinned answer has no shadow
    setup.capture.lines.clear()
    setup.predictor.predict(DATASET, holdout_records(n=3), request_id="b" * 32)
    roles = [(r["role"], r["version"], r["index"]) for r in setup.records()]
    assert sorted(roles) == sorted(
        [("champion", 1, i) for i in range(3)] + [("shadow", 2, i) for i in range(3)]
    )
    assert {r["request_id"] for r in setup.records()} == {"b" * 32}


def test_a_refused_request_is_captured_invalid_with_the_fields_never_the_values(session: OnnxModel) -> None:
    setup = Setup(session, contract())
    records = holdout_records(n=3)
    public = next(k for k in records[0] if k not in (PII, CONFIDENTIAL))
    records[1][public] = "not-a-number-canary"
    records[2][PII] = "pii-canary-value"
    with pytest.raises(InvalidInput):
        setup.predictor.predict(DATASET, records, request_id="c" * 32)
    captured = setup.records()
    assert [r["status"] for r in captured] == ["invalid"] * 3
    assert captured[1]["problems"] == [public] and captured[2]["problems"] == [PII]
    assert all(r["prediction"] is None for r in captured)
    printed = b"".join(setup.capture.lines).decode()
    assert "pii-canary-value" not in printed and "not-a-number-canary" not in printed


def test_capture_off_or_a_sample_miss_prints_nothing(session: OnnxModel) -> None:
    off = Setup(session, contract(capture=False))
    off.predictor.predict(DATASET, holdout_records(n=1), request_id="d" * 32)
    assert off.capture.lines == []
    half = Setup(session, contract(sample_rate=0.5))
    ids = [f"{i:032x}" for i in range(40)]
    for request_id in ids:
        half.predictor.predict(DATASET, holdout_records(n=1), request_id=request_id)
    assert {r["request_id"] for r in half.records()} == {i for i in ids if rec.sampled(i, 0.5)}
    assert 0 < len(half.records()) < 40


def test_a_failing_sink_never_fails_the_answer(session: OnnxModel) -> None:
    setup = Setup(session, contract())

    def broken(lines: Any) -> None:
        raise OSError("stdout closed")

    setup.capture.write = broken  # type: ignore[method-assign]
    answer = setup.predictor.predict(DATASET, holdout_records(n=2), request_id="9" * 32)
    assert len(answer["predictions"]) == 2


def test_a_contract_change_is_seen_within_the_ttl(session: OnnxModel) -> None:
    setup = Setup(session, contract())
    setup.predictor.predict(DATASET, holdout_records(n=1), request_id="1" * 32)
    setup.contracts.put(contract(capture=False))
    setup.predictor.predict(DATASET, holdout_records(n=1), request_id="2" * 32)  # cached: still on
    setup.now[0] += 11.0
    setup.predictor.predict(DATASET, holdout_records(n=1), request_id="3" * 32)  # re-read: off
    assert [r["request_id"][0] for r in setup.records()] == ["1", "2"]


def test_without_a_request_id_nothing_is_captured(session: OnnxModel) -> None:
    setup = Setup(session, contract())
    answer = setup.predictor.predict(DATASET, holdout_records(n=1))
    assert "request_id" not in answer and setup.capture.lines == []
