"""The uploads ledger in DynamoDB: one item per upload, plus ``content#<dataset>#<sha256>`` claims
and ``revoked#<dataset>`` items (``uploads``: a string set of the dataset's revoked upload ids, so
that a snapshot, a holdout or a row comparison learns them with one read)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws import dynamo
from chalicelib.ingest.ports import ContentClaim
from chalicelib.ingest.revocation import check_revocable
from chalicelib.ingest.uploads import Upload

CONTENT_PREFIX = "content#"
REVOKED_PREFIX = "revoked#"
SHARDS_PREFIX = "shards#"  # the done pieces of a split upload (``done``: a number set)
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
            if not item["upload_id"]["S"].startswith((CONTENT_PREFIX, REVOKED_PREFIX, SHARDS_PREFIX))
        ]
        return sorted(uploads, key=lambda u: (u.recorded_at, u.key))

    def revoke(self, upload_id: str, by: str, reason: str, at: str) -> tuple[Upload, bool]:
        """The entry first (conditional: valid and not revoked yet), then the dataset's set (``ADD``:
        idempotent), so a crash between the two is finished by the repeat."""
        from botocore.exceptions import ClientError

        db = aws.client("dynamodb")
        created = True
        try:
            item = db.update_item(
                TableName=self.table_name,
                Key={"upload_id": {"S": upload_id}},
                UpdateExpression="SET revoked_at = :at, revoked_by = :by, revoked_reason = :why",
                ConditionExpression="attribute_exists(upload_id) AND #s = :valid AND attribute_not_exists(revoked_at)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":at": {"S": at},
                    ":by": {"S": by},
                    ":why": {"S": reason},
                    ":valid": {"S": "valid"},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
            upload = Upload.from_item(dynamo.from_item(item))
        except ClientError as exc:
            if not dynamo.condition_failed(exc):
                raise
            upload = check_revocable(upload_id, self.get(upload_id))  # raises unless revoked before
            created = False
        db.update_item(
            TableName=self.table_name,
            Key={"upload_id": {"S": f"{REVOKED_PREFIX}{upload.dataset}"}},
            UpdateExpression="ADD uploads :id",
            ExpressionAttributeValues={":id": {"SS": [upload_id]}},
        )
        return upload, created

    def revoked(self, dataset: str) -> frozenset[str]:
        item = (
            aws.client("dynamodb")
            .get_item(
                TableName=self.table_name,
                Key={"upload_id": {"S": f"{REVOKED_PREFIX}{dataset}"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return frozenset(item["uploads"]["SS"]) if item and "uploads" in item else frozenset()

    def piece_done(self, upload_id: str, piece: int) -> int:
        done = aws.client("dynamodb").update_item(
            TableName=self.table_name,
            Key={"upload_id": {"S": f"{SHARDS_PREFIX}{upload_id}"}},
            UpdateExpression="ADD done :piece",
            ExpressionAttributeValues={":piece": {"NS": [str(piece)]}},
            ReturnValues="ALL_NEW",  # (moto leaves an unchanged set out of UPDATED_NEW)
        )["Attributes"]["done"]["NS"]
        return len(done)

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
