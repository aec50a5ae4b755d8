"""The capture source (and the batch capture store): one suite, run in memory and on S3 (moto).

On moto the live records are written as objects in both layouts the reader must take: Firehose's
dynamically partitioned plain lines (AWS) and moto's gzip CloudWatch Logs envelopes under the
literal prefix with its arrival-time folders."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory.capture import MemoryCapture
from chalicelib.capture import records as rec
from chalicelib.capture.ports import BatchCaptureStore, CaptureSource

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
Writer = Callable[[Sequence[bytes], datetime], None]


def _moto_live_writer(s3: Any, bucket: str) -> Writer:
    count = iter(range(10**6))

    def write(lines: Sequence[bytes], moment: datetime) -> None:
        n = next(count)
        if n % 2 == 0:  # AWS: partitioned by the record's model/date/hour, plain lines
            model = rec.decode_line(lines[0])[0]["model"]
            key = f"{rec.LIVE_ROOT}{rec.partition(model, moment)}capture-{n}.gz"
            s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(rec.object_body(lines)))
        else:  # moto: gzip CWL envelopes (concatenated), literal prefix + arrival-time folders
            arrival = moment + timedelta(minutes=3)
            envelope = {
                "messageType": "DATA_MESSAGE",
                "logGroup": "/aws/lambda/api",
                "logEvents": [
                    {"id": str(i), "timestamp": 0, "message": line.decode()} for i, line in enumerate(lines)
                ],
            }
            body = (
                json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": []}) + json.dumps(envelope)
            ).encode()
            key = (
                f"{rec.LIVE_ROOT}model=!{{partitionKeyFromQuery:model}}/date=!{{timestamp:yyyy-MM-dd}}/"
                f"{arrival:%Y/%m/%d/%H}/stream-1-{arrival:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
            )
            s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))

    return write


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[CaptureSource, BatchCaptureStore, Writer]:
    if request.param == "memory":
        memory = MemoryCapture()
        return memory, memory, lambda lines, _moment: memory.write(lines)
    import boto3

    from chalicelib.adapters.aws.capture import S3BatchCaptureStore, S3CaptureSource

    settings = request.getfixturevalue("aws_module")
    bucket = settings.data_bucket
    return S3CaptureSource(bucket), S3BatchCaptureStore(bucket), _moto_live_writer(boto3.client("s3"), bucket)


@pytest.fixture
def model() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


def lines_at(model: str, moment: datetime, n: int = 2, role: str = "champion", **kw: Any) -> list[bytes]:
    records = [
        rec.inference_record(
            request_id=kw.get("request_id", uuid.uuid4().hex),
            index=i,
            model=model,
            version=kw.get("version", 1),
            role=role,
            time=rec.timestamp(moment),
            latency_ms=1.0,
            inputs={"x": i},
            prediction=1,
            row_id=kw.get("row_id"),
            job_id=kw.get("job_id"),
        )
        for i in range(n)
    ]
    return rec.encode_lines(records)


def test_records_of_the_range_are_read_back_start_inclusive_end_exclusive(backend: Any, model: str) -> None:
    source, _, write = backend
    for minutes, role in (
        (-1, "champion"),
        (0, "champion"),
        (30, "shadow"),
        (59, "pinned"),
        (60, "champion"),
    ):
        moment = T0 + timedelta(minutes=minutes, milliseconds=0 if minutes != 59 else 999)
        write(lines_at(model, moment, role=role, version=2 if role == "pinned" else 1), moment)
    found = list(source.records(model, T0, T0 + timedelta(hours=1)))
    assert len(found) == 6
    assert {r["role"] for r in found} == {"champion", "shadow", "pinned"}
    assert {r["version"] for r in found} == {1, 2}
    assert all(T0 <= rec.parse_time(r["time"]) < T0 + timedelta(hours=1) for r in found)
    for record in found:
        rec.check_record(record)


def test_another_models_records_are_not_read(backend: Any, model: str) -> None:
    source, _, write = backend
    write(lines_at(model + "x", T0), T0)
    write(lines_at(model, T0, n=1), T0)
    assert [r["model"] for r in source.records(model, T0, T0 + timedelta(hours=1))] == [model]


def test_a_request_split_over_lines_is_read_back_whole(backend: Any, model: str) -> None:
    source, _, write = backend
    records = [
        rec.inference_record(
            request_id="r" * 32, index=i, model=model, version=1, role="champion", time=rec.timestamp(T0),
            latency_ms=1.0, inputs={"text": "y" * 50_000},
        )
        for i in range(9)
    ]  # fmt: skip
    lines = rec.encode_lines(records)
    assert len(lines) > 1
    write(lines, T0)
    found = sorted(source.records(model, T0, T0 + timedelta(minutes=1)), key=lambda r: r["index"])
    assert found == records


def test_a_batch_shard_is_read_back_and_a_retried_shard_adds_nothing(backend: Any, model: str) -> None:
    source, store, _ = backend
    job_time = T0 - timedelta(hours=2)  # scored two hours after the job was submitted
    lines = lines_at(model, T0 + timedelta(minutes=5), n=3, role="batch", job_id="job1", row_id="r-1")
    key = store.put_shard(model, "job1", 4, job_time, lines)
    again = store.put_shard(model, "job1", 4, job_time, lines_at(model, T0, n=5, role="batch", job_id="job1"))
    assert key == again == rec.batch_key(model, "job1", 4, job_time)
    found = list(source.records(model, T0, T0 + timedelta(hours=1)))
    assert len(found) == 3 and {r["job_id"] for r in found} == {"job1"} and found[0]["role"] == "batch"


def test_nothing_captured_reads_as_nothing(backend: Any, model: str) -> None:
    source, _, _ = backend
    assert list(source.records(model, T0, T0 + timedelta(hours=1))) == []
