"""A training launcher that starts nothing and records what it was asked to launch (service tests)."""

from __future__ import annotations

import threading
from typing import Any


class RecordingLauncher:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.launched: list[tuple[str, str]] = []  # (run id, dataset), in order
        self.fail_with = fail_with  # raised by every launch, as a job queue that refuses would
        self._lock = threading.Lock()

    def launch(self, run_id: str, dataset: str) -> dict[str, Any]:
        if not run_id or not dataset:
            raise ValueError("run_id and dataset are required")
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.launched.append((run_id, dataset))
            return {"backend": "memory", "job_id": f"job-{len(self.launched)}"}
