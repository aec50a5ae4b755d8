"""The promotion queue's batches: each S3 notification's candidate manifests, evaluated one by one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.registry.candidate import MANIFEST_KEY
from chalicelib.registry.evaluator import evaluate_manifest
from chalicelib.registry.ports import EvaluatorPorts
from chalicelib.s3events import object_created_events


def handle_promotion_batch(raw_event: dict[str, Any], context: Any, ports: EvaluatorPorts) -> dict[str, Any]:
    """A failing record returns alone (retried, then the promotion DLQ); the others are done."""

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        return [
            evaluate_manifest(ports, event.bucket, event.key, event.version_id)
            for event in object_created_events(record.body)
            if MANIFEST_KEY.match(event.key)
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
