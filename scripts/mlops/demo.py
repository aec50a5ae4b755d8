"""``mlops demo``: the end-to-end scenario on a fresh local cloud, one step at a time.

Each step prints what happened and checks it; the demo exits 0 only if every check held.
Today's scenario (the foundation): real data (scikit-learn's bundled breast-cancer dataset) is
uploaded as daily files; each upload travels S3 -> notification -> ingest queue -> event runtime
-> ``ingest_upload`` -> uploads ledger. Duplicate deliveries are absorbed, a badly placed file is
recorded with the reason, and the ledger is readable over the HTTP API.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from mlops.localcloud import PROJECT_DIR, LocalCloud, free_port

DATASET = "breast_cancer"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


class Demo:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def step(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        print(f"   [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok


def daily_files() -> dict[str, bytes]:
    """The breast-cancer dataset as three daily CSV uploads, with a row id and the target."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    rows = [
        [f"patient-{i:04d}", *(f"{v:.6g}" for v in x), int(y)]
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True))
    ]
    files = {}
    per_day = len(rows) // len(DAYS)
    for d, day in enumerate(DAYS):
        chunk = rows[d * per_day : (d + 1) * per_day if d < len(DAYS) - 1 else len(rows)]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["row_id", *names, "diagnosis"])
        writer.writerows(chunk)
        files[f"incoming/{DATASET}/{day}.csv"] = buf.getvalue().encode()
    return files


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def run_demo(verbose: bool = False) -> int:
    demo = Demo()
    log_path = PROJECT_DIR / ".mlops" / "demo-functions.log"
    log_path.parent.mkdir(exist_ok=True)
    log_path.write_text("")
    demo.step("Starting the local cloud (moto server, data-plane stack, API, event runtime)")
    cloud = LocalCloud(port=free_port(), api_port=free_port(), function_log=None if verbose else log_path)
    started = time.monotonic()
    with cloud:
        import boto3

        from chalicelib.ingest import UploadLedger, upload_id_for
        from chalicelib.settings import Settings

        settings = Settings.from_env()
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        ledger = UploadLedger(settings.uploads_table)
        print(f"   endpoint {cloud.endpoint}, API {cloud.api_url}, up in {time.monotonic() - started:.1f}s")
        print(f"   stack resources: {len(cloud.resources)}; data bucket s3://{settings.data_bucket}")
        demo.check(
            {"DataBucket", "ModelsBucket", "IngestQueue", "IngestDLQ", "UploadsTable", "IdempotencyTable"}
            <= set(cloud.resources),
            "the data-plane template deployed into moto",
        )

        demo.step(f"Uploading {len(DAYS)} daily files of real data (scikit-learn's breast-cancer set)")
        files = daily_files()
        expected: dict[str, tuple[str, str]] = {}
        for key, body in files.items():
            put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=body)
            version = put.get("VersionId") or put["ETag"].strip('"')
            expected[key] = (
                upload_id_for(settings.data_bucket, key, version),
                hashlib.sha256(body).hexdigest(),
            )
            print(
                f"   put s3://{settings.data_bucket}/{key} ({len(body):,} bytes, {body.count(b'\n') - 1} rows)"
            )

        demo.step("Each upload reaches ingest_upload through the queue and is recorded once")
        entries = wait_for(lambda: _all_recorded(ledger, expected))
        for key, (upload_id, sha) in expected.items():
            entry = ledger.get(upload_id)
            ok = entry is not None and entry.sha256 == sha and entry.status == "recorded"
            demo.check(ok, f"{key}: ledger {upload_id}, sha256 {sha[:12]}… matches the bytes uploaded")
        if not entries:
            demo.check(False, "all uploads recorded within 30 s")
        invocations = (
            [i for i in cloud.runtime.invocations if i.handler_name == "ingest_upload"]
            if cloud.runtime
            else []
        )
        print(
            f"   the event runtime invoked ingest_upload {len(invocations)} time(s) (S3 test event included)"
        )

        demo.step("At-least-once delivery: the same S3 notification delivered 3 more times")
        queue_url = sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"]
        key = next(iter(files))
        head = s3.head_object(Bucket=settings.data_bucket, Key=key)
        notification = _notification(settings.data_bucket, key, head)
        before = len(ledger.scan())
        for _ in range(3):
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(notification))
        drained = wait_for(lambda: _queue_empty(sqs, queue_url), timeout_s=20)
        demo.check(bool(drained), "the duplicates were consumed")
        demo.check(
            len(ledger.scan()) == before, f"the ledger still holds {before} entries: duplicates had no effect"
        )

        demo.step("A file outside incoming/<dataset>/ is recorded with the reason, not lost")
        stray = "incoming/forgot-the-dataset.csv"
        put = s3.put_object(Bucket=settings.data_bucket, Key=stray, Body=files[key])
        stray_id = upload_id_for(settings.data_bucket, stray, put.get("VersionId") or put["ETag"].strip('"'))
        entry = wait_for(lambda: ledger.get(stray_id))
        demo.check(
            entry is not None and entry.status == "unroutable", f"{stray}: status {entry and entry.status}"
        )
        if entry:
            print(f"   reason: {entry.problem}")

        demo.step("The ledger over the HTTP API (GET /uploads/{id})")
        upload_id = expected[key][0]
        with urllib.request.urlopen(f"{cloud.api_url}/uploads/{upload_id}", timeout=10) as response:
            body = json.loads(response.read())
        demo.check(
            body.get("key") == key,
            f"GET /uploads/{upload_id} -> {body.get('key')} ({body.get('size')} bytes)",
        )

        demo.step("Queues after the run")
        from mlops.status import queue_depths

        for name, visible, in_flight, dlq in queue_depths(sqs, settings.queues):
            print(f"   {name:<40} visible {visible}  in flight {in_flight}  DLQ {dlq}")
        demo.check(_queue_empty(sqs, queue_url), "nothing left in the ingest queue")

        if not verbose:
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            recorded = [line for line in lines if line.get("message") == "upload recorded"]
            if recorded:
                sample = {
                    k: recorded[0].get(k)
                    for k in ("level", "message", "handler", "function_name", "correlation_id", "upload_id")
                }
                print(
                    f"\n   structured log sample ({log_path.relative_to(PROJECT_DIR)}): {json.dumps(sample)}"
                )
            demo.check(
                bool(recorded) and all(r.get("correlation_id") for r in recorded),
                "functions log JSON with a correlation id",
            )

    print()
    if demo.failures:
        print(f"DEMO FAILED: {len(demo.failures)} check(s) did not hold:")
        for failure in demo.failures:
            print(f"  - {failure}")
        return 1
    print("DEMO OK: every step did what it should.")
    return 0


def _all_recorded(ledger: Any, expected: dict[str, tuple[str, str]]) -> bool:
    return all(ledger.get(upload_id) is not None for upload_id, _ in expected.values())


def _queue_empty(sqs: Any, url: str) -> bool:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return (
        attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def _notification(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    """The S3 ObjectCreated notification for an existing object, as S3 would (re)deliver it."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": head["LastModified"].isoformat(),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": head.get("VersionId"),
                    },
                },
            }
        ]
    }
