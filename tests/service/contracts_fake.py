"""An in-memory stand-in for the contracts port (``get``, ``datasets``) until the validation stage
ships its own in-memory ContractStore; tests/adapters/test_training_contracts_contract.py holds it
to the S3 store's answers."""

from __future__ import annotations

from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import NoContract


class FakeContracts:
    def __init__(self, *contracts: Contract) -> None:
        self._contracts = {c.dataset: c for c in contracts}

    def put(self, contract: Contract) -> None:
        self._contracts[contract.dataset] = contract

    def get(self, dataset: str) -> Contract:
        try:
            return self._contracts[dataset]
        except KeyError:
            raise NoContract(f"no contract for dataset {dataset!r}") from None

    def datasets(self) -> list[str]:
        return sorted(self._contracts)
