"""serverless-mlops: the Chalice app. Thin handlers; the logic lives in chalicelib."""

from __future__ import annotations

import os
from typing import Any

from chalice import (
    AuthResponse,
    BadRequestError,
    Chalice,
    ChaliceViewError,
    ConflictError,
    NotFoundError,
    Rate,
    Response,
)
from chalice.app import AuthRequest, CloudWatchEvent, SQSEvent

from chalicelib import auth, observability
from chalicelib.http import BadRequest, parse_json_body
from chalicelib.lazy import LazyModule
from chalicelib.settings import DATASET_NAME, Settings, dlq_name

# Each Lambda function imports this module, so the stages are imported on first use: the API
# function answering /predict from cold never loads validation, training or the evaluator.
ingest: Any = LazyModule("chalicelib.ingest")
evaluator: Any = LazyModule("chalicelib.registry.evaluator")
service: Any = LazyModule("chalicelib.registry.service")
predict: Any = LazyModule("chalicelib.serving.predict")
serving: Any = LazyModule("chalicelib.serving")
training_handler: Any = LazyModule("chalicelib.training.handler")
kickoff: Any = LazyModule("chalicelib.training.kickoff")
policy: Any = LazyModule("chalicelib.training.policy")
runs: Any = LazyModule("chalicelib.training.runs")
validation: Any = LazyModule("chalicelib.validation")

app = Chalice(app_name="serverless-mlops")
# Names are derived from MLOPS_STAGE at import time: `chalice deploy --stage X` imports this
# module with stage X's environment variables, which is how each stage's queue gets wired.
settings = Settings.from_env()
# Middleware first: Chalice attaches it to the handlers defined after it.
observability.install(app)


@app.authorizer(ttl_seconds=auth.AUTHORIZER_TTL_S)
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """Bearer tokens whose SHA-256 lives in SSM; the role decides which routes (chalicelib/auth.py)."""
    return auth.authorize(auth_request)


# Changing routes always need a token. Reading routes (and /predict) need one where
# MLOPS_AUTH_READS is true: the default, and so in every deployed stage; the local stage turns it
# off in .chalice/config.json. Decided at import, like the queue names.
CHANGES = token_authorizer
READS = token_authorizer if os.environ.get("MLOPS_AUTH_READS", "true").lower() != "false" else None


def _caller() -> str:
    return auth.caller_from(app.current_request)


@app.on_sqs_message(
    queue=settings.ingest_queue, batch_size=10, maximum_batching_window_in_seconds=1, name="ingest_upload"
)
def ingest_upload(event: SQSEvent) -> dict[str, Any]:
    """S3 notifications of uploads under incoming/ -> validation -> uploads ledger."""
    return ingest.handle_ingest_batch(event.to_dict(), event.context)


@app.on_sqs_message(queue=settings.retrain_queue, batch_size=10, name="kickoff_retraining")
def kickoff_retraining(event: SQSEvent) -> dict[str, Any]:
    """Announcements of validated data (and of runs ending) -> retrain policy -> at most one run."""
    return training_handler.handle_retrain_batch(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.HOURS), name="scheduled_retrain_check")
def scheduled_retrain_check(event: CloudWatchEvent) -> dict[str, Any]:
    """Hourly: retrain datasets whose model is past its maximum age (and has new data)."""
    return training_handler.handle_schedule()


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "stage": Settings.from_env().stage}


@app.on_sqs_message(queue=settings.promotion_queue, batch_size=1, name="evaluate_candidate")
def evaluate_candidate(event: SQSEvent) -> dict[str, Any]:
    """Candidate manifests -> verify, register, score against the champion, gates, promote or not."""
    return evaluator.handle_promotion_batch(event.to_dict(), event.context)


@app.route("/uploads/{upload_id}", methods=["GET"], authorizer=READS)
def get_upload(upload_id: str) -> dict[str, Any]:
    upload = ingest.UploadLedger(Settings.from_env().uploads_table).get(upload_id)
    if upload is None:
        raise NotFoundError(f"no upload with id {upload_id!r}")
    return upload.as_item()


def _dataset_name(name: str) -> str:
    if not DATASET_NAME.fullmatch(name):
        raise BadRequestError(f"dataset name {name!r} must be 1-63 lowercase letters, digits, '-' or '_'")
    return name


