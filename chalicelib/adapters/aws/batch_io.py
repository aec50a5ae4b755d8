"""Batch inference's S3 and SQS adapters: the input objects, the jobs' JSON files, the work queue.

* ``S3Inputs`` (``InputReader``): the latest version of each object under a prefix
  (``ListObjectVersions``), and byte ranges of that version (``GetObject`` with ``Range``).
* ``S3JobFiles`` (``JobFiles``): requests, plans and manifests, written create-only
  (``IfNoneMatch="*"``) so two planners or finishers never overwrite each other.
* ``SqsShardQueue`` (``ShardQueue``): shard messages, ten to a ``SendMessageBatch``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.batch.sharding import InputObject

JSON = "application/json"
SQS_BATCH = 10  # the most messages one SendMessageBatch takes


def _version(version_id: str | None) -> dict[str, str]:
    # An object written before versioning was enabled has the version id "null", which GetObject refuses.
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


class S3Inputs:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def exists(self, prefix: str) -> bool:
        listed = aws.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(listed.get("KeyCount"))

    def objects(self, prefix: str) -> list[InputObject]:
        pages = (
            aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [
            InputObject(version["Key"], int(version["Size"]), version.get("VersionId"))
            for page in pages
            for version in page.get("Versions", [])
            if version.get("IsLatest") and not version["Key"].endswith("/")
        ]

    def read(self, obj: InputObject, start: int, length: int) -> bytes:
        response = aws.client("s3").get_object(
            Bucket=self.bucket,
            Key=obj.key,
            Range=f"bytes={start}-{start + length - 1}",
            **_version(obj.version_id),
        )
        return bytes(response["Body"].read())


class S3JobFiles:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def create(self, key: str, body: bytes) -> bool:
        return aws.put_if_absent(self.bucket, key, body, ContentType=JSON)

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        try:
            response = aws.client("s3").get_object(Bucket=self.bucket, Key=key, **_version(version_id))
        except ClientError as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                return None
            raise
        return bytes(response["Body"].read())


class SqsShardQueue:
    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(aws.client("sqs").get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH):
            entries = [
                {"Id": str(start + i), "MessageBody": json.dumps(message)}
                for i, message in enumerate(messages[start : start + SQS_BATCH])
            ]
            failed = aws.client("sqs").send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed")
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} shard message(s): {failed[0]}")
