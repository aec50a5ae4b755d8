"""The ingest queue's batch handler: Powertools batch processing and idempotency around ``ingest``.

S3 notifications arrive through the ingest queue (at-least-once, so duplicates happen). Each
notification is processed by an idempotent function (Powertools Idempotency on DynamoDB), and the
ledger write itself is create-only: the same event delivered ten times leaves one ledger entry.
A record that fails is reported as a partial batch failure, so only it returns to the queue.

Nothing here builds an adapter: the ports and the idempotency table come from the caller
(``chalicelib.bootstrap.ingest_once``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from chalicelib.ingest.scaleout import ingest_upload
from chalicelib.ingest.service import IngestPorts
from chalicelib.s3events import ObjectCreated, object_created_events

# A redelivered notification within this window is answered from the idempotency table; after
# it, the create-only ledger write still keeps the effect single.
IDEMPOTENCY_WINDOW_S = 7 * 24 * 3600
# The idempotency records are keyed by this name (Powertools would take the wrapped function's
# module path, which moves whenever the code does): a record written by an earlier deploy still
# answers a redelivery after the next one.
IDEMPOTENCY_NAME = "chalicelib.ingest.handler.ingest"


@dataclass(frozen=True)
class IdempotentIngest:
    """``ingest`` with its ports bound, run at most once per notified object version."""

    ingest: Callable[..., dict[str, Any]]  # called with notification=<dict>
    config: IdempotencyConfig
    # A piece of a split upload (chalicelib.ingest.scaleout): idempotent by its own writes.
    piece: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def idempotent_ingest(ports: IngestPorts, persistence: BasePersistenceLayer) -> IdempotentIngest:
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version]", expires_after_seconds=IDEMPOTENCY_WINDOW_S
    )

    def ingest_notification(notification: dict[str, Any]) -> dict[str, Any]:
        return ingest_upload(notification, ports)  # a large upload is split, others ingested at once

    key_prefix = f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}.{IDEMPOTENCY_NAME}"
    wrapped = idempotent_function(
        data_keyword_argument="notification",
        persistence_store=persistence,
        config=config,
        key_prefix=key_prefix,
    )(ingest_notification)

    def validate_piece(message: dict[str, Any]) -> dict[str, Any]:
        from chalicelib.ingest.scaleout import validate_piece as run

        return run(message, ports)

    return IdempotentIngest(wrapped, config, validate_piece)


Route = Callable[[dict[str, Any]], dict[str, Any]]


def handle_ingest_batch(
    raw_event: dict[str, Any],
    context: Any,
    ingest_once: IdempotentIngest,
    routes: Mapping[str, Route] | None = None,
) -> dict[str, Any]:
    """The ingest queue's SQS batch -> the partial batch response.

    ``routes`` maps key prefixes to the handler of the objects under them (the notification as a
    dict); any other key is an upload of data, ingested here. A later stage (monitoring's outcomes
    uploads) is reached this way without this stage importing it."""
    ingest_once.config.register_lambda_context(context)
    routed = dict(routes or {})

    def handle(event: ObjectCreated) -> dict[str, Any]:
        for prefix, route in routed.items():
            if event.key.startswith(prefix):
                return route(asdict(event))
        return ingest_once.ingest(notification=_as_payload(event))

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        if ingest_once.piece is not None and '"validation_shard"' in record.body[:64]:
            from chalicelib.ingest.scaleout import is_piece

            body = json.loads(record.body)
            if is_piece(body):
                return [ingest_once.piece(body)]
        return [handle(ev) for ev in object_created_events(record.body)]

    # A processor per invocation: it holds the batch while it runs, and the local cloud runs
    # several invocations of a function at once in one process.
    response = process_partial_response(
        event=raw_event,
        record_handler=record_handler,
        processor=BatchProcessor(event_type=EventType.SQS),
        context=context,
    )
    return dict(response)


def _as_payload(event: ObjectCreated) -> dict[str, Any]:
    return {**asdict(event), "version": event.version_id or event.etag}
