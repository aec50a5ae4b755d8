"""Batch jobs' notifications on the stage's SNS topic (``chalicelib.batch.ports.Notifier``), through
``chalicelib.notify.publish``: a failure to publish is logged and answered False, never raised."""

from __future__ import annotations

from typing import Any

from chalicelib import notify
from chalicelib.settings import Settings


class TopicNotifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        return notify.publish(detail_type, detail, self.settings)
