"""API token records in memory (``chalicelib.auth.TokenRecords``), as SSM keeps them: create-only,
by digest, the record's JSON text as stored. One lock."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

_stores = itertools.count(1)


class MemoryTokenRecords:
    """``path`` names the store in lookup-cache keys: by default one of its own, so two in-memory
    stores never answer from each other's cached lookups."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or f"/memory/{next(_stores)}/tokens"
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def put(self, digest: str, record: dict[str, Any]) -> bool:
        with self._lock:
            if digest in self._values:
                return False
            self._values[digest] = json.dumps(record)
            return True

    def get(self, digest: str) -> str | None:
        with self._lock:
            return self._values.get(digest)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._values.items())

    def delete(self, digest: str) -> bool:
        with self._lock:
            return self._values.pop(digest, None) is not None
