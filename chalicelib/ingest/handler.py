"""The ingest stage: every upload under ``incoming/`` is recorded once in the uploads ledger.

S3 notifications arrive through the ingest queue (at-least-once, so duplicates happen). Each
notification is processed by an idempotent function (Powertools Idempotency on DynamoDB), and the
ledger write itself is create-only: the same event delivered ten times leaves one ledger entry.
A record that fails is reported as a partial batch failure, so only it returns to the queue.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from chalicelib.ingest.store import ObjectGone, UploadLedger, sha256_of_object
from chalicelib.ingest.uploads import Upload, dataset_of, upload_id_for
from chalicelib.observability import logger, metrics
from chalicelib.s3events import ObjectCreated, object_created_events
from chalicelib.settings import Settings

# A redelivered notification within this window is answered from the idempotency table; after
# it, the create-only ledger write still keeps the effect single.
IDEMPOTENCY_WINDOW_S = 7 * 24 * 3600

_processor = BatchProcessor(event_type=EventType.SQS)


def handle_ingest_batch(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point for the ingest queue's SQS batch; returns the partial batch response."""
    ingest_once, config = _idempotent_ingest()
    config.register_lambda_context(context)

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        return [ingest_once(notification=_as_payload(ev)) for ev in object_created_events(record.body)]

    response = process_partial_response(
        event=raw_event, record_handler=record_handler, processor=_processor, context=context
    )
    return dict(response)


def ingest(notification: dict[str, Any]) -> dict[str, Any]:
    """Record one upload in the ledger (create-only). Returns the ledger entry and whether it is new."""
    settings = Settings.from_env()
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    dataset, problem = dataset_of(event.key)
    status = "unroutable" if problem else "recorded"
    sha256: str | None = None
    size, version_id = event.size, event.version_id
    try:
        sha256, size, version_id = sha256_of_object(event.bucket, event.key, event.version_id, event.etag)
    except ObjectGone as exc:
        status, problem = "missing", f"object was gone before it could be read: {exc}"
    upload_id = upload_id_for(event.bucket, event.key, version_id or event.etag)
    upload = Upload(
        upload_id=upload_id,
        bucket=event.bucket,
        key=event.key,
        dataset=dataset,
        version_id=version_id,
        etag=event.etag,
        size=size,
        sha256=sha256,
        event_time=event.event_time,
        recorded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        status=status,
        problem=problem,
    )
    created = UploadLedger(settings.uploads_table).record(upload)
    logger.append_keys(upload_id=upload_id)
    if created:
        metrics.add_metric(name="UploadsRecorded", unit=MetricUnit.Count, value=1)
        logger.info(
            "upload recorded",
            extra={"dataset": dataset, "key": event.key, "size": size, "status": status, "problem": problem},
        )
    else:
        metrics.add_metric(name="DuplicateUploadEvents", unit=MetricUnit.Count, value=1)
        logger.info("duplicate upload event absorbed", extra={"key": event.key})
    logger.remove_keys(["upload_id"])
    return {"upload_id": upload_id, "created": created, "status": status}


def _as_payload(event: ObjectCreated) -> dict[str, Any]:
    return {**asdict(event), "version": event.version_id or event.etag}


@functools.cache
def _idempotent_ingest() -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """Built on first use: the persistence layer creates a boto3 client in its constructor."""
    settings = Settings.from_env()
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version]", expires_after_seconds=IDEMPOTENCY_WINDOW_S
    )
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
    wrapped = idempotent_function(
        data_keyword_argument="notification", persistence_store=store, config=config
    )(ingest)
    return wrapped, config


def reset() -> None:
    """Forget the idempotency wiring (tests switch tables between cases)."""
    _idempotent_ingest.cache_clear()
