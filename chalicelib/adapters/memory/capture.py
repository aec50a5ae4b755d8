"""Capture in memory: a sink that keeps the lines, a source that reads them back (and the batch
shards' objects), a fixed hash key. One object plays every capture port, as one bucket would."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.capture import records as rec


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class MemoryCapture:
    """``CaptureSink``, ``CaptureSource``, ``BatchCaptureStore`` and ``CaptureKey`` in memory."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.lines: list[bytes] = []
        self.objects: dict[str, list[bytes]] = {}
        self.secret = secret or os.urandom(32)
        self._lock = threading.Lock()

    # CaptureSink
    def write(self, lines: Sequence[bytes | str]) -> None:
        with self._lock:
            self.lines += [line if isinstance(line, bytes) else line.encode() for line in lines]

    # BatchCaptureStore
    def put_shard(self, model: str, job_id: str, shard: int, moment: datetime, lines: Sequence[bytes]) -> str:
        key = rec.batch_key(model, job_id, shard, moment)
        with self._lock:
            self.objects.setdefault(key, list(lines))  # create-only
        return key

    # CaptureKey
    def key(self) -> bytes:
        return self.secret

    # CaptureSource
    def records(self, model: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        low, high = _utc(start), _utc(end)
        with self._lock:
            lines = list(self.lines) + [line for body in self.objects.values() for line in body]
        for line in lines:
            for record in rec.decode_line(line):
                if record.get("model") == model and low <= rec.parse_time(record["time"]) < high:
                    yield record
