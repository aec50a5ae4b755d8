"""The training data of a run: an immutable manifest of the validated objects, named by its hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalicelib.training.ports import SnapshotStore


def manifest_key(dataset: str, data_hash: str) -> str:
    return f"manifests/{dataset}/{data_hash}.json"


def data_hash(dataset: str, objects: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the objects: the same data gives the same hash, in any order."""
    canonical = json.dumps(
        {"dataset": dataset, "objects": sorted(objects, key=lambda o: o["key"])},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_manifest(dataset: str, objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest of these objects (None when there are none): they, their hash and total size."""
    if not objects:
        return None
    return {
        "dataset": dataset,
        "data_hash": data_hash(dataset, objects),
        "objects": sorted(objects, key=lambda o: o["key"]),
        "bytes": sum(o["size"] for o in objects),
    }


def snapshot(
    store: SnapshotStore, dataset: str, classification: str = "confidential"
) -> dict[str, Any] | None:
    """Pin the dataset's validated objects (versions, sizes, sha256) in a manifest stored create-only.
    Returns the manifest with its ``key``, or None when there is no data."""
    manifest = build_manifest(dataset, store.validated_objects(dataset))
    if manifest is None:
        return None
    key = manifest_key(dataset, manifest["data_hash"])
    # The same data snapshot before has the same key: the manifest is immutable and already there.
    store.put_manifest(key, manifest, dataset, classification)
    return {**manifest, "key": key}
