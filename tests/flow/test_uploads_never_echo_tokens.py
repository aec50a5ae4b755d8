"""``GET /uploads/...`` never echoes a token (issue 18, "friction"), wherever a client puts one: in
the path (the 404 quotes what it was given), the query string, the headers, or the key and metadata
of the uploaded object (the ledger entry quotes the key; so do the console's listings). chalice.test.Client on in-process moto,
fed the real S3 notifications."""

from __future__ import annotations

import uuid

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.auth import REDACTED, new_token, redact_tokens
from chalicelib.ingest import upload_id_for
from chalicelib.validation import Contract
from tests.support import GOOD, IRIS


@pytest.fixture(scope="module")
def aws(aws_module):
    return aws_module  # one stack for the module: every test uses keys of its own (a new token)


@pytest.fixture(scope="module")
def client(aws):
    S3ContractStore(aws.data_bucket).put(Contract.parse(IRIS))
    with Client(app, stage_name="local") as client:
        yield client


def _leaks(text: str, token: str) -> bool:
    """Whether ``text`` holds the token or any 10 characters running of its secret part."""
    secret = token[len("mlops_") :]
    return any(secret[i : i + 10] in text for i in range(len(secret) - 9))


def _ingest(client, settings) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    event = client.events.generate_sqs_event(queue_name=settings.ingest_queue, message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    assert client.lambda_.invoke("ingest_upload", event).payload == {"batchItemFailures": []}


def _put(settings, key: str, token: str) -> str:
    put = boto3.client("s3").put_object(
        Bucket=settings.data_bucket, Key=key, Body=GOOD, Metadata={"token": token, "note": f"Bearer {token}"}
    )
    return upload_id_for(settings.data_bucket, key, put["VersionId"])


def test_a_token_in_an_uploads_key_or_metadata_is_masked_in_its_ledger_entry(aws, client):
    token = new_token()
    valid = _put(aws, f"incoming/iris/{token}.csv", token)  # a valid upload; its key is the token
    unroutable = _put(aws, f"incoming/{token}/day1.csv", token)  # the problem quotes the key
    _ingest(client, aws)
    for upload_id, status in ((valid, "valid"), (unroutable, "unroutable")):
        response = client.http.get(
            f"/uploads/{upload_id}?token={token}",
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": token, "X-Token": token},
        )
        assert response.status_code == 200, response.body
        assert response.json_body["status"] == status
        assert REDACTED in response.json_body["key"]  # the key was there, masked
        assert not _leaks(response.body.decode(), token)
        lineage = client.http.get(
            f"/uploads/{upload_id}/models", headers={"Authorization": f"Bearer {token}"}
        )
        assert lineage.status_code == 200 and not _leaks(lineage.body.decode(), token)
    # The console's listings of uploads (every read's answer is masked the same way).
    for path in ("/overview", "/datasets/iris/uploads", f"/uploads/{valid}/report"):
        response = client.http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (path, response.body)
        assert not _leaks(response.body.decode(), token), path
    listed = client.http.get("/datasets/iris/uploads").json_body["uploads"]
    assert any(REDACTED in (row.get("key") or "") for row in listed)


@pytest.mark.parametrize(
    "path",
    [
        "/uploads/{token}",
        "/uploads/{token}/models",
        "/uploads/Bearer%20{token}",
        "/uploads/{clipped}",
        "/uploads?token={token}",
        "/uploads/0123456789abcdef01234567?access_token={token}",
    ],
)
def test_a_token_in_the_path_or_the_query_string_is_never_echoed(aws, client, path):
    token = new_token()
    response = client.http.get(
        path.format(token=token, clipped=token[:30]), headers={"Authorization": f"Bearer {token}"}
    )
    assert 400 <= response.status_code < 500
    assert not _leaks(response.body.decode(), token)


def test_masking_keeps_what_is_not_a_token():
    token = new_token()
    assert redact_tokens({"key": f"incoming/s/{token}.csv", "n": 3, "l": [f"Bearer {token}"]}) == {
        "key": f"incoming/s/{REDACTED}.csv",
        "n": 3,
        "l": ["Bearer ***"],
    }
    for text in ("incoming/mlops_sales/day1.csv", "no upload with id 'nope'", "mlops_", "0" * 24):
        assert redact_tokens(text) == text
