"""Timestamps as the project stores them: ISO 8601 in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


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
