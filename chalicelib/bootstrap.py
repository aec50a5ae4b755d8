"""Wiring: the one place where the stages' ports meet their AWS adapters, once per process.

Entry points (``chalicelib/entrypoints``, the CLI, the job entry points) ask here for what a service
needs and pass it in; services never build adapters or read the environment themselves. Each
function builds its adapter on first use (a boto3 client costs ~0.14 s, so a function pays only for
what it uses) and keeps it for the process. Tests that switch endpoints call ``reset()``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.training.ports import Contracts, Launcher, RunsStore, SnapshotStore
    from chalicelib.training.service import TrainingPorts

_CACHED: list[Callable[..., Any]] = []


def _once[F: Callable[..., Any]](build: F) -> F:
    cached = functools.cache(build)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


@_once
def settings() -> Settings:
    """The stage's resource names, from the environment (read once)."""
    return Settings.from_env()


# --- training ---------------------------------------------------------------------------------------


@_once
def runs_store() -> RunsStore:
    """The runs table: each dataset's retrain state and lock, and every run."""
    from chalicelib.adapters.aws.runs import DynamoRunsStore

    return DynamoRunsStore(settings().runs_table)


@_once
def training_contracts() -> Contracts:
    """The contracts, as the training stage reads them (the validation stage's store)."""
    from chalicelib.validation.store import ContractStore

    return ContractStore(settings().data_bucket)


@_once
def snapshot_store() -> SnapshotStore:
    """The validated data and the data manifests, in the data bucket."""
    from chalicelib.adapters.aws.snapshots import S3SnapshotStore

    return S3SnapshotStore(settings().data_bucket)


@_once
def training_launcher() -> Launcher:
    """``JOB_BACKEND=batch`` (deployed stages): AWS Batch, on the spot queue; ``local`` (the local
    cloud): a child process running the same entry point."""
    backend = os.environ.get("JOB_BACKEND", "batch")
    if backend == "batch":
        from chalicelib.adapters.aws.training_launcher import BatchTrainingLauncher

        return BatchTrainingLauncher(settings())
    if backend == "local":
        from chalicelib.adapters.local.training_launcher import LocalTrainingLauncher

        return LocalTrainingLauncher()
    raise ValueError(f"JOB_BACKEND={backend!r}: expected 'batch' or 'local'")


def training_ports() -> TrainingPorts:
    """What the kickoff service needs (cheap to assemble: each port is built once above)."""
    from chalicelib.training.service import TrainingPorts

    return TrainingPorts(
        runs=runs_store(),
        contracts=training_contracts(),
        snapshots=snapshot_store(),
        launcher=training_launcher(),
    )


# --- end training -----------------------------------------------------------------------------------


def reset() -> None:
    """Forget every adapter and the settings (tests switch endpoints and stages between cases)."""
    from chalicelib.adapters import aws

    aws.reset_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]
