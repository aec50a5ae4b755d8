"""Flow on the local cloud (moto server, the Chalice API over HTTP, the event runtime, IAM enforced):
live /predict traffic is captured (the API prints it, the local cloud ships it to the log group, the
subscription sends it through Firehose to S3), outcomes arrive over the API, and the hourly monitor
(``monitor_models``, as its own role) reports each window, flags a sustained shift and the error it
causes, records the breaches, announces them and asks for a retrain; GET /models/{name}/monitoring
and ``mlops monitor`` show it.

The windows are hours: the test moves the local cloud's clock (``MLOPS_LOCAL_CLOCK_OFFSET_S``) an
hour on between phases instead of waiting. Store sales (public and internal columns: captured as
sent) whose ``ads`` column is written three times too large from the second hour: a unit mix-up
that the contract cannot catch, the model's error triples, and the monitor sees both.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.aws.capture import S3CaptureSource
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.monitoring.service import floor_window
from chalicelib.settings import Settings
from chalicelib.timeutil import CLOCK_OFFSET_ENV
from chalicelib.validation import Contract
from mlops.cli import main as mlops
from mlops.datasets import sales_contract, sales_rows, to_csv
from tests.support import build_from_uploads, wait_until

MODEL = "monitored_sales"  # the local cloud's state outlives a module: a dataset of its own
PER_HOUR = 200
FEATURES = ("price", "ads", "footfall", "region")


def _contract() -> dict[str, Any]:
    doc = sales_contract({"family": "linear_regression"})
    doc["dataset"] = MODEL
    doc["monitoring"] = {"min_requests": 100, "performance": {"min_outcomes": 150}}
    return doc


@pytest.fixture(scope="module")
def champion(local_cloud) -> dict[str, Any]:
    """A linear model of store sales, published as the training job publishes it and promoted by the
    running evaluator; a viewer's and a reporter's token."""
    from training.main import candidate_prefix, publish_candidate

    aws.reset_clients()
    settings = Settings.from_env()
    doc = _contract()
    contract = Contract.parse(doc)
    S3ContractStore(settings.data_bucket).put(contract)
    artifacts, fields = build_from_uploads(doc, {"u-train": to_csv(*sales_rows(400, seed=1))}, contract)
    run_id = f"{MODEL}-{uuid.uuid4().hex[:8]}"
    publish_candidate(
        settings.models_bucket,
        candidate_prefix(MODEL, run_id),
        artifacts,
        {**fields, "run_id": run_id},
        contract,
    )
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    assert wait_until(lambda: registry.champion(MODEL) == 1), "no champion was promoted"
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    tokens = {role: store.create(f"m-{role}", role, created_by="tests")[0] for role in ("viewer", "reporter")}
    return {"settings": settings, "tokens": tokens}


def _call(cloud: Any, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(cloud.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _hour_of_traffic(cloud: Any, token: str, seed: int, ads_factor: float) -> list[tuple[str, int, float]]:
    """PER_HOUR records in requests of 10; (request id, index, true units) of each."""
    header, rows = sales_rows(PER_HOUR, start=10_000 * seed, seed=seed, ads_factor=ads_factor)
    sent = []
    for i in range(0, PER_HOUR, 10):
        chunk = rows[i : i + 10]
        records = [
            {
                name: (cell if name == "region" else float(cell))
                for name, cell in zip(header, row, strict=True)
                if name in FEATURES
            }
            for row in chunk
        ]
        status, answer = _call(cloud, "POST", f"/models/{MODEL}/predict", {"records": records}, token)
        assert status == 200, answer
        sent += [(answer["request_id"], n, float(row[header.index("units")])) for n, row in enumerate(chunk)]
    return sent


def test_a_sustained_shift_in_live_traffic_is_reported_recorded_announced_and_sent_for_retraining(
    local_cloud, champion, capsys, monkeypatch
):
    settings, tokens = champion["settings"], champion["tokens"]
    # Start the clock a minute into the next hour: each phase below is one window.
    now = datetime.now(UTC)
    start = floor_window(now, 60) + timedelta(hours=1)
    base = (start - now).total_seconds() + 60
    monkeypatch.setenv(CLOCK_OFFSET_ENV, str(base))
    sent = _hour_of_traffic(local_cloud, tokens["viewer"], seed=11, ads_factor=1.0)
    for hour in (1, 2):
        monkeypatch.setenv(CLOCK_OFFSET_ENV, str(base + 3600 * hour))
        sent += _hour_of_traffic(local_cloud, tokens["viewer"], seed=11 + hour, ads_factor=3.0)

    source = S3CaptureSource(settings.data_bucket)
    end = start + timedelta(hours=3)
    landed = wait_until(lambda: sum(1 for _ in source.records(MODEL, start, end)) == len(sent))
    assert landed, "the captured records did not all reach capture/live/"

    outcomes = [{"request_id": rid, "index": n, "label": units} for rid, n, units in sent]
    status, answer = _call(
        local_cloud, "POST", f"/models/{MODEL}/outcomes", {"outcomes": outcomes}, tokens["reporter"]
    )
    assert status == 202 and answer["accepted"] == len(sent), answer

    monkeypatch.setenv(CLOCK_OFFSET_ENV, str(base + 3 * 3600))
    assert local_cloud.runtime is not None
    done = local_cloud.runtime.fire("monitor_models") or {}
    result = done[MODEL]
    assert result["reported"][-3:] == [f"{(start + timedelta(hours=h)):%Y%m%dT%H%MZ}" for h in range(3)]

    status, doc = _call(
        local_cloud,
        "GET",
        f"/models/{MODEL}/monitoring?from={start:%Y-%m-%dT%H:%M:%SZ}",
        None,
        tokens["viewer"],
    )
    assert status == 200, doc
    windows = doc["windows"]
    assert [w["volume"]["records"] for w in windows] == [PER_HOUR] * 3
    assert [w["verdicts"]["drift"] for w in windows] == ["ok", "breach", "breach"], [
        (w["drift"]["reasons"], w["drift"].get("features")) for w in windows
    ]
    assert "ads" in windows[1]["drift"]["drifted_features"]
    assert [w["performance"]["verdict"] for w in windows] == ["ok", "breach", "breach"]
    assert all(w["performance"]["coverage"] == 1.0 for w in windows)
    kinds = sorted(b["kind"] for b in doc["breaches"])
    assert "drift" in kinds and "performance" in kinds, doc["breaches"]
    assert all(action["retrain_requested"] for action in result["breaches"] if action["new"])

    # The retrain triggers were consumed (and judged by the retrain policy), none dead-lettered.
    sqs = boto3.client("sqs")
    for queue in (settings.retrain_queue, f"{settings.retrain_queue}-dlq"):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        assert wait_until(
            lambda url=url: (
                sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
            )
        ), queue

    # A second run finds nothing new to report or to announce.
    again = local_cloud.runtime.fire("monitor_models") or {}
    assert again[MODEL]["reported"] == [] and again[MODEL]["breaches"] == []

    monkeypatch.setenv("MLOPS_API_URL", str(local_cloud.api_url))
    monkeypatch.setenv("MLOPS_TOKEN", tokens["viewer"])
    capsys.readouterr()
    assert mlops(["monitor", MODEL, "--from", start.isoformat()]) == 0
    table = capsys.readouterr().out
    assert f"{MODEL}: 3 window(s)" in table
    assert "breach drift" in table and "breach performance" in table
    os.environ.pop(CLOCK_OFFSET_ENV, None)


def test_the_monitoring_route_refuses_bad_ranges_naming_the_parameter(local_cloud, champion):
    token = champion["tokens"]["viewer"]
    for query, field in (
        ("from=yesterday", "from"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "from"),
        ("since=2026-12-01", "since"),
        ("from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", "from"),
    ):
        status, answer = _call(local_cloud, "GET", f"/models/{MODEL}/monitoring?{query}", None, token)
        assert status == 400 and field in json.dumps(answer), (query, answer)
    assert _call(local_cloud, "GET", "/models/nobody/monitoring", None, token)[0] == 404
