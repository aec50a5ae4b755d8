"""The contracts store port: one suite, run against the in-memory and the S3 (moto) implementation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.adapters.memory.contracts import MemoryContractStore
from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.errors import NotFound
from chalicelib.validation import Contract, ContractError, NoContract
from chalicelib.validation.ports import ContractStore
from tests.adapters.buckets import MemoryBucket, MotoBucket


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[ContractStore, Any]:
    if request.param == "memory":
        objects = MemoryObjects()
        return MemoryContractStore(objects, "data"), MemoryBucket(objects, "data")
    from chalicelib.adapters.aws.contracts import S3ContractStore

    settings = request.getfixturevalue("aws_module")
    return S3ContractStore(settings.data_bucket), MotoBucket(settings.data_bucket)


@pytest.fixture
def store(backend: tuple[ContractStore, Any]) -> ContractStore:
    return backend[0]


@pytest.fixture
def name() -> str:
    """A dataset of this test's own (the moto stack is shared by the module's tests)."""
    return f"ds_{uuid.uuid4().hex[:10]}"


def contract(dataset: str, version: int = 1, **extensions: Any) -> Contract:
    return Contract.parse(
        {
            "dataset": dataset,
            "version": version,
            "columns": [
                {"name": "a", "type": "float", "classification": "public"},
                {"name": "label", "type": "category", "classification": "internal", "allowed": ["y", "n"]},
            ],
            "target": "label",
            "task": "classification",
            **extensions,
        }
    )


def test_a_stored_contract_reads_back_equal(store: ContractStore, name: str) -> None:
    stored = contract(name, training={"model": {"family": "logistic"}})
    store.put(stored)
    assert store.get(name) == stored


def test_put_returns_the_contracts_key(store: ContractStore, name: str) -> None:
    assert store.put(contract(name)) == f"contracts/{name}.json"


def test_a_dataset_without_a_contract_is_no_contract_naming_it(store: ContractStore, name: str) -> None:
    with pytest.raises(NoContract, match=name) as caught:
        store.get(name)
    assert isinstance(caught.value, NotFound)


def test_storing_again_makes_the_new_contract_current_and_keeps_the_old_version(
    backend: tuple[ContractStore, Any], name: str
) -> None:
    store, bucket = backend
    store.put(contract(name, version=1))
    store.put(contract(name, version=2))
    assert store.get(name).version == 2
    assert bucket.version_count(f"contracts/{name}.json") == 2


def test_the_stored_contract_is_json_tagged_internal_contract(
    backend: tuple[ContractStore, Any], name: str
) -> None:
    store, bucket = backend
    key = store.put(contract(name))
    seen = bucket.peek(key)
    assert seen.content_type == "application/json"
    assert seen.tags == {"dataset": name, "classification": "internal", "stage": "contract"}
    assert Contract.from_json(seen.body) == contract(name)


def test_a_stored_document_that_is_no_longer_a_contract_is_a_contract_error(
    backend: tuple[ContractStore, Any], name: str
) -> None:
    store, bucket = backend
    bucket.put(f"contracts/{name}.json", b'{"dataset": "x"}')
    with pytest.raises(ContractError):
        store.get(name)


def test_datasets_lists_each_dataset_with_a_contract_once_sorted(
    backend: tuple[ContractStore, Any], name: str
) -> None:
    store, bucket = backend
    second = f"{name}_b"
    store.put(contract(second))
    store.put(contract(name))
    store.put(contract(name, version=2))
    bucket.put(f"contracts/{name}-notes.txt", b"not a contract")  # not <dataset>.json: not listed
    listed = store.datasets()
    assert listed == sorted(listed)
    assert [d for d in listed if d.startswith(name)] == [name, second]
