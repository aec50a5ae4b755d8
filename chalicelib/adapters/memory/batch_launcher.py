"""A worker launcher that starts nothing and records what it was asked (service tests)."""

from __future__ import annotations

import threading
from typing import Any


class RecordingLauncher:
    def __init__(self) -> None:
        self._started: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def start(self, job_id: str, workers: int) -> dict[str, Any]:
        with self._lock:
            self._started.append((job_id, workers))
        return {"backend": "memory", "workers": workers}

    @property
    def started(self) -> list[tuple[str, int]]:
        """``(job_id, workers)`` of every start, oldest first."""
        with self._lock:
            return list(self._started)
