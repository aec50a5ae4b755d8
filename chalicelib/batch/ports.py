"""What batch inference needs from the outside, as small interfaces (implemented in chalicelib/adapters).

The API, the planner, the DLQ handler and the workers receive these in a ``BatchPorts`` from their
entry point (``chalicelib.bootstrap.batch_ports``); nothing in this package builds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.batch.sharding import InputObject
from chalicelib.notify import Notifier
from chalicelib.validation.ports import ContractStore


class JobStore(Protocol):
    """The jobs table: job records, settled shards, errors of attempts, workers' attempts.

    Every write the services rely on to stay correct under concurrent deliveries is conditional:
    ``create`` only if the id is free, ``update`` only if the job exists (and is in one of the
    ``expected`` statuses), ``claim`` only once per flag, and ``mark_done``/``mark_failed`` settle a
    shard and add to the job's counters in one all-or-nothing step, only if the shard is not settled.
    """

    def create(self, job: dict[str, Any]) -> bool:
        """Store a new job (``jobs.new_job`` defaults; None values are not stored). False if the id exists."""
        ...

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job (read consistently), or None."""
        ...

    def update(self, job_id: str, expected: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Set fields on the job; with ``expected``, only if its status is one of them. True if set."""
        ...

    def claim(self, job_id: str, flag: str) -> bool:
        """Set a once-only flag (its value: the time) on the job: True for the one caller that set it."""
        ...

    def add(self, job_id: str, **deltas: float) -> None:
        """Add to the job's counters, atomically (zero deltas are skipped)."""
        ...

    def mark_done(self, job_id: str, index: int, part: dict[str, Any]) -> bool:
        """Record a shard's part and count it: True if this call counted it (False: already settled)."""
        ...

    def mark_failed(self, job_id: str, index: int, reason: str, **extra: Any) -> bool:
        """Record that a shard will not be scored, and why: True if this call counted it."""
        ...

    def record_error(self, job_id: str, index: int, error: str, worker: str) -> None:
        """Keep the error of a shard's failed attempt (the last one wins)."""
        ...

    def last_error(self, job_id: str, index: int) -> str | None:
        """The error of the shard's last failed attempt, if any was recorded."""
        ...

    def shards(self, job_id: str) -> list[dict[str, Any]]:
        """The settled shards (done or failed), in index order."""
        ...

    def heartbeat(self, job_id: str, worker: str, state: str, started: float) -> None:
        """Rewrite a worker attempt's record: its ``state``, when it ``started`` and ``seen`` (now),
        in epoch seconds. Each record carries the attempt's whole span, so a lost write loses nothing
        the next one does not carry (the job's cost is computed from these: ``costs.job_cost``)."""
        ...

    def workers(self, job_id: str) -> list[dict[str, Any]]:
        """Every worker attempt heard from: ``worker``, ``state``, ``started``, ``seen`` (epoch seconds)."""
        ...


class InputReader(Protocol):
    """The input objects of a job: the latest version of each object under a prefix, and byte ranges."""

    def exists(self, prefix: str) -> bool:
        """True if at least one object is under ``prefix``."""
        ...

    def objects(self, prefix: str) -> list[InputObject]:
        """The latest version of every object under ``prefix`` (folder markers left out)."""
        ...

    def read(self, obj: InputObject, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of that version of the object, from ``start`` (< its size)."""
        ...


class JobFiles(Protocol):
    """The JSON files of jobs in the data bucket (requests, plans, manifests): written create-only."""

    def create(self, key: str, body: bytes) -> bool:
        """Write ``body`` at ``key`` only if nothing is there: True if this call wrote it."""
        ...

    def read(self, key: str, version_id: str | None = None) -> bytes | None:
        """The file (that version of it, if given), or None if there is none."""
        ...


class ShardQueue(Protocol):
    """The batch work queue the workers take shards from."""

    def send(self, messages: list[dict[str, Any]]) -> None:
        """Queue every message (as JSON); raises if any was refused."""
        ...


class WorkerLauncher(Protocol):
    """Starts a job's workers (an AWS Batch array job, or local processes)."""

    def start(self, job_id: str, workers: int) -> dict[str, Any]:
        """Start ``workers`` workers for the job; what was started (``backend``, ``workers``, ids)."""
        ...


class RegistryReads(Protocol):
    """The questions batch asks the model registry (the registry adapters answer them)."""

    def champion(self, model: str, /) -> int | None: ...

    def version(self, model: str, v: int, /) -> dict[str, Any] | None: ...

    def versions(self, model: str, /) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class BatchPorts:
    """Everything the batch services use, and the two settings they need beside it.

    ``bucket`` names the data bucket in messages (``s3://<bucket>/<prefix>``); ``max_workers`` caps a
    job's workers (``BATCH_MAX_WORKERS``).
    """

    jobs: JobStore
    inputs: InputReader
    files: JobFiles
    queue: ShardQueue
    launcher: WorkerLauncher
    registry: RegistryReads
    notifier: Notifier
    bucket: str
    max_workers: int
    # The datasets' contracts: which columns are pii (left out of outputs unless a request names
    # them). None: no contracts to read, so a request may name none (service tests).
    contracts: ContractStore | None = None
