"""Finishing a batch job: when every shard is settled, the manifest (create-only), then the status.

Any party that settles a shard (a worker, the DLQ handler) calls ``finish_if_complete``; so does an
idle worker. It is idempotent and safe to race: the manifest is written with ``IfNoneMatch="*"``
(the loser reads the winner's), and the status moves from ``RUNNING`` conditionally, so exactly one
caller publishes the notification.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chalicelib import notify
from chalicelib.adapters import aws
from chalicelib.batch import costs
from chalicelib.batch.jobs import PARTIAL, RUNNING, SUCCEEDED, JobStore, now_iso
from chalicelib.batch.sharding import manifest_key
from chalicelib.settings import Settings


def is_complete(job: dict[str, Any]) -> bool:
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
        "total_shards": job.get("total_shards"),
        "rows": sum(int(str(p["rows"])) for p in parts),
        "parts": parts,
        "failed_shards": failed,
        "complete": not failed and len(parts) == int(job.get("total_shards", -1)),
        "created_at": now_iso(),
    }


def _seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()


def finish_if_complete(store: JobStore, job_id: str, settings: Settings | None = None) -> str | None:
    """Finish the job if every shard is settled; returns the final status set by this call, else None."""
    job = store.get(job_id)
    if job is None or not is_complete(job):
        return None
    settings = settings or Settings.from_env()
    shards = store.shards(job_id)
    manifest = build_manifest(job, shards)
    key = manifest_key(job["output_prefix"])
    body = json.dumps(manifest, indent=2, default=str).encode()
    if not aws.put_if_absent(settings.data_bucket, key, body, ContentType="application/json"):
        existing = aws.client("s3").get_object(Bucket=settings.data_bucket, Key=key)["Body"].read()
        manifest = json.loads(existing)
    status = SUCCEEDED if not manifest["failed_shards"] else PARTIAL
    worker_seconds = float(job.get("worker_seconds", 0))
    duration = _seconds_since(job.get("running_at") or job.get("created_at"))
    figures = {
        "rows": manifest["rows"],
        "duration_s": None if duration is None else round(duration, 3),
        "rows_per_s": round(manifest["rows"] / duration, 1) if duration else None,
        "worker_seconds": round(worker_seconds, 3),
        "interruptions": int(job.get("interruptions", 0)),
        "cost": costs.estimate(worker_seconds),
        "manifest_key": key,
        "failed_shards": [f["index"] for f in manifest["failed_shards"]],
    }
    won = store.update(job_id, expected=(RUNNING,), status=status, finished_at=now_iso(), **figures)
    if not won:
        return None
    from chalicelib.adapters.aws.notifier import SnsNotifier  # until the batch stage takes ports

    SnsNotifier(settings).publish(
        notify.BATCH_JOB_SUCCEEDED if status == SUCCEEDED else notify.BATCH_JOB_PARTIAL,
        {
            "model": job.get("model"),
            "version": job.get("version"),
            "job_id": job_id,
            "status": status,
            **{k: figures[k] for k in ("rows", "duration_s", "failed_shards", "manifest_key")},
            "cost_spot_usd": figures["cost"]["spot_usd"],
            "output": f"s3://{settings.data_bucket}/{job['output_prefix']}",
        },
    )
    return status
