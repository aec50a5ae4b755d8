"""The upload source port (opening the notified object version): one suite, run against the
in-memory and the S3 (moto) implementation."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.adapters.memory.upload_source import MemoryUploadSource
from chalicelib.errors import NotFound
from chalicelib.ingest.exceptions import ObjectGone
from chalicelib.ingest.ports import UploadSource
from tests.adapters.buckets import MemoryBucket, MotoBucket


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[UploadSource, Any]:
    if request.param == "memory":
        objects = MemoryObjects()
        return MemoryUploadSource(objects), MemoryBucket(objects, "data")
    from chalicelib.adapters.aws.upload_source import S3UploadSource

    settings = request.getfixturevalue("aws_module")
    return S3UploadSource(), MotoBucket(settings.data_bucket)


@pytest.fixture
def key() -> str:
    return f"incoming/iris/{uuid.uuid4().hex[:10]}.csv"


def test_the_notified_version_opens_with_its_bytes_size_and_version(
    backend: tuple[UploadSource, Any], key: str
) -> None:
    source, bucket = backend
    version = bucket.put(key, b"a,label\n1,y\n")
    opened = source.open(bucket.name, key, version, "")
    assert opened.body.read() == b"a,label\n1,y\n"
    opened.body.close()
    assert (opened.version_id, opened.size) == (version, 12)


def test_without_a_version_the_read_tells_which_version_it_was(
    backend: tuple[UploadSource, Any], key: str
) -> None:
    source, bucket = backend
    version = bucket.put(key, b"x\n")
    opened = source.open(bucket.name, key, None, bucket.etag(key))
    assert opened.version_id == version
    assert opened.body.read() == b"x\n"


def test_the_body_streams_in_chunks(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    data = b"".join(f"{i},y\n".encode() for i in range(5000))
    version = bucket.put(key, data)
    body = source.open(bucket.name, key, version, "").body
    chunks = []
    while chunk := body.read(4096):
        assert len(chunk) <= 4096
        chunks.append(chunk)
    body.close()
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_an_older_version_still_opens_after_an_overwrite(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    first = bucket.put(key, b"first\n")
    bucket.put(key, b"second\n")
    assert source.open(bucket.name, key, first, "").body.read() == b"first\n"


def test_an_overwritten_object_notified_by_etag_only_is_gone(
    backend: tuple[UploadSource, Any], key: str
) -> None:
    source, bucket = backend
    bucket.put(key, b"first\n")
    notified = bucket.etag(key)
    bucket.put(key, b"second\n")
    with pytest.raises(ObjectGone):
        source.open(bucket.name, key, None, notified)


def test_a_deleted_object_is_gone(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    bucket.put(key, b"x\n")
    bucket.delete(key)
    with pytest.raises(ObjectGone, match=key) as caught:
        source.open(bucket.name, key, None, "")
    assert isinstance(caught.value, NotFound)


def test_a_deleted_version_is_gone(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    version = bucket.put(key, b"x\n")
    bucket.delete(key, version)
    with pytest.raises(ObjectGone):
        source.open(bucket.name, key, version, "")


def test_a_key_never_written_is_gone(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    with pytest.raises(ObjectGone):
        source.open(bucket.name, key, None, "")


def test_a_byte_range_of_a_version_reads_exactly_those_bytes(
    backend: tuple[UploadSource, Any], key: str
) -> None:
    source, bucket = backend
    first = bucket.put(key, b"a,label\n1,y\n2,n\n")
    bucket.put(key, b"overwritten\n")
    for start, end in [(0, 8), (8, 12), (12, 16), (3, 4), (5, 5)]:
        body = source.read_range(bucket.name, key, first, start, end)
        assert body.read() == b"a,label\n1,y\n2,n\n"[start:end]
        body.close()


def test_a_byte_range_of_a_deleted_version_is_gone(backend: tuple[UploadSource, Any], key: str) -> None:
    source, bucket = backend
    version = bucket.put(key, b"a,label\n1,y\n")
    bucket.delete(key, version)
    with pytest.raises(ObjectGone):
        source.read_range(bucket.name, key, version, 0, 4).read()
