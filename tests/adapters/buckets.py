"""The data bucket as the contract suites of the S3-backed ports see it: write an upload, delete it,
look at what an adapter stored. One implementation over in-process moto, one over ``MemoryObjects``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.memory.objects import MemoryObjects


@dataclass(frozen=True)
class Seen:
    body: bytes
    content_type: str
    metadata: dict[str, str]
    tags: dict[str, str]


class MemoryBucket:
    def __init__(self, objects: MemoryObjects, name: str = "data") -> None:
        self.objects = objects
        self.name = name

    def put(self, key: str, body: bytes) -> str:
        stored = self.objects.put(self.name, key, body)
        assert stored is not None
        return stored.version_id

    def etag(self, key: str) -> str:
        stored = self.objects.get(self.name, key)
        assert stored is not None
        return stored.etag

    def delete(self, key: str, version_id: str | None = None) -> None:
        self.objects.delete(self.name, key, version_id)

    def peek(self, key: str) -> Seen | None:
        stored = self.objects.get(self.name, key)
        if stored is None:
            return None
        return Seen(stored.body, stored.content_type, stored.metadata, stored.tags)

    def version_count(self, key: str) -> int:
        return len(self.objects.version_ids(self.name, key))


class MotoBucket:
    def __init__(self, name: str) -> None:
        import boto3

        self.s3: Any = boto3.client("s3")
        self.name = name

    def put(self, key: str, body: bytes) -> str:
        return str(self.s3.put_object(Bucket=self.name, Key=key, Body=body)["VersionId"])

    def etag(self, key: str) -> str:
        return str(self.s3.head_object(Bucket=self.name, Key=key)["ETag"]).strip('"')

    def delete(self, key: str, version_id: str | None = None) -> None:
        if version_id:
            self.s3.delete_object(Bucket=self.name, Key=key, VersionId=version_id)
        else:
            self.s3.delete_object(Bucket=self.name, Key=key)

    def peek(self, key: str) -> Seen | None:
        from botocore.exceptions import ClientError

        try:
            got = self.s3.get_object(Bucket=self.name, Key=key)
        except ClientError:
            return None
        tagset = self.s3.get_object_tagging(Bucket=self.name, Key=key)["TagSet"]
        return Seen(
            got["Body"].read(),
            got.get("ContentType", ""),
            dict(got.get("Metadata", {})),
            {t["Key"]: t["Value"] for t in tagset},
        )

    def version_count(self, key: str) -> int:
        versions = self.s3.list_object_versions(Bucket=self.name, Prefix=key).get("Versions", [])
        return len([v for v in versions if v["Key"] == key])
