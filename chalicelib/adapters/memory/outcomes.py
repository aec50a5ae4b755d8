"""Accepted outcomes in memory (a ``MemoryObjects`` bucket, shared with the uploads)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.monitoring import outcomes as layout
from chalicelib.monitoring.outcomes import Outcome


class MemoryOutcomeStore:
    def __init__(self, objects: MemoryObjects | None = None, bucket: str = "data") -> None:
        self.objects = objects or MemoryObjects()
        self.bucket = bucket

    def add(
        self, model: str, outcomes: Sequence[Outcome], source: str, *, classification: str = "confidential"
    ) -> str:
        key, body = layout.stored_object(model, outcomes, source)
        tags = {"dataset": model, "classification": classification, "stage": "outcomes"}
        self.objects.put(
            self.bucket, key, body, content_type="application/x-ndjson", tags=tags, if_absent=True
        )
        return key

    def arrivals(self, model: str, start: datetime, end: datetime) -> list[datetime]:
        keys = layout.keys_between(model, start, end, lambda p: self.objects.keys(self.bucket, p))
        return [moment for moment in map(layout.received_of_key, keys) if moment is not None]

    def received(self, model: str, start: datetime, end: datetime) -> Iterator[Outcome]:
        for key in layout.keys_between(model, start, end, lambda p: self.objects.keys(self.bucket, p)):
            stored = self.objects.get(self.bucket, key)
            if stored is not None:
                yield from layout.decode_lines(stored.body)
