"""Wiring: the one place where the stages' ports meet their AWS adapters, once per process.

Entry points (``chalicelib/entrypoints``, the CLI, the job entry points) ask here for what a service
needs and pass it in; services never build adapters or read the environment themselves. Each
function builds its adapter on first use (a boto3 client costs ~0.14 s, so a function pays only for
what it uses) and keeps it for the process. Tests that switch endpoints call ``reset()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

_CACHED: list[Callable[..., Any]] = []


def _once[F: Callable[..., Any]](build: F) -> F:
    cached = functools.cache(build)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


@_once
def settings() -> Settings:
    """The stage's resource names, from the environment (read once)."""
    return Settings.from_env()


def reset() -> None:
    """Forget every adapter and the settings (tests switch endpoints and stages between cases)."""
    from chalicelib.adapters import aws

    aws.reset_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]


# --- validation and ingest ---

if TYPE_CHECKING:  # the stages are imported where a function first needs them (cold start)
    from chalicelib.ingest.handler import IdempotentIngest
    from chalicelib.ingest.ports import UploadLedger, UploadSource
    from chalicelib.ingest.service import IngestPorts
    from chalicelib.validation.ports import ContractStore, Queue, ValidationStore
    from chalicelib.validation.service import ValidationPorts


@_once
def contracts() -> ContractStore:
    from chalicelib.adapters.aws.contracts import S3ContractStore

    return S3ContractStore(settings().data_bucket)


@_once
def validation_store() -> ValidationStore:
    from chalicelib.adapters.aws.validation_outputs import S3ValidationStore

    return S3ValidationStore(settings().data_bucket)


@_once
def retrain_queue() -> Queue:
    from chalicelib.adapters.aws.queues import SqsQueue

    return SqsQueue(settings().retrain_queue)


@_once
def validation_ports() -> ValidationPorts:
    from chalicelib.validation.service import ValidationPorts

    return ValidationPorts(contracts=contracts(), outputs=validation_store(), retrain_queue=retrain_queue())


def contract_sections() -> None:
    """Register the checks of the contract sections later stages own: importing a stage registers its
    check (``chalicelib.validation.sections``). Whoever stores contracts calls this first."""
    import chalicelib.registry
    import chalicelib.training  # noqa: F401


@_once
def uploads() -> UploadLedger:
    from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger

    return DynamoUploadLedger(settings().uploads_table)


@_once
def upload_source() -> UploadSource:
    from chalicelib.adapters.aws.upload_source import S3UploadSource

    return S3UploadSource()


@_once
def ingest_ports() -> IngestPorts:
    from chalicelib.ingest.service import IngestPorts

    return IngestPorts(ledger=uploads(), source=upload_source(), validation=validation_ports())


@_once
def ingest_once() -> IdempotentIngest:
    """The ingest service behind Powertools idempotency on the idempotency table."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.ingest.handler import idempotent_ingest

    # Built on first use: the persistence layer creates a boto3 client in its constructor.
    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table)
    return idempotent_ingest(ingest_ports(), persistence)
