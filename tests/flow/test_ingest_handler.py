"""The ingest handler through chalice.test.Client on in-process moto, fed real S3 notifications."""

from __future__ import annotations

import hashlib
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
from tests.support import GOOD, IRIS


@pytest.fixture
def client(aws):
    S3ContractStore(aws.data_bucket).put(Contract.parse(IRIS))
    with Client(app, stage_name="local") as client:
        yield client


def _notifications(settings) -> list[str]:
    """Drain the ingest queue: the real notification bodies S3 (moto) sent."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _sqs_event(client, settings, bodies):
    event = client.events.generate_sqs_event(queue_name=settings.ingest_queue, message_bodies=bodies)
    for record in event["Records"]:  # Chalice gives every record the same messageId
        record["messageId"] = str(uuid.uuid4())
    return event


def _put(settings, key, body=GOOD):
    put = boto3.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=body)
    return upload_id_for(settings.data_bucket, key, put["VersionId"])


def test_upload_event_records_one_ledger_entry_with_sha256(aws, client):
    body = GOOD
    upload_id = _put(aws, "incoming/iris/day1.csv", body)
    response = client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, _notifications(aws)))
    assert response.payload == {"batchItemFailures": []}
    entry = DynamoUploadLedger(aws.uploads_table).get(upload_id)
    assert entry.dataset == "iris"
    assert entry.sha256 == hashlib.sha256(body).hexdigest()
    assert entry.size == len(body)
    assert entry.status == "valid"
    assert entry.rows == 2
    assert entry.version_id


def test_same_s3_event_delivered_ten_times_gives_one_ledger_entry(aws, client):
    _put(aws, "incoming/iris/day1.csv")
    bodies = [b for b in _notifications(aws) if "Records" in b]
    event = _sqs_event(client, aws, bodies * 10)
    response = client.lambda_.invoke("ingest_upload", event)
    assert response.payload == {"batchItemFailures": []}
    for _ in range(3):  # and again, in later invocations
        client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, bodies))
    assert len(DynamoUploadLedger(aws.uploads_table).scan()) == 1


def test_s3_test_event_is_skipped(aws, client):
    bodies = _notifications(aws)
    assert any("s3:TestEvent" in b for b in bodies)
    response = client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, bodies))
    assert response.payload == {"batchItemFailures": []}
    assert DynamoUploadLedger(aws.uploads_table).scan() == []


def test_malformed_message_fails_alone_and_the_rest_of_the_batch_is_recorded(aws, client):
    upload_id = _put(aws, "incoming/iris/day1.csv")
    good = [b for b in _notifications(aws) if "Records" in b]
    event = _sqs_event(client, aws, ["this is not an S3 notification", *good])
    response = client.lambda_.invoke("ingest_upload", event)
    assert response.payload == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert DynamoUploadLedger(aws.uploads_table).get(upload_id) is not None


@pytest.fixture
def function_logs():
    """What the Powertools logger writes (its stream was bound to stdout at import)."""
    import io

    from chalicelib.observability import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    yield buffer
    logger.registered_handler.setStream(previous)


def test_handler_logs_json_with_handler_name_and_correlation_id(aws, client, function_logs):
    _put(aws, "incoming/iris/day1.csv")
    event = _sqs_event(client, aws, [b for b in _notifications(aws) if "Records" in b])
    client.lambda_.invoke("ingest_upload", event)
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines()]
    recorded = [line for line in lines if line["message"] == "upload recorded"]
    assert recorded, lines
    assert recorded[0]["handler"] == "ingest_upload"
    assert recorded[0]["correlation_id"] == event["Records"][0]["messageId"]


def test_handler_emits_emf_metrics(aws, client, capsys):
    _put(aws, "incoming/iris/day1.csv")
    client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, _notifications(aws)))
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(doc.get("UploadsRecorded") == [1.0] for doc in emf)


def test_health_route_answers_with_the_stage_and_the_code_revision(client):
    from chalicelib.revision import code_revision

    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "stage": "local", "revision": code_revision()}
    assert response.json_body["revision"] != "unknown"  # a working copy: read from git


def test_unknown_upload_is_a_404_that_names_it(client):
    response = client.http.get("/uploads/nope")
    assert response.status_code == 404
    assert "nope" in response.json_body["Message"]


UNICODE_KEYS = [
    "incoming/iris/é.csv",  # the reported one (NFC)
    "incoming/iris/e\u0301.csv",  # the same name in NFD: another key, another upload
    "incoming/iris/day 1 + 2 = 3 (50% off).csv",  # spaces, '+' and '%' as S3 URL-encodes them
    "incoming/iris/東京/relevé 🩺 ✓.csv",  # CJK, emoji, a sub-folder
]


@pytest.mark.parametrize("key", UNICODE_KEYS)
def test_a_key_with_any_unicode_goes_through_and_is_kept_exactly(aws, client, key):
    """Non-ASCII keys used to crash the copy (botocore refuses non-ASCII metadata)."""
    from chalicelib.validation.layout import source_key_of

    upload_id = _put(aws, key)
    event = _sqs_event(client, aws, [b for b in _notifications(aws) if "Records" in b])
    response = client.lambda_.invoke("ingest_upload", event)
    assert response.payload == {"batchItemFailures": []}
    entry = DynamoUploadLedger(aws.uploads_table).get(upload_id)
    assert entry is not None and entry.key == key and entry.status == "valid"
    s3 = boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=aws.data_bucket, Key=entry.report_key)["Body"].read())
    assert report["source"]["key"] == key
    head = s3.head_object(Bucket=aws.data_bucket, Key=entry.output_key)
    assert source_key_of(head["Metadata"]) == key


def test_same_bytes_under_another_key_finish_a_first_upload_that_crashed_after_its_claim(
    aws, client, monkeypatch
):
    """On DynamoDB and S3: the claim keeps the first upload's notification, and the second upload
    finishes the first before it is recorded as its duplicate (it used to point at nothing)."""
    from chalicelib.adapters.aws.validation_outputs import S3ValidationStore

    real_copy = S3ValidationStore.copy
    crashes = []

    def copy_that_fails_once(self, *args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise ConnectionError("the function died while copying")
        return real_copy(self, *args, **kwargs)

    monkeypatch.setattr(S3ValidationStore, "copy", copy_that_fails_once)
    first_id = _put(aws, "incoming/iris/first.csv")
    failed = client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, _notifications(aws)))
    assert len(failed.payload["batchItemFailures"]) == 1 and crashes  # its message goes back to the queue
    ledger = DynamoUploadLedger(aws.uploads_table)
    assert ledger.get(first_id) is None

    second_id = _put(aws, "incoming/iris/first-again.csv")
    response = client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, _notifications(aws)))
    assert response.payload == {"batchItemFailures": []}
    first, second = ledger.get(first_id), ledger.get(second_id)
    assert first is not None and first.status == "valid" and first.key == "incoming/iris/first.csv"
    assert second is not None and second.status == "duplicate" and second.duplicate_of == first_id
    listed = boto3.client("s3").list_objects_v2(Bucket=aws.data_bucket, Prefix="validated/iris/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [first.output_key]


def test_a_claim_left_by_an_earlier_version_without_a_ledger_entry_passes_to_the_next_upload(aws, client):
    """Tables in service hold claims written before claims kept their notification, some of them
    by uploads that never completed (the non-ASCII key crash): the bytes are not lost to them."""
    body = b"a,label\n0.5,no\n"
    sha = hashlib.sha256(body).hexdigest()
    boto3.client("dynamodb").put_item(
        TableName=aws.uploads_table,
        Item={"upload_id": {"S": f"content#iris#{sha}"}, "first_upload_id": {"S": "stranded-by-the-old-bug"}},
    )
    upload_id = _put(aws, "incoming/iris/again.csv", body)
    response = client.lambda_.invoke("ingest_upload", _sqs_event(client, aws, _notifications(aws)))
    assert response.payload == {"batchItemFailures": []}
    entry = DynamoUploadLedger(aws.uploads_table).get(upload_id)
    assert entry is not None and entry.status == "valid" and entry.duplicate_of is None
    claim = DynamoUploadLedger(aws.uploads_table).claim_content("iris", sha, "later", {})
    assert claim.upload_id == upload_id
