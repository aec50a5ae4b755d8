"""The batch functions' SQS batches: request notifications (planner) and dead-lettered shards.

Each record is one service call on the ports the entry point passes in; a record that raises is
reported as a partial batch failure (retried, then dead-lettered).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.batch.ports import BatchPorts
from chalicelib.batch.requests import REQUESTS_PREFIX
from chalicelib.batch.service import plan_request, shard_dead_lettered
from chalicelib.s3events import object_created_events


def handle_request_batch(raw_event: dict[str, Any], context: Any, ports: BatchPorts) -> dict[str, Any]:
    """S3 notifications of objects under batch/requests/: each plans one job."""

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        return [
            plan_request(ports, event.key, event.version_id)
            for event in object_created_events(record.body)
            if event.key.startswith(REQUESTS_PREFIX)
        ]

    return dict(
        # A processor per invocation: it holds the batch while it runs, and the local cloud runs
        # several invocations of a function at once in one process.
        process_partial_response(
            event=raw_event,
            record_handler=record_handler,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    )


def handle_dead_letter_batch(raw_event: dict[str, Any], context: Any, ports: BatchPorts) -> dict[str, Any]:
    """Shard messages moved to the batch work DLQ: each marks its shard failed."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        return shard_dead_lettered(ports, record.body)

    return dict(
        process_partial_response(
            event=raw_event,
            record_handler=record_handler,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    )
