"""Listing a ``MemoryObjects`` bucket page by page, as S3's ListObjectsV2 does."""

from __future__ import annotations

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.ingest.ports import ListedObject, Listing


class MemoryBucketListing:
    def __init__(self, objects: MemoryObjects | None = None, page_size: int = 1000) -> None:
        self.objects = objects or MemoryObjects()
        self.page_size = page_size

    def page(
        self, bucket: str, prefix: str, delimiter: str | None = None, token: str | None = None
    ) -> Listing:
        # Each entry is an object's key or a rolled-up prefix (a key holding the delimiter after the
        # prefix, S3's CommonPrefixes), in order; the token is the last entry a page returned.
        entries: list[tuple[str, bool]] = []
        for key in self.objects.keys(bucket, prefix):
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            entry = (key[: cut + len(delimiter)], True) if delimiter and cut >= 0 else (key, False)
            if (not entries or entries[-1] != entry) and (token is None or entry[0] > token):
                entries.append(entry)
        shown = entries[: self.page_size]
        objects = []
        for name, rolled_up in shown:
            stored = None if rolled_up else self.objects.get(bucket, name)
            if stored is not None:
                objects.append(ListedObject(name, stored.etag, len(stored.body)))
        return Listing(
            prefixes=[name for name, rolled_up in shown if rolled_up],
            objects=objects,
            token=shown[-1][0] if len(entries) > len(shown) else None,
        )
