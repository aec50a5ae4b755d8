"""The promotion stage's wiring on in-process moto: real candidates (scikit-learn -> ONNX by the
training job's own code), published as the job publishes them, delivered through the promotion queue
to ``evaluate_candidate``; then the /models API with tokens: approve, reject, rollback, audit.

The evaluator's and the API's decisions are tested on in-memory adapters (tests/service); here, that
the queue, the tables, the bucket, the topic and the routes are wired to them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from tests.support import DATASET, contract_for, drain, evaluate, load_app, publish


@pytest.fixture
def registry(aws):
    S3ContractStore(aws.data_bucket).put(contract_for())
    return DynamoRegistry(aws.registry_table, aws.audit_table)


@pytest.fixture
def client(aws):
    with Client(app, stage_name="local") as c:
        yield c


@pytest.fixture
def inbox(aws):
    """An SQS queue subscribed to the stage's notifications topic: inbox() -> the messages so far."""
    from mlops.demo import subscribe_inbox

    return subscribe_inbox(aws, "test-inbox")


def _gates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in doc["gates"]["gates"]}


# --- evaluation --------------------------------------------------------------------------------------


def test_first_candidate_is_judged_on_floors_and_becomes_champion(aws, registry, client, inbox):
    run_id = publish(aws, "stump")
    assert evaluate(client, aws) == {"batchItemFailures": []}
    assert registry.champion(DATASET) == 1
    doc = registry.version(DATASET, 1)
    assert doc["status"] == "champion" and doc["run_id"] == run_id
    gates = _gates(doc)
    assert set(gates) == {"parity", "floors", "latency", "size"} and all(g["passed"] for g in gates.values())
    assert gates["floors"]["figure"]["metrics"]["roc_auc"]["floor"] == 0.6
    assert doc["gates"]["first_model"] is True and doc["gates"]["evaluated_against"] is None
    assert (
        doc["artifacts"]["model.onnx"]["version_id"] and len(doc["artifacts"]["model.onnx"]["sha256"]) == 64
    )
    assert doc["lineage"]["data_hash"] == "0" * 64
    (entry,) = registry.audit(DATASET)
    assert entry["who"] == "evaluator" and entry["from_version"] is None and entry["to_version"] == 1
    (note,) = inbox()
    assert note["type"] == "Model promoted" and note["to_version"] == 1


def test_an_evaluation_that_crashed_before_its_promotion_is_finished_by_the_redelivery(
    aws, registry, client, monkeypatch
):
    publish(aws, "stump")
    bodies = drain(aws, aws.promotion_queue)
    original = DynamoRegistry.approve

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the function timed out")

    monkeypatch.setattr(DynamoRegistry, "approve", crash)
    with pytest.raises(Exception, match="All records failed"):  # the invocation fails: the message returns
        evaluate(client, aws, bodies)
    # the approval and the promotion are one transaction: nothing of it was written
    assert registry.version(DATASET, 1)["status"] == "candidate" and registry.champion(DATASET) is None
    monkeypatch.setattr(DynamoRegistry, "approve", original)
    assert evaluate(client, aws, bodies) == {"batchItemFailures": []}
    assert registry.champion(DATASET) == 1


# --- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def pending(aws, registry, client):
    """v1 champion (forest), v2 pending approval (logistic regression, manual policy)."""
    publish(aws, "forest")
    evaluate(client, aws)
    S3ContractStore(aws.data_bucket).put(contract_for(mode="manual"))
    publish(aws, "logistic")
    evaluate(client, aws)
    assert registry.version(DATASET, 2)["status"] == "pending_approval"
    return registry


def _post(client: Client, path: str, headers: dict[str, str] | None, body: Any = None) -> Any:
    body = {"reason": "looked at the gates"} if body is None else body
    return client.http.post(
        path, body=json.dumps(body), headers=headers or {"Content-Type": "application/json"}
    )


def test_approval_promotes_and_records_the_approver(aws, pending, client, tokens, inbox):
    inbox()
    response = _post(client, f"/models/{DATASET}/versions/2/approve", tokens["approver"])
    assert response.status_code == 200 and response.json_body["champion"] == 2
    assert pending.champion(DATASET) == 2
    entry = pending.audit(DATASET)[-1]
    assert entry["who"] == "alice (approver)" and entry["reason"] == "looked at the gates"
    assert [t["by"] for t in pending.version(DATASET, 2)["transitions"]][-2:] == ["alice (approver)"] * 2
    assert inbox()[-1]["by"] == "alice (approver)"


