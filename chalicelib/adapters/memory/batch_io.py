"""Batch inference's S3 and SQS ports in memory: input objects, the jobs' JSON files, the work queue.

Objects keep their versions, as the data bucket does (it is versioned): a read names one or gets the
latest. ``put`` stands for whoever writes objects without the create-only condition (a person
uploading inputs or dropping a request).
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from chalicelib.batch.sharding import InputObject


class _Versions:
    """Every version of every object, the latest last; one lock."""

    def __init__(self) -> None:
        self._objects: dict[str, list[tuple[str, bytes]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes, only_if_absent: bool = False) -> str | None:
        with self._lock:
            if only_if_absent and key in self._objects:
                return None
            version_id = f"v{next(self._ids)}"
            self._objects.setdefault(key, []).append((version_id, bytes(body)))
            return version_id

    def get(self, key: str, version_id: str | None = None) -> tuple[str, bytes] | None:
        with self._lock:
            versions = self._objects.get(key, [])
            if version_id is None or version_id == "null":
                return versions[-1] if versions else None
            return next((v for v in versions if v[0] == version_id), None)

    def latest(self, prefix: str) -> list[tuple[str, str, bytes]]:
        with self._lock:
            return [
                (key, *versions[-1])
                for key, versions in sorted(self._objects.items())
                if key.startswith(prefix)
            ]


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
