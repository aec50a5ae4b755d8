"""The data snapshot port, one suite for both adapters: in memory and S3 (in-process moto).

The kickoff pins a run's data by listing the validated objects (each with its version, size and
sha256) and storing the manifest create-only under a key named by its hash.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chalicelib.adapters.aws.snapshots import S3SnapshotStore
from chalicelib.adapters.memory.snapshots import MemorySnapshotStore
from chalicelib.training.ports import SnapshotStore
from chalicelib.validation.layout import upload_order


@dataclass
class Backend:
    store: SnapshotStore
    # key, body, upload id, upload time (ISO 8601, "" for none): as validation writes it
    put_validated: Callable[..., None]


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemorySnapshotStore()
        yield Backend(memory, memory.put_validated)
        return
    import boto3

    bucket = request.getfixturevalue("aws_module").data_bucket

    def put(key: str, body: bytes, upload_id: str, uploaded_at: str = "") -> None:
        metadata = {"sha256": hashlib.sha256(body).hexdigest(), "upload-id": upload_id}
        if uploaded_at:
            metadata["uploaded-at"] = upload_order(uploaded_at)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)

    yield Backend(S3SnapshotStore(bucket), put)


@pytest.fixture
def dataset() -> str:
    return f"d-{uuid.uuid4().hex[:8]}"


def test_validated_objects_are_listed_by_key_with_version_size_and_hashes(backend, dataset):
    backend.put_validated(f"validated/{dataset}/b.csv", b"x,y\n1,2\n", "u-b")
    backend.put_validated(f"validated/{dataset}/a.csv", b"x,y\n", "u-a")
    objects = backend.store.validated_objects(dataset)
    assert [o["key"] for o in objects] == [f"validated/{dataset}/a.csv", f"validated/{dataset}/b.csv"]
    first = objects[0]
    assert first["size"] == 4 and first["upload_id"] == "u-a"
    assert first["sha256"] == hashlib.sha256(b"x,y\n").hexdigest()
    assert first["etag"] == hashlib.md5(b"x,y\n", usedforsecurity=False).hexdigest()
    assert first["version_id"] and set(first) == {
        "key", "version_id", "etag", "size", "sha256", "upload_id", "uploaded_at",
    }  # fmt: skip


def test_each_object_says_when_its_upload_arrived_in_a_text_that_sorts_by_time(backend, dataset):
    backend.put_validated(f"validated/{dataset}/a.csv", b"1", "u-a", "2026-11-30T12:00:01.250Z")
    backend.put_validated(f"validated/{dataset}/b.csv", b"2", "u-b", "2026-11-30T13:00:00+01:00")
    backend.put_validated(f"validated/{dataset}/c.csv", b"3", "u-c")  # not recorded: the copy's own time
    times = {o["upload_id"]: o["uploaded_at"] for o in backend.store.validated_objects(dataset)}
    assert times["u-a"] == "20261130T120001.250000Z" and times["u-b"] == "20261130T120000.000000Z"
    assert upload_order(times["u-c"]) == times["u-c"]  # a time, in the same form


def test_only_the_datasets_own_validated_objects_are_listed(backend, dataset):
    backend.put_validated(f"validated/{dataset}-2/a.csv", b"1", "u1")
    backend.put_validated(f"incoming/{dataset}/a.csv", b"1", "u2")
    assert backend.store.validated_objects(dataset) == []


def test_rewriting_an_object_lists_its_new_version(backend, dataset):
    key = f"validated/{dataset}/a.csv"
    backend.put_validated(key, b"1", "u1")
    (before,) = backend.store.validated_objects(dataset)
    backend.put_validated(key, b"22", "u1")
    (after,) = backend.store.validated_objects(dataset)
    assert after["version_id"] != before["version_id"] and after["size"] == 2


def test_a_manifest_is_stored_once_and_never_replaced(backend, dataset):
    key = f"manifests/{dataset}/abc.json"
    manifest = {"dataset": dataset, "data_hash": "abc", "objects": [{"key": "k", "size": 1}], "bytes": 1}
    assert backend.store.get_manifest(key) is None
    assert backend.store.put_manifest(key, manifest, dataset, "confidential")
    assert not backend.store.put_manifest(key, {**manifest, "bytes": 2}, dataset, "confidential")
    assert backend.store.get_manifest(key) == manifest


def test_s3_manifests_carry_the_dataset_classification_and_stage_tags(aws_module, dataset):
    import boto3

    key = f"manifests/{dataset}/abc.json"
    S3SnapshotStore(aws_module.data_bucket).put_manifest(key, {"data_hash": "abc"}, dataset, "confidential")
    tags = boto3.client("s3").get_object_tagging(Bucket=aws_module.data_bucket, Key=key)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "dataset": dataset,
        "classification": "confidential",
        "stage": "manifest",
    }
