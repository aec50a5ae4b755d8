"""The model registry: candidates arriving (the promotion queue) and the /models API."""

from __future__ import annotations

from typing import Any, cast

from chalice.app import SQSEvent

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES, READS, caller
from chalicelib.entrypoints.blueprint import Area, json_body, model_name, version_number
from chalicelib.errors import InvalidInput
from chalicelib.http import BadRequest, Body
from chalicelib.registry.requests import Approval, Challenger, Change, RolloutStart

bp = Area(__name__)
settings = bootstrap.settings()


@bp.on_sqs_message(queue=settings.promotion_queue, batch_size=1, name="evaluate_candidate")
def evaluate_candidate(event: SQSEvent) -> dict[str, Any]:
    """Candidate manifests -> verify, register, score against the champion, gates, promote or not."""
    from chalicelib.registry.handler import handle_promotion_batch

    return handle_promotion_batch(event.to_dict(), event.context, bootstrap.evaluator_ports())


def _change_body[B: Body](declared: type[B]) -> tuple[B, str]:
    """A change's body, as declared (``chalicelib.registry.requests``), and its ``reason``."""
    from chalicelib.registry.service import reason_from

    body = cast(B, json_body(bp, declared))
    try:
        return body, reason_from(body.to_dict())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


@bp.route("/models", methods=["GET"], authorizer=READS)
def list_models() -> dict[str, Any]:
    from chalicelib.registry import service

    return {"models": service.list_models(bootstrap.registry())}


@bp.route("/models/{name}", methods=["GET"], authorizer=READS)
def show_model(name: str) -> dict[str, Any]:
    from chalicelib.registry import service

    return dict(service.show_model(bootstrap.registry(), model_name(name)))


@bp.route("/models/{name}/versions/{version}", methods=["GET"], authorizer=READS)
def show_version(name: str, version: str) -> dict[str, Any]:
    from chalicelib.registry import service

    return dict(service.show_version(bootstrap.registry(), model_name(name), version_number(version)))


@bp.route("/models/{name}/audit", methods=["GET"], authorizer=READS)
def model_audit(name: str) -> dict[str, Any]:
    from chalicelib.registry import service

    return {"model": name, "entries": service.audit(bootstrap.registry(), model_name(name))}


@bp.route("/models/{name}/champion", methods=["GET"], authorizer=READS)
def champion_at(name: str) -> dict[str, Any]:
    """Which version was the champion at ``?at=<ISO 8601>`` (default now; no offset: UTC), and the
    audit entry that made it so (who, action, reason), from the audit ledger."""
    from datetime import UTC, datetime

    from chalicelib.registry import history

    params = bp.current_request.query_params
    unknown = sorted(set(params or ()) - {"at"})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown query parameter; allowed: at")
    given = params.getlist("at") if params and "at" in params else []
    if len(given) > 1:
        raise InvalidInput("at: give one instant, not several")
    at = given[0] if given else None
    return history.champion_at_instant(bootstrap.registry(), model_name(name), at, datetime.now(UTC))


@bp.route(
    "/models/{name}/versions/{version}/approve",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Approval,
)
def approve_version(name: str, version: str) -> dict[str, Any]:
    """Approve a version pending approval and make it the champion, or, when the contract's
    ``promotion.rollout`` has a strategy, start a rollout of it (``action`` says which: ``promoted``
    with the ``audit`` entry, or ``rollout_started`` with the ``rollout``). Stale or repeated: 409."""
    from chalicelib.registry import rollouts

    model, v = model_name(name), version_number(version)
    body, reason = _change_body(Approval)
    return rollouts.approve(
        bootstrap.registry(),
        bootstrap.contracts(),
        bootstrap.notifier(),
        model,
        v,
        caller(bp),
        reason,
        expected_champion=body.expected_champion,
    )


@bp.route(
    "/models/{name}/versions/{version}/reject",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def reject_version(name: str, version: str) -> dict[str, Any]:
    from chalicelib.registry import service

    model, v = model_name(name), version_number(version)
    _, reason = _change_body(Change)
    doc = service.reject(bootstrap.registry(), bootstrap.notifier(), model, v, caller(bp), reason)
    return {"model": model, "version": v, "status": doc["status"]}


@bp.route(
    "/models/{name}/rollback",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def rollback_model(name: str) -> dict[str, Any]:
    """Bring back the champion before the current one, from the audit ledger."""
    from chalicelib.registry import service

    model = model_name(name)
    _, reason = _change_body(Change)
    entry = service.rollback(bootstrap.registry(), bootstrap.notifier(), model, caller(bp), reason)
    return {"model": model, "champion": entry["to_version"], "audit": entry}


@bp.route(
    "/models/{name}/challenger",
    methods=["PUT"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Challenger,
)
def set_challenger(name: str) -> dict[str, Any]:
    """Name a version to shadow the champion on /predict (``{"version": null}`` clears it)."""
    from chalicelib.registry import service

    model = model_name(name)
    body, reason = _change_body(Challenger)
    return dict(service.set_challenger(bootstrap.registry(), model, body.version, caller(bp), reason))


@bp.route("/models/{name}/rollout", methods=["GET"], authorizer=READS)
def rollout_status(name: str) -> dict[str, Any]:
    """The model's running or last rollout (``rollout``, null: never one) and its ``events``."""
    from chalicelib.registry import rollouts

    return rollouts.rollout_status(bootstrap.registry(), model_name(name))


@bp.route(
    "/models/{name}/rollout",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=RolloutStart,
)
def start_rollout(name: str) -> dict[str, Any]:
    """Start a rollout of a version pending approval (or a former champion): a growing share of the
    traffic, by the body's schedule or the contract's ``promotion.rollout``."""
    from chalicelib.registry import rollouts

    model = model_name(name)
    body, reason = _change_body(RolloutStart)
    try:
        pointer = rollouts.start_rollout(
            bootstrap.registry(),
            bootstrap.contracts(),
            bootstrap.notifier(),
            model,
            body.version,
            caller(bp),
            reason,
            schedule_request=body.schedule_request(),
        )
    except InvalidInput:
        raise
    except ValueError as exc:  # the schedule: "rollout.canary: ..." names the body's field
        field, _, problem = str(exc).partition(": ")
        raise BadRequest(problem, field.removeprefix("rollout.") or None) from None
    return {"model": model, "rollout": pointer}


def _rollout_change(name: str, action: str) -> dict[str, Any]:
    from chalicelib.registry import rollouts

    model = model_name(name)
    _, reason = _change_body(Change)
    registry, who = bootstrap.registry(), caller(bp)
    if action == "abort":
        pointer = rollouts.abort(registry, bootstrap.notifier(), model, who, reason)
    elif action == "pause":
        pointer = rollouts.pause(registry, model, who, reason)
    else:
        pointer = rollouts.resume(registry, model, who, reason)
    return {"model": model, "rollout": pointer}


@bp.route(
    "/models/{name}/rollout/pause",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def pause_rollout(name: str) -> dict[str, Any]:
    """Hold the running rollout at its share (still guarded: a breach aborts it)."""
    return _rollout_change(name, "pause")


@bp.route(
    "/models/{name}/rollout/resume",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def resume_rollout(name: str) -> dict[str, Any]:
    """Let a paused rollout step again (its step's bake starts again)."""
    return _rollout_change(name, "resume")


@bp.route(
    "/models/{name}/rollout/abort",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=Change,
)
def abort_rollout(name: str) -> dict[str, Any]:
    """End the running rollout: all traffic back to the champion, the candidate back to waiting."""
    return _rollout_change(name, "abort")
