"""Data snapshots on S3: the validated objects under ``validated/<dataset>/`` of the data bucket
(with the version, size and sha256 the validation stage wrote), and manifests stored create-only.

Two ways to learn the objects, which give the same list for the same data:

* ``S3SnapshotStore`` reads each object's metadata (a HEAD, which IAM authorises as
  ``s3:GetObject``): the kickoff's, whose role may read validated data anyway (the batch planner's too).
* ``LedgerSnapshotStore`` reads no object: the versions as the bucket lists them
  (``s3:ListBucketVersions``) and each upload's sha256 and arrival time from the uploads ledger.
  The API's (a retrain request, the retrain a revocation asks for): its role may not read
  validated data, PII included.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags
from chalicelib.validation.layout import upload_order, validated_upload

BATCH_GET_KEYS = 100  # DynamoDB: at most 100 keys in one BatchGetItem


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


class LedgerSnapshotStore(S3SnapshotStore):
    """The validated objects without reading one: each latest version as the bucket lists it (version,
    ETag, size), its upload id from its key (``validated/<dataset>/<upload id>.csv[.gz]``), and the
    upload's sha256 and event time from its entry in the uploads ledger (validation copies the
    upload's bytes, and writes the copy's ``sha256`` and ``uploaded-at`` metadata from the same
    values). So the list is the one ``S3SnapshotStore`` gives, field for field, except that an
    upload not recorded yet (its entry is written last, when it is complete) is left out, and so is
    an object not named as validation names its copies."""

    def __init__(self, bucket: str, uploads_table: str) -> None:
        super().__init__(bucket)
        self.uploads_table = uploads_table

    def validated_objects(self, dataset: str) -> list[dict[str, Any]]:
        latest: dict[str, tuple[str, dict[str, Any]]] = {}
        pages = (
            aws.client("s3")
            .get_paginator("list_object_versions")
            .paginate(Bucket=self.bucket, Prefix=f"validated/{dataset}/")
        )
        for page in pages:
            for version in page.get("Versions", []):
                upload_id = validated_upload(dataset, version["Key"])
                if version.get("IsLatest") and upload_id:
                    latest[version["Key"]] = (upload_id, version)
        entries = self._entries({upload_id for upload_id, _ in latest.values()})
        objects = []
        for key, (upload_id, version) in latest.items():
            entry = entries.get(upload_id)
            if entry is None or entry.get("dataset") != dataset:
                continue  # not recorded yet (or not this dataset's)
            version_id = version.get("VersionId")
            objects.append(
                {
                    "key": key,
                    "version_id": None if version_id in (None, "null") else version_id,
                    "etag": str(version["ETag"]).strip('"'),
                    "size": int(version["Size"]),
                    "sha256": entry.get("sha256") or "",
                    "upload_id": upload_id,
                    "uploaded_at": upload_order(str(entry.get("event_time") or "")),
                }
            )
        return sorted(objects, key=lambda o: o["key"])

    def _entries(self, upload_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """The ledger entries of these uploads (those recorded): dataset, sha256, event time."""
        db = aws.client("dynamodb")
        wanted = sorted(upload_ids)
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.uploads_table: {
                    "Keys": [{"upload_id": {"S": u}} for u in wanted[start : start + BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "upload_id, #dataset, sha256, event_time",
                    "ExpressionAttributeNames": {"#dataset": "dataset"},
                }
            }
            for attempt in range(8):
                answer = db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.uploads_table, []):
                    found[item["upload_id"]["S"]] = {
                        name: value["S"] for name, value in item.items() if "S" in value
                    }
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)  # throttled: DynamoDB hands back what it did not read
            else:
                raise RuntimeError("the uploads ledger kept keys unread after 8 attempts (throttled)")
        return found
