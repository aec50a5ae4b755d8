"""The batch services on the AWS adapters the entry points wire (``bootstrap.batch_ports``), on
in-process moto: a submitted job is planned into S3, its shards land on the work queue, its record in
DynamoDB. The logic itself is tested on memory (tests/service/test_batch_service.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3

from chalicelib import bootstrap
from chalicelib.adapters.memory.batch_launcher import RecordingLauncher
from chalicelib.batch import service
from chalicelib.batch.jobs import RUNNING
from chalicelib.validation import Contract


class Champion:
    """A registry whose only model has version 1 as its champion."""

    def champion(self, model: str) -> int | None:
        return 1

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        return {"status": "champion", "family": "logistic_regression", "artifacts": {}} if v == 1 else None


def test_a_submitted_job_is_planned_queued_and_recorded_on_aws(aws, atomic_writes):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    body = b"id,a\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(600))
    s3.put_object(Bucket=aws.data_bucket, Key="batch/input/w/a.csv", Body=body)
    launcher = RecordingLauncher()
    ports = replace(bootstrap.batch_ports(), registry=Champion(), launcher=launcher)
    # The model's contract says which columns are pii (left out of the outputs): every model has one.
    ports.contracts.put(  # type: ignore[union-attr]
        Contract.parse(
            {
                "dataset": "m",
                "columns": [
                    {"name": "id", "type": "integer", "classification": "public"},
                    {"name": "a", "type": "integer", "classification": "public"},
                ],
                "target": "a",
                "task": "regression",
            }
        )
    )

    job = service.submit(
        ports, {"model": "m", "input_prefix": "batch/input/w/", "shard_bytes": 1024}, "alice"
    )
    request = s3.get_object(Bucket=aws.data_bucket, Key=job["request_key"])
    planned = service.plan_request(ports, job["request_key"], request.get("VersionId"))

    stored = service.get(bootstrap.batch_jobs(), job["job_id"])
    assert (stored["include_pii"], stored["pii_dropped"]) == ([], [])
    assert stored["status"] == RUNNING and stored["total_shards"] == planned["shards"] > 2
    plan = json.loads(s3.get_object(Bucket=aws.data_bucket, Key=stored["plan_key"])["Body"].read())
    assert [s["index"] for s in plan["shards"]] == list(range(planned["shards"]))
    url = sqs.get_queue_url(QueueName=aws.batch_work_queue)["QueueUrl"]
    indexes: list[int] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        indexes += [json.loads(m["Body"])["shard"]["index"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(indexes) == list(range(planned["shards"]))
    assert launcher.started == [(job["job_id"], planned["workers"])]


def test_the_wiring_builds_each_batch_adapter_once_per_process(aws, monkeypatch):
    monkeypatch.setenv("JOB_BACKEND", "local")
    bootstrap.reset()
    first, second = bootstrap.batch_ports(), bootstrap.batch_ports()
    assert first.jobs is second.jobs and first.files is second.files and first.queue is second.queue
    assert type(first.launcher).__name__ == "LocalWorkerLauncher"
    assert first.bucket == aws.data_bucket and first.max_workers == 4
