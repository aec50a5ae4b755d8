"""Accepted outcomes on S3 (the data bucket, ``monitoring/<model>/outcomes/``): create-only JSON-lines
objects, tagged like every data object so the retention rules apply."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags as tag_set
from chalicelib.monitoring import outcomes as layout
from chalicelib.monitoring.outcomes import Outcome


class S3OutcomeStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def add(
        self, model: str, outcomes: Sequence[Outcome], source: str, *, classification: str = "confidential"
    ) -> str:
        key, body = layout.stored_object(model, outcomes, source)
        # False: the source was stored before (a retried event); its object stands as written.
        aws.put_if_absent(
            self.bucket,
            key,
            body,
            ContentType="application/x-ndjson",
            Tagging=tag_set(model, classification, "outcomes"),
        )
        return key

    def arrivals(self, model: str, start: datetime, end: datetime) -> list[datetime]:
        keys = layout.keys_between(model, start, end, self._keys)
        return [moment for moment in map(layout.received_of_key, keys) if moment is not None]

    def received(self, model: str, start: datetime, end: datetime) -> Iterator[Outcome]:
        for key in layout.keys_between(model, start, end, self._keys):
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
            yield from layout.decode_lines(body)

    def _keys(self, prefix: str) -> list[str]:
        pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]
