"""AWS adapters of the ingest stage: reading uploads from S3, the uploads ledger in DynamoDB."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.ingest.uploads import Upload


class ObjectGone(Exception):
    """The object (or the notified version of it) no longer exists."""


def open_object(bucket: str, key: str, version_id: str | None, etag: str) -> tuple[Any, str | None, int]:
    """Open the notified object version for streaming: (body, version id, size in bytes).

    The version id comes from the read when the notification lacks one (moto's do; AWS's carry it
    for versioned buckets). In an unversioned bucket the ETag makes sure we read the bytes that
    were notified, not a later overwrite.
    """
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        args["VersionId"] = version_id
    elif etag:
        args["IfMatch"] = f'"{etag}"'
    try:
        response = aws.client("s3").get_object(**args)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "NoSuchVersion", "404", "PreconditionFailed", "412"}:
            raise ObjectGone(f"s3://{bucket}/{key} ({code})") from exc
        raise
    return response["Body"], version_id or response.get("VersionId"), int(response.get("ContentLength", 0))


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

    def claim_content(self, dataset: str, sha256: str, upload_id: str) -> str:
        """Record that these bytes arrived for this dataset; the id of the first upload that had them.

        A second upload of identical bytes gets the first one's id back and is reported as such,
        not counted twice; a retry of the same upload gets its own id back.
        """
        key = f"content#{dataset}#{sha256}"
        try:
            aws.client("dynamodb").put_item(
                TableName=self.table_name,
                Item={"upload_id": {"S": key}, "first_upload_id": {"S": upload_id}},
                ConditionExpression="attribute_not_exists(upload_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = aws.client("dynamodb").get_item(
                TableName=self.table_name, Key={"upload_id": {"S": key}}, ConsistentRead=True
            )["Item"]
            return str(item["first_upload_id"]["S"])
        return upload_id

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
            if not item["upload_id"]["S"].startswith("content#")
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
