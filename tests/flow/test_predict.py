"""POST /models/{name}/predict and /versions/{v}/predict: real models (trained by the project's
training code, promoted by evaluate_candidate), real onnxruntime sessions, in-process moto."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.aws.artifacts import S3Artifacts
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.serving import predict
from chalicelib.serving.model import OnnxModel
from tests.support import DATASET, built, contract_for, evaluate, holdout_records, post, publish


@pytest.fixture(autouse=True)
def _fresh_container():
    bootstrap.reset()  # each test is a new container: no cached sessions or pointers
    yield
    bootstrap.reset()


@pytest.fixture
def client(aws):
    S3ContractStore(aws.data_bucket).put(contract_for())
    with Client(app, stage_name="local") as c:
        yield c


@pytest.fixture
def champion(aws, client):
    """v1 champion: a small random forest."""
    publish(aws, "forest")
    evaluate(client, aws)
    return DynamoRegistry(aws.registry_table, aws.audit_table)


# --- answers -------------------------------------------------------------------------------------------


def test_champion_answers_with_its_version_predictions_and_probabilities(aws, client, champion):
    records = holdout_records()
    response = post(client, f"/models/{DATASET}/predict", {"records": records})
    assert response.status_code == 200
    body = response.json_body
    assert body["model"] == DATASET and body["version"] == 1 and len(body["predictions"]) == len(records)
    # the same rows through the candidate's own session on its holdout file: the same numbers
    artifacts, _ = built("forest")
    model = OnnxModel(artifacts["model.onnx"], json.loads(artifacts["input_schema.json"]))
    header, *rows = list(csv.reader(io.StringIO(artifacts["holdout.csv"].decode())))
    expected = model.run(model.schema.encode_text(header, rows[: len(records)]))
    for got, label, probabilities in zip(
        body["predictions"], expected.labels, expected.probabilities, strict=True
    ):
        assert got["prediction"] == label.item()
        assert list(got["probabilities"]) == ["0", "1"]
        assert list(got["probabilities"].values()) == pytest.approx(list(probabilities), abs=1e-15)


def test_pinned_version_answers_after_a_new_champion(aws, client, champion):
    publish(aws, "logistic")
    evaluate(client, aws)
    assert champion.champion(DATASET) == 2
    records = holdout_records(n=3)
    assert (
        post(client, f"/models/{DATASET}/versions/1/predict", {"records": records}).json_body["version"] == 1
    )
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 2


def test_a_session_is_created_once_per_version_and_reused(aws, client, champion):
    records = holdout_records(n=1)
    for _ in range(5):
        assert post(client, f"/models/{DATASET}/predict", {"records": records}).status_code == 200
    assert bootstrap.predictor().loads == 1


def test_promotion_and_rollback_are_served_within_the_champion_ttl(aws, client, champion, monkeypatch):
    now = [0.0]
    warm = predict.Predictor(champion, S3Artifacts(), clock=lambda: now[0], ttl_s=10.0)
    monkeypatch.setattr(bootstrap, "predictor", lambda: warm)
    records = holdout_records(n=2)
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 1
    publish(aws, "logistic")
    evaluate(client, aws)  # v2 promoted
    now[0] = 9.9  # within the TTL: the warm container still serves v1
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 1
    now[0] = 10.0
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 2
    champion.rollback(DATASET, "ops (admin)", "test")
    now[0] = 19.9
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 2
    now[0] = 20.0
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 1


def test_a_model_file_that_fails_its_checksum_is_never_served(aws, client, champion):
    # Someone edits the registry's checksum (or the stored object changed): refuse, clearly.
    champion._db.update_item(
        TableName=aws.registry_table,
        Key={"pk": {"S": f"model#{DATASET}"}, "sk": {"S": "version#00000001"}},
        UpdateExpression="SET artifacts.#m.sha256 = :bad",
        ExpressionAttributeNames={"#m": "model.onnx"},
        ExpressionAttributeValues={":bad": {"S": "0" * 64}},
    )
    response = post(client, f"/models/{DATASET}/predict", {"records": holdout_records(n=1)})
    assert response.status_code == 500 and "integrity" in response.json_body["Message"]
    assert bootstrap.predictor().loads == 0


def test_shadow_challenger_is_logged_never_returned(aws, client, champion):
    from chalicelib.observability import logger

    publish(aws, "weak_logistic")
    evaluate(client, aws)  # v2 rejected: cannot shadow
    publish(aws, "stump")
    evaluate(client, aws)  # v3 rejected too (worse)
    S3ContractStore(aws.data_bucket).put(contract_for(mode="manual"))
    publish(aws, "logistic")
    evaluate(client, aws)  # v4 pending approval: may shadow
    records = holdout_records(n=5)
    before = post(client, f"/models/{DATASET}/predict", {"records": records}).json_body
    refused = client.http.put(
        f"/models/{DATASET}/challenger",
        body=json.dumps({"version": 2, "reason": "compare"}),
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 401  # a change: a token is needed
    bootstrap.reset()
    champion.set_challenger(DATASET, 4, "alice (approver)", "shadow before approving")
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        after = post(client, f"/models/{DATASET}/predict", {"records": records}).json_body
    finally:
        logger.registered_handler.setStream(previous)
    # the challenger's answers are never returned (each answer has its own request id)
    assert after.pop("request_id") != before.pop("request_id") and after == before
    logs = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    (shadow,) = [line for line in logs if line.get("message") == "shadow prediction"]
    assert shadow["champion_version"] == 1 and shadow["challenger_version"] == 4
    assert shadow["champion_predictions"] == [p["prediction"] for p in before["predictions"]]
    assert len(shadow["challenger_predictions"]) == 5 and 0 <= shadow["agreement"] <= 1


def test_setting_a_challenger_needs_an_approver_and_a_servable_version(aws, client, champion, tokens):
    path = f"/models/{DATASET}/challenger"
    viewer = client.http.put(path, body=json.dumps({"version": 1, "reason": "x"}), headers=tokens["viewer"])
    assert viewer.status_code == 403
    ok = client.http.put(path, body=json.dumps({"version": 1, "reason": "x"}), headers=tokens["approver"])
    assert ok.status_code == 200 and ok.json_body["by"] == "alice (approver)"
    missing = client.http.put(
        path, body=json.dumps({"version": 7, "reason": "x"}), headers=tokens["approver"]
    )
    assert missing.status_code == 404
    cleared = client.http.put(
        path, body=json.dumps({"version": None, "reason": "x"}), headers=tokens["approver"]
    )
    assert cleared.status_code == 200 and champion.challenger(DATASET) is None


def test_a_model_without_a_champion_is_a_404(aws, client):
    publish(aws, "stump", tamper="model.onnx")
    evaluate(client, aws)  # rejected: no champion
    response = post(client, f"/models/{DATASET}/predict", {"records": holdout_records(n=1)})
    assert response.status_code == 404 and "no champion yet" in response.json_body["Message"]


# --- serving follows the registry (issue 14) -----------------------------------------------------------


def _warm(champion: DynamoRegistry, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A warm container whose clock the test moves (no sleeps); the champion pointer's TTL is 10 s."""
    now = [0.0]
    warm = predict.Predictor(champion, S3Artifacts(), clock=lambda: now[0], ttl_s=10.0)
    monkeypatch.setattr(bootstrap, "predictor", lambda: warm)
    return now


