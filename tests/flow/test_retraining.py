"""Retraining: the data manifest, the kickoff function wired to validated data, the training job
publishing a candidate, retries, and the API. In-process moto throughout; the local subprocess
backend is exercised by the demo and the end-to-end test. (The policy's rules are unit tests in
tests/unit/test_retraining_policy.py, the kickoff's logic is tested on in-memory adapters in
tests/service/test_training_service.py, the runs store's lock in
tests/adapters/test_runs_store_contract.py.)"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.adapters.memory.training_launcher import RecordingLauncher
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import PROJECT, deliver_uploads, drain

DATASET = "breast_cancer"


# --- kickoff, job, API -------------------------------------------------------------------------------


@pytest.fixture
def pipeline(aws, monkeypatch):
    """A stored contract (trains on >= 100 new rows), validated data, and a launcher that records."""
    doc = breast_cancer_contract()
    doc["training"] = {
        "model": {"family": "logistic_regression"},
        "retrain": {"min_new_rows": 100, "cooldown_minutes": 0},
    }
    S3ContractStore(aws.data_bucket).put(Contract.parse(doc))
    launcher = RecordingLauncher()
    monkeypatch.setattr("chalicelib.bootstrap.training_launcher", lambda: launcher)
    with Client(app, stage_name="local") as client:
        yield client, launcher.launched


def _validate(client, settings, key, data):
    boto3.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=data)
    deliver_uploads(client, settings)


def _retrain_messages(settings):
    return drain(settings, settings.retrain_queue)


def _kickoff(client, settings, bodies):
    event = client.events.generate_sqs_event(queue_name=settings.retrain_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    return client.lambda_.invoke("kickoff_retraining", event).payload


def test_enough_valid_rows_launch_exactly_one_run_with_a_data_manifest(aws, pipeline):
    client, launched = pipeline
    header, rows = breast_cancer_rows()
    _validate(client, aws, f"incoming/{DATASET}/a.csv", to_csv(header, rows[:60]))
    assert _kickoff(client, aws, _retrain_messages(aws)) == {"batchItemFailures": []}
    assert launched == []  # 60 rows < 100
    _validate(client, aws, f"incoming/{DATASET}/b.csv", to_csv(header, rows[60:120]))
    messages = _retrain_messages(aws)
    _kickoff(client, aws, messages * 3)  # duplicates counted once, and only one run
    assert len(launched) == 1
    run = DynamoRunsStore(aws.runs_table).get_run(launched[0][0])
    assert run["status"] == "submitted" and run["data_objects"] == 2
    assert "120 new valid rows" in run["reasons"][0]
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=aws.data_bucket, Key=run["data_manifest_key"])["Body"].read()
    )
    assert manifest["data_hash"] == run["data_hash"] and all(
        o["sha256"] and o["version_id"] for o in manifest["objects"]
    )
    state = DynamoRunsStore(aws.runs_table).state(DATASET)
    assert state.run_in_flight == launched[0][0] and state.rows_since_training == 0


def _train(aws, pipeline, rows=300):
    from training.main import main

    client, launched = pipeline
    header, all_rows = breast_cancer_rows()
    _validate(client, aws, f"incoming/{DATASET}/a.csv", to_csv(header, all_rows[:rows]))
    _kickoff(client, aws, _retrain_messages(aws))
    ((run_id, dataset),) = launched
    return run_id, main(["--run-id", run_id, "--dataset", dataset])


def test_training_job_publishes_a_candidate_with_manifest_last(aws, pipeline):
    run_id, code = _train(aws, pipeline)
    assert code == 0
    s3 = boto3.client("s3")
    prefix = f"models/{DATASET}/candidates/{run_id}/"
    manifest = json.loads(
        s3.get_object(Bucket=aws.models_bucket, Key=prefix + "manifest.json")["Body"].read()
    )
    names = {a["name"] for a in manifest["artifacts"]}
    assert {
        "model.onnx",
        "input_schema.json",
        "metrics.json",
        "reference_profile.json",
        "holdout.csv",
        "model_card.md",
        "lineage.json",
    } <= names
    import hashlib

    for artifact in manifest["artifacts"]:
        body = s3.get_object(Bucket=aws.models_bucket, Key=artifact["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"]
    lineage = json.loads(s3.get_object(Bucket=aws.models_bucket, Key=prefix + "lineage.json")["Body"].read())
    run = DynamoRunsStore(aws.runs_table).get_run(run_id)
    assert lineage["data_hash"] == run["data_hash"] and lineage["libraries"]["scikit-learn"]
    assert run["status"] == "succeeded" and run["primary_metric"] == "roc_auc" and run["primary_value"] > 0.9
    assert run["parity_max_abs_diff"] <= 1e-5
    assert DynamoRunsStore(aws.runs_table).state(DATASET).run_in_flight is None  # lock released
    # the manifest's arrival is what notifies the promotion queue
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.promotion_queue)["QueueUrl"]
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert any("manifest.json" in b for b in bodies)


def test_retried_run_writes_nothing_twice(aws, pipeline):
    from training.main import main

    run_id, code = _train(aws, pipeline)
    assert code == 0
    assert main(["--run-id", run_id, "--dataset", DATASET]) == 0  # a spot reclaim re-runs the job
    s3 = boto3.client("s3")
    versions = s3.list_object_versions(Bucket=aws.models_bucket, Prefix=f"models/{DATASET}/candidates/")[
        "Versions"
    ]
    keys = [v["Key"] for v in versions]
    assert len(keys) == len(set(keys))  # one version of every artifact
    assert len({k.split("/")[3] for k in keys}) == 1  # one candidate
    assert DynamoRunsStore(aws.runs_table).get_run(run_id)["attempts"] == 2


def test_parity_failure_fails_the_run_and_publishes_no_candidate(aws, pipeline, monkeypatch):
    monkeypatch.setattr(
        "training.main.check_parity",
        lambda *a, **k: {"passed": False, "max_abs_diff": 0.3, "label_flips": 4, "rows": 10},
    )
    run_id, code = _train(aws, pipeline)
    assert code == 1
    run = DynamoRunsStore(aws.runs_table).get_run(run_id)
    assert run["status"] == "failed" and "parity check failed" in run["error"]
    keys = [
        o["Key"]
        for o in boto3.client("s3")
        .list_objects_v2(Bucket=aws.models_bucket, Prefix="models/")
        .get("Contents", [])
    ]
    assert not any(k.endswith("manifest.json") for k in keys)
    assert DynamoRunsStore(aws.runs_table).state(DATASET).run_in_flight is None


def test_retrain_request_over_the_api_returns_the_run_id_then_409(aws, pipeline, tokens):
    client, launched = pipeline
    header, rows = breast_cancer_rows()
    _validate(client, aws, f"incoming/{DATASET}/a.csv", to_csv(header, rows[:60]))
    headers = tokens["admin"]
    response = client.http.post(
        f"/datasets/{DATASET}/retrain", body=json.dumps({"reason": "relabelled data"}), headers=headers
    )
    assert response.status_code == 202 and response.json_body["run_id"] == launched[0][0]
    again = client.http.post(
        f"/datasets/{DATASET}/retrain", body=json.dumps({"reason": "again"}), headers=headers
    )
    assert again.status_code == 409 and launched[0][0] in again.json_body["Message"]
    run = client.http.get(f"/runs/{launched[0][0]}")
    assert run.status_code == 200
    assert run.json_body["reasons"] == ["requested: relabelled data (asked by ops (admin))"]
    assert client.http.get("/runs/nope").status_code == 404


def test_retrain_request_without_a_reason_is_a_400_naming_it(aws, pipeline, tokens):
    client, _ = pipeline
    response = client.http.post(f"/datasets/{DATASET}/retrain", body="{}", headers=tokens["admin"])
    assert response.status_code == 400 and "reason" in response.json_body["Message"]


EXAMPLE = PROJECT / "examples" / "churn"


def test_a_users_own_dataset_with_categorical_columns_trains_end_to_end(aws, monkeypatch):
    """examples/churn: a contract and CSV written by hand (categories, nulls, a boolean, a pii
    column, a timestamp), through upload, validation, kickoff and the training job: no code change."""
    from training.main import main

    launcher = RecordingLauncher()
    launched = launcher.launched
    monkeypatch.setattr("chalicelib.bootstrap.training_launcher", lambda: launcher)
    S3ContractStore(aws.data_bucket).put(Contract.from_json((EXAMPLE / "contract.json").read_bytes()))
    with Client(app, stage_name="local") as client:
        _validate(client, aws, "incoming/churn/2026-11-23.csv", (EXAMPLE / "churn.csv").read_bytes())
        assert _kickoff(client, aws, _retrain_messages(aws)) == {"batchItemFailures": []}
    ((run_id, dataset),) = launched  # 600 valid rows >= min_new_rows 500
    assert main(["--run-id", run_id, "--dataset", dataset]) == 0
    run = DynamoRunsStore(aws.runs_table).get_run(run_id)
    assert run["status"] == "succeeded" and run["family"] == "hist_gradient_boosting"
    assert run["primary_value"] > 0.7 and run["parity_max_abs_diff"] <= 1e-5
    s3 = boto3.client("s3")
    prefix = f"models/churn/candidates/{run_id}/"
    schema = json.loads(
        s3.get_object(Bucket=aws.models_bucket, Key=prefix + "input_schema.json")["Body"].read()
    )
    features = {f["name"]: f for f in schema["features"]}
    assert (
        features["contract_type"]["onnx_type"] == "string"
        and features["tenure_months"]["onnx_type"] == "double"
    )
    assert "email" not in features and "customer_id" not in features  # pii and row id are not features
    assert schema["classes"] == ["no", "yes"]