@app.route(
    "/datasets/{name}/contract", methods=["PUT"], content_types=["application/json"], authorizer=CHANGES
)
def put_contract(name: str) -> dict[str, Any]:
    """Store a dataset's data contract; a broken contract is refused with the field named."""
    _dataset_name(name)
    try:
        document = parse_json_body(app.current_request.raw_body)
        contract = validation.Contract.parse(document)
        if contract.dataset != name:
            raise BadRequestError(
                f"dataset: the contract is for {contract.dataset!r} but was sent to {name!r}"
            )
        key = validation.ContractStore(Settings.from_env().data_bucket).put(contract)
    except BadRequest as exc:
        raise BadRequestError(str(exc)) from exc
    except validation.ContractError as exc:
        raise BadRequestError(f"invalid contract: {exc}") from exc
    return {"dataset": name, "version": contract.version, "key": key}


@app.route("/datasets/{name}/contract", methods=["GET"], authorizer=READS)
def get_contract(name: str) -> dict[str, Any]:
    try:
        return validation.ContractStore(Settings.from_env().data_bucket).get(_dataset_name(name)).to_dict()
    except validation.NoContract as exc:
        raise NotFoundError(str(exc)) from exc


@app.route(
    "/datasets/{name}/retrain", methods=["POST"], content_types=["application/json"], authorizer=CHANGES
)
def request_retrain(name: str) -> Response:
    """Ask for a training run now. 202 with the run id; 409 if a run is already in flight."""
    _dataset_name(name)
    try:
        body = parse_json_body(app.current_request.raw_body)
    except BadRequest as exc:
        raise BadRequestError(str(exc)) from exc
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequestError("reason: give a non-empty string saying why this retrain is needed")
    outcome = kickoff.handle_trigger(
        policy.Trigger(kind="request", dataset=name, reason=f"{reason.strip()[:500]} (asked by {_caller()})")
    )
    if outcome["action"] == "launch":
        return Response(body=outcome, status_code=202)
    if outcome["action"] == "coalesce":
        raise ConflictError(
            f"run {outcome.get('run_id')} is in flight for {name!r}; your request was recorded"
        )
    raise BadRequestError("; ".join(outcome["reasons"]))


@app.route("/runs/{run_id}", methods=["GET"], authorizer=READS)
def get_run(run_id: str) -> dict[str, Any]:
    run = runs.RunsStore(Settings.from_env().runs_table).get_run(run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id!r}")
    return run


@app.route("/runs", methods=["GET"], authorizer=READS)
def list_runs() -> dict[str, Any]:
    dataset = (app.current_request.query_params or {}).get("dataset")
    return {"runs": runs.RunsStore(Settings.from_env().runs_table).list_runs(dataset)}


# --- the model registry ----------------------------------------------------------------------------


def _model_name(name: str) -> str:
    if not DATASET_NAME.fullmatch(name):
        raise BadRequestError(f"model name {name!r} must be 1-63 lowercase letters, digits, '-' or '_'")
    return name


def _version(version: str) -> int:
    if not version.isdigit() or not 1 <= int(version) <= 99_999_999:
        raise BadRequestError(f"version: {version!r} is not a version number (1, 2, 3...)")
    return int(version)


def _change_body() -> tuple[dict[str, Any], str]:
    try:
        body = parse_json_body(app.current_request.raw_body)
        return body, service.reason_from(body)
    except (BadRequest, ValueError) as exc:
        raise BadRequestError(str(exc)) from exc


def _registry_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(service.registry(), *args, **kwargs)
    except service.NotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except service.Conflict as exc:
        raise ConflictError(str(exc)) from exc


@app.route("/models", methods=["GET"], authorizer=READS)
def list_models() -> dict[str, Any]:
    return {"models": _registry_call(service.list_models)}


@app.route("/models/{name}", methods=["GET"], authorizer=READS)
def show_model(name: str) -> dict[str, Any]:
    return dict(_registry_call(service.show_model, _model_name(name)))


@app.route("/models/{name}/versions/{version}", methods=["GET"], authorizer=READS)
def show_version(name: str, version: str) -> dict[str, Any]:
    return dict(_registry_call(service.show_version, _model_name(name), _version(version)))


@app.route("/models/{name}/audit", methods=["GET"], authorizer=READS)
def model_audit(name: str) -> dict[str, Any]:
    return {"model": name, "entries": _registry_call(service.audit, _model_name(name))}


@app.route(
    "/models/{name}/versions/{version}/approve",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
)
def approve_version(name: str, version: str) -> dict[str, Any]:
    """Approve a version pending approval and make it the champion (stale or repeated: 409)."""
    model, v = _model_name(name), _version(version)
    body, reason = _change_body()
    expected = body.get("expected_champion")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise BadRequestError("expected_champion: a version number, or null for none")
    entry = _registry_call(service.approve, model, v, _caller(), reason, expected_champion=expected)
    return {"model": model, "champion": v, "audit": entry}