def test_a_rejected_version_stops_answering_the_pinned_route_within_the_ttl(
    aws, client, champion, monkeypatch
):
    S3ContractStore(aws.data_bucket).put(contract_for(mode="manual"))
    publish(aws, "logistic")
    evaluate(client, aws)  # v2 pending approval: a pinned route serves it
    now = _warm(champion, monkeypatch)
    records = holdout_records(n=2)
    pinned = f"/models/{DATASET}/versions/2/predict"
    assert post(client, pinned, {"records": records}).status_code == 200  # its session is now warm
    champion.set_status(DATASET, 2, "rejected", "alice (approver)", "bias review")
    now[0] = 9.9  # within the TTL the warm container may still answer
    assert post(client, pinned, {"records": records}).status_code == 200
    now[0] = 10.0
    refused = post(client, pinned, {"records": records})
    assert refused.status_code == 409 and "rejected" in refused.json_body["Message"]
    assert "None" not in refused.json_body["Message"]
    # the champion keeps answering
    assert post(client, f"/models/{DATASET}/predict", {"records": records}).json_body["version"] == 1


def test_a_champion_tainted_by_a_revoked_upload_stops_answering_within_the_ttl(
    aws, client, champion, monkeypatch
):
    """Its status stays champion; the taint on its record stops every route (pinned and champion)."""
    from chalicelib.registry import states

    now = _warm(champion, monkeypatch)
    records = holdout_records(n=2)
    for path in (f"/models/{DATASET}/predict", f"/models/{DATASET}/versions/1/predict"):
        assert post(client, path, {"records": records}).status_code == 200
    detail = states.taint_detail(True, False, "ops (admin)", "bad export", "2026-11-30T13:00:00+00:00")
    assert champion.taint(DATASET, 1, "u9", detail)
    now[0] = 10.0
    for path in (f"/models/{DATASET}/predict", f"/models/{DATASET}/versions/1/predict"):
        refused = post(client, path, {"records": records})
        message = refused.json_body["Message"]
        assert refused.status_code == 409 and "is tainted: trained on upload u9" in message, path
        assert "revoked by ops (admin): bad export" in message


