"""The monitor's store in memory (``chalicelib.monitoring.store``), with its create-only breaches."""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import Any

from chalicelib.monitoring.store import breach_key, parse_stamp, reference_key, stamp, window_key


class MemoryMonitoringStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []  # every key written, in order (a window rewritten appears twice)

    def put_window(self, model: str, report: dict[str, Any]) -> None:
        key = window_key(model, parse_stamp(report["window"]))
        with self._lock:
            self.objects[key] = copy.deepcopy(report)
            self.writes.append(key)

    def _between(self, folder: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        low, high = stamp(start), stamp(end)
        with self._lock:
            found = sorted(
                (key, doc)
                for key, doc in self.objects.items()
                if key.startswith(folder) and low <= key[len(folder) :][: len(low)] < high
            )
        return [copy.deepcopy(doc) for _, doc in found]

    def windows(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._between(f"monitoring/{model}/windows/", start, end)

    def add_breach(self, model: str, breach: dict[str, Any]) -> bool:
        key = breach_key(model, parse_stamp(breach["windows"][-1]), breach["kind"])
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = copy.deepcopy(breach)
            self.writes.append(key)
            return True

    def breaches(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._between(f"monitoring/{model}/audit/", start, end)

    def reference(self, model: str, version: int) -> dict[str, Any] | None:
        with self._lock:
            found = self.objects.get(reference_key(model, version))
        return copy.deepcopy(found) if found is not None else None

    def put_reference(self, model: str, version: int, doc: dict[str, Any]) -> None:
        with self._lock:
            self.objects[reference_key(model, version)] = copy.deepcopy(doc)
