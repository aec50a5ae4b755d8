"""Batch on the AWS adapters (in-process moto): a dead-lettered shard ends its job PARTIAL, the work
queue's DLQ, the worker's create-only part write and visibility extension; and the spot watcher
against a fake IMDSv2 on 127.0.0.1. (The planning and scoring rules: tests/unit/test_batch.py.)"""

from __future__ import annotations

import json
from typing import Any

import boto3
from scoring.worker import SpotWatcher, VisibilityExtender, write_part

from chalicelib import bootstrap
from chalicelib.batch.jobs import RUNNING
from chalicelib.batch.ports import BatchPorts
from chalicelib.batch.service import shard_dead_lettered
from chalicelib.settings import dlq_name
from tests.support import FakeMetadata, wait_until


def _ports() -> BatchPorts:
    ports = bootstrap.batch_ports()
    ports.jobs.create({"job_id": "j1", "status": RUNNING, "model": "m", "version": 1, "total_shards": 2,
                       "output_prefix": "batch/output/j1/", "running_at": "2026-11-23T00:00:00+00:00"})  # fmt: skip
    return ports


def _part(i: int) -> dict[str, Any]:
    return {"key": f"batch/output/j1/part-{i:05d}.csv", "rows": 10 + i, "bytes": 100, "sha256": "ab" * 32}


def test_a_dead_lettered_shard_ends_the_job_partial_with_the_shard_named(aws, atomic_writes):
    ports = _ports()
    ports.jobs.mark_done("j1", 0, _part(0))
    ports.jobs.record_error("j1", 1, "ConnectionError: the bucket went away", "w1")
    body = json.dumps(
        {"job_id": "j1", "shard": {"index": 1, "key": "in/a.csv", "version_id": None, "start": 10, "end": 99}}
    )
    outcome = shard_dead_lettered(ports, body)
    assert outcome["counted"] and outcome["finished"] == "PARTIAL"
    job = ports.jobs.get("j1")
    assert job["status"] == "PARTIAL" and job["failed_shards"] == [1]
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=aws.data_bucket, Key=job["manifest_key"])["Body"].read()
    )
    assert (
        manifest["failed_shards"][0]["index"] == 1
        and "bucket went away" in manifest["failed_shards"][0]["reason"]
    )
    assert not manifest["complete"]


def test_the_work_queue_dead_letters_to_the_queue_batch_shard_failed_reads(aws):
    from app import app

    handlers = {name for name in app.handler_map}
    assert {"plan_batch_job", "batch_shard_failed"} <= handlers
    assert dlq_name(aws.batch_work_queue).endswith("-batch-work-dlq")


def test_part_is_written_create_only_and_a_second_writer_acknowledges_the_first(aws):
    from scoring.engine import ShardOutput

    first = ShardOutput(b"h\n1\n2\n", 2, "aa" * 32)
    second = ShardOutput(b"h\n1\n2\n", 2, "aa" * 32)
    one = write_part(aws.data_bucket, "batch/output/j/part-00000.csv", first, "j")
    two = write_part(aws.data_bucket, "batch/output/j/part-00000.csv", second, "j")
    assert one["written"] and not two["written"]
    assert (two["rows"], two["sha256"], two["bytes"]) == (2, "aa" * 32, 6)


class _LookingAfterEachExtension:
    """The SQS client for the extender, looking at the queue right after each extension it makes:
    is the message receivable (back on the queue)? What it saw is recorded, in order."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.seen: list[list[Any]] = []

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.sqs.change_message_visibility(**kwargs)
        self.seen.append(self.sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=0).get("Messages", []))


def test_visibility_is_extended_while_a_shard_is_worked_on(aws):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.batch_work_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    message = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"][0]
    looking = _LookingAfterEachExtension(sqs, url)
    # An extension every third of the timeout: after the fourth, the first 2 s are long past, and the
    # message was never back. Waits on the extensions made, not on the clock (the timeout only guards).
    with VisibilityExtender(looking, url, message["ReceiptHandle"], 2) as extender:
        assert wait_until(lambda: extender.extensions >= 4)
    assert looking.seen[:4] == [[], [], [], []]


def test_spot_watcher_reads_the_notice_through_imdsv2():
    metadata = FakeMetadata()
    try:
        watcher = SpotWatcher(metadata.url, interval_s=0.1)
        assert watcher.check() is None  # 404: no notice
        metadata.notice()
        notice = watcher.check()
        assert notice is not None and notice["action"] == "terminate" and watcher.noticed.is_set()
        assert 100 < watcher.seconds_left() <= 121
    finally:
        metadata.close()
    assert SpotWatcher("", interval_s=0.1).check() is None  # no endpoint: never a notice
