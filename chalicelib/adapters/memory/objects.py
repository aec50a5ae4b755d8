"""In-memory buckets with the S3 semantics the adapters rely on.

Versioned like the data bucket: every put adds a version, a delete adds a marker and keeps the
versions. Create-only puts, reads of the latest or of one version, an ETag guard, metadata and tags
per object, keys listed in order. The in-memory adapters of S3-backed ports share one of these, so
a copy can read what an upload wrote, as in one bucket.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    version_id: str
    etag: str  # md5 of the body, as S3 gives for a single-part put (without the quotes)
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class MemoryObjects:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (bucket, key) -> versions, oldest first; None is a delete marker.
        self._versions: dict[tuple[str, str], list[StoredObject | None]] = {}
        self._ids = itertools.count(1)

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str = "binary/octet-stream",
        metadata: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> StoredObject | None:
        """Add a version. With ``if_absent``, only if the key holds nothing (None if it did)."""
        with self._lock:
            versions = self._versions.setdefault((bucket, key), [])
            if if_absent and versions and versions[-1] is not None:
                return None
            stored = StoredObject(
                body=bytes(body),
                version_id=f"v{next(self._ids):08d}",
                etag=hashlib.md5(body, usedforsecurity=False).hexdigest(),
                content_type=content_type,
                metadata=dict(metadata or {}),
                tags=dict(tags or {}),
            )
            versions.append(stored)
            return stored

    def get(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        """The latest version (None if deleted or never written), or the given one (None if unknown)."""
        with self._lock:
            versions = self._versions.get((bucket, key), [])
            if version_id is None:
                return versions[-1] if versions else None
            return next((v for v in versions if v is not None and v.version_id == version_id), None)

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Without a version: add a delete marker (the versions stay). With one: remove that version."""
        with self._lock:
            versions = self._versions.setdefault((bucket, key), [])
            if version_id is None:
                versions.append(None)
            else:
                versions[:] = [v for v in versions if v is None or v.version_id != version_id]

    def version_ids(self, bucket: str, key: str) -> list[str]:
        """The key's versions, oldest first (delete markers left out)."""
        with self._lock:
            return [v.version_id for v in self._versions.get((bucket, key), []) if v is not None]

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys that currently hold an object, in lexicographic order (as S3 lists them)."""
        with self._lock:
            return sorted(
                key
                for (b, key), versions in self._versions.items()
                if b == bucket and key.startswith(prefix) and versions and versions[-1] is not None
            )
