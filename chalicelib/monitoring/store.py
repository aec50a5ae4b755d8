"""Where the monitor keeps what it found, and the port it keeps it through.

In the stage's data bucket (KMS-encrypted, versioned), per model:

* ``monitoring/<model>/windows/<YYYYMMDDTHHMMZ>.json``: one report per window, named by its start.
  Rewritten when outcomes arriving later change its performance section (the bucket keeps every
  version);
* ``monitoring/<model>/audit/<YYYYMMDDTHHMMZ>-<kind>.json``: one record per sustained breach, named
  by the last window of the run, written create-only: the monitoring audit trail, which no role may
  rewrite or delete (as the registry's audit copies);
* ``monitoring/<model>/reference/v<version>.json``: the champion's predictions on its holdout, the
  reference of prediction drift, computed once per champion.

Reports hold statistics only: counts, rates, test results (no live input value; categories of
masked columns appear as their keyed hashes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

PREFIX = "monitoring/"
STAMP = "%Y%m%dT%H%MZ"


def stamp(moment: datetime) -> str:
    """A window's name: its start, UTC, to the minute (``20261201T1000Z``); names sort in time."""
    return moment.astimezone(UTC).strftime(STAMP)


def parse_stamp(text: str) -> datetime:
    """A window's name (``stamp``) or an ISO 8601 instant, as an aware datetime."""
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=UTC)
    except ValueError:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window_key(model: str, start: datetime) -> str:
    return f"{PREFIX}{model}/windows/{stamp(start)}.json"


def breach_key(model: str, last_window: datetime, kind: str) -> str:
    return f"{PREFIX}{model}/audit/{stamp(last_window)}-{kind}.json"


def reference_key(model: str, version: int) -> str:
    return f"{PREFIX}{model}/reference/v{int(version)}.json"


class MonitoringStore(Protocol):
    def put_window(self, model: str, report: dict[str, Any]) -> None:
        """Store (or replace) the report of the window starting at ``report["start"]``."""
        ...

    def windows(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The reports of the windows starting in ``[start, end)``, oldest first."""
        ...

    def add_breach(self, model: str, breach: dict[str, Any]) -> bool:
        """Record a sustained breach (``breach["windows"][-1]`` and ``["kind"]`` name it), create-only:
        False when it was recorded already (a retried or overlapping run)."""
        ...

    def breaches(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The breaches whose last window starts in ``[start, end)``, oldest first."""
        ...

    def reference(self, model: str, version: int) -> dict[str, Any] | None: ...

    def put_reference(self, model: str, version: int, doc: dict[str, Any]) -> None: ...
