"""What an operator watches, read from AWS: queue and dead-letter queue depths (SQS) and the
stage's alarms (CloudWatch). Read only; for the console's overview."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.adapters import aws
from chalicelib.settings import Settings, dlq_name

_DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


@cache
def _queue_url(name: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


class AwsOperations:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _depths(self, name: str) -> tuple[int, int]:
        attrs = aws.client("sqs").get_queue_attributes(QueueUrl=_queue_url(name), AttributeNames=_DEPTHS)[
            "Attributes"
        ]
        return int(attrs.get(_DEPTHS[0], 0)), int(attrs.get(_DEPTHS[1], 0))

    def queues(self) -> list[dict[str, Any]]:
        """Each consumed queue: visible and in-flight messages, and its DLQ's depth."""
        rows = []
        for name in self.settings.consumed_queues.values():
            visible, in_flight = self._depths(name)
            rows.append(
                {
                    "queue": name,
                    "visible": visible,
                    "in_flight": in_flight,
                    "dlq": dlq_name(name),
                    "dlq_depth": self._depths(dlq_name(name))[0],
                }
            )
        return rows

    def alarms(self) -> list[dict[str, Any]]:
        """The stage's alarms (named ``<prefix>-<stage>-...``) and their state."""
        prefix = f"{self.settings.prefix}-{self.settings.stage}-"
        pages = aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
        return [
            {
                "name": alarm["AlarmName"],
                "state": alarm.get("StateValue"),
                "reason": alarm.get("StateReason"),
                "since": str(alarm.get("StateUpdatedTimestamp") or "") or None,
                "description": alarm.get("AlarmDescription"),
            }
            for page in pages
            for alarm in page.get("MetricAlarms", [])
        ]
