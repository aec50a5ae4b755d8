"""Entry points of the batch functions: request notifications (planner) and dead-lettered shards."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.batch.requests import REQUESTS_PREFIX
from chalicelib.batch.service import plan_request, shard_dead_lettered
from chalicelib.s3events import object_created_events

_processor = BatchProcessor(event_type=EventType.SQS)


def handle_request_batch(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """S3 notifications of objects under batch/requests/: each plans one job."""

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        return [
            plan_request(event.bucket, event.key, event.version_id)
            for event in object_created_events(record.body)
            if event.key.startswith(REQUESTS_PREFIX)
        ]

    return dict(
        process_partial_response(
            event=raw_event, record_handler=record_handler, processor=_processor, context=context
        )
    )


def handle_dead_letter_batch(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Shard messages moved to the batch work DLQ: each marks its shard failed."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        return shard_dead_lettered(record.body)

    return dict(
        process_partial_response(
            event=raw_event, record_handler=record_handler, processor=_processor, context=context
        )
    )
