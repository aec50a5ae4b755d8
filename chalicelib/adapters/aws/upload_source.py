"""Reading uploads from S3."""

from __future__ import annotations

import io
from typing import Any

from chalicelib.adapters import aws
from chalicelib.ingest.exceptions import ObjectGone
from chalicelib.ingest.ports import OpenedUpload


class S3UploadSource:
    def open(self, bucket: str, key: str, version_id: str | None, etag: str) -> OpenedUpload:
        """The version id comes from the read when the notification lacks one (moto's do; AWS's carry
        it for versioned buckets). In an unversioned bucket the ETag makes sure we read the bytes
        that were notified, not a later overwrite."""
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        elif etag:
            args["IfMatch"] = f'"{etag}"'
        try:
            response = aws.client("s3").get_object(**args)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in aws.MISSING_OBJECT | aws.PRECONDITION_FAILED:
                raise ObjectGone(f"s3://{bucket}/{key} ({code})") from exc
            raise
        return OpenedUpload(
            body=response["Body"],
            version_id=version_id or response.get("VersionId"),
            size=int(response.get("ContentLength", 0)),
            last_modified=response.get("LastModified"),
        )

    def read_range(self, bucket: str, key: str, version_id: str | None, start: int, end: int) -> Any:
        from botocore.exceptions import ClientError

        if end <= start:
            return io.BytesIO(b"")
        args: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{end - 1}"}
        if version_id:
            args["VersionId"] = version_id
        try:
            return aws.client("s3").get_object(**args)["Body"]
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in aws.MISSING_OBJECT | aws.PRECONDITION_FAILED:
                raise ObjectGone(f"s3://{bucket}/{key} ({code})") from exc
            raise
