"""The contracts store in memory (``contracts/<dataset>.json`` in a ``MemoryObjects`` bucket)."""

from __future__ import annotations

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import NoContract
from chalicelib.validation.layout import CONTRACTS_PREFIX, ObjectTags, contract_key, dataset_of_contract_key


class MemoryContractStore:
    def __init__(self, objects: MemoryObjects | None = None, bucket: str = "data") -> None:
        self.objects = objects or MemoryObjects()
        self.bucket = bucket

    def get(self, dataset: str) -> Contract:
        key = contract_key(dataset)
        stored = self.objects.get(self.bucket, key)
        if stored is None:
            raise NoContract(f"no contract for dataset {dataset!r} at memory://{self.bucket}/{key}")
        return Contract.from_json(stored.body)

    def put(self, contract: Contract) -> str:
        key = contract_key(contract.dataset)
        self.objects.put(
            self.bucket,
            key,
            contract.to_json().encode(),
            content_type="application/json",
            tags=ObjectTags(contract.dataset, "internal", "contract").as_dict(),
        )
        return key

    def datasets(self) -> list[str]:
        names = (dataset_of_contract_key(key) for key in self.objects.keys(self.bucket, CONTRACTS_PREFIX))
        return sorted(name for name in names if name)
