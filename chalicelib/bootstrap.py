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
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.adapters.aws.operations import AwsOperations
    from chalicelib.capture.ports import BatchCaptureStore, CaptureKey, CaptureSink, CaptureSource
    from chalicelib.capture.service import Capturer
    from chalicelib.notify import Notifier
    from chalicelib.registry.ports import EvaluatorPorts, Registry
    from chalicelib.revocation.service import RevocationPorts
    from chalicelib.serving.ports import ArtifactReader
    from chalicelib.serving.predict import Predictor
    from chalicelib.training.ports import Launcher, RunsStore, SnapshotStore
    from chalicelib.training.service import TrainingPorts

_CACHED: list[Callable[..., Any]] = []

# Set by the local cloud (its stack has the Batch queues and definitions): a local job is also
# submitted to its Batch, so the submission is made, named and authorised as on AWS, then run here.
LOCAL_SUBMIT_ENV = "MLOPS_LOCAL_SUBMIT"


def _once[F: Callable[..., Any]](build: F) -> F:
    cached = functools.cache(build)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


@_once
def settings() -> Settings:
    """The stage's resource names, from the environment (read once)."""
    return Settings.from_env()


# --- registry, serving and notifications ------------------------------------------------------------


@_once
def registry() -> Registry:
    """The model registry and its audit ledger (DynamoDB)."""
    from chalicelib.adapters.aws.audit_copies import S3AuditCopies
    from chalicelib.adapters.aws.registry import DynamoRegistry

    return DynamoRegistry(
        settings().registry_table, settings().audit_table, copies=S3AuditCopies(settings().data_bucket)
    )


@_once
def artifacts() -> ArtifactReader:
    """Stored model artifacts and candidate files (S3)."""
    from chalicelib.adapters.aws.artifacts import S3Artifacts

    return S3Artifacts()


@_once
def notifier() -> Notifier:
    """The stage's notifications (SNS)."""
    from chalicelib.adapters.aws.notifier import SnsNotifier

    return SnsNotifier(settings(), os.environ.get("NOTIFICATIONS_TOPIC_ARN"))


@_once
def predictor() -> Predictor:
    """This container's predictor: its champion pointers and model sessions live as long as it does;
    it captures every answer through ``capturer()``."""
    from chalicelib.serving.predict import Predictor

    return Predictor(registry(), artifacts(), capture=capturer())


# --- capture ----------------------------------------------------------------------------------------


@_once
def capture_sink() -> CaptureSink:
    """Capture lines to stdout (Lambda -> the function's log group -> subscription -> Firehose)."""
    from chalicelib.adapters.aws.capture import StdoutCaptureSink

    return StdoutCaptureSink()


@_once
def capture_key() -> CaptureKey:
    """The stage's hash key for confidential inputs (an object in the data bucket, read once, made on
    first use)."""
    from chalicelib.adapters.aws.capture import S3CaptureKey

    return S3CaptureKey.for_settings(settings())


@_once
def capturer() -> Capturer:
    """This container's capturer: each model's contract (policy, masking) cached like the champion."""
    from chalicelib.capture.service import Capturer

    return Capturer(capture_sink(), contracts(), capture_key())


@_once
def batch_capture_store() -> BatchCaptureStore:
    """The batch workers' capture objects under ``capture/batch/`` in the data bucket (create-only)."""
    from chalicelib.adapters.aws.capture import S3BatchCaptureStore

    return S3BatchCaptureStore(settings().data_bucket)


@_once
def capture_source() -> CaptureSource:
    """Every captured record, read back from the data bucket (the monitor)."""
    from chalicelib.adapters.aws.capture import S3CaptureSource

    return S3CaptureSource(settings().data_bucket)


# --- end capture ------------------------------------------------------------------------------------


def evaluator_ports() -> EvaluatorPorts:
    """What the promotion evaluator reads and writes: this process's adapters."""
    from chalicelib.registry.ports import EvaluatorPorts

    return EvaluatorPorts(
        registry=registry(),
        artifacts=artifacts(),
        contracts=contracts(),
        notifier=notifier(),
        revocations=uploads(),
    )


def revocation_ports() -> RevocationPorts:
    """What revoking an upload touches: the ledger, the registry, contracts, notifications, training."""
    from chalicelib.revocation.service import RevocationPorts

    return RevocationPorts(
        uploads=uploads(),
        registry=registry(),
        contracts=contracts(),
        notifier=notifier(),
        training=retrain_request_ports(),
    )


