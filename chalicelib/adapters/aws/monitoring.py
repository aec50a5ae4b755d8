"""The monitor's store in the data bucket (``chalicelib.monitoring.store`` has the layout).

Breach records are written create-only (``put_if_absent``; the monitor's policy allows PutObject
under ``monitoring/*/audit/`` only with ``s3:if-none-match``). Every object is tagged like the data
plane's others (dataset, classification ``internal``: statistics, no live value), so the bucket's
retention by classification applies.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags
from chalicelib.monitoring.store import PREFIX, breach_key, parse_stamp, reference_key, stamp, window_key

CLASSIFICATION = "internal"


def _body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


class S3MonitoringStore:
    def __init__(self, bucket: str, stage: str) -> None:
        self.bucket = bucket
        self.stage = stage

    def _put(self, model: str, key: str, doc: dict[str, Any]) -> None:
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=_body(doc),
            ContentType="application/json",
            Tagging=tags(model, CLASSIFICATION, self.stage),
        )

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise
        doc: dict[str, Any] = json.loads(body)
        return doc

    def _between(self, folder: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        s3 = aws.client("s3")
        low, high = stamp(start), stamp(end)
        found: list[dict[str, Any]] = []
        # Keys sort by time: start listing just before the first window wanted, stop past the last.
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder, StartAfter=f"{folder}{low[:-1]}"
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(folder) :][: len(low)]
                if name >= high:
                    return found
                if name >= low:
                    doc = self._get(item["Key"])
                    if doc is not None:
                        found.append(doc)
        return found

    def put_window(self, model: str, report: dict[str, Any]) -> None:
        self._put(model, window_key(model, parse_stamp(report["window"])), report)

    def windows(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._between(f"{PREFIX}{model}/windows/", start, end)

    def add_breach(self, model: str, breach: dict[str, Any]) -> bool:
        return aws.put_if_absent(
            self.bucket,
            breach_key(model, parse_stamp(breach["windows"][-1]), breach["kind"]),
            _body(breach),
            ContentType="application/json",
            Tagging=tags(model, CLASSIFICATION, self.stage),
        )

    def breaches(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._between(f"{PREFIX}{model}/audit/", start, end)

    def reference(self, model: str, version: int) -> dict[str, Any] | None:
        return self._get(reference_key(model, version))

    def put_reference(self, model: str, version: int, doc: dict[str, Any]) -> None:
        self._put(model, reference_key(model, version), doc)
