"""Reading uploads from a ``MemoryObjects`` bucket."""

from __future__ import annotations

import io

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.ingest.exceptions import ObjectGone
from chalicelib.ingest.ports import OpenedUpload


class MemoryUploadSource:
    def __init__(self, objects: MemoryObjects | None = None) -> None:
        self.objects = objects or MemoryObjects()

    def open(self, bucket: str, key: str, version_id: str | None, etag: str) -> OpenedUpload:
        stored = self.objects.get(bucket, key, version_id or None)
        if stored is None:
            raise ObjectGone(f"memory://{bucket}/{key} (NoSuchKey)")
        if not version_id and etag and stored.etag != etag:
            raise ObjectGone(f"memory://{bucket}/{key} (PreconditionFailed)")
        return OpenedUpload(
            body=io.BytesIO(stored.body), version_id=version_id or stored.version_id, size=len(stored.body)
        )

    def read_range(self, bucket: str, key: str, version_id: str | None, start: int, end: int) -> io.BytesIO:
        stored = self.objects.get(bucket, key, version_id or None)
        if stored is None:
            raise ObjectGone(f"memory://{bucket}/{key} (NoSuchKey)")
        return io.BytesIO(stored.body[start:end])
