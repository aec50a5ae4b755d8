"""The kickoff: turn a trigger (validated data, schedule, request, a run ending) into a decision,
and a decision to launch into exactly one run per dataset at a time.

Ports come in (``TrainingPorts``): the runs store with its single-flight lock, the contracts, the
data snapshots, the job launcher and the revoked uploads (left out of every snapshot). The decision itself is ``policy.decide``, pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.observability import logger, metrics
from chalicelib.training.policy import Decision, Trigger, decide
from chalicelib.training.ports import (
    Clock,
    Contracts,
    Launcher,
    NoRevocations,
    Revocations,
    RunsStore,
    SnapshotStore,
)
from chalicelib.training.runs import queued_run, run_id_for
from chalicelib.training.settings import TrainingSettings
from chalicelib.training.snapshot import snapshot
from chalicelib.validation.exceptions import ContractError, NoContract


@dataclass(frozen=True)
class TrainingPorts:
    runs: RunsStore
    contracts: Contracts
    snapshots: SnapshotStore
    launcher: Launcher
    clock: Clock = field(default=partial(datetime.now, UTC))
    revocations: Revocations = field(default_factory=NoRevocations)


def handle_trigger(ports: TrainingPorts, trigger: Trigger) -> dict[str, Any]:
    """Evaluate one trigger: skip it, coalesce it into the run in flight, or launch one run.
    Returns ``{"action", "reasons", "run_id"?}``."""
    decision, run_id = _evaluate(ports, trigger)
    return _outcome(trigger, decision, run_id)


def check_schedule(ports: TrainingPorts) -> dict[str, dict[str, Any]]:
    """The periodic check: each dataset with a contract, judged on age and pending data."""
    return {
        dataset: handle_trigger(ports, Trigger(kind="schedule", dataset=dataset, reason="scheduled check"))
        for dataset in ports.contracts.datasets()
    }


LOCK_ATTEMPTS = 8  # reads of the state per trigger while other uploads keep being counted


def _evaluate(ports: TrainingPorts, trigger: Trigger) -> tuple[Decision, str | None]:
    now = ports.clock()
    try:
        contract = ports.contracts.get(trigger.dataset)
        retrain = TrainingSettings.from_contract(contract).retrain
    except (NoContract, ContractError) as exc:
        return Decision("skip", [f"cannot train {trigger.dataset!r}: {exc}"]), None
    if trigger.kind == "data" and not ports.runs.count_upload(trigger):
        return Decision("skip", [f"upload {trigger.upload_id} was already counted"]), None
    for _ in range(LOCK_ATTEMPTS):
        state = ports.runs.state(trigger.dataset, now)
        decision = decide(trigger, state, retrain, now)
        if decision.action == "coalesce":
            ports.runs.coalesce(trigger.dataset, trigger, state.run_in_flight)
            return decision, state.run_in_flight
        if decision.action == "skip":
            return decision, None
        # Revoked uploads leave every snapshot from now on (and so the training set and the holdout).
        revoked = ports.revocations.revoked(trigger.dataset)
        manifest = snapshot(
            ports.snapshots, trigger.dataset, contract.classification, exclude_uploads=revoked
        )
        if manifest is None:
            left = f" ({len(revoked)} revoked upload(s) left out)" if revoked else ""
            return Decision("skip", [f"no validated data for {trigger.dataset!r} yet{left}"]), None
        # Every upload counted in ``state`` was published before it was counted, so it is in the
        # snapshot; the lock holds only if nothing was counted since, else the next read decides.
        run_id = run_id_for(trigger.dataset, now, manifest["data_hash"])
        if ports.runs.try_lock(trigger.dataset, run_id, now, state):
            ports.runs.create_run(
                queued_run(run_id, trigger, decision, manifest, contract.version, _iso(now))
            )
            _launch(ports, trigger.dataset, run_id)
            return decision, run_id
        holder = ports.runs.state(trigger.dataset, now).run_in_flight
        if holder:
            # Another trigger won the race between our read and our lock: this one waits for that run.
            ports.runs.coalesce(trigger.dataset, trigger, holder)
            return Decision("coalesce", [f"run {holder} started first"]), holder
    # Uploads kept arriving: the newest one's trigger reads the state after counting, with these rows.
    return Decision(
        "skip",
        [f"other uploads were counted during each of {LOCK_ATTEMPTS} decisions; a later trigger decides"],
    ), None


def _launch(ports: TrainingPorts, dataset: str, run_id: str) -> None:
    """Submit the run's job. A job that cannot start fails its run and frees the lock, and the
    error propagates (the trigger's message is retried)."""
    try:
        job = ports.launcher.launch(run_id, dataset)
    except Exception as exc:
        now = ports.clock()
        ports.runs.update_run(
            run_id, status="failed", error=f"could not start the job: {exc}", finished_at=_iso(now)
        )
        ports.runs.release(dataset, run_id, succeeded=False, now=now)
        raise
    ports.runs.update_run(run_id, status="submitted", job=job)
    metrics.add_metric(name="TrainingRunsLaunched", unit=MetricUnit.Count, value=1)


def _outcome(trigger: Trigger, decision: Decision, run_id: str | None) -> dict[str, Any]:
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


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