# --- end of registry, serving and notifications -----------------------------------------------------

# --- batch ------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from chalicelib.batch.ports import (
        BatchPorts,
        InputReader,
        JobFiles,
        JobStore,
        ShardQueue,
        WorkerLauncher,
    )


@_once
def batch_jobs() -> JobStore:
    """The batch jobs table: jobs, settled shards, workers' heartbeats."""
    from chalicelib.adapters.aws.batch_jobs import DynamoJobStore

    return DynamoJobStore(settings().batch_jobs_table)


@_once
def batch_inputs() -> InputReader:
    """Batch inputs: the objects under a job's input prefix in the data bucket."""
    from chalicelib.adapters.aws.batch_io import S3Inputs

    return S3Inputs(settings().data_bucket)


@_once
def batch_files() -> JobFiles:
    """The jobs' requests, plans and manifests in the data bucket (create-only)."""
    from chalicelib.adapters.aws.batch_io import S3JobFiles

    return S3JobFiles(settings().data_bucket)


@_once
def batch_queue() -> ShardQueue:
    """The batch work queue the workers take shards from."""
    from chalicelib.adapters.aws.batch_io import SqsShardQueue

    return SqsShardQueue(settings().batch_work_queue)


@_once
def batch_launcher() -> WorkerLauncher:
    """``JOB_BACKEND=batch`` (deployed stages): an AWS Batch array job on the spot queue; ``local``
    (the local cloud): child processes running the same worker."""
    backend = os.environ.get("JOB_BACKEND", "batch")
    if backend == "batch":
        from chalicelib.adapters.aws.batch_launcher import ArrayJobLauncher

        return ArrayJobLauncher(settings().spot_job_queue, settings().batch_scoring_job_definition)
    if backend == "local":
        from chalicelib.adapters.local.batch_launcher import LocalWorkerLauncher

        if os.environ.get(LOCAL_SUBMIT_ENV) == "batch":
            from chalicelib.adapters.aws.batch_launcher import ArrayJobLauncher

            submit = ArrayJobLauncher(settings().spot_job_queue, settings().batch_scoring_job_definition)
            return LocalWorkerLauncher(submit=submit)
        return LocalWorkerLauncher()
    raise ValueError(f"JOB_BACKEND={backend!r}: expected 'batch' or 'local'")


def batch_ports() -> BatchPorts:
    """What the batch services need (cheap to assemble: each port is built once above, and looked up
    here on every call, so a test can replace one)."""
    from chalicelib.batch.launch import max_workers
    from chalicelib.batch.ports import BatchPorts

    return BatchPorts(
        jobs=batch_jobs(),
        inputs=batch_inputs(),
        files=batch_files(),
        queue=batch_queue(),
        launcher=batch_launcher(),
        registry=registry(),
        notifier=notifier(),
        bucket=settings().data_bucket,
        max_workers=max_workers(),
        contracts=contracts(),
    )


# --- end batch --------------------------------------------------------------------------------------

# --- auth -------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from chalicelib.auth import TokenStore


@_once
def tokens() -> TokenStore:
    """The API tokens in SSM Parameter Store, with this process's lookup cache."""
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import TokenStore

    return TokenStore(SsmTokenRecords.for_settings(settings()))


# --- end auth ---------------------------------------------------------------------------------------

# --- training ---------------------------------------------------------------------------------------


@_once
def runs_store() -> RunsStore:
    """The runs table: each dataset's retrain state and lock, and every run."""
    from chalicelib.adapters.aws.runs import DynamoRunsStore

    return DynamoRunsStore(settings().runs_table)


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

        if os.environ.get(LOCAL_SUBMIT_ENV) == "batch":
            from chalicelib.adapters.aws.training_launcher import BatchTrainingLauncher

            return LocalTrainingLauncher(submit=BatchTrainingLauncher(settings()))
        return LocalTrainingLauncher()
    raise ValueError(f"JOB_BACKEND={backend!r}: expected 'batch' or 'local'")


@_once
def request_snapshot_store() -> SnapshotStore:
    """The validated data as the API pins it: listed, with each upload's sha256 and time from the
    uploads ledger; no validated object is read (the API's role may not read them)."""
    from chalicelib.adapters.aws.snapshots import LedgerSnapshotStore

    return LedgerSnapshotStore(settings().data_bucket, settings().uploads_table)


