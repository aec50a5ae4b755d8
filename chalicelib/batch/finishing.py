"""Finishing a batch job: when every shard is settled, the manifest (create-only), then the status.

Any party that settles a shard (a worker, the DLQ handler) calls ``finish_if_complete``; so does an
idle worker. It is idempotent and safe to race: the manifest is written create-only (the loser reads
the winner's), and the status moves from ``RUNNING`` conditionally, so exactly one caller publishes
the notification.

The job's cost is not recorded here: workers still run when it finishes (the finisher itself, idle
ones on their way out), so its worker-seconds are computed from the attempts whenever the job is
read (``costs.job_cost``); the notification carries the cost so far and says it is not complete.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from chalicelib import notify
from chalicelib.batch import costs
from chalicelib.batch.jobs import PARTIAL, RUNNING, SUCCEEDED, build_manifest, is_complete
from chalicelib.batch.ports import BatchPorts
from chalicelib.batch.sharding import manifest_key
from chalicelib.timeutil import now_iso, seconds_between


def finish_if_complete(ports: BatchPorts, job_id: str) -> str | None:
    """Finish the job if every shard is settled; returns the final status set by this call, else None."""
    job = ports.jobs.get(job_id)
    if job is None or not is_complete(job):
        return None
    key = manifest_key(job["output_prefix"])
    manifest = _write_manifest(ports, key, build_manifest(job, ports.jobs.shards(job_id)))
    status = SUCCEEDED if not manifest["failed_shards"] else PARTIAL
    figures = job_figures(job, manifest, key)
    if not ports.jobs.update(job_id, expected=(RUNNING,), status=status, finished_at=now_iso(), **figures):
        return None
    so_far = costs.job_cost({**job, "status": status}, ports.jobs.workers(job_id), time.time())
    ports.notifier.publish(
        notify.BATCH_JOB_SUCCEEDED if status == SUCCEEDED else notify.BATCH_JOB_PARTIAL,
        finished_detail(job, status, figures, so_far["cost"], ports.bucket),
    )
    return status


def _write_manifest(ports: BatchPorts, key: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """This manifest, or the one another finisher wrote first (the first one stands)."""
    if ports.files.create(key, json.dumps(manifest, indent=2, default=str).encode()):
        return manifest
    existing = ports.files.read(key)
    if existing is None:  # pragma: no cover - a create-only write was refused for a key that is absent
        raise RuntimeError(f"the manifest {key} was refused as existing but cannot be read")
    return dict(json.loads(existing))


def job_figures(job: dict[str, Any], manifest: dict[str, Any], key: str) -> dict[str, Any]:
    """What the finished job records: rows, duration and rate, its manifest (its cost: ``costs``)."""
    duration = seconds_between(job.get("running_at") or job.get("created_at"), datetime.now(UTC))
    return {
        "rows": manifest["rows"],
        "duration_s": None if duration is None else round(duration, 3),
        "rows_per_s": round(manifest["rows"] / duration, 1) if duration else None,
        "manifest_key": key,
        "failed_shards": [f["index"] for f in manifest["failed_shards"]],
    }


def finished_detail(
    job: dict[str, Any], status: str, figures: dict[str, Any], cost: dict[str, Any], bucket: str
) -> dict[str, Any]:
    """The notification of a finished job, with its cost so far (``cost_complete``: final or not)."""
    return {
        "model": job.get("model"),
        "version": job.get("version"),
        "job_id": job["job_id"],
        "status": status,
        **{k: figures[k] for k in ("rows", "duration_s", "failed_shards", "manifest_key")},
        "cost_spot_usd": cost["spot_usd"],
        "cost_spot": cost["spot"],
        "cost_complete": cost["complete"],
        "output": f"s3://{bucket}/{job['output_prefix']}",
    }
