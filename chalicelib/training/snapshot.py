"""The training data of a run: an immutable manifest of the validated objects, named by its hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags


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


def snapshot(dataset: str, bucket: str, classification: str = "confidential") -> dict[str, Any] | None:
    """List ``validated/<dataset>/`` with versions, sizes and sha256 and store the manifest
    create-only. Returns the manifest (with its hash and key), or None when there is no data."""
    s3 = aws.client("s3")
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"validated/{dataset}/"):
        for entry in page.get("Contents", []):
            head = s3.head_object(Bucket=bucket, Key=entry["Key"])
            objects.append(
                {
                    "key": entry["Key"],
                    "version_id": head.get("VersionId"),
                    "etag": head["ETag"].strip('"'),
                    "size": int(head["ContentLength"]),
                    "sha256": head.get("Metadata", {}).get("sha256", ""),
                    "upload_id": head.get("Metadata", {}).get("upload-id", ""),
                }
            )
    if not objects:
        return None
    digest = data_hash(dataset, objects)
    manifest = {
        "dataset": dataset,
        "data_hash": digest,
        "objects": sorted(objects, key=lambda o: o["key"]),
        "bytes": sum(o["size"] for o in objects),
    }
    key = manifest_key(dataset, digest)
    # The same data snapshot before has the same key: the manifest is immutable and already there.
    aws.put_if_absent(
        bucket,
        key,
        json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
        Tagging=tags(dataset, classification, "manifest"),
    )
    return {**manifest, "key": key}
