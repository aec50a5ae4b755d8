"""Flow on the local cloud (moto server, the Chalice API over HTTP, the event runtime, IAM enforced):
outcomes sent to POST /models/{name}/outcomes are stored; an outcomes CSV uploaded under outcomes/
reaches the ingest function through S3 -> SQS, its good rows stored and its bad rows quarantined with
a report; a re-sent notification stores nothing twice; `mlops outcomes send` sends a file."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.ingest import upload_id_for
from chalicelib.settings import Settings
from mlops.cli import main as mlops
from tests.support import DATASET, contract_for, wait_until

RID = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def model(local_cloud) -> dict[str, Any]:
    """The breast cancer contract stored, one version registered, a reporter's and a viewer's token."""
    aws.reset_clients()
    settings = Settings.from_env()
    S3ContractStore(settings.data_bucket).put(contract_for())
    DynamoRegistry(settings.registry_table, settings.audit_table).register_version(
        DATASET, {"run_id": "run-o1"}
    )
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    tokens = {role: store.create(f"o-{role}", role, created_by="tests")[0] for role in ("viewer", "reporter")}
    return {"settings": settings, "tokens": tokens}


def _post(cloud: Any, path: str, body: Any, token: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(
        cloud.api_url + path, data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _lines(bucket: str, key: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def _keys(bucket: str, prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _stored(bucket: str) -> list[str]:
    return _keys(bucket, f"monitoring/{DATASET}/outcomes/")


def test_posted_outcomes_are_stored_create_only_and_tagged(local_cloud, model):
    bucket = model["settings"].data_bucket
    items = [{"request_id": RID, "label": 1}, {"request_id": RID, "index": 2, "label": 0}]
    items.append({"row_id": "patient-0042", "label": 1})
    status, answer = _post(
        local_cloud, f"/models/{DATASET}/outcomes", {"outcomes": items}, model["tokens"]["reporter"]
    )
    assert status == 202 and answer["accepted"] == 3
    lines = _lines(bucket, answer["key"])
    assert [(d["request_id"], d["index"], d["row_id"], d["label"]) for d in lines] == [
        (RID, 0, None, 1),
        (RID, 2, None, 0),
        (None, 0, "patient-0042", 1),
    ]
    tags = boto3.client("s3").get_object_tagging(Bucket=bucket, Key=answer["key"])["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags}["classification"] == "confidential"


def test_a_request_with_bad_items_is_refused_whole_naming_each_and_stores_nothing(local_cloud, model):
    bucket = model["settings"].data_bucket
    before = _stored(bucket)
    items = [
        {"request_id": RID, "label": 1},
        {"request_id": RID, "label": 5},
        {"row_id": "nobody", "label": 0},
    ]
    status, answer = _post(
        local_cloud, f"/models/{DATASET}/outcomes", {"outcomes": items}, model["tokens"]["reporter"]
    )
    assert status == 400
    assert {(p["item"], p["field"]) for p in answer["problems"]} == {(1, "label"), (2, "row_id")}
    assert "5" not in json.dumps(answer["problems"][0]["problem"])  # the diagnosis is confidential
    assert _stored(bucket) == before


def test_outcomes_need_a_reporter_and_a_known_model(local_cloud, model):
    body = {"outcomes": [{"request_id": RID, "label": 1}]}
    assert _post(local_cloud, f"/models/{DATASET}/outcomes", body, model["tokens"]["viewer"])[0] == 403
    assert _post(local_cloud, "/models/nobody/outcomes", body, model["tokens"]["reporter"])[0] == 404
    assert (
        _post(local_cloud, f"/models/{DATASET}/outcomes", {"outcomes": []}, model["tokens"]["reporter"])[0]
        == 400
    )


UPLOAD = f"request_id,index,row_id,label\n{RID},0,,1\n{RID},1,,9\n,,patient-0007,0\nnot-an-id,,,1\n".encode()


def test_an_uploaded_outcomes_file_is_stored_and_its_bad_rows_quarantined_and_a_resent_event_stores_nothing_twice(
    local_cloud, model
):
    bucket = model["settings"].data_bucket
    key = f"outcomes/{DATASET}/2026-12-01.csv"
    s3 = boto3.client("s3")
    put = s3.put_object(Bucket=bucket, Key=key, Body=UPLOAD)
    upload_id = upload_id_for(bucket, key, put["VersionId"])
    report_key = f"quarantine/outcomes/{DATASET}/{upload_id}/report.json"
    assert wait_until(lambda: report_key in _keys(bucket, report_key)), "no quarantine report"
    report = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    assert report["accepted"] == 2 and report["rejected_rows"] == 2
    assert {(p["row"], p["field"]) for p in report["problems"]} == {(2, "label"), (4, "request_id")}
    stored_key = report["stored_key"]
    lines = _lines(bucket, stored_key)
    assert [(d["request_id"], d["row_id"], d["label"]) for d in lines] == [
        (RID, None, 1),
        (None, "patient-0007", 0),
    ]
    assert {d["source"] for d in lines} == {f"upload:{key}@{put['VersionId']}"}
    rows = s3.get_object(Bucket=bucket, Key=report["quarantined_rows_key"])["Body"].read().decode()
    assert rows.splitlines()[1:] == [f"2,{RID},1,,9", "4,not-an-id,,,1"]

    # S3 delivers at least once: the same object's notification again (as S3 would re-send it, with
    # its version and a later event time) is handled, and stores nothing twice.
    head = s3.head_object(Bucket=bucket, Key=key)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=model["settings"].ingest_queue)["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(_notification(bucket, key, head)))[
        "MessageId"
    ]
    assert wait_until(lambda: any(sent in i.message_ids and i.ok for i in local_cloud.runtime.invocations)), (
        "the re-sent notification was never handled"
    )
    assert [k for k in _stored(bucket) if k == stored_key] == [stored_key]
    versions = s3.list_object_versions(Bucket=bucket, Prefix=stored_key).get("Versions", [])
    assert len(versions) == 1
    assert len([k for k in _stored(bucket) if _lines(bucket, k)[0]["source"].startswith("upload:")]) == 1
    # The upload itself is untouched.
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]] == [
        put["VersionId"]
    ]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == UPLOAD


def _notification(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2030-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": head["VersionId"],
                    },
                },
            }
        ]
    }


def test_mlops_outcomes_send_checks_the_file_then_sends_it(local_cloud, model, tmp_path, monkeypatch, capsys):
    bucket = model["settings"].data_bucket
    monkeypatch.setenv("MLOPS_API_URL", str(local_cloud.api_url))
    monkeypatch.setenv("MLOPS_TOKEN", model["tokens"]["reporter"])
    bad = tmp_path / "bad.csv"
    bad.write_text(f"request_id,label\n{RID},1\n{RID},3\n")
    before = _stored(bucket)
    capsys.readouterr()
    assert mlops(["outcomes", "send", DATASET, str(bad)]) == 1
    err = capsys.readouterr().err
    assert "nothing sent" in err and "row 2 label" in err
    assert _stored(bucket) == before

    good = tmp_path / "good.csv"
    good.write_text("row_id,label\n" + "".join(f"patient-{n:04d},{n % 2}\n" for n in range(1500)))
    assert mlops(["outcomes", "send", DATASET, str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{DATASET}: 1500 outcome(s) accepted in 2 request(s)" in out
    new = [k for k in _stored(bucket) if k not in before]
    assert len(new) == 2 and sum(len(_lines(bucket, k)) for k in new) == 1500
