"""What capture needs from outside: where lines go, where records are read back, the hash key.

AWS adapters: ``chalicelib.adapters.aws.capture`` (stdout -> CloudWatch Logs -> Firehose -> S3; S3
objects read back; an SSM SecureString key). In memory: ``chalicelib.adapters.memory.capture``. One
contract suite per port (tests/adapters/test_capture_contract.py) runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol


class CaptureSink(Protocol):
    """Where capture lines go (``chalicelib.capture.records.encode_lines``)."""

    def write(self, lines: Sequence[bytes | str]) -> None:
        """Hand the lines on; asynchronous to the caller where it can be. Never raises for a line."""
        ...


class CaptureSource(Protocol):
    """Captured inference records, read back by the monitor."""

    def records(self, model: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Every captured record of the model with ``start <= time < end`` (all roles, all versions)."""
        ...


class BatchCaptureStore(Protocol):
    """Where a batch worker leaves a shard's capture lines (one object per job and shard)."""

    def put_shard(self, model: str, job_id: str, shard: int, moment: datetime, lines: Sequence[bytes]) -> str:
        """Write the shard's lines create-only; the same job and shard always name the same key, so a
        retried shard writes nothing new. Returns the key."""
        ...


class CaptureKey(Protocol):
    """The stage's secret for keyed hashes of confidential inputs (never logged, never captured)."""

    def key(self) -> bytes:
        """The key (created on first use if the stage has none yet)."""
        ...
