"""What the API, the planner and the DLQ handler do with batch jobs (adapters: S3, SQS, DynamoDB)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.batch.exceptions import InvalidRequest, JobNotFound, ModelNotAvailable
from chalicelib.batch.finishing import finish_if_complete
from chalicelib.batch.jobs import FAILED, FINAL, PLANNING, RUNNING, SUBMITTED, JobStore, now_iso
from chalicelib.batch.launch import start_workers, worker_count
from chalicelib.batch.requests import REQUESTS_PREFIX, BatchRequest, choose_engine, job_id_from_key
from chalicelib.batch.sharding import InputObject, Shard, plan_shards
from chalicelib.observability import logger
from chalicelib.registry.states import REJECTED
from chalicelib.settings import Settings

PLAN_PREFIX = "batch/jobs/"


def store(settings: Settings | None = None) -> JobStore:
    return JobStore((settings or Settings.from_env()).batch_jobs_table)


def new_job_id() -> str:
    return f"bj-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def plan_key(job_id: str) -> str:
    return f"{PLAN_PREFIX}{job_id}/plan.json"


# --- submitting -------------------------------------------------------------------------------------


def pin_version(request: BatchRequest, settings: Settings) -> tuple[int, dict[str, Any]]:
    """The version the job will use: the one asked for, else the champion now."""
    from chalicelib.adapters.aws.registry import DynamoRegistry  # until the batch stage takes ports

    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    version = request.version if request.version is not None else registry.champion(request.model)
    if version is None:
        raise ModelNotAvailable(f"model {request.model!r} has no champion: give a version")
    doc = registry.version(request.model, version)
    if doc is None:
        raise ModelNotAvailable(f"model {request.model!r} has no version {version}")
    if doc.get("status") == REJECTED:
        raise ModelNotAvailable(f"{request.model} v{version} was rejected: it cannot score")
    return int(version), doc


def _job_doc(
    job_id: str, request: BatchRequest, version: int, doc: dict[str, Any], by: str, key: str
) -> dict[str, Any]:
    engine, reason = choose_engine(request.engine, doc)
    return {
        "job_id": job_id,
        "status": SUBMITTED,
        "model": request.model,
        "version": version,
        "engine": engine,
        "engine_reason": reason,
        "family": doc.get("family"),
        "input_prefix": request.input_prefix,
        "output_prefix": request.job_output_prefix(job_id),
        "shard_bytes": request.shard_bytes,
        "workers_requested": request.workers,
        "request_key": key,
        "submitted_by": by,
        "created_at": now_iso(),
    }


def submit(body: Any, by: str, settings: Settings | None = None) -> dict[str, Any]:
    """``POST /batch-jobs``: check, pin the version, record the job, drop the request for the planner."""
    settings = settings or Settings.from_env()
    request = BatchRequest.parse(body)
    listed = aws.client("s3").list_objects_v2(
        Bucket=settings.data_bucket, Prefix=request.input_prefix, MaxKeys=1
    )
    if not listed.get("KeyCount"):
        raise InvalidRequest(
            f"input_prefix: nothing under s3://{settings.data_bucket}/{request.input_prefix}"
        )
    version, doc = pin_version(request, settings)
    job_id = new_job_id()
    key = f"{REQUESTS_PREFIX}{job_id}.json"
    job = _job_doc(job_id, request, version, doc, by, key)
    if not store(settings).create(job):  # pragma: no cover - 32 random bits within one second
        raise InvalidRequest("a job with this id exists; submit again")
    pinned = {**request.to_dict(), "version": version, "engine": job["engine"]}
    aws.put_if_absent(settings.data_bucket, key, json.dumps(pinned).encode(), ContentType="application/json")
    return job


def get(job_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The job record with live progress (workers heard from lately, failed shards)."""
    jobs = store(settings)
    job = jobs.get(job_id)
    if job is None:
        raise JobNotFound(f"no batch job {job_id!r}")
    if job.get("status") not in FINAL:
        job["workers_running"] = jobs.running_workers(job_id)
        started = job.get("running_at")
        if started:
            elapsed = (datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds()
            job["elapsed_s"] = round(elapsed, 1)
            job["rows_per_s"] = round(float(job.get("rows", 0)) / elapsed, 1) if elapsed > 0 else None
    if int(job.get("shards_failed", 0)):
        job["failed"] = [
            {"index": s["index"], "reason": s.get("reason"), "input_key": s.get("input_key")}
            for s in jobs.shards(job_id)
            if s.get("status") == "failed"
        ]
    return job


# --- planning (the plan_batch_job function) -----------------------------------------------------------


def plan_request(
    bucket: str, key: str, version_id: str | None, settings: Settings | None = None
) -> dict[str, Any]:
    """A request object arrived: plan the job (once), queue its shards (once), start workers (once).

    Every step is idempotent, so a redelivered notification, or a retry after a crash at any point,
    completes the job's planning without doubling anything."""
    settings = settings or Settings.from_env()
    jobs = store(settings)
    job_id = job_id_from_key(key)
    job = jobs.get(job_id)
    if job is None:  # dropped by a person or a tool, not the API: pin the champion now
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        try:
            body = json.loads(aws.client("s3").get_object(**args)["Body"].read())
        except ValueError as exc:
            raise InvalidRequest(f"{key}: not JSON: {exc}") from exc
        request = BatchRequest.parse(body)
        try:
            version, doc = pin_version(request, settings)
        except ModelNotAvailable as exc:
            jobs.create(
                {
                    "job_id": job_id,
                    "status": FAILED,
                    "error": str(exc),
                    "request_key": key,
                    "model": request.model,
                }
            )
            return {"job_id": job_id, "status": FAILED, "error": str(exc)}
        jobs.create(_job_doc(job_id, request, version, doc, "s3:" + key, key))
        job = jobs.get(job_id)
        assert job is not None
    if job.get("request_key") != key:
        raise InvalidRequest(
            f"{key}: job {job_id} exists and came from {job.get('request_key')}; use another name"
        )
    if job["status"] in FINAL:
        return {"job_id": job_id, "status": job["status"]}
    jobs.update(job_id, expected=(SUBMITTED,), status=PLANNING, planning_at=now_iso())
    shards = _plan(job, settings)
    if not shards:
        error = f"no rows to score under s3://{settings.data_bucket}/{job['input_prefix']}"
        jobs.update(job_id, expected=(SUBMITTED, PLANNING), status=FAILED, error=error, finished_at=now_iso())
        return {"job_id": job_id, "status": FAILED, "error": error}
    jobs.update(
        job_id,
        expected=(SUBMITTED, PLANNING),
        status=RUNNING,
        total_shards=len(shards),
        plan_key=plan_key(job_id),
        running_at=now_iso(),
    )
    current = jobs.get(job_id) or {}
    if not current.get("messages_sent"):
        # A retry after a crash between sending and recording sends again: a duplicate shard
        # message costs a little work, never a duplicate row (create-only parts, counted once).
        _queue_shards(job_id, shards, settings)
        jobs.update(job_id, messages_sent=True)
    workers = worker_count(job.get("workers_requested"), len(shards))
    if jobs.claim(job_id, "workers_started_at"):
        launched = start_workers(job_id, workers, settings)
        jobs.update(job_id, workers=workers, launch=launched)
    logger.info("batch job planned", extra={"job_id": job_id, "shards": len(shards), "workers": workers})
    return {"job_id": job_id, "status": RUNNING, "shards": len(shards), "workers": workers}


def _plan(job: dict[str, Any], settings: Settings) -> list[Shard]:
    """The job's shard plan: read if it exists (it is immutable), else made and written create-only."""
    s3 = aws.client("s3")
    key = plan_key(job["job_id"])
    try:
        plan = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=key)["Body"].read())
        return [Shard.from_dict(s) for s in plan["shards"]]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404"}:
            raise
    objects = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=settings.data_bucket, Prefix=job["input_prefix"]
    ):
        for version in page.get("Versions", []):
            if version.get("IsLatest") and not version["Key"].endswith("/"):
                objects.append(InputObject(version["Key"], int(version["Size"]), version.get("VersionId")))

    def read(obj: InputObject, start: int, length: int) -> bytes:
        args: dict[str, Any] = {
            "Bucket": settings.data_bucket,
            "Key": obj.key,
            "Range": f"bytes={start}-{start + length - 1}",
        }
        if obj.version_id and obj.version_id != "null":
            args["VersionId"] = obj.version_id
        return bytes(s3.get_object(**args)["Body"].read())

    described, shards = plan_shards(objects, int(job["shard_bytes"]), read)
    plan = {
        "job_id": job["job_id"],
        "input_prefix": job["input_prefix"],
        "shard_bytes": job["shard_bytes"],
        "objects": described,
        "shards": [s.to_dict() for s in shards],
        "created_at": now_iso(),
    }
    if not aws.put_if_absent(
        settings.data_bucket, key, json.dumps(plan).encode(), ContentType="application/json"
    ):
        plan = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=key)["Body"].read())
        return [Shard.from_dict(s) for s in plan["shards"]]
    return shards


