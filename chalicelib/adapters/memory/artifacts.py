"""Stored artifacts in memory: a versioned bucket per name (``MemoryObjects``), as the models bucket is."""

from __future__ import annotations

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.serving.ports import StoredObject


class MemoryArtifacts:
    def __init__(self, objects: MemoryObjects | None = None) -> None:
        self.objects = objects or MemoryObjects()

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Store a new version of the object; returns its version id (tests and fixtures write here)."""
        stored = self.objects.put(bucket, key, data)
        assert stored is not None  # only a create-only put can be refused
        return stored.version_id

    def read(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        found = self.objects.get(bucket, key, version_id)
        return None if found is None else StoredObject(found.body, found.version_id)
