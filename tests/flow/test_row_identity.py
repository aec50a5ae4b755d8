"""Row identity through the app on moto: a .csv, then the same rows re-exported as .csv.gz under
another name. The re-export is validated and kept, but it is not new data: no run starts, its
ledger entry and report say its rows repeat an earlier upload, and a run over both uploads trains
on each row once."""

from __future__ import annotations

import gzip
import json
import uuid

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.adapters.memory.training_launcher import RecordingLauncher
from chalicelib.ingest.uploads import upload_id_for
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import deliver_uploads, drain

DATASET = "breast_cancer"  # row id "row_id"; 300 new rows start a run, no cooldown


@pytest.fixture
def pipeline(aws, monkeypatch):
    S3ContractStore(aws.data_bucket).put(Contract.parse(breast_cancer_contract()))
    launcher = RecordingLauncher()
    monkeypatch.setattr("chalicelib.bootstrap.training_launcher", lambda: launcher)
    with Client(app, stage_name="local") as client:
        yield client, launcher.launched


def _upload(client, settings, key: str, data: bytes) -> str:
    put = boto3.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=data)
    deliver_uploads(client, settings)
    bodies = drain(settings, settings.retrain_queue)
    event = client.events.generate_sqs_event(queue_name=settings.retrain_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    assert client.lambda_.invoke("kickoff_retraining", event).payload == {"batchItemFailures": []}
    return upload_id_for(settings.data_bucket, key, put["VersionId"])


def _train(settings, run_id: str) -> dict:
    from training.main import candidate_prefix, main

    assert main(["--run-id", run_id, "--dataset", DATASET]) == 0
    key = candidate_prefix(DATASET, run_id) + "lineage.json"
    lineage = json.loads(boto3.client("s3").get_object(Bucket=settings.models_bucket, Key=key)["Body"].read())
    return {"run": DynamoRunsStore(settings.runs_table).get_run(run_id), "lineage": lineage}


def test_the_same_rows_reexported_as_gzip_start_no_run_and_are_trained_on_once(aws, pipeline, tokens):
    client, launched = pipeline
    header, rows = breast_cancer_rows()
    _upload(client, aws, f"incoming/{DATASET}/2026-11-01.csv", to_csv(header, rows[:400]))
    assert len(launched) == 1  # 400 new rows >= 300
    first = _train(aws, launched[0][0])

    export = gzip.compress(to_csv(header, rows[:400][::-1]))
    again = _upload(client, aws, f"incoming/{DATASET}/export-2026-11-01.csv.gz", export)
    assert len(launched) == 1, "a re-export of rows already uploaded started a run"
    entry = client.http.get(f"/uploads/{again}").json_body
    assert entry["status"] == "valid" and entry["rows"] == 400
    assert (entry["repeated_rows"], entry["new_rows"]) == (400, 0)
    report = json.loads(
        boto3.client("s3").get_object(Bucket=aws.data_bucket, Key=entry["report_key"])["Body"].read()
    )
    assert report["compression"] == "gzip"
    assert report["row_identity"]["repeated_rows"] == 400 and report["row_identity"]["new_rows"] == 0
    assert DynamoRunsStore(aws.runs_table).state(DATASET).rows_since_training == 0
    assert first["lineage"]["rows"] == {"read": 400, "kept": 400, "replaced": 0}

    # A run asked for now trains on both uploads: 400 distinct patients, each once.
    response = client.http.post(
        f"/datasets/{DATASET}/retrain", body=json.dumps({"reason": "check"}), headers=tokens["admin"]
    )
    assert response.status_code == 202
    second = _train(aws, response.json_body["run_id"])
    assert second["lineage"]["rows"] == {"read": 800, "kept": 400, "replaced": 400}
    assert [o["upload_id"] for o in second["lineage"]["data_objects"]][-1] == again  # the newest last
