"""What the ingest stage needs from the outside: the uploaded bytes and the uploads ledger.

AWS implementations live in ``chalicelib.adapters.aws``, in-memory ones in
``chalicelib.adapters.memory``; one contract suite per port (tests/adapters) runs against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.ingest.uploads import Upload


class Body(Protocol):
    """An opened object's bytes, read as a stream."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OpenedUpload:
    body: Body
    version_id: str | None  # the version read (from the notification, or from the read itself)
    size: int  # bytes
    # When the store received the version (S3: Last-Modified), the same on every read; None where
    # the store does not say (in memory).
    last_modified: datetime | None = None


class UploadSource(Protocol):
    """Where uploads are read from."""

    def open(self, bucket: str, key: str, version_id: str | None, etag: str) -> OpenedUpload:
        """Open the notified object version for streaming. Raises ObjectGone if it no longer exists.

        Without a version id, the ETag makes sure the bytes read are the ones notified, not a later
        overwrite (an overwritten object is gone as far as this notification is concerned).
        """
        ...

    def read_range(self, bucket: str, key: str, version_id: str | None, start: int, end: int) -> Body:
        """Bytes ``[start, end)`` of an object version, as a stream (a shard of a large upload).
        Raises ObjectGone if the version no longer exists."""
        ...


@dataclass(frozen=True)
class ContentClaim:
    """Which upload first brought some bytes to a dataset, and the notification it came with.

    The notification lets a later upload of the same bytes finish the first one if it never
    completed (``chalicelib.ingest.service``). Claims written before it was kept have none.
    """

    upload_id: str
    notification: dict[str, Any] | None


class UploadLedger(Protocol):
    """One entry per upload, written create-only; plus which upload first brought which bytes."""

    def record(self, upload: Upload) -> bool:
        """Write the entry unless one with its id exists. True if this call created it."""
        ...

    def claim_content(
        self, dataset: str, sha256: str, upload_id: str, notification: dict[str, Any]
    ) -> ContentClaim:
        """Record that these bytes arrived for this dataset (create-only); the claim as it stands.

        A second upload of identical bytes gets the first one's claim back; a retry of the same
        upload gets its own. Of concurrent claims exactly one is created.
        """
        ...

    def pass_claim(
        self, dataset: str, sha256: str, holder: str, upload_id: str, notification: dict[str, Any]
    ) -> bool:
        """Give the claim on these bytes to ``upload_id``, only if ``holder`` still has it
        (conditional). True if this call passed it."""
        ...

    def get(self, upload_id: str) -> Upload | None:
        """The entry (None if the upload was not recorded)."""
        ...

    def scan(self) -> list[Upload]:
        """Every entry, oldest recorded first (for the CLI and the demo; the ledger is small)."""
        ...

    def revoke(self, upload_id: str, by: str, reason: str, at: str) -> tuple[Upload, bool]:
        """Record that a valid upload is revoked (who, why, when), once: conditional on the entry
        being valid and not revoked yet, then the upload joins its dataset's revoked set. The entry
        and whether this call revoked it (False: it was revoked before; the set is made to hold it
        all the same, so a repeat finishes an interrupted revocation).

        Raises ``UploadNotFound`` for an unknown id and ``NotRevocable`` for an upload that is not
        valid (it never reached training data)."""
        ...

    def revoked(self, dataset: str) -> frozenset[str]:
        """The ids of the dataset's revoked uploads (one read)."""
        ...


class ShardTally(Protocol):
    """Which pieces of a split upload are done (an atomic set add: a redelivered piece counts once)."""

    def piece_done(self, upload_id: str, piece: int) -> int:
        """Record that ``piece`` of the upload is done; how many distinct pieces are done now."""
        ...


@dataclass(frozen=True)
class ListedObject:
    """One object as a bucket listing names it (never its bytes)."""

    key: str
    etag: str  # without the quotes
    size: int  # bytes
    last_modified: datetime | None = None  # None where the store does not say (in memory)


@dataclass(frozen=True)
class Listing:
    """One page of a listing."""

    prefixes: list[str]  # with a delimiter: the common prefixes of this page (``sales/``)
    objects: list[ListedObject]  # in key order
    token: str | None  # where the next page starts; None: this was the last page


class BucketListing(Protocol):
    """Which objects a bucket holds (the sweep of objects put outside the notified prefixes)."""

    def page(
        self, bucket: str, prefix: str, delimiter: str | None = None, token: str | None = None
    ) -> Listing:
        """One page of the keys under ``prefix``, in key order, from ``token`` (a previous page's).

        With a delimiter, keys that hold it after the prefix are rolled up into ``prefixes`` (S3
        ListObjectsV2: ``Delimiter='/'`` at the root gives the top-level folders and root objects).
        """
        ...
