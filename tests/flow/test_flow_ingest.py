"""Flow: S3 put -> bucket notification -> ingest queue -> event runtime -> handler -> ledger,
on a moto server with the real template and the real app, as `mlops up` runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3

from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger
from chalicelib.ingest import upload_id_for
from tests.support import wait_until


def _settings():
    from chalicelib.settings import Settings

    return Settings.from_env()


def test_s3_put_flows_through_the_queue_to_the_ledger(local_cloud):
    settings = _settings()
    body = b"sepal_length,species\n5.1,setosa\n"
    put = boto3.client("s3").put_object(Bucket=settings.data_bucket, Key="incoming/iris/flow.csv", Body=body)
    upload_id = upload_id_for(settings.data_bucket, "incoming/iris/flow.csv", put["VersionId"])
    ledger = DynamoUploadLedger(settings.uploads_table)
    entry = wait_until(lambda: ledger.get(upload_id))
    assert entry is not None, "upload never reached the ledger"
    assert entry.sha256 == hashlib.sha256(body).hexdigest()
    assert wait_until(
        lambda: any(i.handler_name == "ingest_upload" and i.ok for i in local_cloud.runtime.invocations)
    )


def test_a_unicode_key_flows_through_and_is_kept_exactly(local_cloud):
    """Over HTTP to the moto server, through its notification (quote_plus) and the event runtime."""
    from chalicelib.validation.layout import source_key_of

    settings = _settings()
    key = "incoming/iris/relevé de décembre + 50% (e\u0301) 🩺.csv"
    body = b"sepal_length,species\n5.2,setosa\n"
    s3 = boto3.client("s3")
    put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=body)
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    entry = wait_until(lambda: DynamoUploadLedger(settings.uploads_table).get(upload_id))
    assert entry is not None, "the upload never reached the ledger"
    assert entry.key == key and entry.sha256 == hashlib.sha256(body).hexdigest()
    assert entry.report_key and entry.output_key
    report = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=entry.report_key)["Body"].read())
    assert report["source"]["key"] == key
    head = s3.head_object(Bucket=settings.data_bucket, Key=entry.output_key)
    assert source_key_of(head["Metadata"]) == key


def test_duplicate_notifications_on_the_queue_have_one_effect(local_cloud):
    settings = _settings()
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    key = "incoming/iris/dupes.csv"
    put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=b"a\n1\n")
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    ledger = DynamoUploadLedger(settings.uploads_table)
    assert wait_until(lambda: ledger.get(upload_id))
    before = len(ledger.scan())
    notification = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-11-23T00:00:00Z",
                "s3": {
                    "bucket": {"name": settings.data_bucket},
                    "object": {
                        "key": "incoming%2Firis%2Fdupes.csv",
                        "size": 4,
                        "eTag": put["ETag"].strip('"'),
                        "versionId": put["VersionId"],  # as S3 (and the local cloud) send it
                    },
                },
            }
        ]
    }
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    sent = {
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(notification))["MessageId"] for _ in range(10)
    }
    handled = lambda: sent <= {m for i in local_cloud.runtime.invocations for m in i.message_ids if i.ok}  # noqa: E731
    assert wait_until(handled), "duplicates were not all consumed"
    assert len(ledger.scan()) == before


def test_api_serves_a_ledger_entry_and_404s_an_unknown_one(local_cloud):
    settings = _settings()
    put = boto3.client("s3").put_object(
        Bucket=settings.data_bucket, Key="incoming/iris/api.csv", Body=b"a\n1\n"
    )
    upload_id = upload_id_for(settings.data_bucket, "incoming/iris/api.csv", put["VersionId"])
    assert wait_until(lambda: DynamoUploadLedger(settings.uploads_table).get(upload_id))
    with urllib.request.urlopen(f"{local_cloud.api_url}/uploads/{upload_id}", timeout=10) as response:
        assert json.loads(response.read())["key"] == "incoming/iris/api.csv"
    try:
        urllib.request.urlopen(f"{local_cloud.api_url}/uploads/unknown", timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("expected a 404")


def test_aws_cli_upload_from_another_process_is_recorded(local_cloud, tmp_path):
    settings = _settings()
    data = tmp_path / "cli.csv"
    data.write_bytes(b"petal_width,species\n0.2,setosa\n")
    aws_cli = Path(sys.executable).parent / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    from mlops.localcloud import client_environment

    env.update(client_environment(int(local_cloud.endpoint.rsplit(":", 1)[1])))
    env.pop("AWS_ENDPOINT_URL")  # as a user would type it: --endpoint-url on the command line
    subprocess.run(
        [
            str(aws_cli),
            "--endpoint-url",
            local_cloud.endpoint,
            "s3",
            "cp",
            str(data),
            f"s3://{settings.data_bucket}/incoming/iris/cli.csv",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    ledger = DynamoUploadLedger(settings.uploads_table)
    entry = wait_until(lambda: [u for u in ledger.scan() if u.key == "incoming/iris/cli.csv"])
    assert entry and entry[0].sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


def test_status_shows_the_upload_first_queues_as_empty_and_resources_only_when_asked(
    local_cloud, capsys, monkeypatch
):
    from mlops import localcloud
    from mlops.cli import main

    settings = _settings()
    put = boto3.client("s3").put_object(
        Bucket=settings.data_bucket, Key="incoming/iris/status.csv", Body=b"a\n1\n"
    )
    upload_id = upload_id_for(settings.data_bucket, "incoming/iris/status.csv", put["VersionId"])
    assert wait_until(lambda: DynamoUploadLedger(settings.uploads_table).get(upload_id))
    # The ledger entry is written inside the invocation; its message is deleted once it returns.
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    assert wait_until(
        lambda: all(
            v == "0"
            for v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"].values()
        )
    )
    monkeypatch.setattr(localcloud, "STATE_FILE", Path("/nonexistent/state.json"))
    monkeypatch.setenv("MLOPS_LOCAL_PORT", local_cloud.endpoint.rsplit(":", 1)[1])
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "nothing needs attention" in out  # no DLQ holds a message, no alarm fires
    upload_line = next(line for line in out.splitlines() if line.strip().startswith(upload_id))
    assert "s3://serverless-mlops-local-data/incoming/iris/status.csv" in upload_line
    assert "work queues, all empty" in out
    assert "AWS::S3::Bucket" not in out and "mlops status --resources" in out
    assert out.index(upload_id) < out.index("work queues, all empty")

    assert main(["status", "--resources"]) == 0
    out = capsys.readouterr().out
    assert "AWS::S3::Bucket" in out and "AWS::DynamoDB::Table" in out


def test_the_local_cloud_imports_every_module_before_its_threads_start(local_cloud):
    """Handlers import lazily; in one process on several threads two of them importing one package
    at once met an import cycle from both ends (the demo's ingest handler once got a partly
    initialised chalicelib.validation: ImportError). Everything is imported on the main thread first."""
    import pkgutil
    import sys

    import chalicelib

    names = [m.name for m in pkgutil.walk_packages(chalicelib.__path__, prefix="chalicelib.")]
    assert names and all(name in sys.modules for name in names)


def test_an_ingest_that_failed_runs_again_when_its_notification_is_delivered_again(local_cloud, monkeypatch):
    """A transient failure (S3 throttling the read) fails the record; the failed attempt releases its
    idempotency record, so the notification's next delivery is ingested rather than taken for an
    ingest still in progress. (The failed message itself comes back only after the queue's
    visibility timeout: the test delivers it again as SQS then would, once the failure is recorded.)"""
    from botocore.exceptions import ClientError

    from chalicelib.adapters.aws.upload_source import S3UploadSource

    settings = _settings()
    key = "incoming/iris/throttled.csv"
    opened = S3UploadSource.open
    failed: list[str] = []

    def throttled_once(self, bucket, key_, version_id, etag):
        if key_ == key and not failed:
            failed.append(key_)
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject"
            )
        return opened(self, bucket, key_, version_id, etag)

    monkeypatch.setattr(S3UploadSource, "open", throttled_once)
    body = b"sepal_length,species\n4.9,setosa\n"
    put = boto3.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=body)
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    assert wait_until(
        lambda: (
            failed
            and any(
                i.handler_name == "ingest_upload" and i.failed_ids for i in local_cloud.runtime.invocations
            )
        )
    ), "the first attempt never failed"
    ledger = DynamoUploadLedger(settings.uploads_table)
    assert ledger.get(upload_id) is None
    again = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-12-01T00:00:00Z",
                "s3": {
                    "bucket": {"name": settings.data_bucket},
                    "object": {
                        "key": "incoming%2Firis%2Fthrottled.csv",
                        "size": len(body),
                        "eTag": put["ETag"].strip('"'),
                    },
                },
            }
        ]
    }
    sqs = boto3.client("sqs")
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"], MessageBody=json.dumps(again)
    )
    entry = wait_until(lambda: ledger.get(upload_id))
    assert entry is not None, "the notification delivered again was not ingested"
    assert entry.sha256 == hashlib.sha256(body).hexdigest()
