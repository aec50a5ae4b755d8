"""Validation inside the ingest function (chalice.test.Client on in-process moto): reports,
quarantine, validated copies with lineage and tags, reference and drift, identical bytes,
announcements, governance; and the contract API."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger
from chalicelib.ingest import upload_id_for
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import deliver_uploads

DATASET = "breast_cancer"


@pytest.fixture
def client(aws):
    S3ContractStore(aws.data_bucket).put(Contract.parse(breast_cancer_contract()))
    with Client(app, stage_name="local") as client:
        yield client


@pytest.fixture(scope="module")
def days():
    header, rows = breast_cancer_rows()
    return header, rows


def _upload(client, settings, key, data):
    put = boto3.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=data)
    deliver_uploads(client, settings)
    return DynamoUploadLedger(settings.uploads_table).get(
        upload_id_for(settings.data_bucket, key, put["VersionId"])
    )


def _json(settings, key):
    return json.loads(boto3.client("s3").get_object(Bucket=settings.data_bucket, Key=key)["Body"].read())


def _tags(settings, key):
    tagset = boto3.client("s3").get_object_tagging(Bucket=settings.data_bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tagset}


def _announcements(settings):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def test_valid_upload_is_copied_to_validated_with_lineage_tags_and_announced(aws, client, days):
    header, rows = days
    entry = _upload(client, aws, f"incoming/{DATASET}/d1.csv", to_csv(header, rows[:100]))
    assert entry.status == "valid" and entry.rows == 100
    assert entry.output_key == f"validated/{DATASET}/{entry.upload_id}.csv"
    head = boto3.client("s3").head_object(Bucket=aws.data_bucket, Key=entry.output_key)
    assert head["Metadata"]["source-key"] == f"incoming/{DATASET}/d1.csv"
    assert head["Metadata"]["sha256"] == entry.sha256
    assert _tags(aws, entry.output_key) == {
        "dataset": DATASET,
        "classification": "confidential",
        "stage": "validated",
    }
    report = _json(aws, f"reports/{DATASET}/{entry.upload_id}.json")
    assert report["status"] == "valid" and report["source"]["sha256"] == entry.sha256
    assert _tags(aws, entry.report_key)["stage"] == "report"
    (message,) = _announcements(aws)
    assert (
        message["event"] == "data.validated"
        and message["upload_id"] == entry.upload_id
        and message["rows"] == 100
    )


def test_duplicated_event_validates_once(aws, client, days):
    header, rows = days
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.put_object(Bucket=aws.data_bucket, Key=f"incoming/{DATASET}/d.csv", Body=to_csv(header, rows[:70]))
    url = sqs.get_queue_url(QueueName=aws.ingest_queue)["QueueUrl"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    event = client.events.generate_sqs_event(queue_name=aws.ingest_queue, message_bodies=bodies * 5)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    client.lambda_.invoke("ingest_upload", event)
    assert len(_announcements(aws)) == 1
    assert boto3.client("s3").list_objects_v2(Bucket=aws.data_bucket, Prefix="reports/")["KeyCount"] == 1


def test_crash_mid_file_retries_cleanly(aws, client, days, monkeypatch):
    """A failure after reading part of the file fails the record; the retry completes it once."""
    from chalicelib.validation import service

    header, rows = days
    real_publish = service.publish
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("network blip while writing outputs")
        return real_publish(*args, **kwargs)

    monkeypatch.setattr("chalicelib.ingest.service.publish", crash_once)
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    put = s3.put_object(
        Bucket=aws.data_bucket, Key=f"incoming/{DATASET}/c.csv", Body=to_csv(header, rows[:70])
    )
    url = sqs.get_queue_url(QueueName=aws.ingest_queue)["QueueUrl"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    event = client.events.generate_sqs_event(queue_name=aws.ingest_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    failed = client.lambda_.invoke("ingest_upload", event).payload["batchItemFailures"]
    assert len(failed) == 1  # only the crashed record returns to the queue
    ledger = DynamoUploadLedger(aws.uploads_table)
    upload_id = upload_id_for(aws.data_bucket, f"incoming/{DATASET}/c.csv", put["VersionId"])
    assert ledger.get(upload_id) is None  # nothing recorded as done
    retry = client.lambda_.invoke("ingest_upload", event).payload
    assert retry == {"batchItemFailures": []}
    assert ledger.get(upload_id).status == "valid"
    assert len(_announcements(aws)) == 1


# --- the contract API -------------------------------------------------------------------------------


def test_put_then_get_contract_over_the_api(aws, client, tokens):
    doc = breast_cancer_contract()
    doc["version"] = 2
    response = client.http.put(f"/datasets/{DATASET}/contract", body=json.dumps(doc), headers=tokens["admin"])
    assert response.status_code == 200 and response.json_body["version"] == 2
    got = client.http.get(f"/datasets/{DATASET}/contract")
    assert got.status_code == 200 and got.json_body["version"] == 2


def test_storing_a_contract_needs_an_admin_token(aws, client, tokens):
    body = json.dumps(breast_cancer_contract())
    anonymous = client.http.put(
        f"/datasets/{DATASET}/contract", body=body, headers={"Content-Type": "application/json"}
    )
    approver = client.http.put(f"/datasets/{DATASET}/contract", body=body, headers=tokens["approver"])
    assert anonymous.status_code == 401 and approver.status_code == 403


@pytest.mark.parametrize(
    "body, expected",
    [
        ("{", "not valid JSON"),
        ('{"dataset": "breast_cancer", "dataset": "x"}', "appears twice"),
        ('{"x": NaN}', "NaN"),
        ("[" * 100 + "]" * 100, "nested deeper"),
        ("", "empty"),
    ],
)
def test_malformed_contract_body_is_a_400_that_names_the_problem(aws, client, tokens, body, expected):
    response = client.http.put(f"/datasets/{DATASET}/contract", body=body, headers=tokens["admin"])
    assert response.status_code == 400
    assert expected in response.json_body["Message"]


def test_broken_contract_is_refused_naming_the_field(aws, client, tokens):
    doc = breast_cancer_contract()
    doc["columns"][3]["type"] = "decimal"
    response = client.http.put(f"/datasets/{DATASET}/contract", body=json.dumps(doc), headers=tokens["admin"])
    assert response.status_code == 400 and "columns[3].type" in response.json_body["Message"]


def test_contract_sent_to_another_dataset_is_refused(aws, client, tokens):
    response = client.http.put(
        "/datasets/other/contract",
        body=json.dumps(breast_cancer_contract()),
        headers=tokens["admin"],
    )
    assert response.status_code == 400 and "dataset" in response.json_body["Message"]


def test_unknown_contract_is_a_404(aws, client):
    assert client.http.get("/datasets/nothing_here/contract").status_code == 404


def test_contract_with_a_broken_training_section_is_refused_naming_the_field(aws, client, tokens):
    doc = breast_cancer_contract()
    doc["training"] = {"model": {"family": "random_forest", "params": {"max_dept": 5}}}
    response = client.http.put(f"/datasets/{DATASET}/contract", body=json.dumps(doc), headers=tokens["admin"])
    assert response.status_code == 400 and "training.model.params" in response.json_body["Message"]
