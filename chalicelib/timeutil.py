"""Timestamps as the project stores them: ISO 8601 in UTC."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

# The local cloud's simulated clock: its demo moves time forward by hours to show hourly monitoring
# windows in minutes. Read on every call (a dict lookup); deployed functions never have it set.
CLOCK_OFFSET_ENV = "MLOPS_LOCAL_CLOCK_OFFSET_S"


def clock_offset() -> timedelta:
    """How far the local cloud has moved its clock on (zero everywhere else). Storage keeps its own
    time (S3's and Firehose's arrival times are not moved): a reader pruning by arrival adds this."""
    offset = os.environ.get(CLOCK_OFFSET_ENV)
    return timedelta(seconds=float(offset)) if offset else timedelta(0)


def utc_now() -> datetime:
    """Now, in UTC, as the monitor and the inference records see it (the local cloud may move it on)."""
    return datetime.now(UTC) + clock_offset()


def now_iso(timespec: str = "milliseconds") -> str:
    """Now, in UTC, as ISO 8601 (``2026-11-30T12:00:00.000+00:00``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones taken as UTC); None for None or ""."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_between(start: str | None, end: datetime) -> float | None:
    """Seconds from an ISO timestamp to ``end`` (None when there is no start)."""
    began = parse_iso(start)
    return None if began is None else (end - began).total_seconds()
