"""AWS adapters of the ingest stage: reading uploads from S3, the uploads ledger in DynamoDB."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.ingest.uploads import Upload

CHUNK = 1024 * 1024


class ObjectGone(Exception):
    """The object (or the notified version of it) no longer exists."""


def sha256_of_object(bucket: str, key: str, version_id: str | None, etag: str) -> tuple[str, int, str | None]:
    """Stream the object and hash it, in bounded memory.

    Returns (hex digest, size in bytes, version id). The version id comes from the read when the
    notification lacks one (moto's do; AWS's carry it for versioned buckets).
    """
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        args["VersionId"] = version_id
    elif etag:
        # Unversioned bucket: make sure we hash the bytes that were notified, not a later overwrite.
        args["IfMatch"] = f'"{etag}"'
    try:
        response = aws.client("s3").get_object(**args)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "NoSuchVersion", "404", "PreconditionFailed", "412"}:
            raise ObjectGone(f"s3://{bucket}/{key} ({code})") from exc
        raise
    digest = hashlib.sha256()
    size = 0
    for chunk in _chunks(response["Body"]):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size, version_id or response.get("VersionId")


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        while chunk := body.read(CHUNK):
            yield chunk
    finally:
        body.close()


class UploadLedger:
    """The uploads ledger: one item per upload, written create-only."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def record(self, upload: Upload) -> bool:
        """Write the entry unless it exists. True if this call created it."""
        try:
            aws.client("dynamodb").put_item(
                TableName=self.table_name,
                Item=_marshal(upload.as_item()),
                ConditionExpression="attribute_not_exists(upload_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, upload_id: str) -> Upload | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self.table_name, Key={"upload_id": {"S": upload_id}}, ConsistentRead=True)
            .get("Item")
        )
        return Upload.from_item(_unmarshal(item)) if item else None

    def scan(self) -> list[Upload]:
        """Every entry (for the CLI and the demo; the ledger is small)."""
        paginator = aws.client("dynamodb").get_paginator("scan")
        uploads = [
            Upload.from_item(_unmarshal(item))
            for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True)
            for item in page.get("Items", [])
        ]
        return sorted(uploads, key=lambda u: (u.recorded_at, u.key))


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}
