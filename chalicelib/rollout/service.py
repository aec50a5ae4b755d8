"""The rollout evaluator: every few minutes (the ``advance_rollouts`` function), each running rollout
is judged on what its candidate answered and stepped, completed or aborted through the registry.

``advance_rollouts`` is safe to run at any time, again, or twice at once (its function has a reserved
concurrency of 1, but nothing depends on it):

1. For every model whose rollout pointer is running (``active`` or ``paused``), the captured records
   of the current step, ``[step_started_at, now)`` (a paused rollout too: it is still guarded), and
   the outcomes received in that time are read. Records are re-read from the step's start on every
   run, so records the capture pipeline delivers late count on the next run.
2. ``chalicelib.rollout.guards`` computes the figures (the task and the outcome horizon from the
   contract, the primary metric and its direction from the candidate's registry record) and decides:
   ``abort``, ``step``, ``complete`` or ``hold``. A candidate that may no longer answer (rejected, or
   tainted by a revoked upload: ``chalicelib.serving.servable``) is aborted whatever its figures:
   predict skips it, so it would never gather the evidence to step, and it can never become champion.
3. The decision is committed through the registry (``change_rollout`` for a step, ``abort_rollout``,
   ``complete_rollout``: the promotion transaction), each conditional on the revision read. When a
   person changed the rollout meanwhile (``RolloutConflict``), it is read again and decided anew,
   once; a second conflict is reported in the run's summary, never raised (the next run decides).
4. Notifications after the commit: ``Model rollout aborted`` (the guard, the reason naming the
   figures, the figures) and ``Model promoted`` for a completion (as every champion change, naming
   the rollout).

**What is stored.** The figures are stored with the decisions that change the rollout (the step's,
completion's or abort's event and the pointer's ``evaluation``); a ``hold`` writes nothing (every
write is a revision and an audit event: one every five minutes of a long bake would bury the
decisions). The run's summary returns every model's figures, holds included, and the function logs
it.

One model's failure (an unreadable contract, an AWS error) does not keep the others from being
judged: each is tried, then ``RolloutsFailed`` names the failed ones (the function's error alarm
fires; the next run tries again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib import notify
from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.capture.ports import CaptureSource
from chalicelib.errors import NotFound, RegistryError
from chalicelib.monitoring.ports import OutcomeStore
from chalicelib.registry.ports import ContractReader
from chalicelib.registry.rollout import EVALUATOR, RUNNING, Event, Rollout, RolloutConflict
from chalicelib.rollout import guards
from chalicelib.serving import servable

SERVABLE = "servable"  # the abort's guard when the candidate may no longer answer


class RolloutRegistry(Protocol):
    """What the evaluator reads and writes of the registry (``chalicelib.registry.ports.Registry``)."""

    def models(self) -> list[str]: ...

    def rollout(self, model: str) -> dict[str, Any] | None: ...

    def version(self, model: str, v: int) -> dict[str, Any] | None: ...

    def change_rollout(self, new: Rollout, event: Event) -> dict[str, Any]: ...

    def abort_rollout(self, new: Rollout, event: Event) -> dict[str, Any]: ...

    def complete_rollout(self, new: Rollout, event: Event) -> dict[str, Any]: ...


@dataclass
class RolloutPorts:
    """What the evaluator touches: the registry, the captured records, the contracts, the outcomes
    and the notifier. ``outcomes`` None: the metric guard never judges."""

    registry: RolloutRegistry
    capture: CaptureSource
    contracts: ContractReader
    notifier: notify.Notifier
    outcomes: OutcomeStore | None = None
    log: Callable[[str, dict[str, Any]], None] = field(default=lambda message, detail: None)


class RolloutsFailed(RegistryError):
    """Some rollouts could not be judged this run; ``done`` has what happened to every model."""

    def __init__(self, done: dict[str, Any], failed: dict[str, str]) -> None:
        super().__init__("; ".join(f"{model}: {why}" for model, why in sorted(failed.items())))
        self.done = done
        self.failed = failed


def advance_rollouts(
    ports: RolloutPorts, now: datetime, models: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Judge every running rollout (of ``models``, default all) and commit what the guards decide.
    Returns, per model with a running rollout, ``{"rollout", "action", "guard", "reason", "figures",
    "status", "step", "share", "revision"}`` (``"retried"`` after a conflict; ``"conflict"`` when a
    person's change won twice: the action is then ``hold``)."""
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for model in models if models is not None else ports.registry.models():
        try:
            result = advance_rollout(ports, model, now)
        except Exception as exc:
            failed[model] = f"{type(exc).__name__}: {exc}"[:500]
            done[model] = {"failed": failed[model]}
            continue
        if result is not None:
            done[model] = result
    if failed:
        raise RolloutsFailed(done, failed)
    return done


