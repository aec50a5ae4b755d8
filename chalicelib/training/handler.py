"""Entry points of the kickoff function: retrain-queue batches and the schedule."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.settings import Settings
from chalicelib.training.kickoff import datasets_with_contracts, handle_trigger, trigger_from_message
from chalicelib.training.policy import Trigger

_processor = BatchProcessor(event_type=EventType.SQS)


def handle_retrain_batch(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Each message is a trigger; a message that fails returns alone (and ends in the DLQ)."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        try:
            body = json.loads(record.body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"retrain message is not JSON: {exc}") from exc
        return handle_trigger(trigger_from_message(body))

    return dict(
        process_partial_response(
            event=raw_event, record_handler=record_handler, processor=_processor, context=context
        )
    )


def handle_schedule() -> dict[str, Any]:
    """The periodic check: each dataset with a contract, judged on age and pending data."""
    settings = Settings.from_env()
    return {
        dataset: handle_trigger(Trigger(kind="schedule", dataset=dataset, reason="scheduled check"))
        for dataset in datasets_with_contracts(settings.data_bucket)
    }
