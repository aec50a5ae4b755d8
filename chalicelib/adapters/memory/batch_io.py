"""Batch inference's S3 and SQS ports in memory: input objects, the jobs' JSON files, the work queue.

Objects keep their versions, as the data bucket does (it is versioned): a read names one or gets the
latest. ``put`` stands for whoever writes objects without the create-only condition (a person
uploading inputs or dropping a request).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.batch.sharding import InputObject

BUCKET = "data"  # the data bucket, where batch inputs and job files live


class _Versions:
    """The data bucket's objects, versioned (``MemoryObjects``): the latest last."""

    def __init__(self, objects: MemoryObjects | None = None) -> None:
        self.objects = objects or MemoryObjects()

    def put(self, key: str, body: bytes, only_if_absent: bool = False) -> str | None:
        stored = self.objects.put(BUCKET, key, body, if_absent=only_if_absent)
        return None if stored is None else stored.version_id

    def get(self, key: str, version_id: str | None = None) -> tuple[str, bytes] | None:
        found = self.objects.get(BUCKET, key, None if version_id == "null" else version_id)
        return None if found is None else (found.version_id, found.body)

    def latest(self, prefix: str) -> list[tuple[str, str, bytes]]:
        found = ((key, self.objects.get(BUCKET, key)) for key in self.objects.keys(BUCKET, prefix))
        return [(key, obj.version_id, obj.body) for key, obj in found if obj is not None]


class MemoryInputs:
    def __init__(self) -> None:
        self._versions = _Versions()

    def put(self, key: str, body: bytes) -> str:
        """Upload an input object (a new version if the key exists); its version id."""
        version_id = self._versions.put(key, body)
        assert version_id is not None
        return version_id

    def exists(self, prefix: str) -> bool:
        return bool(self._versions.latest(prefix))

    def objects(self, prefix: str) -> list[InputObject]:
        return [
            InputObject(key, len(body), version_id)
            for key, version_id, body in self._versions.latest(prefix)
            if not key.endswith("/")
        ]

    def read(self, obj: InputObject, start: int, length: int) -> bytes:
        found = self._versions.get(obj.key, obj.version_id)
        if found is None:
            raise KeyError(f"no object {obj.key} (version {obj.version_id})")
        body = found[1]
        if start >= len(body):
            raise ValueError(f"bytes {start}- of {obj.key}: past its end ({len(body)} bytes)")
        return body[start : start + length]


class MemoryJobFiles:
    def __init__(self) -> None:
        self._versions = _Versions()

    def put(self, key: str, body: bytes) -> str:
        """Write a file whatever is there (a request dropped by hand); its version id."""
        version_id = self._versions.put(key, body)
        assert version_id is not None
        return version_id

    def create(self, key: str, body: bytes) -> bool:
        return self._versions.put(key, body, only_if_absent=True) is not None

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        found = self._versions.get(key, version_id)
        return None if found is None else found[1]

    def keys(self, prefix: str = "") -> list[str]:
        return [key for key, _, _ in self._versions.latest(prefix)]


class MemoryShardQueue:
    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, messages: list[dict[str, Any]]) -> None:
        bodies = [json.loads(json.dumps(m)) for m in messages]  # what a receiver gets: JSON, a copy
        with self._lock:
            self._messages += bodies

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message sent, oldest first."""
        with self._lock:
            return json.loads(json.dumps(self._messages))
