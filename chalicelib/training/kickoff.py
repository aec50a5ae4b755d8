"""The kickoff: turn a trigger (validated data, schedule, request, a run ending) into a decision,
and a decision to launch into exactly one run per dataset at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.observability import logger, metrics
from chalicelib.settings import Settings
from chalicelib.training.launch import launch
from chalicelib.training.policy import Decision, Trigger, decide
from chalicelib.training.runs import RunsStore, now_iso, run_id_for
from chalicelib.training.settings import TrainingSettings
from chalicelib.training.snapshot import snapshot
from chalicelib.validation import ContractError, NoContract


def handle_trigger(trigger: Trigger, now: datetime | None = None) -> dict[str, Any]:
    """Evaluate one trigger. Returns {"action", "reasons", "run_id"?}."""
    settings = Settings.from_env()
    now = now or datetime.now(UTC)
    store = RunsStore(settings.runs_table)
    try:
        contract = S3ContractStore(settings.data_bucket).get(trigger.dataset)
        training = TrainingSettings.from_contract(contract)
    except (NoContract, ContractError) as exc:
        return _outcome(trigger, Decision("skip", [f"cannot train {trigger.dataset!r}: {exc}"]))
    if trigger.kind == "data" and not store.count_upload(trigger):
        return _outcome(trigger, Decision("skip", [f"upload {trigger.upload_id} was already counted"]))
    state = store.state(trigger.dataset, now)
    decision = decide(trigger, state, training.retrain, now)
    if decision.action == "coalesce":
        store.coalesce(trigger.dataset, trigger, state.run_in_flight)
        return _outcome(trigger, decision, run_id=state.run_in_flight)
    if decision.action == "skip":
        return _outcome(trigger, decision)
    manifest = snapshot(trigger.dataset, settings.data_bucket, contract.classification)
    if manifest is None:
        return _outcome(trigger, Decision("skip", [f"no validated data for {trigger.dataset!r} yet"]))
    run_id = run_id_for(trigger.dataset, now, manifest["data_hash"])
    if not store.try_lock(trigger.dataset, run_id, now):
        # Another trigger won the race between our read and our lock: this one waits for that run.
        holder = store.state(trigger.dataset, now).run_in_flight
        store.coalesce(trigger.dataset, trigger, holder)
        return _outcome(trigger, Decision("coalesce", [f"run {holder} started first"]), run_id=holder)
    store.create_run(
        {
            "run_id": run_id,
            "dataset": trigger.dataset,
            "status": "queued",
            "reasons": decision.reasons,
            "trigger": {"kind": trigger.kind, "reason": trigger.reason, "upload_id": trigger.upload_id},
            "data_manifest_key": manifest["key"],
            "data_hash": manifest["data_hash"],
            "data_objects": len(manifest["objects"]),
            "data_bytes": manifest["bytes"],
            "contract_version": contract.version,
            "created_at": now_iso(),
            "attempts": 0,
        }
    )
    try:
        job = launch(run_id, trigger.dataset, settings)
    except Exception as exc:
        store.update_run(
            run_id, status="failed", error=f"could not start the job: {exc}", finished_at=now_iso()
        )
        store.release(trigger.dataset, run_id, succeeded=False, now=now)
        raise
    store.update_run(run_id, status="submitted", job=job)
    metrics.add_metric(name="TrainingRunsLaunched", unit=MetricUnit.Count, value=1)
    return _outcome(trigger, decision, run_id=run_id)


def _outcome(trigger: Trigger, decision: Decision, run_id: str | None = None) -> dict[str, Any]:
    logger.info(
        "retrain trigger evaluated",
        extra={
            "dataset": trigger.dataset,
            "trigger": trigger.kind,
            "action": decision.action,
            "reasons": decision.reasons,
            "run_id": run_id,
        },
    )
    if decision.action == "coalesce":
        metrics.add_metric(name="RetrainTriggersCoalesced", unit=MetricUnit.Count, value=1)
    result: dict[str, Any] = {"action": decision.action, "reasons": decision.reasons}
    if run_id:
        result["run_id"] = run_id
    return result


def trigger_from_message(body: dict[str, Any]) -> Trigger:
    """A retrain-queue message -> a Trigger. Raises ValueError on an unknown message."""
    event = body.get("event")
    dataset = body.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ValueError("retrain message has no 'dataset'")
    if event == "data.validated":
        return Trigger(
            kind="data",
            dataset=dataset,
            upload_id=str(body.get("upload_id")),
            rows=int(body.get("rows", 0)),
            drift=body.get("drift") == "drifted",
            reason=f"upload {body.get('upload_id')} validated",
        )
    if event == "run.finished":
        return Trigger(
            kind="run_finished",
            dataset=dataset,
            reason=f"run {body.get('run_id')} finished with triggers waiting",
        )
    raise ValueError(f"unknown retrain message event {event!r}")


def datasets_with_contracts(bucket: str) -> list[str]:
    return S3ContractStore(bucket).datasets()
