"""The sweep of the data bucket (``sweep_uploads``, hourly): every object put outside the prefixes
the system knows leaves an entry in the uploads ledger, status ``ignored``, with the reason.

The bucket notifies only ``incoming/``, ``outcomes/`` and ``batch/requests/``, so a file put at
``sales/day1.csv`` or ``day1.csv`` reaches no function; without the sweep it would sit there unseen.

    root listing (Delimiter '/') ──> root objects ───────────────┐
        │ top-level prefixes the system writes: skipped          ├──> not in the ledger yet ──> ledger: ignored
        └ any other prefix ──> all its keys (pages of 1000) ─────┘

* The object is never read, moved or deleted: only its key, ETag, size and time are listed.
* An entry is keyed like an upload (``upload_id_for(bucket, key, etag)``: the ETag stands for the
  version, a listing gives none) and written create-only, so a second sweep records nothing new,
  two sweeps at once record each object once, and an object overwritten with other bytes is
  recorded again (new ETag).
* A run records at most ``MAX_RECORDS`` new entries. The continuation is the ledger itself: each
  run lists from the start, skips what the ledger already holds (one scan of the ledger per run,
  no read per object), and records the next ``MAX_RECORDS``; so a burst of stray files is recorded
  over a few hourly runs, oldest keys first in key order. The result says ``more`` when it stopped
  at the bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from chalicelib.ingest.ports import BucketListing, ListedObject, Listing, UploadLedger
from chalicelib.ingest.uploads import INCOMING_PREFIX, Upload, upload_id_for

# Every top-level prefix of the data bucket the system notifies or writes (docs/ARCHITECTURE.md, the
# functions' policies in scripts/mlops/policies.py): objects there are someone's business already.
KNOWN_PREFIXES = frozenset(
    {
        INCOMING_PREFIX,  # uploads of data (notified; a key naming no dataset is recorded unroutable)
        "outcomes/",  # uploads of outcomes (notified)
        "batch/",  # batch requests (notified), plans and outputs
        "validated/",
        "quarantine/",
        "reports/",
        "profiles/",
        "contracts/",
        "manifests/",
        "capture/",
        "monitoring/",
        "audit/",
        "keys/",
    }
)
DELIMITER = "/"
MAX_RECORDS = 1000  # new entries a run writes at most (the next run goes on)
IGNORED = "ignored"
REASON = (
    f"not under {INCOMING_PREFIX}<dataset>/: the bucket notifies only {INCOMING_PREFIX}, outcomes/ and "
    "batch/requests/, so this object was never read (nor moved, nor deleted); put a data file under "
    f"{INCOMING_PREFIX}<dataset>/ (outcomes under outcomes/<dataset>/) to have it validated"
)


@dataclass(frozen=True)
class SweepPorts:
    ledger: UploadLedger
    listing: BucketListing


def sweep_uploads(ports: SweepPorts, bucket: str, now: str, *, limit: int = MAX_RECORDS) -> dict[str, Any]:
    """Record every object outside ``KNOWN_PREFIXES`` not recorded yet (at most ``limit`` of them).

    Returns how many stray objects were listed, the ids this run recorded, and whether it stopped
    at the bound (``more``: the next run records the rest).
    """
    recorded = {entry.upload_id for entry in ports.ledger.scan()}
    created: list[str] = []
    listed = 0
    more = False
    for listed_object in stray_objects(ports.listing, bucket):
        listed += 1
        upload_id = upload_id_for(bucket, listed_object.key, listed_object.etag)
        if upload_id in recorded:
            continue
        if len(created) >= limit:
            more = True
            break
        if ports.ledger.record(ignored_entry(bucket, listed_object, upload_id, now)):
            created.append(upload_id)
        recorded.add(upload_id)
    return {"listed": listed, "recorded": len(created), "upload_ids": created, "more": more}


def stray_objects(listing: BucketListing, bucket: str) -> Iterator[ListedObject]:
    """The objects at the root and under every top-level prefix not in ``KNOWN_PREFIXES``, page by
    page (lazily: a caller that stops early lists no further)."""
    unknown: list[str] = []
    for page in _pages(listing, bucket, "", DELIMITER):
        unknown.extend(p for p in page.prefixes if p not in KNOWN_PREFIXES)
        yield from page.objects
    for prefix in unknown:
        for page in _pages(listing, bucket, prefix, None):
            yield from page.objects


def _pages(listing: BucketListing, bucket: str, prefix: str, delimiter: str | None) -> Iterator[Listing]:
    token: str | None = None
    while True:
        page = listing.page(bucket, prefix, delimiter, token)
        yield page
        if page.token is None:
            return
        token = page.token


def ignored_entry(bucket: str, listed_object: ListedObject, upload_id: str, now: str) -> Upload:
    """The ledger entry of an object outside the known prefixes: its key, ETag, size and time, and why
    nothing read it."""
    modified = listed_object.last_modified
    return Upload(
        upload_id=upload_id,
        bucket=bucket,
        key=listed_object.key,
        dataset=None,
        version_id=None,
        etag=listed_object.etag,
        size=listed_object.size,
        sha256=None,  # never read
        event_time=modified.astimezone(UTC).isoformat(timespec="milliseconds") if modified else now,
        recorded_at=now,
        status=IGNORED,
        problem=REASON,
    )
