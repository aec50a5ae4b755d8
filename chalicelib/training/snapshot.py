"""The training data of a run: an immutable manifest of the validated objects, named by its hash.

The manifest lists its objects **oldest upload first** (by the upload's S3 event time, ``uploaded_at``;
ties by upload id, then key), each with the ``upload_id`` it came from. The training job reads them
in that order, and a row that a later object holds again (the same row id, or the same values
without one: ``chalicelib.validation.rowkeys``) replaces the earlier copy: the newest upload wins.
Which uploads contribute is explicit (``contributing_uploads``), and ``snapshot`` can leave some out
(``exclude_uploads``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any

from chalicelib.training.ports import SnapshotStore

ORDER = (
    "oldest upload first (uploaded_at, then upload_id, then key); a row held again by a later object "
    "(same row id, or the same values without one) replaces its earlier copy"
)


def manifest_key(dataset: str, data_hash: str) -> str:
    return f"manifests/{dataset}/{data_hash}.json"


def precedence(obj: dict[str, Any]) -> tuple[str, str, str]:
    """Where an object goes in a manifest: later ones win."""
    return (str(obj.get("uploaded_at") or ""), str(obj.get("upload_id") or ""), str(obj["key"]))


def data_hash(dataset: str, objects: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the objects in their precedence: the same data gives the same
    hash, whatever order they are listed in."""
    canonical = json.dumps(
        {"dataset": dataset, "objects": sorted(objects, key=precedence)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_manifest(
    dataset: str, objects: list[dict[str, Any]], exclude_uploads: Collection[str] = ()
) -> dict[str, Any] | None:
    """The manifest of these objects, less those of ``exclude_uploads`` (None when none are left):
    they, in precedence order, their hash and total size."""
    kept = [o for o in objects if o.get("upload_id") not in exclude_uploads] if exclude_uploads else objects
    if not kept:
        return None
    return {
        "dataset": dataset,
        "data_hash": data_hash(dataset, kept),
        "order": ORDER,
        "objects": sorted(kept, key=precedence),
        "bytes": sum(o["size"] for o in kept),
    }


def contributing_uploads(manifest: dict[str, Any]) -> list[str]:
    """The uploads whose rows a manifest holds, oldest first ("" for an object of unknown upload)."""
    return [str(o.get("upload_id") or "") for o in manifest["objects"]]


def snapshot(
    store: SnapshotStore,
    dataset: str,
    classification: str = "confidential",
    exclude_uploads: Collection[str] = (),
) -> dict[str, Any] | None:
    """Pin the dataset's validated objects (versions, sizes, sha256, upload and its time) in a
    manifest stored create-only, leaving out ``exclude_uploads``. Returns the manifest with its
    ``key``, or None when there is no data."""
    manifest = build_manifest(dataset, store.validated_objects(dataset), exclude_uploads)
    if manifest is None:
        return None
    key = manifest_key(dataset, manifest["data_hash"])
    # The same data snapshot before has the same key: the manifest is immutable and already there.
    store.put_manifest(key, manifest, dataset, classification)
    return {**manifest, "key": key}
