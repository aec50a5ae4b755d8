"""Data snapshots in memory: validated objects a test puts, manifests stored create-only."""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid
from typing import Any

from chalicelib.validation.layout import upload_order


class MemorySnapshotStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {}
        self._manifests: dict[str, dict[str, Any]] = {}
        self._puts = 0

    def put_validated(
        self, key: str, body: bytes, upload_id: str = "", uploaded_at: str = "", *, sha256: str | None = None
    ) -> None:
        """Store a validated object (a new version), as the validation stage does (tests seed data
        here). ``uploaded_at``: the upload's time, ISO 8601 (default: one second after the last)."""
        self._puts += 1
        moment = uploaded_at or f"2026-11-30T00:{self._puts // 60 % 60:02d}:{self._puts % 60:02d}Z"
        entry = {
            "key": key,
            "version_id": uuid.uuid4().hex,
            "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest() if sha256 is None else sha256,
            "upload_id": upload_id,
            "uploaded_at": upload_order(moment),
        }
        with self._lock:
            self._objects[key] = entry

    def validated_objects(self, dataset: str) -> list[dict[str, Any]]:
        prefix = f"validated/{dataset}/"
        with self._lock:
            return [copy.deepcopy(o) for k, o in sorted(self._objects.items()) if k.startswith(prefix)]

    def put_manifest(self, key: str, manifest: dict[str, Any], dataset: str, classification: str) -> bool:
        with self._lock:
            if key in self._manifests:
                return False
            self._manifests[key] = copy.deepcopy(manifest)
            return True

    def get_manifest(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._manifests.get(key))
