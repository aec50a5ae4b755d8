"""Training: retrain triggers (the retrain queue, the hourly check, POST /datasets/{name}/retrain), runs."""

from __future__ import annotations

from typing import Any

from chalice import Rate, Response
from chalice.app import CloudWatchEvent, SQSEvent

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES, READS, caller
from chalicelib.entrypoints.blueprint import Area, dataset_name, json_body
from chalicelib.errors import Conflict, NotFound
from chalicelib.http import Change

bp = Area(__name__)
settings = bootstrap.settings()


@bp.on_sqs_message(queue=settings.retrain_queue, batch_size=10, name="kickoff_retraining")
def kickoff_retraining(event: SQSEvent) -> dict[str, Any]:
    """Announcements of validated data (and of runs ending) -> retrain policy -> at most one run."""
    from chalicelib.training.handler import handle_retrain_batch

    return handle_retrain_batch(bootstrap.training_ports(), event.to_dict(), event.context)


@bp.schedule(Rate(1, unit=Rate.HOURS), name="scheduled_retrain_check")
def scheduled_retrain_check(event: CloudWatchEvent) -> dict[str, Any]:
    """Hourly: retrain datasets whose model is past its maximum age (and has new data)."""
    from chalicelib.training.service import check_schedule

    return check_schedule(bootstrap.training_ports())


@bp.route(
    "/datasets/{name}/retrain",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def request_retrain(name: str) -> Response:
    """Ask for a training run now. 202 with the run id; 409 if a run is already in flight, or if none
    can start now (no contract or no validated data yet: the reasons say which)."""
    from chalicelib.training.policy import Trigger
    from chalicelib.training.service import handle_trigger

    dataset_name(name)
    reason = json_body(bp, Change).reason
    outcome = handle_trigger(
        bootstrap.retrain_request_ports(),
        Trigger(kind="request", dataset=name, reason=f"{reason.strip()[:500]} (asked by {caller(bp)})"),
    )
    if outcome["action"] == "launch":
        return Response(body=outcome, status_code=202)
    if outcome["action"] == "coalesce":
        raise Conflict(f"run {outcome.get('run_id')} is in flight for {name!r}; your request was recorded")
    raise Conflict("; ".join(outcome["reasons"]))  # a valid request the dataset's state cannot serve yet


@bp.route("/runs/{run_id}", methods=["GET"], authorizer=READS)
def get_run(run_id: str) -> dict[str, Any]:

    run = bootstrap.runs_store().get_run(run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    return run


@bp.route("/runs", methods=["GET"], authorizer=READS)
def list_runs() -> dict[str, Any]:

    params = bp.current_request.query_params
    dataset = params.get("dataset") if params else None
    return {"runs": bootstrap.runs_store().list_runs(dataset)}
