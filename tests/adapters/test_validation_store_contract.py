"""The validation outputs port (reports, copies of uploads, reference profiles): one suite, run
against the in-memory and the S3 (moto) implementation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.adapters.memory.validation_outputs import MemoryValidationStore
from chalicelib.validation.layout import ObjectTags, SourceObject
from chalicelib.validation.ports import ValidationStore
from tests.adapters.buckets import MemoryBucket, MotoBucket


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[ValidationStore, Any]:
    if request.param == "memory":
        objects = MemoryObjects()
        return MemoryValidationStore(objects, "data"), MemoryBucket(objects, "data")
    from chalicelib.adapters.aws.validation_outputs import S3ValidationStore

    settings = request.getfixturevalue("aws_module")
    return S3ValidationStore(settings.data_bucket), MotoBucket(settings.data_bucket)


@pytest.fixture
def name() -> str:
    """A dataset of this test's own (the moto stack is shared by the module's tests)."""
    return f"ds_{uuid.uuid4().hex[:10]}"


TAGS = ObjectTags("iris", "confidential", "report")


def test_a_json_document_reads_back_equal_as_json_with_its_tags(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    key = f"reports/{name}/u1.json"
    document = {"status": "valid", "rows": 3, "ratio": 0.25, "issues": [], "none": None}
    store.put_json(key, document, ObjectTags(name, "confidential", "report"))
    assert store.get_json(key) == document
    seen = bucket.peek(key)
    assert seen.content_type == "application/json"
    assert seen.tags == {"dataset": name, "classification": "confidential", "stage": "report"}


def test_writing_a_key_again_replaces_the_document(backend: tuple[ValidationStore, Any], name: str) -> None:
    store, _ = backend
    key = f"reports/{name}/u1.json"
    store.put_json(key, {"n": 1}, TAGS)
    store.put_json(key, {"n": 2}, TAGS)
    assert store.get_json(key) == {"n": 2}


def test_a_document_with_nan_is_refused_and_nothing_is_written(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, _ = backend
    key = f"reports/{name}/nan.json"
    with pytest.raises(ValueError):
        store.put_json(key, {"x": float("nan")}, TAGS)
    assert store.get_json(key) is None


def test_a_key_that_holds_nothing_reads_as_none(backend: tuple[ValidationStore, Any], name: str) -> None:
    store, _ = backend
    assert store.get_json(f"reports/{name}/nothing.json") is None


def test_bytes_read_back_with_their_tags_and_keys_are_listed_by_prefix_in_order(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    prefix = f"profiles/{name}/rows/"
    body = bytes(range(256)) * 3
    store.put_bytes(prefix + "2.rows", body, ObjectTags(name, "pii", "profile"))
    store.put_bytes(prefix + "1.rows", b"one", ObjectTags(name, "pii", "profile"))
    store.put_bytes(f"profiles/{name}/reference.json", b"{}", ObjectTags(name, "pii", "profile"))
    assert store.get_bytes(prefix + "2.rows") == body
    assert store.get_bytes(prefix + "3.rows") is None
    assert store.keys(prefix) == [prefix + "1.rows", prefix + "2.rows"]
    assert store.keys(f"profiles/{name}-other/") == []
    assert bucket.peek(prefix + "2.rows").tags == {
        "dataset": name,
        "classification": "pii",
        "stage": "profile",
    }


def test_a_copy_has_the_source_versions_bytes_the_given_metadata_and_tags_and_leaves_the_source_alone(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    source_key = f"incoming/{name}/day1.csv"
    first = bucket.put(source_key, b"a,label\n1,y\n")
    bucket.put(source_key, b"a,label\n2,n\n")  # a later overwrite: the copy is of the notified version
    metadata = {"upload-id": "u1", "source-key": source_key, "source-version": first, "sha256": "abc"}
    store.copy(
        SourceObject(bucket.name, source_key, first),
        f"validated/{name}/u1.csv",
        metadata,
        ObjectTags(name, "internal", "validated"),
    )
    copied = bucket.peek(f"validated/{name}/u1.csv")
    assert copied.body == b"a,label\n1,y\n"
    assert copied.metadata == metadata
    assert copied.tags == {"dataset": name, "classification": "internal", "stage": "validated"}
    assert bucket.version_count(source_key) == 2
    assert bucket.peek(source_key).body == b"a,label\n2,n\n"
    assert bucket.peek(source_key).metadata == {}


def test_a_copy_without_a_version_takes_the_current_bytes(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    source_key = f"incoming/{name}/x.csv"
    bucket.put(source_key, b"old\n")
    bucket.put(source_key, b"new\n")
    store.copy(SourceObject(bucket.name, source_key, None), f"quarantine/{name}/u/x.csv", {}, TAGS)
    assert bucket.peek(f"quarantine/{name}/u/x.csv").body == b"new\n"


def test_there_is_no_reference_before_one_is_created(backend: tuple[ValidationStore, Any], name: str) -> None:
    store, _ = backend
    assert store.reference(name) is None


def test_the_first_reference_is_kept_and_a_second_is_refused(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    assert (
        store.create_reference(name, {"rows": 150, "columns": {"a": {"mean": 0.5}}}, "confidential") is True
    )
    assert store.create_reference(name, {"rows": 999, "columns": {}}, "confidential") is False
    assert store.reference(name) == {"rows": 150, "columns": {"a": {"mean": 0.5}}}
    seen = bucket.peek(f"profiles/{name}/reference.json")
    assert seen.tags == {"dataset": name, "classification": "confidential", "stage": "profile"}
    assert json.loads(seen.body)["rows"] == 150


@pytest.mark.parametrize(
    "metadata, why",
    [
        ({"source-key": "incoming/x/é.csv"}, "ASCII"),  # botocore refuses it for S3, and S3 itself
        ({"source-key": "line\nbreak"}, "ASCII"),  # a header value cannot hold a control character
        ({"source-key": "x" * 2100}, "2 KB"),  # S3: keys and values together at most 2 KB
    ],
)
def test_metadata_s3_would_refuse_is_refused_before_anything_is_written(
    backend: tuple[ValidationStore, Any], name: str, metadata: dict[str, str], why: str
) -> None:
    store, bucket = backend
    source_key = f"incoming/{name}/day1.csv"
    version = bucket.put(source_key, b"a\n1\n")
    with pytest.raises(ValueError, match=why):
        store.copy(SourceObject(bucket.name, source_key, version), f"validated/{name}/u1.csv", metadata, TAGS)
    assert bucket.peek(f"validated/{name}/u1.csv") is None


def test_a_key_longer_than_s3_allows_is_refused(backend: tuple[ValidationStore, Any], name: str) -> None:
    store, bucket = backend
    source_key = f"incoming/{name}/day1.csv"
    version = bucket.put(source_key, b"a\n1\n")
    too_long = f"quarantine/{name}/u1/" + "é" * 512  # 1,024 bytes of name alone
    with pytest.raises(ValueError, match="1024"):
        store.copy(SourceObject(bucket.name, source_key, version), too_long, {}, TAGS)
    with pytest.raises(ValueError, match="1024"):
        store.put_json(too_long, {"n": 1}, TAGS)


@pytest.mark.parametrize(
    "file_name", ["é.csv", "e\u0301.csv", "day 1 + 2 (50% off).csv", "東京/relevé 🩺.csv", "a?b#c&d=e.csv"]
)
def test_an_upload_with_any_unicode_key_is_copied_from_exactly_that_key(
    backend: tuple[ValidationStore, Any], name: str, file_name: str
) -> None:
    store, bucket = backend
    source_key = f"incoming/{name}/{file_name}"
    version = bucket.put(source_key, b"a\n1\n")
    bucket.put(f"incoming/{name}/other.csv", b"other\n")
    store.copy(SourceObject(bucket.name, source_key, version), f"quarantine/{name}/u1/{file_name}", {}, TAGS)
    assert bucket.peek(f"quarantine/{name}/u1/{file_name}").body == b"a\n1\n"
    assert bucket.peek(source_key).body == b"a\n1\n"


def test_bytes_are_created_once_and_a_second_create_leaves_the_first(
    backend: tuple[ValidationStore, Any], name: str
) -> None:
    store, bucket = backend
    key = f"shards/{name}/u1/00000.part"
    tags = ObjectTags(name, "confidential", "profile")
    assert store.create_bytes(key, b"first", tags) is True
    assert store.create_bytes(key, b"second", tags) is False
    assert store.get_bytes(key) == b"first"
    assert bucket.peek(key).tags == {"dataset": name, "classification": "confidential", "stage": "profile"}
