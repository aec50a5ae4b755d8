"""What the API, the planner and the DLQ handler do with batch jobs, through ``BatchPorts``."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from chalicelib.batch import costs
from chalicelib.batch.exceptions import InvalidRequest, JobNotFound, ModelNotAvailable, ModelNotFound
from chalicelib.batch.finishing import finish_if_complete
from chalicelib.batch.jobs import FAILED, FINAL, PLANNING, RUNNING, SUBMITTED, failed_shards, is_running
from chalicelib.batch.launch import worker_count
from chalicelib.batch.ports import BatchPorts, JobStore, RegistryReads
from chalicelib.batch.requests import REQUESTS_PREFIX, BatchRequest, choose_engine, job_id_from_key
from chalicelib.batch.sharding import Shard, plan_shards
from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.capture.records import capture_choice
from chalicelib.observability import logger
from chalicelib.serving.servable import refusal_reason
from chalicelib.timeutil import now_iso, parse_iso
from chalicelib.validation import ContractError, ContractStore, NoContract

PLAN_PREFIX = "batch/jobs/"


def new_job_id() -> str:
    return f"bj-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def plan_key(job_id: str) -> str:
    return f"{PLAN_PREFIX}{job_id}/plan.json"


def request_key(job_id: str) -> str:
    return f"{REQUESTS_PREFIX}{job_id}.json"


# --- submitting -------------------------------------------------------------------------------------


def pin_version(registry: RegistryReads, request: BatchRequest) -> tuple[int, dict[str, Any]]:
    """The version the job will use: the one asked for, else the champion now. An unknown model or
    version is ``ModelNotFound`` (404); a model without a champion, a version that may not answer
    predictions (rejected, tainted by a revoked upload: ``servable.refusal_reason``)
    ``ModelNotAvailable`` (409)."""
    version = request.version if request.version is not None else registry.champion(request.model)
    doc = None if version is None else registry.version(request.model, version)
    if doc is None and not registry.versions(request.model):
        raise ModelNotFound(
            f"no model named {request.model!r}: `mlops models list` shows the registered ones"
        )
    if version is None:
        raise ModelNotAvailable(f"model {request.model!r} has no champion: give a version")
    if doc is None:
        raise ModelNotFound(f"model {request.model!r} has no version {version}")
    refused = refusal_reason(doc)
    if refused:
        raise ModelNotAvailable(f"{request.model} v{version} {refused}: it cannot score")
    return int(version), doc


def pii_choice(contracts: ContractStore | None, request: BatchRequest) -> dict[str, Any]:
    """Which pii columns of the model's contract the outputs carry (the ones the request names in
    ``include_pii``) and which they leave out (all others). ``InvalidRequest`` naming the field when
    a name is not a column of the contract, or not a pii one. With them, the job's capture choice
    (``chalicelib.capture.records.capture_choice``): what its workers capture of each row."""
    if contracts is None:
        if request.include_pii:
            raise InvalidRequest("include_pii: no contract to check the names against here")
        return {"include_pii": [], "pii_dropped": []}
    try:
        contract = contracts.get(request.model)
    except (NoContract, ContractError) as exc:
        raise ModelNotAvailable(
            f"model {request.model!r}: its dataset's contract cannot be read ({exc}), so which columns "
            "are pii is unknown: store the contract again"
        ) from exc
    classes = {c.name: c.classification for c in contract.columns}
    for name in request.include_pii:
        if name not in classes:
            raise InvalidRequest(f"include_pii: {name!r} is not a column of the {request.model} contract")
        if classes[name] != "pii":
            raise InvalidRequest(
                f"include_pii: {name!r} is {classes[name]}, not pii: name only pii columns "
                "(the others are in the output as they are, unless the model takes them as features)"
            )
    pii = [name for name, kind in classes.items() if kind == "pii"]
    return {
        "include_pii": list(request.include_pii),
        "pii_dropped": [name for name in pii if name not in request.include_pii],
        "capture": capture_choice(contract, MonitoringPolicy.from_contract(contract)),
    }


def job_record(
    job_id: str,
    request: BatchRequest,
    version: int,
    doc: dict[str, Any],
    by: str,
    key: str,
    pii: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new job: the request, the pinned version, the engine chosen for it, and the pii choice."""
    engine, reason = choose_engine(request.engine, doc)
    return {
        **(pii or {"include_pii": [], "pii_dropped": []}),
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


def submit(ports: BatchPorts, body: Any, by: str) -> dict[str, Any]:
    """``POST /batch-jobs``: check, pin the version, record the job, drop the request for the planner.

    ``body``: the request document, or its declared body (``BatchRequestBody``) already checked."""
    request = BatchRequest.parse(body)
    version, doc = pin_version(ports.registry, request)
    if not ports.inputs.exists(request.input_prefix):
        raise InvalidRequest(f"input_prefix: nothing under s3://{ports.bucket}/{request.input_prefix}")
    pii = pii_choice(ports.contracts, request)
    job_id = new_job_id()
    job = job_record(job_id, request, version, doc, by, request_key(job_id), pii)
    if not ports.jobs.create(job):  # pragma: no cover - 32 random bits within one second
        raise InvalidRequest("a job with this id exists; submit again")
    pinned = {**request.to_dict(), "version": version, "engine": job["engine"]}
    ports.files.create(job["request_key"], json.dumps(pinned).encode())
    _log_pii_choice(job)
    return job


def _log_pii_choice(job: dict[str, Any]) -> None:
    """The audit of what a job's outputs carry: pii columns are names here, never values."""
    logger.info(
        "batch job submitted",
        extra={
            "job_id": job["job_id"],
            "model": job.get("model"),
            "submitted_by": job.get("submitted_by"),
            "include_pii": job.get("include_pii", []),
            "pii_dropped": job.get("pii_dropped", []),
        },
    )


def get(jobs: JobStore, job_id: str) -> dict[str, Any]:
    """The job record with live progress (workers heard from lately, failed shards) and its cost:
    every worker-second of every attempt so far, whatever the job's state (``costs.job_cost``)."""
    job = jobs.get(job_id)
    if job is None:
        raise JobNotFound(f"no batch job {job_id!r}")
    now = datetime.now(UTC)
    workers = jobs.workers(job_id)
    if job.get("status") not in FINAL:
        job.update(_progress(job, workers, now))
    job.update(costs.job_cost(job, workers, now.timestamp()))
    if int(job.get("shards_failed", 0)):
        job["failed"] = failed_shards(jobs.shards(job_id))
    return job


def _progress(job: dict[str, Any], workers: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    progress: dict[str, Any] = {"workers_running": sum(1 for w in workers if is_running(w, now.timestamp()))}
    started = parse_iso(job.get("running_at"))
    if started is not None:
        elapsed = (now - started).total_seconds()
        progress["elapsed_s"] = round(elapsed, 1)
        progress["rows_per_s"] = round(float(job.get("rows", 0)) / elapsed, 1) if elapsed > 0 else None
    return progress


# --- planning (the plan_batch_job function) -----------------------------------------------------------


def plan_request(ports: BatchPorts, key: str, version_id: str | None) -> dict[str, Any]:
    """A request object arrived: plan the job (once), queue its shards (once), start workers (once).

    Every step is idempotent, so a redelivered notification, or a retry after a crash at any point,
    completes the job's planning without doubling anything."""
    job_id = job_id_from_key(key)
    job = ports.jobs.get(job_id) or _record_dropped_request(ports, job_id, key, version_id)
    if job.get("request_key") != key:
        raise InvalidRequest(
            f"{key}: job {job_id} exists and came from {job.get('request_key')}; use another name"
        )
    if job["status"] in FINAL:
        return {
            "job_id": job_id,
            "status": job["status"],
            **({"error": job["error"]} if job.get("error") else {}),
        }
    ports.jobs.update(job_id, expected=(SUBMITTED,), status=PLANNING, planning_at=now_iso())
    shards = _plan(ports, job)
    if not shards:
        return _fail(ports.jobs, job_id, f"no rows to score under s3://{ports.bucket}/{job['input_prefix']}")
    _mark_running(ports.jobs, job_id, len(shards))
    _queue_once(ports, job_id, shards)
    workers = _launch_once(ports, job, len(shards))
    logger.info("batch job planned", extra={"job_id": job_id, "shards": len(shards), "workers": workers})
    return {"job_id": job_id, "status": RUNNING, "shards": len(shards), "workers": workers}


def _record_dropped_request(
    ports: BatchPorts, job_id: str, key: str, version_id: str | None
) -> dict[str, Any]:
    """A request dropped by a person or a tool, not the API: pin the champion now and record the job
    (a FAILED one if no version can score)."""
    request = BatchRequest.parse(_read_request(ports, key, version_id))
    try:
        version, doc = pin_version(ports.registry, request)
        pii = pii_choice(ports.contracts, request)
    except (ModelNotFound, ModelNotAvailable, InvalidRequest) as exc:
        job = {
            "job_id": job_id,
            "status": FAILED,
            "error": str(exc),
            "request_key": key,
            "model": request.model,
        }
    else:
        job = job_record(job_id, request, version, doc, "s3:" + key, key, pii)
    if ports.jobs.create(job) and job["status"] != FAILED:
        _log_pii_choice(job)
    stored = ports.jobs.get(job_id)
    assert stored is not None
    return stored


def _read_request(ports: BatchPorts, key: str, version_id: str | None) -> Any:
    body = ports.files.read(key, version_id)
    if body is None:
        raise InvalidRequest(f"{key}: the request is gone (deleted before it was planned)")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidRequest(f"{key}: not JSON: {exc}") from exc


def _fail(jobs: JobStore, job_id: str, error: str) -> dict[str, Any]:
    jobs.update(job_id, expected=(SUBMITTED, PLANNING), status=FAILED, error=error, finished_at=now_iso())
    return {"job_id": job_id, "status": FAILED, "error": error}


def _mark_running(jobs: JobStore, job_id: str, shards: int) -> None:
    jobs.update(
        job_id,
        expected=(SUBMITTED, PLANNING),
        status=RUNNING,
        total_shards=shards,
        plan_key=plan_key(job_id),
        running_at=now_iso(),
    )


def _plan(ports: BatchPorts, job: dict[str, Any]) -> list[Shard]:
    """The job's shard plan: read if it exists (it is immutable), else made and written create-only
    (a planner that loses the race reads the winner's)."""
    key = plan_key(job["job_id"])
    existing = ports.files.read(key)
    if existing is None:
        plan = make_plan(ports, job)
        if ports.files.create(key, json.dumps(plan).encode()):
            return [Shard.from_dict(s) for s in plan["shards"]]
        existing = ports.files.read(key)
        assert existing is not None
    return [Shard.from_dict(s) for s in json.loads(existing)["shards"]]


def make_plan(ports: BatchPorts, job: dict[str, Any]) -> dict[str, Any]:
    """Shards of every input object under the job's prefix, found with small range reads."""
    objects = ports.inputs.objects(job["input_prefix"])
    described, shards = plan_shards(objects, int(job["shard_bytes"]), ports.inputs.read)
    return {
        "job_id": job["job_id"],
        "input_prefix": job["input_prefix"],
        "shard_bytes": job["shard_bytes"],
        "objects": described,
        "shards": [s.to_dict() for s in shards],
        "created_at": now_iso(),
    }


def _queue_once(ports: BatchPorts, job_id: str, shards: list[Shard]) -> None:
    if (ports.jobs.get(job_id) or {}).get("messages_sent"):
        return
    # A retry after a crash between sending and recording sends again: a duplicate shard message
    # costs a little work, never a duplicate row (create-only parts, counted once).
    ports.queue.send([{"job_id": job_id, "plan_key": plan_key(job_id), "shard": s.to_dict()} for s in shards])
    ports.jobs.update(job_id, messages_sent=True)


def _launch_once(ports: BatchPorts, job: dict[str, Any], shards: int) -> int:
    workers = worker_count(job.get("workers_requested"), shards, ports.max_workers)
    if ports.jobs.claim(job["job_id"], "workers_started_at"):
        launched = ports.launcher.start(job["job_id"], workers)
        ports.jobs.update(job["job_id"], workers=workers, launch=launched)
    return workers


# --- the dead-letter queue (the batch_shard_failed function) ------------------------------------------


def shard_dead_lettered(ports: BatchPorts, body: str) -> dict[str, Any]:
    """A shard's message exhausted its receives: mark it failed (naming the last error), maybe finish."""
    message = json.loads(body)
    job_id, shard = message["job_id"], Shard.from_dict(message["shard"])
    reason = (
        ports.jobs.last_error(job_id, shard.index)
        or "failed on every attempt (workers lost while scoring it)"
    )
    counted = ports.jobs.mark_failed(
        job_id, shard.index, f"dead-lettered after repeated failures: {reason}",
        input_key=shard.key, input_range=[shard.start, shard.end],
    )  # fmt: skip
    status = finish_if_complete(ports, job_id)
    logger.warning("batch shard failed", extra={"job_id": job_id, "shard": shard.index, "counted": counted})
    return {"job_id": job_id, "shard": shard.index, "counted": counted, "finished": status}
