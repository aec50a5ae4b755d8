"""The validation stage's outputs in memory (a ``MemoryObjects`` bucket, shared with the uploads)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.validation.layout import ObjectTags, SourceObject, reference_key, s3_write_problem


class MemoryValidationStore:
    def __init__(self, objects: MemoryObjects | None = None, bucket: str = "data") -> None:
        self.objects = objects or MemoryObjects()
        self.bucket = bucket

    def put_json(self, key: str, document: Any, tags: ObjectTags) -> None:
        _check(key)
        body = json.dumps(document, indent=2, allow_nan=False).encode()
        self.objects.put(self.bucket, key, body, content_type="application/json", tags=tags.as_dict())

    def get_json(self, key: str) -> Any:
        stored = self.objects.get(self.bucket, key)
        return None if stored is None else json.loads(stored.body)

    def put_bytes(self, key: str, body: bytes, tags: ObjectTags) -> None:
        _check(key)
        self.objects.put(self.bucket, key, body, content_type="application/octet-stream", tags=tags.as_dict())

    def create_bytes(self, key: str, body: bytes, tags: ObjectTags) -> bool:
        _check(key)
        stored = self.objects.put(
            self.bucket,
            key,
            body,
            content_type="application/octet-stream",
            tags=tags.as_dict(),
            if_absent=True,
        )
        return stored is not None

    def get_bytes(self, key: str) -> bytes | None:
        stored = self.objects.get(self.bucket, key)
        return None if stored is None else stored.body

    def keys(self, prefix: str) -> list[str]:
        return self.objects.keys(self.bucket, prefix)

    def copy(self, source: SourceObject, key: str, metadata: dict[str, str], tags: ObjectTags) -> None:
        _check(key, metadata)
        original = self.objects.get(source.bucket, source.key, source.version_id)
        if original is None:
            raise LookupError(
                f"copy source memory://{source.bucket}/{source.key} ({source.version_id}) is gone"
            )
        self.objects.put(
            self.bucket,
            key,
            original.body,
            content_type=original.content_type,
            metadata=metadata,
            tags=tags.as_dict(),
        )

    def reference(self, dataset: str) -> dict[str, Any] | None:
        stored = self.objects.get(self.bucket, reference_key(dataset))
        return None if stored is None else dict(json.loads(stored.body))

    def create_reference(self, dataset: str, profile: dict[str, Any], classification: str) -> bool:
        created = self.objects.put(
            self.bucket,
            reference_key(dataset),
            json.dumps(profile, allow_nan=False).encode(),
            content_type="application/json",
            tags=ObjectTags(dataset, classification, "profile").as_dict(),
            if_absent=True,
        )
        return created is not None


def _check(key: str, metadata: dict[str, str] | None = None) -> None:
    """Refuse what S3 would refuse (a key over 1,024 bytes, metadata that is not ASCII or over 2 KB)."""
    if problem := s3_write_problem(key, metadata):
        raise ValueError(problem)
