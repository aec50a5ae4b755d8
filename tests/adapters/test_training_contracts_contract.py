"""The contracts port as the training stage reads it (``get``, ``datasets``), one suite for the S3
ContractStore (in-process moto) and the in-memory stand-in the service tests use."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chalicelib.errors import NotFound
from chalicelib.training.ports import Contracts
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import NoContract
from tests.service.contracts_fake import FakeContracts


@dataclass
class Backend:
    contracts: Contracts
    put: Callable[[Contract], object]


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        fake = FakeContracts()
        yield Backend(fake, fake.put)
        return
    from chalicelib.validation.store import ContractStore

    store = ContractStore(request.getfixturevalue("aws_module").data_bucket)
    yield Backend(store, store.put)


def _contract(dataset: str) -> Contract:
    return Contract.parse(
        {
            "dataset": dataset,
            "columns": [
                {"name": "x", "type": "float", "classification": "internal"},
                {"name": "y", "type": "integer", "classification": "internal", "allowed": [0, 1]},
            ],
            "target": "y",
            "task": "classification",
        }
    )


def test_a_stored_contract_is_read_back(backend):
    dataset = f"d-{uuid.uuid4().hex[:8]}"
    backend.put(_contract(dataset))
    assert backend.contracts.get(dataset) == _contract(dataset)


def test_a_dataset_without_a_contract_is_refused_by_name(backend):
    with pytest.raises(NoContract, match="nothing-here") as error:
        backend.contracts.get("nothing-here")
    assert isinstance(error.value, NotFound)


def test_datasets_names_every_dataset_with_a_contract(backend):
    names = {f"d-{uuid.uuid4().hex[:8]}" for _ in range(3)}
    for name in names:
        backend.put(_contract(name))
    assert names <= set(backend.contracts.datasets())
    assert all(isinstance(name, str) and not name.endswith(".json") for name in backend.contracts.datasets())
