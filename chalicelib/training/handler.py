"""The kickoff function's retrain-queue batches (Powertools): each message is one trigger.

The entry point (``chalicelib.entrypoints.training``) passes the ports in; nothing here builds one.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.training.messages import trigger_from_message
from chalicelib.training.service import TrainingPorts, handle_trigger


def handle_retrain_batch(ports: TrainingPorts, raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Each message is a trigger; a message that fails returns alone (and ends in the DLQ)."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        try:
            body = json.loads(record.body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"retrain message is not JSON: {exc}") from exc
        return handle_trigger(ports, trigger_from_message(body))

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
