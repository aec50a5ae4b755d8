"""Flow on the local cloud (moto server, the Chalice API over HTTP, the event runtime, IAM enforced):
rollouts started over the API, /predict traffic split by routing key and captured (the API prints it,
the local cloud ships it through the log group and Firehose to S3), and the rollout evaluator
(``advance_rollouts``, as its own role) judging each step on the captured answers.

* a bad release aborted by its guard: v2, a logistic regression whose input schema refuses a mean
  radius above 14 (the champion takes up to 1,000): every such request routed to it is answered by
  the champion instead, and the evaluator aborts the rollout on the error guard;
* a good release completing: v3, a random forest, steps from 50% to 100% and becomes the champion.

The bake time is a minute; the test moves the local cloud's clock (``MLOPS_LOCAL_CLOCK_OFFSET_S``) on
instead of waiting. The champion, v1, is a single decision stump.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.aws.capture import S3CaptureSource
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.serving import routing
from chalicelib.settings import Settings
from chalicelib.timeutil import CLOCK_OFFSET_ENV, utc_now
from tests.support import DATASET, built, contract_for, holdout_records, wait_until

MODEL = DATASET
STRICT_RADIUS = 14.0


def _call(cloud: Any, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(cloud.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _publish(settings: Settings, model: str, artifacts: dict[str, bytes] | None = None) -> None:
    """A candidate published as the training job publishes it (manifest last)."""
    from training.main import candidate_prefix, publish_candidate

    made, fields = built(model)
    run_id = f"{MODEL}-{model}-{uuid.uuid4().hex[:8]}"
    publish_candidate(
        settings.models_bucket,
        candidate_prefix(MODEL, run_id),
        artifacts or dict(made),
        {**fields, "run_id": run_id},
        contract_for(model),
    )


def _strict(model: str) -> dict[str, bytes]:
    """``model``'s artifacts with an input schema refusing a mean radius above 14, and the holdout
    rows it can take (what its training job would have written had its contract said so)."""
    made, _ = built(model)
    artifacts = dict(made)
    schema = json.loads(artifacts["input_schema.json"])
    for feature in schema["features"]:
        if feature["name"] == "mean_radius":
            feature["max"] = STRICT_RADIUS
    artifacts["input_schema.json"] = json.dumps(schema).encode()
    header, *rows = list(csv.reader(io.StringIO(artifacts["holdout.csv"].decode())))
    column = header.index("mean_radius")
    kept = io.StringIO()
    csv.writer(kept, lineterminator="\n").writerows(
        [header, *(r for r in rows if float(r[column]) <= STRICT_RADIUS)]
    )
    artifacts["holdout.csv"] = kept.getvalue().encode()
    return artifacts


@pytest.fixture(scope="module")
def world(local_cloud) -> dict[str, Any]:
    """v1 (a stump) the champion; v2 (strict) and v3 (a forest) waiting for approval against it; the
    rollout guards need 30 answers a step and give latency a second's slack (the machine's speed
    must decide nothing here)."""
    aws.reset_clients()
    settings = Settings.from_env()
    contracts = S3ContractStore(settings.data_bucket)
    contracts.put(contract_for("stump"))
    _publish(settings, "stump")
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    assert wait_until(lambda: registry.champion(MODEL) == 1), "no champion was promoted"
    guards = {"min_requests": 30, "latency_slack_ms": 1000}
    contracts.put(contract_for("stump", mode="manual", rollout={"guards": guards}))
    _publish(settings, "logistic", _strict("logistic"))
    assert wait_until(lambda: (registry.version(MODEL, 2) or {}).get("status") == "pending_approval")
    _publish(settings, "forest")
    assert wait_until(lambda: (registry.version(MODEL, 3) or {}).get("status") == "pending_approval")
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    token = store.create("rollouts", "approver", created_by="tests")[0]
    return {"settings": settings, "registry": registry, "token": token}


def _traffic(cloud: Any, rollout_id: str, share: float, start: int, n: int) -> dict[str, int]:
    """``n`` single-record requests from users ``start``...; how many records the capture will hold
    for them (2 for an answer the candidate gave or refused: its record and the champion's)."""
    records = holdout_records("forest", n=89)
    expected: dict[str, int] = {}
    for i in range(start, start + n):
        key = f"user-{i}"
        status, answer = _call(
            cloud, "POST", f"/models/{MODEL}/predict", {"records": [records[i % 89]], "routing_key": key}
        )
        assert status == 200, answer  # no request fails because of the candidate
        routed = routing.to_candidate(rollout_id, share, key)
        expected[answer["request_id"]] = 2 if routed else 1
        if routed and records[i % 89]["mean_radius"] <= STRICT_RADIUS:
            assert answer["rollout"] == {"id": rollout_id, "arm": "candidate"}, answer
    return expected


def _landed(settings: Settings, expected: dict[str, int]) -> bool:
    """Whether the capture pipeline delivered every record of these requests to S3."""
    from datetime import timedelta

    source = S3CaptureSource(settings.data_bucket)
    now = utc_now()
    counts: dict[str, int] = {}
    for record in source.records(MODEL, now - timedelta(hours=2), now + timedelta(hours=2)):
        if record["request_id"] in expected:
            counts[record["request_id"]] = counts.get(record["request_id"], 0) + 1
    return counts == expected


def _fire(cloud: Any, offset_s: float, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(CLOCK_OFFSET_ENV, str(offset_s))
    assert cloud.runtime is not None
    return (cloud.runtime.fire("advance_rollouts") or {}).get(MODEL, {})


def _start(cloud: Any, world: dict[str, Any], version: int) -> dict[str, Any]:
    """Start a canary of ``version`` (50%, baked a minute) over the API; wait until the API routes by
    it (its containers read the pointer at most once per TTL)."""
    body = {"version": version, "reason": f"roll out v{version}", "canary": 50, "bake": "1m"}
    status, answer = _call(cloud, "POST", f"/models/{MODEL}/rollout", body, world["token"])
    assert status == 200, answer
    pointer = dict(answer["rollout"])

    def routed() -> bool:
        status, answer = _call(
            cloud, "POST", f"/models/{MODEL}/predict", {"records": holdout_records("forest", 1)}
        )
        return status == 200 and (answer.get("rollout") or {}).get("id") == pointer["id"]

    assert wait_until(routed), "the API never routed by the new rollout"
    return pointer


def test_a_release_refusing_what_the_champion_takes_is_aborted_by_the_error_guard(
    local_cloud, world, monkeypatch
):
    settings, registry = world["settings"], world["registry"]
    pointer = _start(local_cloud, world, 2)
    assert pointer["share"] == 50.0 and pointer["candidate"] == 2
    expected = _traffic(local_cloud, pointer["id"], 50.0, 0, 40)
    assert wait_until(lambda: _landed(settings, expected)), "the captured records did not all land"
    judged = _fire(local_cloud, 0.0, monkeypatch)  # no bake needed: a breach aborts at once
    found = registry.rollout(MODEL)
    assert found is not None and found["status"] == "aborted", (judged, found)
    assert "guard error_rate breached" in str(found["end_reason"])
    assert registry.champion(MODEL) == 1 and registry.version(MODEL, 2)["status"] == "pending_approval"
    status, shown = _call(local_cloud, "GET", f"/models/{MODEL}/rollout")
    assert status == 200 and shown["events"][-1]["guard"] == "error_rate", shown
    figures = shown["events"][-1]["figures"]["guards"]["error_rate"]
    assert figures["breached"] and figures["candidate"] > figures["champion"]


def test_a_good_release_steps_and_completes_through_the_evaluator(local_cloud, world, monkeypatch):
    settings, registry = world["settings"], world["registry"]
    pointer = _start(local_cloud, world, 3)
    rollout_id = pointer["id"]
    expected = _traffic(local_cloud, rollout_id, 50.0, 100, 80)
    assert wait_until(lambda: _landed(settings, expected)), "the captured records did not all land"
    _fire(local_cloud, 90.0, monkeypatch)  # the first step has baked (a minute)
    found = registry.rollout(MODEL)
    assert found is not None and (found["status"], found["step"], found["share"]) == ("active", 1, 100.0), (
        found
    )

    # Every container sees the step within the pointer's TTL: a user the champion answered at 50%
    # now gets the candidate.
    user = next(f"user-{i}" for i in range(1000) if not routing.to_candidate(rollout_id, 50.0, f"user-{i}"))

    def all_on_candidate() -> bool:
        body = {"records": holdout_records("forest", 1), "routing_key": user}
        status, answer = _call(local_cloud, "POST", f"/models/{MODEL}/predict", body)
        return status == 200 and answer["version"] == 3

    assert wait_until(all_on_candidate)
    expected = _traffic(local_cloud, rollout_id, 100.0, 200, 40)
    assert wait_until(lambda: _landed(settings, expected)), "the captured records did not all land"
    _fire(local_cloud, 180.0, monkeypatch)
    found = registry.rollout(MODEL)
    assert found is not None and found["status"] == "completed", found
    assert registry.champion(MODEL) == 3 and registry.version(MODEL, 1)["status"] == "retired"
    status, shown = _call(local_cloud, "GET", f"/models/{MODEL}/rollout")
    assert [e["action"] for e in shown["events"]] == ["start", "step", "complete"], shown
    status, answer = _call(
        local_cloud, "POST", f"/models/{MODEL}/predict", {"records": holdout_records("forest", 1)}
    )
    assert status == 200 and answer["version"] == 3
