"""The batch jobs store in memory, with the DynamoDB adapter's semantics (``tests/adapters`` holds both
to them): create-only jobs, updates conditional on the job's existence and status, once-only claims,
and a shard settled together with the job's counters, all or nothing, once. One lock makes every
write atomic, as DynamoDB's conditional writes and transactions are.

Counters add as DynamoDB adds numbers (decimally: 0.1 + 0.2 is 0.3), and an ``add`` to a job that
does not exist creates a record holding only that counter, as an ``ADD`` does.
"""

from __future__ import annotations

import copy
import threading
import time
from decimal import Decimal
from typing import Any

from chalicelib.adapters.memory.documents import stored
from chalicelib.batch import jobs
from chalicelib.timeutil import now_iso

JOB = "job"


class MemoryJobStore:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.RLock()

    def _read(self, job_id: str, sk: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get((job_id, sk))
            return None if item is None else copy.deepcopy(item)

    # --- the job ----------------------------------------------------------------------------------

    def create(self, job: dict[str, Any]) -> bool:
        with self._lock:
            if (job["job_id"], JOB) in self._items:
                return False
            self._items[job["job_id"], JOB] = stored(jobs.new_job(job))
            return True

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._read(job_id, JOB)

    def update(self, job_id: str, expected: tuple[str, ...] | None = None, **fields: Any) -> bool:
        with self._lock:
            job = self._items.get((job_id, JOB))
            if job is None or (expected and job.get("status") not in expected):
                return False
            # SET keeps a None value (DynamoDB's NULL), where a new item leaves it out.
            job.update({k: stored({k: v}).get(k) for k, v in fields.items()})
            return True

    def claim(self, job_id: str, flag: str) -> bool:
        with self._lock:
            job = self._items.get((job_id, JOB))
            if job is None or flag in job:
                return False
            job[flag] = now_iso()
            return True

    def add(self, job_id: str, **deltas: float) -> None:
        with self._lock:
            self._add(job_id, {k: v for k, v in deltas.items() if v})

    def _add(self, job_id: str, deltas: dict[str, float]) -> None:
        if not deltas:
            return
        job = self._items.setdefault((job_id, JOB), {})
        for name, delta in deltas.items():
            total = Decimal(repr(job.get(name, 0))) + Decimal(repr(delta))
            job[name] = int(total) if total == total.to_integral_value() else float(total)

    # --- shards -----------------------------------------------------------------------------------

    def _settle(self, job_id: str, record: dict[str, Any], counters: dict[str, float]) -> bool:
        key = (job_id, jobs.shard_sk(int(record["index"])))
        with self._lock:
            if key in self._items:
                return False
            self._items[key] = stored(record)
            self._add(job_id, counters)
            return True

    def mark_done(self, job_id: str, index: int, part: dict[str, Any]) -> bool:
        return self._settle(job_id, *jobs.shard_done(index, part))

    def mark_failed(self, job_id: str, index: int, reason: str, **extra: Any) -> bool:
        return self._settle(job_id, *jobs.shard_failed(index, reason, extra))

    def record_error(self, job_id: str, index: int, error: str, worker: str) -> None:
        with self._lock:
            self._items[job_id, jobs.error_sk(index)] = stored(jobs.attempt_error(error, worker))

    def last_error(self, job_id: str, index: int) -> str | None:
        record = self._read(job_id, jobs.error_sk(index))
        return None if record is None else str(record.get("error"))

    def _query(self, job_id: str, prefix: str) -> list[dict[str, Any]]:
        """The job's records whose sort key starts with ``prefix``, in sort-key order (as a query)."""
        with self._lock:
            keys = sorted(k for k in self._items if k[0] == job_id and k[1].startswith(prefix))
            return [copy.deepcopy(self._items[k]) for k in keys]

    def shards(self, job_id: str) -> list[dict[str, Any]]:
        return sorted(self._query(job_id, jobs.SHARD), key=lambda s: int(s["index"]))

    # --- workers ----------------------------------------------------------------------------------

    def heartbeat(self, job_id: str, worker: str, state: str, started: float) -> None:
        record = {"worker": worker, "state": state, "started": started, "seen": time.time()}
        with self._lock:
            self._items[job_id, jobs.worker_sk(worker)] = stored(record)

    def workers(self, job_id: str) -> list[dict[str, Any]]:
        return self._query(job_id, jobs.WORKER)