# --- capture ---------------------------------------------------------------------------------------------


def _masked_contract(confidential: str) -> Any:
    """The breast cancer contract with a pii feature, a confidential one, the rest public."""
    from chalicelib.validation.contract import Contract

    doc = contract_for().to_dict()
    features = [c for c in doc["columns"] if c["name"] not in ("row_id", doc["target"])]
    features[0].update(classification="pii", feature=True)
    for column in features[2:]:
        column["classification"] = "public"
    doc["monitoring"] = {"confidential": confidential}
    return Contract.parse(doc), features[0]["name"], features[1]["name"]


@pytest.mark.parametrize("confidential", ["drop", "hash"])
def test_every_answer_is_printed_as_a_capture_line_masked_by_the_contract(
    aws, client, champion, capsys, confidential
):
    from chalicelib.capture import records as rec

    contract, pii, secret = _masked_contract(confidential)
    S3ContractStore(aws.data_bucket).put(contract)
    bootstrap.reset()
    records = holdout_records(n=3)
    capsys.readouterr()
    answer = post(client, f"/models/{DATASET}/predict", {"records": records}).json_body
    printed = capsys.readouterr().out
    captured = list(rec.decode_lines(printed))
    assert [r["request_id"] for r in captured] == [answer["request_id"]] * 3
    assert [r["prediction"] for r in captured] == [p["prediction"] for p in answer["predictions"]]
    for record, sent in zip(captured, records, strict=True):
        assert pii not in record["inputs"]
        # The public features as sent, the secret hashed or dropped, nothing else (a search of the
        # printed text for the values could match a latency by chance: the PII canary uses markers).
        assert set(record["inputs"]) - {secret} == set(sent) - {pii, secret}
        if confidential == "drop":
            assert secret not in record["inputs"]
        else:
            assert record["inputs"][secret].startswith("h:")
    # the key is made once (only when a contract hashes), in the data bucket, and is never printed
    import boto3

    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=aws.data_bucket, Prefix="keys/").get("Contents", [])
    values = [s3.get_object(Bucket=aws.data_bucket, Key=o["Key"])["Body"].read() for o in listed]
    assert [o["Key"] for o in listed] == (["keys/capture-hash.key"] if confidential == "hash" else [])
    assert not any(v.hex() in printed for v in values)


def test_a_400_for_invalid_records_carries_the_request_id_of_its_captured_records(
    aws, client, champion, capsys
):
    from chalicelib.capture import records as rec

    records = holdout_records(n=2)
    name = next(iter(records[1]))
    records[1][name] = "twelve"
    capsys.readouterr()
    response = post(client, f"/models/{DATASET}/predict", {"records": records})
    assert response.status_code == 400
    body = response.json_body
    assert len(body["request_id"]) == 32 and body["problems"][0]["field"] == name
    captured = list(rec.decode_lines(capsys.readouterr().out))
    assert [(r["request_id"], r["status"]) for r in captured] == [(body["request_id"], "invalid")] * 2
    assert captured[1]["problems"] == [name] and captured[0]["problems"] == []


def test_a_contract_that_turns_capture_off_prints_nothing(aws, client, champion, capsys):
    doc = contract_for().to_dict()
    doc["monitoring"] = {"capture": False}
    from chalicelib.validation.contract import Contract

    S3ContractStore(aws.data_bucket).put(Contract.parse(doc))
    bootstrap.reset()
    capsys.readouterr()
    answer = post(client, f"/models/{DATASET}/predict", {"records": holdout_records(n=2)}).json_body
    assert len(answer["request_id"]) == 32
    assert "mlops_capture" not in capsys.readouterr().out