def training_ports() -> TrainingPorts:
    """What the kickoff service needs (cheap to assemble: each port is built once above)."""
    from chalicelib.training.service import TrainingPorts

    return TrainingPorts(
        runs=runs_store(),
        contracts=contracts(),
        snapshots=snapshot_store(),
        launcher=training_launcher(),
        revocations=uploads(),
    )


def retrain_request_ports() -> TrainingPorts:
    """The kickoff service as the API runs it (``POST /datasets/{name}/retrain``, the retrain after a
    revocation): the same ports, but the snapshot reads no validated object."""
    return replace(training_ports(), snapshots=request_snapshot_store())


# --- end training -----------------------------------------------------------------------------------


def reset() -> None:
    """Forget every adapter and the settings (tests switch endpoints and stages between cases)."""
    from chalicelib.adapters import aws

    aws.reset_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]


# --- validation and ingest ---

if TYPE_CHECKING:  # the stages are imported where a function first needs them (cold start)
    from chalicelib.ingest.handler import IdempotentIngest
    from chalicelib.ingest.ports import ShardTally, UploadLedger, UploadSource
    from chalicelib.ingest.service import IngestPorts
    from chalicelib.ingest.sweep import SweepPorts
    from chalicelib.validation.partial import ScaleOut
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
    import chalicelib.capture.sections
    import chalicelib.registry.sections
    import chalicelib.training  # noqa: F401


@_once
def operations() -> AwsOperations:
    """Queue and DLQ depths and the stage's alarms (the console's overview)."""
    from chalicelib.adapters.aws.operations import AwsOperations

    return AwsOperations(settings())


@_once
def uploads() -> UploadLedger:
    from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger

    return DynamoUploadLedger(settings().uploads_table)


@_once
def upload_source() -> UploadSource:
    from chalicelib.adapters.aws.upload_source import S3UploadSource

    return S3UploadSource()


@_once
def sweep_ports() -> SweepPorts:
    """The hourly sweep of objects put outside the known prefixes (chalicelib/ingest/sweep.py)."""
    from chalicelib.adapters.aws.bucket_listing import S3BucketListing
    from chalicelib.ingest.sweep import SweepPorts

    return SweepPorts(ledger=uploads(), listing=S3BucketListing())


@_once
def ingest_ports() -> IngestPorts:
    from chalicelib.adapters.aws.queues import SqsQueue
    from chalicelib.ingest.service import IngestPorts, ShardPorts

    shards = ShardPorts(queue=SqsQueue(settings().ingest_queue), tally=shard_tally(), scale_out=scale_out())
    return IngestPorts(ledger=uploads(), source=upload_source(), validation=validation_ports(), shards=shards)


def shard_tally() -> ShardTally:
    from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger

    return DynamoUploadLedger(settings().uploads_table)


def scale_out() -> ScaleOut:
    """When the ingest function splits an upload (``MLOPS_VALIDATION_SPLIT_BYTES``) and into what
    (``MLOPS_VALIDATION_SHARD_BYTES``); the defaults of ``ScaleOut`` otherwise."""
    from chalicelib.validation.partial import ScaleOut

    default = ScaleOut()
    split = int(os.environ.get("MLOPS_VALIDATION_SPLIT_BYTES") or default.split_bytes)
    shard = int(os.environ.get("MLOPS_VALIDATION_SHARD_BYTES") or default.shard_bytes)
    return ScaleOut(split_bytes=split, shard_bytes=min(shard, split))


