"""Stored artifacts in memory: a versioned bucket per name, as the models bucket is."""

from __future__ import annotations

import itertools
import threading

from chalicelib.serving.ports import StoredObject


class MemoryArtifacts:
    def __init__(self) -> None:
        # (bucket, key) -> every version written, oldest first
        self._objects: dict[tuple[str, str], list[StoredObject]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Store a new version of the object; returns its version id (tests and fixtures write here)."""
        with self._lock:
            stored = StoredObject(bytes(data), f"v{next(self._ids):06d}")
            self._objects.setdefault((bucket, key), []).append(stored)
            return str(stored.version_id)

    def read(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        with self._lock:
            versions = self._objects.get((bucket, key), [])
        if version_id is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.version_id == version_id), None)