def test_rollback_twice_over_the_api_goes_back_two_champions(aws, registry, client, tokens):
    for model in ("stump", "forest", "logistic"):
        publish(aws, model)
        evaluate(client, aws)
    assert registry.champion(DATASET) == 3
    first = _post(client, f"/models/{DATASET}/rollback", tokens["approver"], {"reason": "latency spike"})
    assert first.status_code == 200 and first.json_body["champion"] == 2
    second = _post(client, f"/models/{DATASET}/rollback", tokens["admin"], {"reason": "still bad"})
    assert second.status_code == 200 and second.json_body["champion"] == 1
    third = _post(client, f"/models/{DATASET}/rollback", tokens["admin"], {"reason": "again"})
    assert third.status_code == 409 and "first champion" in third.json_body["Message"]
    trail = client.http.get(f"/models/{DATASET}/audit").json_body["entries"]
    assert [(e["action"], e["from_version"], e["to_version"], e["who"]) for e in trail] == [
        ("promote", None, 1, "evaluator"),
        ("promote", 1, 2, "evaluator"),
        ("promote", 2, 3, "evaluator"),
        ("rollback", 3, 2, "alice (approver)"),
        ("rollback", 2, 1, "ops (admin)"),
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"/models/{DATASET}/versions/2/approve",
        f"/models/{DATASET}/versions/2/reject",
        f"/models/{DATASET}/rollback",
    ],
)
def test_changes_without_a_token_are_401_and_with_a_viewer_token_403(aws, pending, client, tokens, path):
    assert _post(client, path, None).status_code == 401
    bad = {"Authorization": "Bearer mlops_" + "x" * 43, "Content-Type": "application/json"}
    assert _post(client, path, bad).status_code == 401
    assert _post(client, path, tokens["viewer"]).status_code == 403
    assert pending.champion(DATASET) == 1 and pending.version(DATASET, 2)["status"] == "pending_approval"


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        (f"/models/{DATASET}/versions/2/approve", {}, 400, "reason"),
        (
            f"/models/{DATASET}/versions/2/approve",
            {"reason": "x", "expected_champion": "1"},
            400,
            "expected_champion",
        ),
        (f"/models/{DATASET}/versions/zero/approve", {"reason": "x"}, 400, "version"),
        (f"/models/{DATASET}/versions/9/approve", {"reason": "x"}, 404, "no version 9"),
        ("/models/nothing/rollback", {"reason": "x"}, 404, "no model"),
        ("/models/nothing/versions/1/approve", {"reason": "x"}, 404, "no model named 'nothing'"),
        (f"/models/{DATASET}/rollback", {"reason": "x"}, 409, "first champion"),
        (f"/models/{DATASET}/versions/1/reject", {"reason": "x"}, 409, "roll back first"),
    ],
)
def test_bad_change_requests_name_the_problem(aws, pending, client, tokens, path, body, status, fragment):
    response = _post(client, path, tokens["approver"], body)
    assert response.status_code == status and fragment in response.json_body["Message"]


def test_reading_routes_show_models_versions_and_gates(aws, pending, client):
    models = client.http.get("/models").json_body["models"]
    assert models == [{"model": DATASET, "champion": 1, "versions": 2, "latest": 2, "pending_approval": [2]}]
    shown = client.http.get(f"/models/{DATASET}").json_body
    assert shown["champion"] == 1 and [v["status"] for v in shown["versions"]] == [
        "champion",
        "pending_approval",
    ]
    version = client.http.get(f"/models/{DATASET}/versions/2").json_body
    assert {g["name"] for g in version["gates"]["gates"]} >= {"primary_metric", "guard_metrics", "schema"}
    assert version["lineage"]["parameters"]["model"]["family"] == "logistic_regression"
    assert client.http.get("/models/unknown").status_code == 404


# --- authentication of the real app ----------------------------------------------------------------


def test_reading_routes_need_a_token_in_deployed_stages(aws, pending, tokens, monkeypatch):
    with Client(load_app(monkeypatch, "true"), stage_name="local") as deployed:
        assert deployed.http.get("/models").status_code == 401
        assert deployed.http.get(f"/models/{DATASET}/audit", headers=tokens["viewer"]).status_code == 200
