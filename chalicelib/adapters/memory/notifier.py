"""The notifier in memory: every event accepted is recorded, in order."""

from __future__ import annotations

import copy
import threading
from typing import Any

from chalicelib.notify import check_detail_type


class MemoryNotifier:
    """``reachable=False`` stands for a topic that cannot be reached: ``publish`` answers False."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self._messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        check_detail_type(detail_type)
        if not self.reachable:
            return False
        with self._lock:
            self._messages.append((detail_type, copy.deepcopy(detail)))
        return True

    @property
    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """``(detail_type, detail)`` of every event published so far, oldest first."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def types(self) -> list[str]:
        return [detail_type for detail_type, _ in self.messages]
