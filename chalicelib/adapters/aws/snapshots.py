"""Data snapshots on S3: the validated objects under ``validated/<dataset>/`` of the data bucket
(with the version, size and sha256 the validation stage wrote), and manifests stored create-only."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags
from chalicelib.validation.layout import upload_order


class S3SnapshotStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def validated_objects(self, dataset: str) -> list[dict[str, Any]]:
        s3 = aws.client("s3")
        objects = []
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"validated/{dataset}/"
        )
        for page in pages:
            for entry in page.get("Contents", []):
                head = s3.head_object(Bucket=self.bucket, Key=entry["Key"])
                metadata = head.get("Metadata", {})
                objects.append(
                    {
                        "key": entry["Key"],
                        "version_id": head.get("VersionId"),
                        "etag": head["ETag"].strip('"'),
                        "size": int(head["ContentLength"]),
                        "sha256": metadata.get("sha256", ""),
                        "upload_id": metadata.get("upload-id", ""),
                        # Copies made before uploads were ordered: the copy's own time.
                        "uploaded_at": metadata.get("uploaded-at")
                        or upload_order(head["LastModified"].isoformat()),
                    }
                )
        return sorted(objects, key=lambda o: o["key"])

    def put_manifest(self, key: str, manifest: dict[str, Any], dataset: str, classification: str) -> bool:
        return aws.put_if_absent(
            self.bucket,
            key,
            json.dumps(manifest, indent=2).encode(),
            ContentType="application/json",
            Tagging=tags(dataset, classification, "manifest"),
        )

    def get_manifest(self, key: str) -> dict[str, Any] | None:
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise
        return dict(json.loads(body))
