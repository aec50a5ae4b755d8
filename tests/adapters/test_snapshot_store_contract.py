"""The data snapshot port, one suite for its adapters: in memory, S3 reading each object's metadata
(the kickoff's) and S3 reading none (the API's: the listing and the uploads ledger), in-process moto.

The kickoff pins a run's data by listing the validated objects (each with its version, size and
sha256) and storing the manifest create-only under a key named by its hash. Keys are as validation
writes them, ``validated/<dataset>/<upload id>.csv``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chalicelib.adapters.aws import dynamo
from chalicelib.adapters.aws.snapshots import LedgerSnapshotStore, S3SnapshotStore
from chalicelib.adapters.memory.snapshots import MemorySnapshotStore
from chalicelib.training.ports import SnapshotStore
from chalicelib.validation.layout import upload_order


@dataclass
class Backend:
    store: SnapshotStore
    # key, body, upload id, upload time (ISO 8601, "" for none): as validation writes it
    put_validated: Callable[..., None]


@pytest.fixture(params=["memory", "moto", "moto-ledger"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemorySnapshotStore()
        yield Backend(memory, memory.put_validated)
        return
    settings = request.getfixturevalue("aws_module")
    ledger = request.param == "moto-ledger"

    def put(key: str, body: bytes, upload_id: str, uploaded_at: str = "") -> None:
        validation_copy(settings, key, body, upload_id, uploaded_at, recorded=ledger)

    store = (
        LedgerSnapshotStore(settings.data_bucket, settings.uploads_table)
        if ledger
        else S3SnapshotStore(settings.data_bucket)
    )
    yield Backend(store, put)


def validation_copy(
    settings, key: str, body: bytes, upload_id: str, uploaded_at: str = "", recorded: bool = True
) -> None:
    """A validated copy as validation leaves it: its lineage metadata, and (``recorded``) its upload's
    ledger entry (without an upload time, the copy's: recorded as the entry's event time)."""
    import boto3

    from chalicelib.ingest.uploads import Upload

    sha256 = hashlib.sha256(body).hexdigest()
    metadata = {"sha256": sha256, "upload-id": upload_id}
    if uploaded_at:
        metadata["uploaded-at"] = upload_order(uploaded_at)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=body, Metadata=metadata)
    if not recorded:
        return
    event_time = (
        uploaded_at or s3.head_object(Bucket=settings.data_bucket, Key=key)["LastModified"].isoformat()
    )
    dataset = key.split("/")[1]
    entry = Upload(
        upload_id, settings.data_bucket, f"incoming/{dataset}/{upload_id}.csv", dataset, "v1", "etag",
        len(body), sha256, event_time, "2026-12-01T00:00:00Z", "valid", output_key=key,
    )  # fmt: skip
    boto3.client("dynamodb").put_item(TableName=settings.uploads_table, Item=dynamo.to_item(entry.as_item()))


@pytest.fixture
def dataset() -> str:
    return f"d-{uuid.uuid4().hex[:8]}"


def test_validated_objects_are_listed_by_key_with_version_size_and_hashes(backend, dataset):
    backend.put_validated(f"validated/{dataset}/u-b.csv", b"x,y\n1,2\n", "u-b")
    backend.put_validated(f"validated/{dataset}/u-a.csv.gz", b"x,y\n", "u-a")
    objects = backend.store.validated_objects(dataset)
    assert [o["key"] for o in objects] == [f"validated/{dataset}/u-a.csv.gz", f"validated/{dataset}/u-b.csv"]
    first = objects[0]
    assert first["size"] == 4 and first["upload_id"] == "u-a"
    assert first["sha256"] == hashlib.sha256(b"x,y\n").hexdigest()
    assert first["etag"] == hashlib.md5(b"x,y\n", usedforsecurity=False).hexdigest()
    assert first["version_id"] and set(first) == {
        "key", "version_id", "etag", "size", "sha256", "upload_id", "uploaded_at",
    }  # fmt: skip


def test_each_object_says_when_its_upload_arrived_in_a_text_that_sorts_by_time(backend, dataset):
    backend.put_validated(f"validated/{dataset}/u-a.csv", b"1", "u-a", "2026-11-30T12:00:01.250Z")
    backend.put_validated(f"validated/{dataset}/u-b.csv", b"2", "u-b", "2026-11-30T13:00:00+01:00")
    backend.put_validated(f"validated/{dataset}/u-c.csv", b"3", "u-c")  # not recorded: the copy's own time
    times = {o["upload_id"]: o["uploaded_at"] for o in backend.store.validated_objects(dataset)}
    assert times["u-a"] == "20261130T120001.250000Z" and times["u-b"] == "20261130T120000.000000Z"
    assert upload_order(times["u-c"]) == times["u-c"]  # a time, in the same form


def test_only_the_datasets_own_validated_objects_are_listed(backend, dataset):
    backend.put_validated(f"validated/{dataset}-2/u1.csv", b"1", "u1")
    backend.put_validated(f"incoming/{dataset}/u2.csv", b"1", "u2")
    assert backend.store.validated_objects(dataset) == []


def test_rewriting_an_object_lists_its_new_version(backend, dataset):
    key = f"validated/{dataset}/u1.csv"
    backend.put_validated(key, b"1", "u1")
    (before,) = backend.store.validated_objects(dataset)
    backend.put_validated(key, b"22", "u1")
    (after,) = backend.store.validated_objects(dataset)
    assert after["version_id"] != before["version_id"] and after["size"] == 2


def test_both_s3_stores_list_the_same_objects_and_the_ledgers_leaves_out_uploads_not_recorded(
    aws_module, dataset
):
    """The API's store (no object read) pins the data the kickoff's would, so a request and the
    kickoff agree on a snapshot's hash; an upload still being ingested (no ledger entry: it is
    written last) is not in the API's yet, nor is an object validation did not name."""
    for n, body in enumerate((b"a,b\n1,2\n", b"a,b\n3,4\n5,6\n")):
        validation_copy(aws_module, f"validated/{dataset}/u{n}.csv", body, f"u{n}", f"2026-11-30T0{n}:00:00Z")
    validation_copy(aws_module, f"validated/{dataset}/u9.csv", b"a,b\n", "u9", recorded=False)
    validation_copy(aws_module, f"validated/{dataset}/notes/u8.csv", b"a,b\n", "u8")
    kickoff = S3SnapshotStore(aws_module.data_bucket).validated_objects(dataset)
    api = LedgerSnapshotStore(aws_module.data_bucket, aws_module.uploads_table).validated_objects(dataset)
    assert [o["upload_id"] for o in kickoff] == ["u8", "u0", "u1", "u9"]  # by key
    assert api == [o for o in kickoff if o["upload_id"] in {"u0", "u1"}]


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
