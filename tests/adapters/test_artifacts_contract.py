"""The artifact reader's contract, held by both stores: in memory and S3 (moto, the versioned models
bucket): the latest version or a given one, its version id and size, None for a missing object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib.adapters.aws.artifacts import S3Artifacts
from chalicelib.adapters.memory.artifacts import MemoryArtifacts
from chalicelib.serving.ports import ArtifactReader

BUCKET = "serverless-mlops-local-models"

Put = Callable[[str, bytes], str]


@pytest.fixture(params=["memory", "moto"])
def store(request: pytest.FixtureRequest) -> tuple[ArtifactReader, Put]:
    """The reader, and a function writing an object to the bucket (returns the new version id)."""
    if request.param == "memory":
        memory = MemoryArtifacts()
        return memory, lambda key, data: memory.put(BUCKET, key, data)
    settings: Any = request.getfixturevalue("aws")
    assert settings.models_bucket == BUCKET

    def put(key: str, data: bytes) -> str:
        return str(boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)["VersionId"])

    return S3Artifacts(), put


def test_an_object_reads_back_with_its_version_id_and_size(store):
    reader, put = store
    version = put("models/d/candidates/r1/model.onnx", b"\x00onnx bytes")
    stored = reader.read(BUCKET, "models/d/candidates/r1/model.onnx")
    assert stored is not None
    assert stored.data == b"\x00onnx bytes" and stored.size == 11 and stored.version_id == version
    assert reader.read(BUCKET, "models/d/candidates/r1/model.onnx", version) == stored


def test_an_overwritten_object_keeps_its_earlier_versions(store):
    reader, put = store
    first = put("models/d/candidates/r1/holdout.csv", b"a,b\n1,2\n")
    second = put("models/d/candidates/r1/holdout.csv", b"a,b\n1,3\n")
    assert first != second
    assert reader.read(BUCKET, "models/d/candidates/r1/holdout.csv").data == b"a,b\n1,3\n"
    older = reader.read(BUCKET, "models/d/candidates/r1/holdout.csv", first)
    assert older is not None and older.data == b"a,b\n1,2\n" and older.version_id == first


def test_a_missing_object_is_none(store):
    reader, put = store
    assert reader.read(BUCKET, "models/d/candidates/none/model.onnx") is None
    put("models/d/candidates/r1/empty.json", b"")
    empty = reader.read(BUCKET, "models/d/candidates/r1/empty.json")
    assert empty is not None and empty.data == b"" and empty.size == 0
