"""What the training stage needs from outside, as small structural interfaces.

Adapters implement them: ``chalicelib.adapters.aws`` (DynamoDB, S3, AWS Batch),
``chalicelib.adapters.local`` (the training job as a child process, for the local cloud) and
``chalicelib.adapters.memory`` (service tests). ``chalicelib.bootstrap`` wires the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chalicelib.training.policy import DatasetState, Trigger
from chalicelib.validation.contract import Contract

Clock = Callable[[], datetime]
"""Now, as an aware UTC datetime."""


class RunsStore(Protocol):
    """Each dataset's retrain state with its single-flight lock, and the record of every run.

    Every write is atomic and conditional where it says so: concurrent kickoffs rely on it.
    """

    def count_upload(self, trigger: Trigger) -> bool:
        """Add a ``data`` trigger's rows (and drift) to its dataset, once per upload. True if new."""
        ...

    def state(self, dataset: str, now: datetime | None = None) -> DatasetState:
        """The dataset's state; a lock whose expiry has passed at ``now`` is no run in flight."""
        ...

    def coalesced(self, dataset: str) -> list[dict[str, Any]]:
        """The triggers recorded while the current (or last) run was in flight, oldest first."""
        ...

    def try_lock(self, dataset: str, run_id: str, now: datetime, seen: DatasetState | None = None) -> bool:
        """Take the dataset's lock for ``run_id`` unless a live lock is held; exactly one of
        concurrent callers wins. Taking it starts a run: the counts and coalesced triggers reset.

        With ``seen`` (the state the decision read), the lock is also refused if rows or drift were
        counted since that read: the reset would otherwise drop an upload the run's snapshot may
        have missed. The caller reads again and decides again."""
        ...

    def coalesce(self, dataset: str, trigger: Trigger, run_id: str | None) -> None:
        """Record a trigger that arrived during run ``run_id``: it is re-evaluated when that run ends."""
        ...

    def release(self, dataset: str, run_id: str, succeeded: bool, now: datetime) -> list[dict[str, Any]]:
        """Free the lock if ``run_id`` holds it (else nothing changes); returns the coalesced triggers."""
        ...

    def create_run(self, run: dict[str, Any]) -> None:
        """Record a new run (``run["run_id"]``). Raises RunExists if that id is taken."""
        ...

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a recorded run. Raises NoRun if there is none."""
        ...

    def add_attempt(self, run_id: str) -> int:
        """Count one more attempt of a recorded run; returns the count. Raises NoRun if there is none."""
        ...

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run's record, or None."""
        ...

    def list_runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Every run (of ``dataset``), oldest ``created_at`` first."""
        ...


class Launcher(Protocol):
    """Starts the training job of a run (AWS Batch, a local process, or a recording double)."""

    def launch(self, run_id: str, dataset: str) -> dict[str, Any]:
        """Start the job; returns where it went (``backend`` and the backend's job identity).
        Raises ValueError on an empty run id or dataset."""
        ...


class SnapshotStore(Protocol):
    """The validated data of a dataset, and the immutable manifests that pin a run's data."""

    def validated_objects(self, dataset: str) -> list[dict[str, Any]]:
        """Every validated object of the dataset, by key: ``key``, ``version_id``, ``etag``, ``size``,
        ``sha256``, ``upload_id`` (these two "" when unknown) and ``uploaded_at``: when its upload
        arrived, as ``chalicelib.validation.layout.upload_order`` writes it (the copy's own time
        when the upload's is not recorded)."""
        ...

    def put_manifest(self, key: str, manifest: dict[str, Any], dataset: str, classification: str) -> bool:
        """Store a manifest create-only. True if this call wrote it, False if the key was taken."""
        ...

    def get_manifest(self, key: str) -> dict[str, Any] | None:
        """A stored manifest, or None."""
        ...


class Revocations(Protocol):
    """Which uploads were revoked (the uploads ledger keeps them; ``chalicelib.revocation``)."""

    def revoked(self, dataset: str) -> frozenset[str]:
        """The ids of the dataset's revoked uploads: no snapshot, hence no training set or holdout,
        holds their rows."""
        ...


class NoRevocations:
    """Nothing revoked (a store without a ledger: service tests of other concerns)."""

    def revoked(self, dataset: str) -> frozenset[str]:
        return frozenset()


class Contracts(Protocol):
    """The datasets' contracts (the validation stage owns them; training reads them)."""

    def get(self, dataset: str) -> Contract:
        """The dataset's contract. Raises NoContract if it has none."""
        ...

    def datasets(self) -> list[str]:
        """The names of every dataset with a contract."""
        ...
