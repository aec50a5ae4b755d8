"""What scoring needs from outside: stored artifacts, and the registry's pointers and version records.

The adapters live in ``chalicelib.adapters`` (S3 and DynamoDB, or in memory); ``chalicelib.bootstrap``
wires them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredObject:
    """An object's bytes, as stored, and the version id the store gave it (None if unversioned)."""

    data: bytes
    version_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


class ArtifactReader(Protocol):
    """Reads model artifacts and candidate files by bucket and key, optionally at a version."""

    def read(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        """The object (its latest version, or ``version_id``); None if there is no such object."""
        ...


class RegistryReader(Protocol):
    """The registry reads scoring needs: the pointers and the version records."""

    def champion(self, model: str) -> int | None: ...

    def challenger(self, model: str) -> int | None: ...

    def version(self, model: str, v: int) -> dict[str, Any] | None: ...

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Every version of the model, oldest first (empty: no such model)."""
        ...

    def rollout(self, model: str) -> dict[str, Any] | None:
        """The model's running or last rollout pointer (``chalicelib.registry.rollout.Rollout.to_dict``;
        ``chalicelib.serving.routing.live_split`` reads it); None: never one."""
        ...
