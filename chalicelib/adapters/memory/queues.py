"""A queue in memory: what was sent, in order, as the JSON a consumer would read back."""

from __future__ import annotations

import json
import threading
from typing import Any


class MemoryQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[str] = []

    def send(self, body: dict[str, Any]) -> None:
        text = json.dumps(body)  # as SQS would carry it: a body that is not JSON fails here too
        with self._lock:
            self._messages.append(text)

    def receive(self) -> list[dict[str, Any]]:
        """Take every message sent so far, oldest first."""
        with self._lock:
            taken, self._messages = self._messages, []
        return [json.loads(text) for text in taken]