@app.route(
    "/models/{name}/versions/{version}/reject",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
)
def reject_version(name: str, version: str) -> dict[str, Any]:
    model, v = _model_name(name), _version(version)
    _, reason = _change_body()
    doc = _registry_call(service.reject, model, v, _caller(), reason)
    return {"model": model, "version": v, "status": doc["status"]}


@app.route(
    "/models/{name}/rollback", methods=["POST"], content_types=["application/json"], authorizer=CHANGES
)
def rollback_model(name: str) -> dict[str, Any]:
    """Bring back the champion before the current one, from the audit ledger."""
    model = _model_name(name)
    _, reason = _change_body()
    entry = _registry_call(service.rollback, model, _caller(), reason)
    return {"model": model, "champion": entry["to_version"], "audit": entry}


@app.route(
    "/models/{name}/challenger", methods=["PUT"], content_types=["application/json"], authorizer=CHANGES
)
def set_challenger(name: str) -> dict[str, Any]:
    """Name a version to shadow the champion on /predict (``{"version": null}`` clears it)."""
    model = _model_name(name)
    body, reason = _change_body()
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise BadRequestError("version: a version number, or null for no challenger")
    return dict(_registry_call(service.set_challenger, model, version, _caller(), reason))


# --- predictions -----------------------------------------------------------------------------------


def _invalid(exc: Any) -> Response:
    return Response(
        status_code=400,
        body={
            "Code": "BadRequestError",
            "Message": str(exc),
            "problems": [p.to_dict() for p in exc.problems],
            "problem_count": exc.count,
        },
    )


def _predict(name: str, version: int | None) -> Any:
    model = _model_name(name)
    try:
        body = parse_json_body(app.current_request.raw_body, max_bytes=predict.MAX_BODY_BYTES)
        return predict.predictor().predict(model, predict.parse_records(body), version)
    except BadRequest as exc:
        return _invalid(serving.InvalidInput([serving.Problem(None, None, str(exc))]))
    except serving.InvalidInput as exc:
        return _invalid(exc)
    except predict.ModelNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except predict.NotServable as exc:
        raise ConflictError(str(exc)) from exc
    except serving.IntegrityError as exc:  # the stored model differs from what was verified: never serve it
        raise ChaliceViewError(f"the model file failed its integrity check: {exc}") from exc


@app.route("/models/{name}/predict", methods=["POST"], content_types=["application/json"], authorizer=READS)
def predict_champion(name: str) -> Any:
    """The champion scores ``{"records": [...]}``: per record the prediction (and class probabilities)."""
    return _predict(name, None)


@app.route(
    "/models/{name}/versions/{version}/predict",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=READS,
)
def predict_version(name: str, version: str) -> Any:
    """A pinned version scores the records (any registered version that was not rejected)."""
    return _predict(name, _version(version))


# --- batch inference -------------------------------------------------------------------------------
batch_service: Any = LazyModule("chalicelib.batch.service")
batch_errors: Any = LazyModule("chalicelib.batch.exceptions")
batch_handler: Any = LazyModule("chalicelib.batch.handler")


@app.route("/batch-jobs", methods=["POST"], content_types=["application/json"], authorizer=CHANGES)
def submit_batch_job() -> Response:
    """Score every row under an input prefix with a pinned version (default: the champion now). 202."""
    try:
        body = parse_json_body(app.current_request.raw_body)
        job = batch_service.submit(body, _caller())
    except (BadRequest, batch_errors.InvalidRequest) as exc:
        raise BadRequestError(str(exc)) from exc
    except batch_errors.ModelNotAvailable as exc:
        raise ConflictError(str(exc)) from exc
    return Response(body=job, status_code=202)


@app.route("/batch-jobs/{job_id}", methods=["GET"], authorizer=READS)
def get_batch_job(job_id: str) -> dict[str, Any]:
    """A batch job: status, shards done and failed, rows, rate, workers, interruptions, cost."""
    try:
        return batch_service.get(job_id)
    except batch_errors.JobNotFound as exc:
        raise NotFoundError(str(exc)) from exc


@app.on_sqs_message(queue=settings.batch_requests_queue, batch_size=1, name="plan_batch_job")
def plan_batch_job(event: SQSEvent) -> dict[str, Any]:
    """A request under batch/requests/ -> shard plan, shard messages, workers (each step once)."""
    return batch_handler.handle_request_batch(event.to_dict(), event.context)


@app.on_sqs_message(queue=dlq_name(settings.batch_work_queue), batch_size=10, name="batch_shard_failed")
def batch_shard_failed(event: SQSEvent) -> dict[str, Any]:
    """Shards that failed every attempt (the work queue's DLQ) -> failed on their job, PARTIAL at the end."""
    return batch_handler.handle_dead_letter_batch(event.to_dict(), event.context)
