"""The runs store in memory, with the DynamoDB adapter's semantics (one lock makes every write atomic)."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.memory.documents import stored, value
from chalicelib.timeutil import now_iso
from chalicelib.training.exceptions import NoRun, RunExists
from chalicelib.training.policy import DatasetState, Trigger
from chalicelib.training.runs import coalesced_entry, dataset_state, lock_expiry, lock_is_free


class MemoryRunsStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}
        self._uploads: set[tuple[str, str]] = set()
        self._runs: dict[str, dict[str, Any]] = {}

    # --- dataset state --------------------------------------------------------------------------

    def count_upload(self, trigger: Trigger) -> bool:
        with self._lock:
            upload = (trigger.dataset, str(trigger.upload_id))
            if upload in self._uploads:
                return False
            self._uploads.add(upload)
            state = self._states.setdefault(trigger.dataset, {})
            state["rows_since_training"] = state.get("rows_since_training", 0) + trigger.rows
            if trigger.drift:
                state["drift_pending"] = True
            return True

    def state(self, dataset: str, now: datetime | None = None) -> DatasetState:
        with self._lock:
            doc = copy.deepcopy(self._states.get(dataset))
        return dataset_state(doc, now or datetime.now(UTC))

    def coalesced(self, dataset: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._states.get(dataset, {}).get("coalesced", []))

    def try_lock(self, dataset: str, run_id: str, now: datetime, seen: DatasetState | None = None) -> bool:
        with self._lock:
            state = self._states.setdefault(dataset, {})
            if not lock_is_free(state.get("lock_run_id"), state.get("lock_expires_at"), now):
                return False
            if seen is not None and (
                state.get("rows_since_training", 0) != seen.rows_since_training
                or bool(state.get("drift_pending", False)) != seen.drift_pending
            ):
                return False
            state.update(
                lock_run_id=run_id,
                lock_expires_at=lock_expiry(now),
                last_run_started_at=now.isoformat(timespec="seconds"),
                rows_since_training=0,
                drift_pending=False,
                coalesced=[],
            )
            return True

    def coalesce(self, dataset: str, trigger: Trigger, run_id: str | None) -> None:
        entry = value(coalesced_entry(trigger, run_id, now_iso("seconds")))
        with self._lock:
            self._states.setdefault(dataset, {}).setdefault("coalesced", []).append(entry)

    def release(self, dataset: str, run_id: str, succeeded: bool, now: datetime) -> list[dict[str, Any]]:
        with self._lock:
            state = self._states.get(dataset, {})
            coalesced = copy.deepcopy(state.get("coalesced", []))
            if state.get("lock_run_id") == run_id:
                del state["lock_run_id"]
                state.pop("lock_expires_at", None)
                if succeeded:
                    state["last_trained_at"] = now.isoformat(timespec="seconds")
            return coalesced

    # --- runs -----------------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        with self._lock:
            if run["run_id"] in self._runs:
                raise RunExists(f"run {run['run_id']!r} is already recorded")
            self._runs[run["run_id"]] = stored(run)

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self._lock:
            if run_id not in self._runs:
                raise NoRun(f"no run with id {run_id!r}")
            self._runs[run_id].update({k: value(v) for k, v in fields.items()})

    def add_attempt(self, run_id: str) -> int:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NoRun(f"no run with id {run_id!r}")
            run["attempts"] = run.get("attempts", 0) + 1
            return int(run["attempts"])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._runs.get(run_id))

    def list_runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            runs = [
                copy.deepcopy(r)
                for r in self._runs.values()
                if dataset is None or r.get("dataset") == dataset
            ]
        return sorted(runs, key=lambda r: str(r.get("created_at", "")))
