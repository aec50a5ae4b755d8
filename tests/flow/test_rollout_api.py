"""The rollout routes through the app on in-process moto (the DynamoDB registry, the S3 contract
store, the token authorizer): start with a schedule, status, pause, resume, abort; an approval under
a contract's rollout policy; champion changes refused while one runs; every bad field a 400 naming
it, unknown models and versions 404, conflicts 409, and who may call what."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from tests.support import DATASET, contract_for

MODEL = DATASET  # the model is named after its dataset (the contract's)


@pytest.fixture
def registry(aws) -> DynamoRegistry:
    """v1 champion; v2 and v3 pending approval, judged against v1."""
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    for n in (1, 2, 3):
        registry.register_version(MODEL, {"run_id": f"run-{n}", "family": "logistic_regression"})
    registry.approve(MODEL, 1, "evaluator", "first model", None, "candidate")
    for n in (2, 3):
        registry.set_status(
            MODEL, n, "pending_approval", "evaluator", "manual", gates={"evaluated_against": 1}
        )
    return registry


@pytest.fixture
def client(registry):
    with Client(app, stage_name="local") as c:
        yield c


def _post(client: Client, path: str, body: Any, headers: dict[str, str]) -> Any:
    import json

    return client.http.post(path, body=json.dumps(body), headers=headers)


def test_a_rollout_started_paused_resumed_and_aborted_over_the_api(client, tokens, registry):
    approver = tokens["approver"]
    started = _post(
        client,
        f"/models/{MODEL}/rollout",
        {"version": 2, "reason": "try it", "linear": 25, "every": "10m"},
        approver,
    )
    assert started.status_code == 200, started.body
    pointer = started.json_body["rollout"]
    assert (pointer["candidate"], pointer["champion"], pointer["share"], pointer["by"]) == (
        2,
        1,
        25.0,
        "alice (approver)",
    )
    assert pointer["schedule"]["steps"] == [25.0, 50.0, 75.0, 100.0] and pointer["schedule"]["bake_s"] == 600
    assert registry.version(MODEL, 2)["status"] == "rolling_out"
    shown = client.http.get(f"/models/{MODEL}").json_body
    assert shown["rollout"] == pointer and shown["champion"] == 1

    again = _post(client, f"/models/{MODEL}/rollout", {"version": 3, "reason": "another"}, approver)
    assert again.status_code == 409 and "a rollout of v2 is in progress" in again.json_body["Message"]
    back = _post(client, f"/models/{MODEL}/rollback", {"reason": "undo"}, approver)
    assert back.status_code == 409 and "abort it first" in back.json_body["Message"]

    for action in ("pause", "resume"):
        answer = _post(client, f"/models/{MODEL}/rollout/{action}", {"reason": f"{action} it"}, approver)
        assert answer.status_code == 200, answer.body
    aborted = _post(client, f"/models/{MODEL}/rollout/abort", {"reason": "a customer complained"}, approver)
    assert aborted.status_code == 200 and aborted.json_body["rollout"]["status"] == "aborted"
    assert registry.version(MODEL, 2)["status"] == "pending_approval" and registry.champion(MODEL) == 1
    twice = _post(client, f"/models/{MODEL}/rollout/abort", {"reason": "again"}, approver)
    assert twice.status_code == 409 and "it is aborted" in twice.json_body["Message"]

    status = client.http.get(f"/models/{MODEL}/rollout").json_body
    assert status["rollout"]["status"] == "aborted"
    assert [(e["action"], e["by"]) for e in status["events"]] == [
        ("start", "alice (approver)"),
        ("pause", "alice (approver)"),
        ("resume", "alice (approver)"),
        ("abort", "alice (approver)"),
    ]
    assert [e["action"] for e in client.http.get(f"/models/{MODEL}/audit").json_body["entries"]] == [
        "promote"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 2, "reason": "x", "canary": 150}, "canary"),
        ({"version": 2, "reason": "x", "linear": 0}, "linear"),
        ({"version": 2, "reason": "x", "bake": "soon"}, "bake"),
        ({"version": 2, "reason": "x", "every": "9d"}, "every"),
        ({"version": 2, "reason": "x", "bake": True}, "bake"),
        ({"version": 2, "reason": "x", "canery": 10}, "canery"),
        ({"version": 0, "reason": "x"}, "version"),
        ({"version": 2, "reason": " "}, "reason"),
        ({"version": 2}, "reason"),
        ({"reason": "x"}, "version"),
    ],
)
def test_every_bad_field_of_a_rollout_is_a_400_naming_it(client, tokens, registry, body, field):
    answer = _post(client, f"/models/{MODEL}/rollout", body, tokens["approver"])
    assert answer.status_code == 400, answer.body
    assert answer.json_body["Message"].startswith(f"{field}: "), answer.json_body
    assert registry.rollout(MODEL) is None


def test_canary_and_linear_at_once_is_a_400(client, tokens):
    answer = _post(
        client,
        f"/models/{MODEL}/rollout",
        {"version": 2, "reason": "x", "canary": 5, "linear": 5},
        tokens["approver"],
    )
    assert answer.status_code == 400 and "give canary or linear, not both" in answer.json_body["Message"]


def test_unknown_models_and_versions_are_404_and_who_may_call_what(client, tokens, registry):
    approver = tokens["approver"]
    assert _post(client, "/models/nope/rollout", {"version": 1, "reason": "x"}, approver).status_code == 404
    assert (
        _post(client, f"/models/{MODEL}/rollout", {"version": 9, "reason": "x"}, approver).status_code == 404
    )
    assert _post(client, "/models/nope/rollout/abort", {"reason": "x"}, approver).status_code == 404
    assert client.http.get("/models/nope/rollout").status_code == 404
    none = _post(client, f"/models/{MODEL}/rollout/pause", {"reason": "x"}, approver)
    assert none.status_code == 409 and "has no rollout" in none.json_body["Message"]
    assert client.http.get(f"/models/{MODEL}/rollout").json_body == {
        "model": MODEL,
        "rollout": None,
        "events": [],
    }
    viewer = _post(client, f"/models/{MODEL}/rollout", {"version": 2, "reason": "x"}, tokens["viewer"])
    assert viewer.status_code == 403
    anonymous = client.http.post(
        f"/models/{MODEL}/rollout/abort", body='{"reason": "x"}', headers={"Content-Type": "application/json"}
    )
    assert anonymous.status_code == 401
    assert registry.rollout(MODEL) is None


def test_an_approval_under_a_rollout_policy_answers_that_a_rollout_started(aws, client, tokens, registry):
    S3ContractStore(aws.data_bucket).put(
        contract_for(rollout={"strategy": "canary", "canary_percent": 5, "bake": "20m"})
    )
    answer = _post(
        client, f"/models/{MODEL}/versions/2/approve", {"reason": "looks good"}, tokens["approver"]
    )
    assert answer.status_code == 200, answer.body
    doc = answer.json_body
    assert doc["action"] == "rollout_started" and doc["champion"] == 1 and doc["audit"] is None
    assert (
        doc["rollout"]["schedule"]["steps"] == [5.0, 100.0] and doc["rollout"]["schedule"]["bake_s"] == 1200
    )
    assert registry.champion(MODEL) == 1 and registry.version(MODEL, 2)["status"] == "rolling_out"
    other = _post(
        client, f"/models/{MODEL}/versions/3/approve", {"reason": "this one too"}, tokens["approver"]
    )
    assert other.status_code == 409 and "abort it first" in other.json_body["Message"]


def test_an_approval_without_a_rollout_policy_still_switches(client, tokens, registry):
    answer = _post(client, f"/models/{MODEL}/versions/2/approve", {"reason": "ok"}, tokens["approver"])
    assert answer.status_code == 200, answer.body
    doc = answer.json_body
    assert doc["action"] == "promoted" and doc["champion"] == 2 and doc["audit"]["to_version"] == 2
    assert doc["rollout"] is None and registry.champion(MODEL) == 2
