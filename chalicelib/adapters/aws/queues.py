"""An SQS queue, send side: JSON bodies."""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib.adapters import aws


class SqsQueue:
    """Sends to the queue of this name; its URL is looked up on the first send and kept."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._url: str | None = None
        self._lock = threading.Lock()

    def send(self, body: dict[str, Any]) -> None:
        aws.client("sqs").send_message(QueueUrl=self.url(), MessageBody=json.dumps(body))

    def url(self) -> str:
        with self._lock:
            if self._url is None:
                self._url = str(aws.client("sqs").get_queue_url(QueueName=self.name)["QueueUrl"])
            return self._url