def _queue_shards(job_id: str, shards: list[Shard], settings: Settings) -> None:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.batch_work_queue)["QueueUrl"]
    for i in range(0, len(shards), 10):
        entries = [
            {
                "Id": str(s.index),
                "MessageBody": json.dumps(
                    {"job_id": job_id, "plan_key": plan_key(job_id), "shard": s.to_dict()}
                ),
            }
            for s in shards[i : i + 10]
        ]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(
                f"SQS refused {len(response['Failed'])} shard message(s): {response['Failed'][0]}"
            )


# --- the dead-letter queue (the batch_shard_failed function) ------------------------------------------


def shard_dead_lettered(body: str, settings: Settings | None = None) -> dict[str, Any]:
    """A shard's message exhausted its receives: mark it failed (naming the last error), maybe finish."""
    settings = settings or Settings.from_env()
    message = json.loads(body)
    job_id, shard = message["job_id"], Shard.from_dict(message["shard"])
    jobs = store(settings)
    reason = jobs.last_error(job_id, shard.index) or "failed on every attempt (workers lost while scoring it)"
    counted = jobs.mark_failed(
        job_id, shard.index, f"dead-lettered after repeated failures: {reason}",
        input_key=shard.key, input_range=[shard.start, shard.end],
    )  # fmt: skip
    status = finish_if_complete(jobs, job_id, settings)
    logger.warning("batch shard failed", extra={"job_id": job_id, "shard": shard.index, "counted": counted})
    return {"job_id": job_id, "shard": shard.index, "counted": counted, "finished": status}