def advance_rollout(ports: RolloutPorts, model: str, now: datetime) -> dict[str, Any] | None:
    """Judge the model's rollout (again after a conflict, once); None when none is running."""
    judge = _Judge(ports, model, now.astimezone(UTC))
    pointer = ports.registry.rollout(model)
    if not pointer or pointer.get("status") not in RUNNING:
        return None
    try:
        return judge.decide_and_commit(Rollout.from_dict(pointer))
    except RolloutConflict:
        pass  # a person paused, resumed or aborted it meanwhile: read it again, decide anew
    pointer = ports.registry.rollout(model) or {}
    if pointer.get("status") not in RUNNING:
        return {
            "rollout": pointer.get("id"),
            "action": guards.HOLD,
            "reason": f"a person changed the rollout meanwhile: it is {pointer.get('status')}",
            "status": pointer.get("status"),
            "retried": True,
        }
    rollout = Rollout.from_dict(pointer)
    try:
        return {**judge.decide_and_commit(rollout), "retried": True}
    except RolloutConflict as exc:
        ports.log("rollout changed twice while it was judged", {"model": model, "error": str(exc)})
        return {
            "rollout": rollout.id,
            "action": guards.HOLD,
            "reason": f"changed twice while it was judged; the next run decides: {exc}",
            "status": rollout.status,
            "retried": True,
            "conflict": True,
        }


class _Judge:
    """One model's judgement within a run: what it read is kept for a second decision after a
    conflict (the same step's records are not read twice)."""

    def __init__(self, ports: RolloutPorts, model: str, now: datetime) -> None:
        self.ports, self.model, self.now = ports, model, now
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._outcomes: dict[str, list[Any]] = {}

    def records(self, start: datetime) -> list[dict[str, Any]]:
        key = start.isoformat()
        if key not in self._records:
            self._records[key] = list(self.ports.capture.records(self.model, start, self.now))
        return self._records[key]

    def outcomes(self, start: datetime) -> list[Any]:
        if self.ports.outcomes is None:
            return []
        key = start.isoformat()
        if key not in self._outcomes:
            self._outcomes[key] = list(self.ports.outcomes.received(self.model, start, self.now))
        return self._outcomes[key]

    def context(self, rollout: Rollout) -> tuple[guards.Judged, timedelta, dict[str, Any] | None]:
        """The task, metric and direction the figures need, the outcome horizon, and the
        candidate's record."""
        doc = self.ports.registry.version(self.model, rollout.candidate)
        try:
            contract = self.ports.contracts.get(self.model)
        except NotFound:
            contract = None
        task = contract.task if contract is not None else str((doc or {}).get("task") or "classification")
        horizon = timedelta(
            hours=MonitoringPolicy.from_contract(contract).outcome_horizon_hours
            if contract is not None
            else 168
        )
        metric = (doc or {}).get("primary_metric")
        greater = bool(((doc or {}).get("training_metrics") or {}).get("greater_is_better", True))
        return guards.Judged(task, str(metric) if metric else None, greater), horizon, doc

    def decide_and_commit(self, rollout: Rollout) -> dict[str, Any]:
        start = guards.moment(rollout.step_started_at)
        judged, horizon, doc = self.context(rollout)
        found = guards.figures(self.records(start), rollout, judged, self.outcomes(start), horizon)
        found["window"] = {"start": start.isoformat(), "end": self.now.isoformat()}
        refused = servable.refusal_reason(doc) if doc is not None else "is not registered"
        if refused:
            decision = guards.Decision(
                guards.ABORT, SERVABLE,
                f"candidate v{rollout.candidate} {refused}: it may not answer, nor become the champion",
            )  # fmt: skip
        else:
            decision = guards.decide(rollout, found, self.now)
        at = self.now.isoformat(timespec="microseconds")
        registry = self.ports.registry
        if decision.action == guards.ABORT:
            new, event = rollout.abort(at, EVALUATOR, decision.reason, decision.guard, found)
            registry.abort_rollout(new, event)
        elif decision.action == guards.STEP:
            new, event = rollout.advance(at, decision.reason, found)
            registry.change_rollout(new, event)
        elif decision.action == guards.COMPLETE:
            new, event = rollout.complete(at, decision.reason, found)
            registry.complete_rollout(new, event)
        else:
            new = rollout
        self._announce(rollout, decision, found)
        return {
            "rollout": rollout.id,
            "action": decision.action,
            "guard": decision.guard,
            "reason": decision.reason,
            "figures": found,
            "status": new.status,
            "step": new.step,
            "share": new.share,
            "revision": new.revision,
        }

    def _announce(self, rollout: Rollout, decision: guards.Decision, found: dict[str, Any]) -> None:
        if decision.action == guards.ABORT:
            self.ports.notifier.publish(
                notify.MODEL_ROLLOUT_ABORTED,
                {  # the keys of a person's abort (chalicelib.registry.rollouts), and the figures
                    "model": self.model,
                    "rollout": rollout.id,
                    "version": rollout.candidate,
                    "champion": rollout.champion,
                    "share": rollout.share,
                    "guard": decision.guard,
                    "reason": decision.reason,
                    "figures": found["guards"],
                    "by": EVALUATOR,
                },
            )
        elif decision.action == guards.COMPLETE:
            self.ports.notifier.publish(
                notify.MODEL_PROMOTED,
                {
                    "model": self.model,
                    "from_version": rollout.champion,
                    "to_version": rollout.candidate,
                    "by": EVALUATOR,
                    "reason": decision.reason,
                    "rollout": rollout.id,
                },
            )
