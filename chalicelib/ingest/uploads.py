"""What an upload is: pure functions over plain data, no AWS."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.settings import DATASET_NAME

INCOMING_PREFIX = "incoming/"
# Dataset names become S3 prefixes, table keys and model names: keep them simple.


def upload_id_for(bucket: str, key: str, version: str) -> str:
    """A stable id for one upload: the same object version always gets the same id.

    ``version`` is the S3 version id, or the ETag in an unversioned bucket.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return digest[:24]


def dataset_of(key: str) -> tuple[str | None, str | None]:
    """``incoming/<dataset>/<file>`` -> (dataset, None), or (None, why the key is unusable)."""
    if not key.startswith(INCOMING_PREFIX):
        return None, f"key {key!r} is not under {INCOMING_PREFIX}"
    parts = key[len(INCOMING_PREFIX) :].split("/")
    if len(parts) < 2 or not parts[-1]:
        return None, f"key {key!r} must look like {INCOMING_PREFIX}<dataset>/<file>"
    dataset = parts[0]
    if not DATASET_NAME.fullmatch(dataset):
        return None, (
            f"dataset name {dataset!r} in key {key!r} must be 1-63 lowercase letters, digits, '-' or '_'"
        )
    return dataset, None


@dataclass(frozen=True)
class Upload:
    """One entry of the uploads ledger."""

    upload_id: str
    bucket: str
    key: str
    dataset: str | None
    version_id: str | None
    etag: str
    size: int
    sha256: str | None
    event_time: str
    recorded_at: str
    # "valid", "invalid" (quarantined), "duplicate" (identical bytes seen before), "missing" (gone
    # before it could be read), "unroutable" (under incoming/ but naming no dataset) or "ignored"
    # (put outside the prefixes the system knows, found by the hourly sweep: chalicelib.ingest.sweep)
    status: str
    problem: str | None = None
    rows: int | None = None
    report_key: str | None = None
    output_key: str | None = None  # validated/... or quarantine/...
    issue_codes: list[str] | None = None
    drift: str | None = None  # "reference", "stable", "drifted" or "insufficient_data"
    duplicate_of: str | None = None
    # A valid upload's rows that no earlier upload holds (or that changed), and those that one does
    new_rows: int | None = None
    repeated_rows: int | None = None
    # A revocation (``chalicelib.revocation``): who took the upload out of training, when and why.
    # Recorded on a valid upload once; nothing is deleted.
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_item(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Upload:
        fields: dict[str, Any] = {k: item.get(k) for k in cls.__dataclass_fields__}
        fields["size"] = int(fields["size"] or 0)
        for name in ("rows", "new_rows", "repeated_rows"):
            if fields.get(name) is not None:
                fields[name] = int(fields[name])
        return cls(**fields)
