"""Capture on AWS: lines to stdout (Lambda -> CloudWatch Logs -> subscription -> Firehose -> S3),
batch shards' objects and the reader in the data bucket, the hash key in SSM Parameter Store.

Where records land (docs/capture.md): ``capture/live/`` (Firehose; on AWS dynamically partitioned
``model=<m>/date=<YYYY-MM-DD>/hour=<HH>/`` holding plain capture lines; moto writes the gzip CloudWatch
Logs envelopes under the literal prefix followed by its own ``YYYY/MM/DD/HH/`` arrival time) and
``capture/batch/model=<m>/date=<d>/hour=<h>/<job>-<shard>.jsonl.gz`` (the workers). ``S3CaptureSource``
reads every layout: gzip or not, envelope or lines.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.capture import records as rec
from chalicelib.settings import Settings
from chalicelib.timeutil import clock_offset

# A batch object is partitioned by its job's submission time; its rows are scored later.
BATCH_LOOKBACK = timedelta(hours=24)
# Firehose buffers up to 15 minutes, CloudWatch Logs delivery adds a few: an object's arrival-time
# partition may be later than its records' time by this much.
ARRIVAL_LAG = timedelta(hours=1)
_PART = re.compile(r"(?:^|/)(model|date|hour)=([^/]*)")
_ARRIVAL = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/")
_SECRET_BYTES = 32
CAPTURE_KEY_OBJECT = "keys/capture-hash.key"


class StdoutCaptureSink:
    """Prints capture lines to stdout, one write and one flush per call (Lambda's runtime ships
    stdout to the function's log group; the subscription filter picks out ``mlops_capture`` lines).
    Never through the Powertools logger: the line must be the log event's whole message."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # lines of concurrent requests (the local cloud) never interleave

    def _fd(self, stream: Any) -> int | None:
        try:
            return int(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return None  # a stream without a descriptor (pytest's capture): written through Python

    def write(self, lines: Sequence[bytes | str]) -> None:
        if not lines:
            return
        data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
        stream = self._stream or sys.stdout
        fd = self._fd(stream)
        with self._lock:
            if fd is not None:
                # One write(2) of whole lines: the cheapest way out (no Python buffering layers);
                # Powertools and print() write whole lines too, so lines never mix.
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                return
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()  # text already written first
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode())
                stream.flush()


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def key_may_hold(key: str, model: str, start: datetime, end: datetime, lookback: timedelta) -> bool:
    """Whether an object's key allows records of ``model`` in [start, end): its ``model=``, ``date=``
    and ``hour=`` partitions (when literal), or Firehose's arrival-time ``YYYY/MM/DD/HH``."""
    parts = dict(_PART.findall(key))
    named = parts.get("model")
    if named is not None and not named.startswith("!{") and named != model:
        return False
    low, high = _utc(start) - lookback, _utc(end)
    date, hour = parts.get("date"), parts.get("hour")
    if date and hour and date[:1].isdigit() and hour.isdigit():
        try:
            begins = datetime.strptime(f"{date} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        except ValueError:
            return True
        return begins + timedelta(hours=1) > low and begins < high
    arrival = _ARRIVAL.search(key)
    if arrival:
        year, month, day, hour_of_day = (int(g) for g in arrival.groups())
        if clock_offset():
            # The local cloud moved its clock on: arrival times (the storage's own clock) say
            # nothing about the records' times any more.
            return True
        begins = datetime(year, month, day, hour_of_day, tzinfo=UTC)
        # Arrival is after the records' time: an hour wholly before start holds none.
        return begins + timedelta(hours=1) > low and begins < high + ARRIVAL_LAG
    return True


def object_records(body: bytes) -> Iterator[dict[str, Any]]:
    """The records of a capture object: gzip or not; CloudWatch Logs envelopes (concatenated JSON
    documents, as Firehose writes them) or capture lines."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode("utf-8", "replace")
    if '"logEvents"' not in text:
        yield from rec.decode_lines(text)
        return
    decoder = json.JSONDecoder()
    at = 0
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        try:
            doc, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return
        if isinstance(doc, dict) and doc.get("messageType") == "DATA_MESSAGE":
            for event in doc.get("logEvents") or []:
                yield from rec.decode_lines(str(event.get("message", "")))
        elif isinstance(doc, dict) and rec.CAPTURE_MARK in doc:
            yield from rec.decode_lines(json.dumps(doc))


class S3CaptureSource:
    """Captured records in the data bucket (``CaptureSource``)."""

    def __init__(self, bucket: str, batch_lookback: timedelta = BATCH_LOOKBACK) -> None:
        self.bucket = bucket
        self.batch_lookback = batch_lookback

    def _keys(self, prefix: str) -> Iterator[str]:
        pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

    def _top(self, root: str) -> list[str]:
        pages = (
            aws.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=root, Delimiter="/")
        )
        found: list[str] = []
        for page in pages:
            found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def _candidates(
        self, root: str, model: str, start: datetime, end: datetime, back: timedelta
    ) -> Iterator[str]:
        partitioned = f"{root}model={model}/"
        for top in self._top(root):
            if not top.endswith("/"):
                yield top
            elif top == partitioned:  # narrowed to the days of the range
                day = (_utc(start) - back).date()
                while day <= _utc(end).date():
                    yield from self._keys(f"{partitioned}date={day:%Y-%m-%d}/")
                    day += timedelta(days=1)
            elif not top.startswith(f"{root}model=") or top.startswith(f"{root}model=!{{"):
                yield from self._keys(top)  # another layout (moto's literal prefix): filtered by key

    def records(self, model: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        low, high = _utc(start), _utc(end)
        for root, back in ((rec.LIVE_ROOT, timedelta(0)), (rec.BATCH_ROOT, self.batch_lookback)):
            for key in self._candidates(root, model, low, high, back):
                if not key_may_hold(key, model, low, high, back):
                    continue
                body = aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
                for record in object_records(body):
                    if record.get("model") != model:
                        continue
                    try:
                        moment = rec.parse_time(str(record.get("time")))
                    except ValueError:
                        continue
                    if low <= moment < high:
                        yield record


class S3BatchCaptureStore:
    """Batch shards' capture objects, create-only, gzip JSON lines (``BatchCaptureStore``)."""

    def __init__(self, bucket: str, tags: str | None = None) -> None:
        self.bucket = bucket
        self.tags = tags

    def put_shard(self, model: str, job_id: str, shard: int, moment: datetime, lines: Sequence[bytes]) -> str:
        key = rec.batch_key(model, job_id, shard, moment)
        body = gzip.compress(rec.object_body(lines), compresslevel=6, mtime=0)
        extra: dict[str, Any] = {"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"}
        if self.tags:
            extra["Tagging"] = self.tags
        aws.put_if_absent(self.bucket, key, body, **extra)  # a retried shard: already there, same rows
        return key


class S3CaptureKey:
    """The stage's hash key: 32 random bytes in the data bucket at ``keys/capture-hash.key``
    (encrypted with the stage's KMS key, as every object there; no tag, so no retention rule expires
    it), read once per container. Created by the first function or worker that needs it, create-only
    (``If-None-Match: *``): two containers racing both end up with the one that was stored. In S3
    rather than SSM because the batch workers reach S3 from their private subnets through the free
    gateway endpoint, and SSM only through an interface endpoint (about $15 a month)."""

    def __init__(self, bucket: str, key: str = CAPTURE_KEY_OBJECT) -> None:
        self.bucket = bucket
        self.object_key = key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> S3CaptureKey:
        return cls(settings.data_bucket)

    def _read(self) -> bytes | None:
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=self.object_key)["Body"].read()
        except ClientError as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise
        return bytes(body)

    def key(self) -> bytes:
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is None:
                found = self._read()
                if found is None:
                    aws.put_if_absent(self.bucket, self.object_key, os.urandom(_SECRET_BYTES))
                    found = self._read()
                if not found:
                    raise RuntimeError(
                        f"the capture key s3://{self.bucket}/{self.object_key} could not be read back"
                    )
                self._key = found
        return self._key
