"""Helpers shared by test modules of several layers (fixtures live in the conftest.py files).

* ``wait_until``: poll an asynchronous outcome (flow tests) instead of sleeping for it.
* ``load_app``: app.py imported afresh with MLOPS_AUTH_READS set, as a deploy of that stage imports it.
* Candidates: ``contract_for``, ``built``, ``publish``, ``drain``, ``evaluate``: real models trained by
  the training job's own code, published as the job publishes them and delivered to evaluate_candidate.
* ``holdout_records``, ``post``: /predict requests built from a candidate's holdout.
* ``deliver_uploads``: the ingest queue drained into the ingest function, as the event runtime does.
* ``FakeMetadata``: an instance-metadata endpoint (IMDSv2) on 127.0.0.1 for the batch worker.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from collections.abc import Callable
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, drifted, to_csv

if TYPE_CHECKING:
    import pytest
    from chalice.test import Client

PROJECT = Path(__file__).resolve().parents[1]


# Only a guard against a hang: no assertion may depend on how fast the machine is, so the wait ends
# when the outcome is recorded, and the limit is far beyond what a busy two-core machine needs.
HANG_S = 180.0


def wait_until(predicate: Callable[[], Any], timeout_s: float = HANG_S, interval_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy; return its last value (falsy after ``timeout_s``, a hang)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def load_app(monkeypatch: pytest.MonkeyPatch, reads: str) -> Any:
    """app.py and its blueprints imported afresh (as a deploy imports them) with MLOPS_AUTH_READS set;
    the modules imported before are put back afterwards."""
    import importlib
    import sys

    monkeypatch.setenv("MLOPS_AUTH_READS", reads)
    for name in [m for m in sys.modules if m == "app" or m.startswith("chalicelib.entrypoints")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("app").app


# --- candidates ----------------------------------------------------------------------------------------

DATASET = "breast_cancer"
# Holdout AUCs on the same rows (all trained on the same data, so the holdouts coincide):
# stump 0.865 < tiny forest 0.981 < logistic regression 0.985; C=0.001 regression 0.976.
MODELS = {
    "stump": ("random_forest", {"n_estimators": 1, "max_depth": 1}),
    "forest": ("random_forest", {"n_estimators": 3, "max_depth": 2}),
    "logistic": ("logistic_regression", {"C": 1.0}),
    "weak_logistic": ("logistic_regression", {"C": 0.001}),
}
POLICY = {"mode": "auto", "min_delta": 0.002, "guard_metrics": {"log_loss": 0.05}}


def contract_for(model: str = "stump", **promotion: Any) -> Contract:
    """The breast cancer contract training ``model`` (a key of MODELS) under POLICY + ``promotion``."""
    doc = breast_cancer_contract()
    family, params = MODELS[model]
    doc["training"]["model"] = {"family": family, "params": params}
    doc["promotion"] = {**POLICY, **promotion}
    return Contract.parse(doc)


@cache
def built(model: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A candidate's artifacts, trained once per test session by the training job's code."""
    from chalicelib.training.settings import TrainingSettings
    from training.main import build_candidate
    from training.table import load_table

    header, rows = breast_cancer_rows()
    sources = [to_csv(header, rows[:330]), to_csv(header, drifted(header, rows[440:]))]
    contract = contract_for(model)
    training = TrainingSettings.from_contract(contract)
    lineage = {
        "run_id": "template",
        "dataset": DATASET,
        "data_hash": "0" * 64,
        "data_objects": [],
        "parameters": training.to_dict(),
    }
    return build_candidate(load_table(sources, contract), contract, training, lineage)


def publish(settings: Any, model: str, run_id: str | None = None, tamper: str | None = None) -> str:
    """Publish a candidate as the training job does (manifest last); returns its run id."""
    from training.main import candidate_prefix, publish_candidate

    run_id = run_id or f"{DATASET}-{model}-{uuid.uuid4().hex[:8]}"
    artifacts, fields = built(model)
    artifacts = dict(artifacts)
    prefix = candidate_prefix(DATASET, run_id)
    publish_candidate(
        settings.models_bucket, prefix, artifacts, {**fields, "run_id": run_id}, contract_for(model)
    )
    if tamper:  # one bit of the object changes after the manifest recorded its checksum (same size)
        data = artifacts[tamper]
        boto3.client("s3").put_object(
            Bucket=settings.models_bucket, Key=prefix + tamper, Body=data[:-1] + bytes([data[-1] ^ 1])
        )
    return run_id


def drain(settings: Any, queue: str) -> list[str]:
    """Receive and delete every message of ``queue``; returns their bodies."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def evaluate(client: Client, settings: Any, bodies: list[str] | None = None) -> dict[str, Any]:
    """Deliver the promotion queue's messages (or ``bodies``) to evaluate_candidate."""
    bodies = bodies if bodies is not None else drain(settings, settings.promotion_queue)
    bodies = [b for b in bodies if "manifest.json" in b]
    assert bodies, "no manifest notification reached the promotion queue"
    event = client.events.generate_sqs_event(queue_name=settings.promotion_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    return dict(client.lambda_.invoke("evaluate_candidate", event).payload)


# --- predictions ---------------------------------------------------------------------------------------


def holdout_records(model: str = "forest", n: int = 20) -> list[dict[str, Any]]:
    """Holdout rows of a candidate as JSON records (the features the model takes)."""
    artifacts, _ = built(model)
    schema = json.loads(artifacts["input_schema.json"])
    names = [f["name"] for f in schema["features"]]
    rows = list(csv.DictReader(io.StringIO(artifacts["holdout.csv"].decode())))[:n]
    return [{k: float(row[k]) for k in names} for row in rows]


def post(client: Client, path: str, body: Any, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.http.post(path, body=data, headers={"Content-Type": "application/json"})


# --- uploads -------------------------------------------------------------------------------------------


def deliver_uploads(client: Client, settings: Any) -> None:
    """Drain the ingest queue into the function, as the event runtime would."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        event = client.events.generate_sqs_event(
            queue_name=settings.ingest_queue, message_bodies=[m["Body"] for m in messages]
        )
        for record in event["Records"]:
            record["messageId"] = str(uuid.uuid4())
        response = client.lambda_.invoke("ingest_upload", event)
        assert response.payload == {"batchItemFailures": []}
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# --- batch workers -------------------------------------------------------------------------------------


class FakeMetadata:
    """IMDSv2 on 127.0.0.1: a token, then 404 until ``notice()``, then a termination notice.

    ``served`` is set once a watcher has read the notice, so a test knows the worker has it."""

    def __init__(self) -> None:
        self.notice_at: float | None = None
        self.served = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"fake-token")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "fake-token":
                    self.send_response(401)
                    self.end_headers()
                    return
                if outer.notice_at is None or not self.path.endswith("/spot/instance-action"):
                    self.send_response(404)
                    self.end_headers()
                    return
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(outer.notice_at + 120))
                body = json.dumps({"action": "terminate", "time": when}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
                outer.served.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def notice(self) -> None:
        self.notice_at = time.time()

    def close(self) -> None:
        self.server.shutdown()
