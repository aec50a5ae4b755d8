"""The bucket listing port (the sweep's ListObjectsV2): one suite, run against the in-memory and the
S3 (moto) implementation."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from chalicelib.adapters.memory.bucket_listing import MemoryBucketListing
from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.ingest.ports import BucketListing, Listing
from tests.adapters.buckets import MemoryBucket, MotoBucket


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[BucketListing, Any]:
    if request.param == "memory":
        objects = MemoryObjects()
        return MemoryBucketListing(objects), MemoryBucket(objects, "data")
    from chalicelib.adapters.aws.bucket_listing import S3BucketListing

    settings = request.getfixturevalue("aws_module")
    return S3BucketListing(), MotoBucket(settings.data_bucket)


@pytest.fixture
def top() -> str:
    """A top-level folder of its own, so tests sharing the module's bucket do not see each other."""
    return f"t{uuid.uuid4().hex[:10]}"


def _all(listing: BucketListing, bucket: str, prefix: str, delimiter: str | None = None) -> list[Listing]:
    pages = [listing.page(bucket, prefix, delimiter)]
    while pages[-1].token is not None:
        pages.append(listing.page(bucket, prefix, delimiter, pages[-1].token))
    return pages


def test_with_a_delimiter_the_folders_roll_up_and_the_objects_come_with_etag_and_size(
    backend: tuple[BucketListing, Any], top: str
) -> None:
    listing, bucket = backend
    for key in (f"{top}/a.csv", f"{top}/sales/day1.csv", f"{top}/sales/day2.csv", f"{top}/z/y/x.csv"):
        bucket.put(key, b"a,b\n1,2\n")
    (page,) = _all(listing, bucket.name, f"{top}/", "/")
    assert page.prefixes == [f"{top}/sales/", f"{top}/z/"]
    (only,) = page.objects
    assert (only.key, only.size, only.etag) == (f"{top}/a.csv", 8, hashlib.md5(b"a,b\n1,2\n").hexdigest())


def test_without_a_delimiter_every_key_under_the_prefix_in_key_order(
    backend: tuple[BucketListing, Any], top: str
) -> None:
    listing, bucket = backend
    keys = [f"{top}/sales/{name}" for name in ("b.csv", "a.csv", "deep/c.csv", "relevé 🧾.csv")]
    for key in keys:
        bucket.put(key, b"x")
    bucket.put(f"{top}/other/d.csv", b"x")
    pages = _all(listing, bucket.name, f"{top}/sales/")
    assert [o.key for p in pages for o in p.objects] == sorted(keys)
    assert all(not p.prefixes for p in pages)


def test_a_deleted_object_is_not_listed(backend: tuple[BucketListing, Any], top: str) -> None:
    listing, bucket = backend
    bucket.put(f"{top}/gone.csv", b"x")
    bucket.delete(f"{top}/gone.csv")
    assert _all(listing, bucket.name, f"{top}/")[0].objects == []
