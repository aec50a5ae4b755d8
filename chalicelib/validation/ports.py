"""What the validation stage needs from the outside: stores and a queue, as small interfaces.

AWS implementations live in ``chalicelib.adapters.aws``, in-memory ones in
``chalicelib.adapters.memory``; one contract suite per port (tests/adapters) runs against both.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.validation.contract import Contract
from chalicelib.validation.layout import ObjectTags, SourceObject


class ContractStore(Protocol):
    """The datasets' data contracts (versioned: storing again keeps the earlier versions)."""

    def get(self, dataset: str) -> Contract:
        """The dataset's current contract. Raises NoContract if it has none, ContractError if the
        stored document is no longer a valid contract."""
        ...

    def put(self, contract: Contract) -> str:
        """Store the contract as the dataset's current one. Returns its key. Checks nothing: storing
        through ``chalicelib.validation.service.store_contract`` checks the sections first."""
        ...

    def datasets(self) -> list[str]:
        """The names of the datasets that have a contract, sorted."""
        ...


class ValidationStore(Protocol):
    """Where a validated upload's outputs go: reports, copies of the upload, reference profiles.

    Writes keep S3's rules (``chalicelib.validation.layout.s3_write_problem``): a key of more than
    1,024 bytes, or metadata that is not printable ASCII or is over 2 KB, raises ValueError and
    nothing is written. Source keys may hold any Unicode.
    """

    def put_json(self, key: str, document: Any, tags: ObjectTags) -> None:
        """Write a JSON document (NaN refused), replacing whatever the key held."""
        ...

    def get_json(self, key: str) -> Any:
        """A JSON document written here (None if the key holds nothing)."""
        ...

    def put_bytes(self, key: str, body: bytes, tags: ObjectTags) -> None:
        """Write bytes (a row digest), replacing whatever the key held."""
        ...

    def create_bytes(self, key: str, body: bytes, tags: ObjectTags) -> bool:
        """Write bytes unless the key holds some (create-only). True if this call wrote them."""
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """Bytes written here (None if the key holds nothing)."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted (as S3 lists them: by UTF-8 bytes)."""
        ...

    def copy(self, source: SourceObject, key: str, metadata: dict[str, str], tags: ObjectTags) -> None:
        """Copy an upload's bytes to ``key`` with this metadata and these tags (replacing the
        source's own). The source is only read: never modified or deleted."""
        ...

    def reference(self, dataset: str) -> dict[str, Any] | None:
        """The dataset's drift reference profile (None before the first valid upload)."""
        ...

    def create_reference(self, dataset: str, profile: dict[str, Any], classification: str) -> bool:
        """Make this profile the reference unless one exists (create-only). True if this call did."""
        ...


class Queue(Protocol):
    """A message queue, send side (the retrain queue that hears about validated data)."""

    def send(self, body: dict[str, Any]) -> None:
        """Send one message; the body arrives as JSON."""
        ...
