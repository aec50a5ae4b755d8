"""The notifier on SNS: each event published to the stage's topic.

The message's subject is ``[<stage>] <type>: <model>``, its body JSON with ``type``, ``stage`` and the
detail, and its attributes ``type`` and ``model`` (for subscribers' filter policies). The topic,
``<prefix>-<stage>-notifications``, is in the data-plane template, encrypted with the stage's key. Its
ARN is built from the caller's account (``sts:GetCallerIdentity``, which needs no permission) and
region, once per notifier (``chalicelib.bootstrap`` keeps one per process).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib.adapters import aws
from chalicelib.notify import check_detail_type
from chalicelib.observability import logger, metrics
from chalicelib.settings import Settings


class SnsNotifier:
    def __init__(self, settings: Settings, topic_arn: str | None = None) -> None:
        """``topic_arn``: the topic's ARN if known (a job in private subnets, where STS is out of reach);
        else it is built from the caller's account (STS) on first use."""
        self.settings = settings
        self._arn: str | None = topic_arn or None
        self._lock = threading.Lock()

    def topic_arn(self) -> str:
        with self._lock:
            if self._arn is None:
                sts = aws.client("sts")
                account = sts.get_caller_identity()["Account"]
                region, partition = sts.meta.region_name, sts.meta.partition
                self._arn = f"arn:{partition}:sns:{region}:{account}:{self.settings.notifications_topic}"
            return self._arn

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """Publish one event to the stage's topic; True if SNS accepted it."""
        check_detail_type(detail_type)
        stage = self.settings.stage
        try:
            aws.client("sns").publish(
                TopicArn=self.topic_arn(),
                Subject=f"[{stage}] {detail_type}: {detail.get('model', '')}"[:100],
                Message=json.dumps({"type": detail_type, "stage": stage, **detail}, default=str),
                MessageAttributes={
                    "type": {"DataType": "String", "StringValue": detail_type},
                    "model": {"DataType": "String", "StringValue": str(detail.get("model", "-"))},
                },
            )
        except Exception as exc:  # a notification must never undo a committed change
            logger.error("notification not published", extra={"detail_type": detail_type, "error": str(exc)})
            metrics.add_metric(name="NotificationFailed", unit="Count", value=1)
            return False
        logger.info(
            "notification published", extra={"detail_type": detail_type, "model": detail.get("model")}
        )
        return True
