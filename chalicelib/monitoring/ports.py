"""What the monitoring stage needs from the outside. AWS implementations live in
``chalicelib.adapters.aws``, in-memory ones in ``chalicelib.adapters.memory``; one contract suite per
port (tests/adapters) runs against both."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from chalicelib.monitoring.outcomes import Outcome


class OutcomeStore(Protocol):
    """Accepted outcomes, kept create-only (``monitoring/<model>/outcomes/<YYYY-MM-DD>/...``)."""

    def add(
        self, model: str, outcomes: Sequence[Outcome], source: str, *, classification: str = "confidential"
    ) -> str:
        """Store the outcomes (one source, one receiving time) as one create-only object tagged with
        ``classification`` (what the retention rules key on; unknown: ``confidential``, as for every
        object of a dataset without a usable contract); returns its
        key. The key derives from the source and the outcomes' receiving time
        (``outcomes.outcomes_key``): adding the same source again stores nothing and returns the same
        key. Raises ValueError for no outcomes, or outcomes of another model or time."""
        ...

    def received(self, model: str, start: datetime, end: datetime) -> Iterator[Outcome]:
        """Every stored outcome of the model with start <= received_at < end, oldest first."""
        ...

    def arrivals(self, model: str, start: datetime, end: datetime) -> list[datetime]:
        """When outcomes of the model were received in [start, end), oldest first: one time per
        stored object, read from the keys (no object is read: the monitor asks this every run)."""
        ...
