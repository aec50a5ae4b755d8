"""Notifications: registry events published to the stage's SNS topic.

Each message has the event's type as its subject (one of ``DETAIL_TYPES``) and a JSON body carrying
``type``, ``stage``, ``model`` and the event's figures; message attributes ``type`` and ``model`` let
subscribers filter (an email for promotions only, a chat channel for one model). The topic,
``<prefix>-<stage>-notifications``, is in the data-plane template, encrypted with the stage's key.
Its ARN is built from the caller's account (``sts:GetCallerIdentity``, which needs no permission)
and region, once per container.

Publishing happens after the registry change has committed. A failure to publish is logged and
counted (metric ``NotificationFailed``) but does not undo or retry the change: the registry and its
audit ledger are the record, the notification is a courtesy.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib.adapters import aws
from chalicelib.observability import logger, metrics
from chalicelib.settings import Settings

MODEL_PROMOTED = "Model promoted"
MODEL_ROLLED_BACK = "Model rolled back"
APPROVAL_NEEDED = "Model version awaiting approval"
VERSION_REJECTED = "Model version rejected"
BATCH_JOB_SUCCEEDED = "Batch job succeeded"
BATCH_JOB_PARTIAL = "Batch job partial"
DETAIL_TYPES = (
    MODEL_PROMOTED,
    MODEL_ROLLED_BACK,
    APPROVAL_NEEDED,
    VERSION_REJECTED,
    BATCH_JOB_SUCCEEDED,
    BATCH_JOB_PARTIAL,
)


_arns: dict[str, str] = {}
_lock = threading.Lock()


def topic_arn(settings: Settings) -> str:
    name = settings.notifications_topic
    with _lock:
        if name not in _arns:
            sts = aws.client("sts")
            account = sts.get_caller_identity()["Account"]
            region = sts.meta.region_name
            partition = sts.meta.partition
            _arns[name] = f"arn:{partition}:sns:{region}:{account}:{name}"
        return _arns[name]


def publish(detail_type: str, detail: dict[str, Any], settings: Settings | None = None) -> bool:
    """Publish one event to the stage's topic; True if SNS accepted it."""
    if detail_type not in DETAIL_TYPES:
        raise ValueError(f"unknown notification {detail_type!r}")
    settings = settings or Settings.from_env()
    body = {"type": detail_type, "stage": settings.stage, **detail}
    try:
        aws.client("sns").publish(
            TopicArn=topic_arn(settings),
            Subject=f"[{settings.stage}] {detail_type}: {detail.get('model', '')}"[:100],
            Message=json.dumps(body, default=str),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": detail_type},
                "model": {"DataType": "String", "StringValue": str(detail.get("model", "-"))},
            },
        )
    except Exception as exc:  # a notification must never undo a committed change
        logger.error("notification not published", extra={"detail_type": detail_type, "error": str(exc)})
        metrics.add_metric(name="NotificationFailed", unit="Count", value=1)
        return False
    logger.info("notification published", extra={"detail_type": detail_type, "model": detail.get("model")})
    return True
