"""A batch job's record and its rules (pure): statuses, counters, settled shards, the manifest.

A job's store (``ports.JobStore``) holds, per job id:

* the job: request, pinned model version, engine, status, ``total_shards`` and the counters the
  workers add to (``COUNTERS``), all starting at 0;
* one record per settled shard (``shard_sk``): written once, when the shard is done (part key, rows,
  bytes, sha256) or failed (the reason), together with the job's counter, conditional on the shard
  not being settled yet. So a shard is counted once however many workers finish it, and the counters
  reach ``total_shards`` exactly once, when the last shard is settled;
* the last error of a shard's failed attempt (``error_sk``: the DLQ handler names it);
* one record per worker attempt (``worker_sk``: state, ``started``, ``seen``), rewritten at its
  start, every ``HEARTBEAT_S`` and at its end: live progress for ``mlops batch status``, and what
  the job's worker-seconds and cost are computed from (``costs.job_cost``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.timeutil import now_iso

SUBMITTED = "SUBMITTED"
PLANNING = "PLANNING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
PARTIAL = "PARTIAL"
FAILED = "FAILED"
FINAL = (SUCCEEDED, PARTIAL, FAILED)
COUNTERS = (
    "shards_done",
    "shards_failed",
    "rows",
    "interruptions",
    "failures",
    "worker_starts",
)
HEARTBEAT_S = 5.0  # a running worker rewrites its record this often
WORKER_ALIVE_S = 30.0  # a worker not heard from for this long is not counted as running
GONE = ("exited", "released")  # worker states that mean it takes no more shards
REASON_CHARS = 2000  # a failure's reason is cut to this (a stack of errors can be long)


# Sort keys of a job's records beside the job itself (a store lists each kind by its prefix).
SHARD = "shard#"
ERROR = "error#"
WORKER = "worker#"


def shard_sk(index: int) -> str:
    return f"{SHARD}{index:05d}"


def error_sk(index: int) -> str:
    return f"{ERROR}{index:05d}"


def worker_sk(worker: str) -> str:
    return f"{WORKER}{worker}"


def new_job(job: dict[str, Any]) -> dict[str, Any]:
    """The job as first stored: every counter at 0 and a creation time, unless the job gives them."""
    doc = {**{c: 0 for c in COUNTERS}, **job}
    doc.setdefault("created_at", now_iso())
    return doc


def shard_done(index: int, part: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """The settled-shard record of a written part, and what it adds to the job's counters."""
    record = {**part, "status": "done", "index": index, "at": now_iso()}
    return record, {"shards_done": 1, "rows": int(part["rows"])}


def shard_failed(index: int, reason: str, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """The settled-shard record of a shard that will not be scored, and what it adds to the counters."""
    record = {**extra, "status": "failed", "reason": reason[:REASON_CHARS], "index": index, "at": now_iso()}
    return record, {"shards_failed": 1}


def attempt_error(error: str, worker: str) -> dict[str, Any]:
    """The record of a shard's failed attempt (the last one is kept)."""
    return {"error": error[:REASON_CHARS], "worker": worker, "at": now_iso()}


def is_running(worker: Mapping[str, Any], now: float) -> bool:
    """A worker counts as running if it is not gone and was heard from within ``WORKER_ALIVE_S``."""
    return worker.get("state") not in GONE and now - float(worker.get("seen", 0)) < WORKER_ALIVE_S


def is_complete(job: dict[str, Any]) -> bool:
    """Every shard of a running job is settled (done or failed)."""
    total = job.get("total_shards")
    if total is None or job.get("status") != RUNNING:
        return False
    return int(job.get("shards_done", 0)) + int(job.get("shards_failed", 0)) >= int(total)


def build_manifest(job: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Every part with its rows and checksum, and every failed shard with its reason."""
    parts: list[dict[str, Any]] = [
        {k: s.get(k) for k in ("index", "key", "rows", "bytes", "sha256", "input_key", "input_range")}
        for s in shards
        if s.get("status") == "done"
    ]
    failed = [
        {k: s.get(k) for k in ("index", "reason", "input_key", "input_range")}
        for s in shards
        if s.get("status") == "failed"
    ]
    return {
        "job_id": job["job_id"],
        "model": job.get("model"),
        "version": job.get("version"),
        "engine": job.get("engine"),
        "input_prefix": job.get("input_prefix"),
        "output_prefix": job.get("output_prefix"),
        "include_pii": job.get("include_pii", []),  # the pii columns the outputs carry, by request
        "pii_dropped": job.get("pii_dropped", []),
        "total_shards": job.get("total_shards"),
        "rows": sum(int(str(p["rows"])) for p in parts),
        "parts": parts,
        "failed_shards": failed,
        "complete": not failed and len(parts) == int(job.get("total_shards", -1)),
        "created_at": now_iso(),
    }


def failed_shards(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed shards as ``GET /batch-jobs/{id}`` lists them."""
    return [
        {"index": s["index"], "reason": s.get("reason"), "input_key": s.get("input_key")}
        for s in shards
        if s.get("status") == "failed"
    ]
