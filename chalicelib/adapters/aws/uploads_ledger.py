"""The uploads ledger in DynamoDB: one item per upload, plus ``content#<dataset>#<sha256>`` claims."""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.adapters.aws import dynamo
from chalicelib.ingest.uploads import Upload

CONTENT_PREFIX = "content#"
_ABSENT = "attribute_not_exists(upload_id)"


class DynamoUploadLedger:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def record(self, upload: Upload) -> bool:
        return self._put_if_absent(dynamo.to_item(upload.as_item()))

    def claim_content(self, dataset: str, sha256: str, upload_id: str) -> str:
        key = f"{CONTENT_PREFIX}{dataset}#{sha256}"
        if self._put_if_absent(dynamo.to_item({"upload_id": key, "first_upload_id": upload_id})):
            return upload_id
        item = aws.client("dynamodb").get_item(
            TableName=self.table_name, Key={"upload_id": {"S": key}}, ConsistentRead=True
        )["Item"]
        return str(dynamo.from_item(item)["first_upload_id"])

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

    def _put_if_absent(self, item: dict[str, object]) -> bool:
        from botocore.exceptions import ClientError

        try:
            aws.client("dynamodb").put_item(TableName=self.table_name, Item=item, ConditionExpression=_ABSENT)
        except ClientError as exc:
            if dynamo.condition_failed(exc):
                return False
            raise
        return True