@_once
def ingest_once() -> IdempotentIngest:
    """The ingest service behind Powertools idempotency on the idempotency table."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.ingest.handler import idempotent_ingest

    # Built on first use: the persistence layer creates a boto3 client in its constructor.
    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table)
    return idempotent_ingest(ingest_ports(), persistence)


# --- monitoring ---

if TYPE_CHECKING:
    from chalicelib.monitoring.outcomes_service import OutcomePorts, OutcomeUploadPorts
    from chalicelib.monitoring.ports import OutcomeStore
    from chalicelib.monitoring.service import MonitorPorts
    from chalicelib.monitoring.store import MonitoringStore


@_once
def outcome_store() -> OutcomeStore:
    from chalicelib.adapters.aws.outcomes import S3OutcomeStore

    return S3OutcomeStore(settings().data_bucket)


@_once
def outcome_ports() -> OutcomePorts:
    """``POST /models/{name}/outcomes``: the contract, the registry (is the model known) and the store."""
    from chalicelib.monitoring.outcomes_service import OutcomePorts

    return OutcomePorts(contracts=contracts(), outcomes=outcome_store(), registry=registry())


@_once
def outcome_upload_ports() -> OutcomeUploadPorts:
    """Uploads under ``outcomes/`` (routed by ``ingest_upload``): read, check, store, quarantine."""
    from chalicelib.monitoring.outcomes_service import OutcomeUploadPorts

    return OutcomeUploadPorts(
        contracts=contracts(), outcomes=outcome_store(), source=upload_source(), quarantine=validation_store()
    )


@_once
def monitoring_store() -> MonitoringStore:
    from chalicelib.adapters.aws.monitoring import S3MonitoringStore

    return S3MonitoringStore(settings().data_bucket, settings().stage)


def emit_window_metrics(model: str, report: dict[str, Any]) -> None:
    """A window report's figures as CloudWatch metrics (EMF, one document per window): the alarms of
    the monitoring stack watch ``MonitorBreaches``; the others draw the dashboard's trends."""
    from chalicelib.monitoring.metrics import window_metrics
    from chalicelib.observability import emit_dimensioned

    emit_dimensioned({"model": model}, window_metrics(report))


@_once
def monitor_ports() -> MonitorPorts:
    from chalicelib.monitoring.service import MonitorPorts

    return MonitorPorts(
        registry=registry(),
        contracts=contracts(),
        artifacts=artifacts(),
        capture=capture_source(),
        outcomes=outcome_store(),
        store=monitoring_store(),
        retrain=retrain_queue(),
        notifier=notifier(),
        emit=emit_window_metrics,
    )


# --- rollouts ---

if TYPE_CHECKING:
    from chalicelib.rollout.service import RolloutPorts


@_once
def rollout_ports() -> RolloutPorts:
    """The rollout evaluator: the registry, the captured records, contracts, outcomes, notifications."""
    from chalicelib.observability import logger
    from chalicelib.rollout.service import RolloutPorts

    return RolloutPorts(
        registry=registry(),
        capture=capture_source(),
        contracts=contracts(),
        notifier=notifier(),
        outcomes=outcome_store(),
        log=lambda message, detail: logger.warning(message, extra=detail),
    )


# --- Lambda SnapStart (the API function: its packaged template publishes versions with SnapStart) ---

# The clients the first /predict needs: the registry's pointers and records, the model's artifacts
# and its contract (capture).
SNAPSHOT_CLIENTS = ("dynamodb", "s3")
SNAPSTART_MODULE = "snapshot_restore_py"  # in Lambda's managed Python runtimes, not on PyPI's path here


def before_snapshot() -> None:
    """Run by Lambda before it snapshots an initialised API function (SnapStart): load what the first
    request would load, so a restored container starts with it in memory: onnxruntime and the service
    models of the clients the predict path makes (the clients themselves are dropped after restore:
    their credentials are the snapshot's)."""
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    from chalicelib.adapters import aws

    for service in SNAPSHOT_CLIENTS:
        aws.client(service)


def after_restore() -> None:
    """Run by Lambda in each container restored from the snapshot, before its first request. Every
    restored container starts from the same memory, so what must differ between them, or be of now,
    is made again: Python's ``random`` reseeded from the OS (request ids and keys come from
    ``os.urandom``, which asks the kernel each time, so they need nothing); the AWS clients dropped
    (credentials and pooled connections of the snapshot), keeping the service models they parsed;
    every cached adapter and the predictor forgotten (their TTL clocks and pointers are the
    snapshot's)."""
    import random

    from chalicelib.adapters import aws

    random.seed()
    aws.refresh_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]


def register_snapshot_hooks() -> bool:
    """Register ``before_snapshot`` and ``after_restore`` with Lambda's runtime hooks where the runtime
    provides them (its ``snapshot_restore_py``); elsewhere (locally, in tests) nothing to do: False."""
    import importlib

    try:
        hooks = importlib.import_module(SNAPSTART_MODULE)
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    return True
