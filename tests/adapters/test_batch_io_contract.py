"""The contracts of batch inference's S3 and SQS ports (input objects, the jobs' JSON files, the work
queue), held by both implementations: in memory and on moto."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from chalicelib.adapters.aws.batch_io import S3Inputs, S3JobFiles, SqsShardQueue
from chalicelib.adapters.memory.batch_io import MemoryInputs, MemoryJobFiles, MemoryShardQueue
from chalicelib.batch.ports import InputReader, JobFiles, ShardQueue
from chalicelib.batch.sharding import InputObject


@pytest.fixture
def prefix() -> str:
    """A fresh prefix per test: the moto bucket is shared by the module's tests."""
    return f"batch/input/{uuid.uuid4().hex[:8]}/"


@dataclass
class Bucket:
    """A port on one back end, and how to write an object there without conditions (a person's upload)."""

    port: Any
    put: Callable[[str, bytes], str]


def _s3_put(bucket: str) -> Callable[[str, bytes], str]:
    def put(key: str, body: bytes) -> str:
        return str(boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body).get("VersionId"))

    return put


@pytest.fixture(params=["memory", "moto"])
def inputs(request: pytest.FixtureRequest) -> Bucket:
    if request.param == "memory":
        memory = MemoryInputs()
        return Bucket(memory, memory.put)
    bucket = request.getfixturevalue("aws_module").data_bucket
    return Bucket(S3Inputs(bucket), _s3_put(bucket))


@pytest.fixture(params=["memory", "moto"])
def files(request: pytest.FixtureRequest) -> Bucket:
    if request.param == "memory":
        memory = MemoryJobFiles()
        return Bucket(memory, memory.put)
    bucket = request.getfixturevalue("aws_module").data_bucket
    return Bucket(S3JobFiles(bucket), _s3_put(bucket))


# --- input objects --------------------------------------------------------------------------------


def test_inputs_list_the_latest_version_of_each_object_under_the_prefix(inputs: Bucket, prefix: str):
    reader: InputReader = inputs.port
    assert reader.exists(prefix) is False and reader.objects(prefix) == []
    inputs.put(f"{prefix}b.csv", b"id\n1\n")
    inputs.put(f"{prefix}a.csv", b"id\n1\n")
    latest = inputs.put(f"{prefix}a.csv", b"id\n1\n2\n")
    inputs.put(f"{prefix}sub/", b"")  # a folder marker
    inputs.put(f"{prefix}sub/c.csv.gz", b"\x1f\x8b")
    inputs.put(f"{prefix[:-1]}-other/d.csv", b"id\n")
    assert reader.exists(prefix) is True
    objects = sorted(reader.objects(prefix), key=lambda o: o.key)
    assert [(o.key, o.size) for o in objects] == [
        (f"{prefix}a.csv", 7),
        (f"{prefix}b.csv", 5),
        (f"{prefix}sub/c.csv.gz", 2),
    ]
    assert objects[0].version_id == latest


def test_inputs_read_byte_ranges_of_the_listed_version(inputs: Bucket, prefix: str):
    reader: InputReader = inputs.port
    inputs.put(f"{prefix}a.csv", b"id,x\n1,2\n3,4\n")
    [listed] = reader.objects(prefix)
    inputs.put(f"{prefix}a.csv", b"id,x\n9,9\n")  # a newer version: the plan keeps reading the listed one
    assert reader.read(listed, 0, 5) == b"id,x\n"
    assert reader.read(listed, 5, 4) == b"1,2\n"
    assert reader.read(listed, 9, 1000) == b"3,4\n"  # a range past the end stops at the end
    assert reader.read(InputObject(listed.key, 10, None), 5, 4) == b"9,9\n"  # no version: the latest


# --- the jobs' JSON files -------------------------------------------------------------------------


def test_files_are_written_create_only(files: Bucket, prefix: str):
    port: JobFiles = files.port
    key = f"{prefix}plan.json"
    assert port.read(key) is None
    assert port.create(key, b'{"first": true}') is True
    assert port.create(key, b'{"second": true}') is False
    assert json.loads(port.read(key) or b"") == {"first": True}


def test_files_read_the_version_asked_for(files: Bucket, prefix: str):
    port: JobFiles = files.port
    key = f"{prefix}request.json"
    first = files.put(key, b'{"v": 1}')
    files.put(key, b'{"v": 2}')
    assert port.read(key, first) == b'{"v": 1}'
    assert port.read(key) == b'{"v": 2}'
    assert port.read(f"{prefix}missing.json", None) is None


# --- the work queue -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "moto"])
def queue(request: pytest.FixtureRequest) -> tuple[ShardQueue, Callable[[], list[dict[str, Any]]]]:
    """A queue and what a receiver gets from it (every message sent, as JSON)."""
    if request.param == "memory":
        memory = MemoryShardQueue()
        return memory, lambda: memory.messages
    request.getfixturevalue("aws_module")
    sqs = boto3.client("sqs")
    name = f"work-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]

    def received() -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return bodies

    return SqsShardQueue(name), received


def test_every_message_sent_is_received_once(queue):
    port, received = queue
    messages = [{"job_id": "j", "shard": {"index": i, "key": "in/a.csv"}} for i in range(23)]
    port.send(messages)
    port.send([])
    got = received()
    assert sorted(got, key=lambda m: m["shard"]["index"]) == messages
