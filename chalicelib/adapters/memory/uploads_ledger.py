"""The uploads ledger in memory: create-only entries and content claims, one lock.

Entries are kept as the item a table would hold and read back as a new ``Upload``, so a caller
never shares state with the ledger.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from chalicelib.ingest.ports import ContentClaim
from chalicelib.ingest.revocation import check_revocable
from chalicelib.ingest.uploads import Upload


class MemoryUploadLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._claims: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._revoked: dict[str, set[str]] = {}
        self._pieces: dict[str, set[int]] = {}

    def piece_done(self, upload_id: str, piece: int) -> int:
        with self._lock:
            done = self._pieces.setdefault(upload_id, set())
            done.add(piece)
            return len(done)

    def record(self, upload: Upload) -> bool:
        with self._lock:
            if upload.upload_id in self._items:
                return False
            self._items[upload.upload_id] = upload.as_item()
            return True

    def claim_content(
        self, dataset: str, sha256: str, upload_id: str, notification: dict[str, Any]
    ) -> ContentClaim:
        with self._lock:
            holder, kept = self._claims.setdefault(
                (dataset, sha256), (upload_id, copy.deepcopy(notification))
            )
        return ContentClaim(holder, copy.deepcopy(kept))

    def pass_claim(
        self, dataset: str, sha256: str, holder: str, upload_id: str, notification: dict[str, Any]
    ) -> bool:
        with self._lock:
            current = self._claims.get((dataset, sha256))
            if current is None or current[0] != holder:
                return False
            self._claims[(dataset, sha256)] = (upload_id, copy.deepcopy(notification))
            return True

    def get(self, upload_id: str) -> Upload | None:
        with self._lock:
            item = self._items.get(upload_id)
        return _upload(item) if item is not None else None

    def scan(self) -> list[Upload]:
        with self._lock:
            items = list(self._items.values())
        uploads = [_upload(item) for item in items]
        return sorted(uploads, key=lambda u: (u.recorded_at, u.key))

    def revoke(self, upload_id: str, by: str, reason: str, at: str) -> tuple[Upload, bool]:
        with self._lock:
            item = self._items.get(upload_id)
            upload = check_revocable(upload_id, _upload(item) if item is not None else None)
            assert item is not None  # check_revocable raised otherwise
            created = not upload.revoked
            if created:
                item.update({"revoked_at": at, "revoked_by": by, "revoked_reason": reason})
            self._revoked.setdefault(str(upload.dataset), set()).add(upload_id)
            return _upload(item), created

    def revoked(self, dataset: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._revoked.get(dataset, ()))


def _upload(item: dict[str, Any]) -> Upload:
    return Upload.from_item(copy.deepcopy(item))
