"""The uploads ledger in DynamoDB: one item per upload, plus ``content#<dataset>#<sha256>`` claims."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws import dynamo
from chalicelib.ingest.ports import ContentClaim
from chalicelib.ingest.uploads import Upload

CONTENT_PREFIX = "content#"
_ABSENT = "attribute_not_exists(upload_id)"


class DynamoUploadLedger:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def record(self, upload: Upload) -> bool:
        return self._put(dynamo.to_item(upload.as_item()), _ABSENT, {})

    def claim_content(
        self, dataset: str, sha256: str, upload_id: str, notification: dict[str, Any]
    ) -> ContentClaim:
        key = _claim_key(dataset, sha256)
        if self._put(_claim_item(key, upload_id, notification), _ABSENT, {}):
            return ContentClaim(upload_id, notification)
        item = aws.client("dynamodb").get_item(
            TableName=self.table_name, Key={"upload_id": {"S": key}}, ConsistentRead=True
        )["Item"]
        claim = dynamo.from_item(item)
        return ContentClaim(str(claim["first_upload_id"]), claim.get("notification"))

    def pass_claim(
        self, dataset: str, sha256: str, holder: str, upload_id: str, notification: dict[str, Any]
    ) -> bool:
        item = _claim_item(_claim_key(dataset, sha256), upload_id, notification)
        return self._put(item, "first_upload_id = :holder", {":holder": {"S": holder}})

    def get(self, upload_id: str) -> Upload | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self.table_name, Key={"upload_id": {"S": upload_id}}, ConsistentRead=True)
            .get("Item")
        )
        return Upload.from_item(dynamo.from_item(item)) if item else None

    def scan(self) -> list[Upload]:
        paginator = aws.client("dynamodb").get_paginator("scan")
        uploads = [
            Upload.from_item(dynamo.from_item(item))
            for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True)
            for item in page.get("Items", [])
            if not item["upload_id"]["S"].startswith(CONTENT_PREFIX)
        ]
        return sorted(uploads, key=lambda u: (u.recorded_at, u.key))

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        """A conditional put; False if the condition did not hold."""
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"TableName": self.table_name, "Item": item, "ConditionExpression": condition}
        if values:
            args["ExpressionAttributeValues"] = values
        try:
            aws.client("dynamodb").put_item(**args)
        except ClientError as exc:
            if dynamo.condition_failed(exc):
                return False
            raise
        return True


def _claim_key(dataset: str, sha256: str) -> str:
    return f"{CONTENT_PREFIX}{dataset}#{sha256}"


def _claim_item(key: str, upload_id: str, notification: dict[str, Any]) -> dict[str, Any]:
    return dynamo.to_item({"upload_id": key, "first_upload_id": upload_id, "notification": notification})
