"""Batch inference: POST/GET /batch-jobs, the planner (batch requests queue), failed shards (its DLQ)."""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import SQSEvent

from chalicelib import bootstrap
from chalicelib.batch.requests import BatchRequestBody
from chalicelib.entrypoints.auth import CHANGES, READS, caller
from chalicelib.entrypoints.blueprint import Area, json_body
from chalicelib.settings import dlq_name

bp = Area(__name__)
settings = bootstrap.settings()


@bp.route(
    "/batch-jobs",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=BatchRequestBody,
)
def submit_batch_job() -> Response:
    """Score every row under an input prefix with a pinned version (default: the champion now). 202."""
    from chalicelib.batch import service

    body = json_body(bp, BatchRequestBody)
    return Response(body=service.submit(bootstrap.batch_ports(), body, caller(bp)), status_code=202)


@bp.route("/batch-jobs/{job_id}", methods=["GET"], authorizer=READS)
def get_batch_job(job_id: str) -> dict[str, Any]:
    """A batch job: status, shards done and failed, rows, rate, workers, interruptions, cost."""
    from chalicelib.batch import service

    return service.get(bootstrap.batch_jobs(), job_id)


@bp.on_sqs_message(queue=settings.batch_requests_queue, batch_size=1, name="plan_batch_job")
def plan_batch_job(event: SQSEvent) -> dict[str, Any]:
    """A request under batch/requests/ -> shard plan, shard messages, workers (each step once)."""
    from chalicelib.batch.handler import handle_request_batch

    return handle_request_batch(event.to_dict(), event.context, bootstrap.batch_ports())


@bp.on_sqs_message(queue=dlq_name(settings.batch_work_queue), batch_size=10, name="batch_shard_failed")
def batch_shard_failed(event: SQSEvent) -> dict[str, Any]:
    """Shards that failed every attempt (the work queue's DLQ) -> failed on their job, PARTIAL at the end."""
    from chalicelib.batch.handler import handle_dead_letter_batch

    return handle_dead_letter_batch(event.to_dict(), event.context, bootstrap.batch_ports())
