"""Listing the data bucket with S3's ListObjectsV2 (keys, ETags, sizes; never the bytes)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.ingest.ports import ListedObject, Listing


class S3BucketListing:
    def page(
        self, bucket: str, prefix: str, delimiter: str | None = None, token: str | None = None
    ) -> Listing:
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            args["Delimiter"] = delimiter
        if token:
            args["ContinuationToken"] = token
        response = aws.client("s3").list_objects_v2(**args)
        return Listing(
            prefixes=[p["Prefix"] for p in response.get("CommonPrefixes", [])],
            objects=[
                ListedObject(
                    key=o["Key"],
                    etag=str(o.get("ETag", "")).strip('"'),
                    size=int(o.get("Size", 0)),
                    last_modified=o.get("LastModified"),
                )
                for o in response.get("Contents", [])
            ],
            token=response.get("NextContinuationToken") if response.get("IsTruncated") else None,
        )
