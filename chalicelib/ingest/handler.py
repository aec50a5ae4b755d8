"""The ingest stage: every upload under ``incoming/`` is validated and recorded once in the ledger.

S3 notifications arrive through the ingest queue (at-least-once, so duplicates happen). Each
notification is processed by an idempotent function (Powertools Idempotency on DynamoDB), and the
ledger write itself is create-only: the same event delivered ten times leaves one ledger entry.
A record that fails is reported as a partial batch failure, so only it returns to the queue.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, replace
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

from chalicelib.adapters import aws
from chalicelib.ingest.store import ObjectGone, UploadLedger, open_object
from chalicelib.ingest.uploads import Upload, dataset_of, upload_id_for
from chalicelib.observability import logger, metrics
from chalicelib.s3events import ObjectCreated, object_created_events
from chalicelib.settings import Settings
from chalicelib.validation.pipeline import HashingReader, publish, validate_upload

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
    """Validate one upload and record it in the ledger (create-only, written last).

    Returns the upload id, whether this call created the ledger entry, and the status.
    """
    settings = Settings.from_env()
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    ledger = UploadLedger(settings.uploads_table)
    dataset, problem = dataset_of(event.key)
    try:
        body, version_id, size = open_object(event.bucket, event.key, event.version_id, event.etag)
    except ObjectGone as exc:
        version_id, size = event.version_id, event.size
        upload_id = upload_id_for(event.bucket, event.key, version_id or event.etag)
        upload = _upload(event, upload_id, dataset, version_id, size, None, "missing")
        return _record(ledger, replace(upload, problem=f"object was gone before it could be read: {exc}"))
    upload_id = upload_id_for(event.bucket, event.key, version_id or event.etag)
    logger.thread_safe_append_keys(upload_id=upload_id)
    try:
        if ledger.get(upload_id) is not None:  # done before: a late duplicate of a finished upload
            return _record(ledger, _upload(event, upload_id, dataset, version_id, size, None, "recorded"))
        reader = HashingReader(body)
        outcome = validate_upload(reader, dataset, settings.data_bucket, size) if dataset else None
        too_large = outcome is not None and any(i["code"] == "FILE_TOO_LARGE" for i in outcome.issues)
        if not too_large:
            reader.drain()  # the hash covers every byte, even when validation stopped early
        sha256 = None if too_large else reader.hexdigest()
        body.close()
        if outcome is None or dataset is None:
            return _record(
                ledger,
                replace(
                    _upload(event, upload_id, dataset, version_id, size, sha256, "unroutable"),
                    problem=problem,
                ),
            )
        first = ledger.claim_content(dataset, sha256, upload_id) if sha256 else upload_id
        if first != upload_id:
            upload = _upload(event, upload_id, dataset, version_id, size, sha256, "duplicate")
            return _record(
                ledger, replace(upload, duplicate_of=first, problem=f"identical bytes to upload {first}")
            )
        written = publish(
            outcome,
            dataset=dataset,
            upload_id=upload_id,
            bucket=event.bucket,
            key=event.key,
            version_id=version_id,
            sha256=sha256,
            data_bucket=settings.data_bucket,
            retrain_queue_url=_queue_url(settings.retrain_queue),
        )
        drift = outcome.report.get("drift", {}).get("verdict")
        metrics.add_metric(
            name="UploadsValid" if outcome.status == "valid" else "UploadsQuarantined",
            unit=MetricUnit.Count,
            value=1,
        )
        if drift == "drifted":
            metrics.add_metric(name="UploadsDrifted", unit=MetricUnit.Count, value=1)
        upload = replace(
            _upload(event, upload_id, dataset, version_id, size, sha256, outcome.status),
            rows=outcome.rows,
            report_key=written["report_key"],
            output_key=written["output_key"],
            issue_codes=sorted({i["code"] for i in outcome.issues}),
            drift=drift,
        )
        return _record(ledger, upload)
    finally:
        logger.thread_safe_remove_keys(["upload_id"])


def _upload(
    event: ObjectCreated,
    upload_id: str,
    dataset: str | None,
    version_id: str | None,
    size: int,
    sha256: str | None,
    status: str,
) -> Upload:
    return Upload(
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
    )


def _record(ledger: UploadLedger, upload: Upload) -> dict[str, Any]:
    created = ledger.record(upload)
    if created:
        metrics.add_metric(name="UploadsRecorded", unit=MetricUnit.Count, value=1)
        # Keys, counts and codes only: values of the data never reach the logs.
        logger.info(
            "upload recorded",
            extra={
                "upload_id": upload.upload_id,
                "dataset": upload.dataset,
                "key": upload.key,
                "size": upload.size,
                "status": upload.status,
                "rows": upload.rows,
                "issue_codes": upload.issue_codes,
                "drift": upload.drift,
                "problem": upload.problem,
            },
        )
    else:
        metrics.add_metric(name="DuplicateUploadEvents", unit=MetricUnit.Count, value=1)
        logger.info(
            "duplicate upload event absorbed", extra={"upload_id": upload.upload_id, "key": upload.key}
        )
    return {
        "upload_id": upload.upload_id,
        "created": created,
        "status": upload.status if created else "recorded",
    }


@functools.cache
def _queue_url(name: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


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
    """Forget the idempotency wiring and queue URLs (tests switch endpoints between cases)."""
    _idempotent_ingest.cache_clear()
    _queue_url.cache_clear()
