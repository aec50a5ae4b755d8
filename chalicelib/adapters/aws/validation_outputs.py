"""The validation stage's outputs on S3: reports, copies of uploads, reference profiles (data bucket)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags as tag_set
from chalicelib.validation.layout import ObjectTags, SourceObject, reference_key, s3_write_problem


def _tagging(object_tags: ObjectTags) -> str:
    return tag_set(object_tags.dataset, object_tags.classification, object_tags.stage)


class S3ValidationStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put_json(self, key: str, document: Any, tags: ObjectTags) -> None:
        _check(key)
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(document, indent=2, allow_nan=False).encode(),
            ContentType="application/json",
            Tagging=_tagging(tags),
        )

    def get_json(self, key: str) -> Any:
        body = self._read(key)
        return None if body is None else json.loads(body)

    def put_bytes(self, key: str, body: bytes, tags: ObjectTags) -> None:
        _check(key)
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/octet-stream",
            Tagging=_tagging(tags),
        )

    def create_bytes(self, key: str, body: bytes, tags: ObjectTags) -> bool:
        _check(key)
        return aws.put_if_absent(
            self.bucket, key, body, ContentType="application/octet-stream", Tagging=_tagging(tags)
        )

    def get_bytes(self, key: str) -> bytes | None:
        return self._read(key)

    def keys(self, prefix: str) -> list[str]:
        pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))

    def copy(self, source: SourceObject, key: str, metadata: dict[str, str], tags: ObjectTags) -> None:
        _check(key, metadata)
        copy_source: dict[str, str] = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        aws.client("s3").copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource=copy_source,
            Metadata=metadata,
            MetadataDirective="REPLACE",
            Tagging=_tagging(tags),
            TaggingDirective="REPLACE",
        )

    def reference(self, dataset: str) -> dict[str, Any] | None:
        body = self._read(reference_key(dataset))
        return None if body is None else dict(json.loads(body))

    def create_reference(self, dataset: str, profile: dict[str, Any], classification: str) -> bool:
        return aws.put_if_absent(
            self.bucket,
            reference_key(dataset),
            json.dumps(profile, allow_nan=False).encode(),
            ContentType="application/json",
            Tagging=tag_set(dataset, classification, "profile"),
        )

    def _read(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return bytes(aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise


def _check(key: str, metadata: dict[str, str] | None = None) -> None:
    """Refuse what S3 would refuse (a key over 1,024 bytes, metadata that is not ASCII or over 2 KB)."""
    if problem := s3_write_problem(key, metadata):
        raise ValueError(problem)
