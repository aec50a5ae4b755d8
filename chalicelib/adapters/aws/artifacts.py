"""Stored artifacts on S3: model files and candidate files read by bucket, key and version id."""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.serving.ports import StoredObject


class S3Artifacts:
    def read(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        args = {"Bucket": bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        try:
            response = aws.client("s3").get_object(**args)
        except ClientError as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise
        return StoredObject(bytes(response["Body"].read()), response.get("VersionId"))
