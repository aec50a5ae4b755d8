"""What the rollout routes and the evaluator do with rollouts, apart from HTTP: start one, pause,
resume or abort it, show it; and an approval that starts one instead of a switch.

The rules of a rollout are ``chalicelib.registry.rollout``'s, the all-or-nothing changes the
registry's (``Registry.start_rollout`` and the others); this module decides what to ask for.
Completions and the guards' steps and aborts belong to the scheduled rollout evaluator.

Starting a rollout (a person: ``POST /models/{name}/rollout``, ``mlops models rollout``):

* the version must be waiting for approval (``pending_approval``, or ``approved`` and never
  promoted) with gates that compared it with the current champion (a stale approval is refused as
  in ``service.approve``), or ``retired`` (a former champion, rolled out again);
* there must be a champion: a first model has nothing to roll out against (409: approve it);
* no other rollout may be running (409, "abort it first"); this one is the model's next number;
* the schedule is the caller's (``Schedule.from_request``: ``{"canary": 10, "bake": "15m"}`` or
  ``{"linear": 20, "every": "10m"}``, what is left out from the default), else the contract's
  ``promotion.rollout`` default; the guards are the policy's.

An **approval** (``approve``) starts a rollout when the contract's policy has a rollout strategy
(and there is a champion to roll out against), else it makes the version the champion at once
(``service.approve``); its answer says which (``action``: ``rollout_started`` or ``promoted``).

Pause, resume and abort name their caller and require a reason; each is conditional on the rollout
read, so a person's abort racing the evaluator's step commits once or raises ``RolloutConflict``
(409: read it again). Errors: 404 (``NotFound``), 409 (``Conflict``), 400 (``ValueError``: a bad
schedule, naming the field).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from chalicelib import notify
from chalicelib.notify import Notifier
from chalicelib.registry import rollout, service
from chalicelib.registry.policy import PromotionPolicy
from chalicelib.registry.ports import Clock, ContractReader, Registry, utc_now
from chalicelib.registry.rollout import Rollout, RolloutPolicy, Schedule
from chalicelib.registry.states import (
    APPROVED,
    CHAMPION,
    PENDING_APPROVAL,
    RETIRED,
    ROLLING_OUT,
    SUPERSEDED,
    Conflict,
    NotFound,
    label,
)
from chalicelib.validation.exceptions import ContractError, NoContract

STARTABLE = (PENDING_APPROVAL, APPROVED, RETIRED)  # what a person may roll out


def policy_of(contracts: ContractReader, model: str) -> RolloutPolicy:
    """The model's rollout policy, from its dataset's contract (none, or unreadable: the defaults,
    no rollout strategy: an approval is a switch, a started rollout has the default schedule)."""
    try:
        return PromotionPolicy.from_contract(contracts.get(model)).rollout
    except (NoContract, ContractError):
        return RolloutPolicy()


def now(clock: Clock) -> str:
    """A rollout's times: UTC, ISO 8601, to the microsecond (as the registry's)."""
    return clock().astimezone(UTC).isoformat(timespec="microseconds")


def begin(
    reg: Registry,
    policy: RolloutPolicy,
    model: str,
    version: int,
    status: str,
    champion: int,
    by: str,
    reason: str,
    at: str,
    schedule: Schedule | None = None,
    gates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the model's next rollout of ``version`` (now ``status``) against ``champion``: the
    ``schedule`` given or the policy's, the policy's guards. The pointer. (The checks of who may
    start what are the callers': a person's ``start_rollout``, the evaluator's gates.)"""
    last = reg.rollout(model)
    number = (int(last["number"]) if last else 0) + 1
    rollout.check_next_number(model, number, last)  # a running rollout: 409, "abort it first"
    new, event = rollout.start(
        model, number, version, champion, schedule or policy.schedule, policy.guards, at, by, reason, status
    )
    return reg.start_rollout(new, event, status, gates=gates)


def announce_started(notifier: Notifier, pointer: dict[str, Any]) -> None:
    schedule = Schedule.from_dict(pointer["schedule"])
    notifier.publish(
        notify.MODEL_ROLLOUT_STARTED,
        {
            "model": pointer["model"],
            "rollout": pointer["id"],
            "version": pointer["candidate"],
            "champion": pointer["champion"],
            "schedule": schedule.describe(),
            "by": pointer["by"],
            "reason": pointer["reason"],
        },
    )


def start_rollout(
    reg: Registry,
    contracts: ContractReader,
    notifier: Notifier,
    model: str,
    version: int,
    caller: str,
    reason: str,
    schedule_request: dict[str, Any] | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """A person starts a rollout of ``version`` (see the module docstring); the pointer."""
    doc = service.show_version(reg, model, version)
    status = str(doc["status"])
    champion = reg.champion(model)
    _check_startable(model, version, doc, champion)
    policy = policy_of(contracts, model)
    schedule = Schedule.from_request(schedule_request, policy.schedule)  # ValueError: a 400 naming the field
    assert champion is not None
    pointer = begin(reg, policy, model, version, status, champion, caller, reason, now(clock), schedule)
    announce_started(notifier, pointer)
    return pointer


def _check_startable(model: str, version: int, doc: dict[str, Any], champion: int | None) -> None:
    status = doc["status"]
    if status == ROLLING_OUT:
        raise Conflict(f"{model} v{version} is rolling out already")
    if status == CHAMPION:
        raise Conflict(f"{model} v{version} is the champion already: nothing to roll out")
    if status == SUPERSEDED:
        why = (doc.get("transitions") or [{}])[-1].get("reason") or "a newer champion was chosen"
        raise Conflict(f"{model} v{version} cannot be rolled out: it was superseded: {why}")
    if status not in STARTABLE:
        raise Conflict(
            f"{model} v{version} is {status}: only a version pending approval (or a former champion, "
            "retired) can be rolled out"
        )
    if champion is None:
        raise Conflict(
            f"{model} has no champion: a first model has nothing to roll out against; approve it instead"
        )
    if status != RETIRED:
        service.check_fresh(version, doc, champion)


def approve(
    reg: Registry,
    contracts: ContractReader,
    notifier: Notifier,
    model: str,
    version: int,
    caller: str,
    reason: str,
    expected_champion: int | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """A person's approval: a rollout when the policy has a strategy and there is a champion, else
    the switch (``service.approve``). ``{"action": "rollout_started", "rollout": pointer}`` or
    ``{"action": "promoted", "audit": entry}``, with the model and the champion after it."""
    policy = policy_of(contracts, model)
    champion = reg.champion(model)
    if not policy.enabled or champion is None:
        entry = service.approve(reg, notifier, model, version, caller, reason, expected_champion)
        return {"model": model, "action": "promoted", "champion": version, "audit": entry, "rollout": None}
    if expected_champion is not None and expected_champion != champion:
        raise Conflict(
            f"stale approval: you expected the champion to be {label(expected_champion)}, it is {label(champion)}"
        )
    doc = service.show_version(reg, model, version)
    if doc["status"] == RETIRED:
        raise Conflict(f"{model} v{version} is retired: only a version pending approval can be approved")
    _check_startable(model, version, doc, champion)
    pointer = begin(reg, policy, model, version, str(doc["status"]), champion, caller, reason, now(clock))
    announce_started(notifier, pointer)
    return {
        "model": model,
        "action": "rollout_started",
        "champion": champion,
        "audit": None,
        "rollout": pointer,
    }


def _current(reg: Registry, model: str) -> Rollout:
    pointer = reg.rollout(model)
    if pointer is None:
        if not reg.versions(model):
            raise NotFound(f"no model named {model!r}")
        raise Conflict(f"{model} has no rollout")
    return Rollout.from_dict(pointer)


def pause(reg: Registry, model: str, caller: str, reason: str, clock: Clock = utc_now) -> dict[str, Any]:
    """Hold the running rollout at its share (still guarded); the pointer."""
    new, event = _current(reg, model).pause(now(clock), caller, reason)
    return reg.change_rollout(new, event)


def resume(reg: Registry, model: str, caller: str, reason: str, clock: Clock = utc_now) -> dict[str, Any]:
    """Let a paused rollout step again (its step's bake starts again); the pointer."""
    new, event = _current(reg, model).resume(now(clock), caller, reason)
    return reg.change_rollout(new, event)


def abort(
    reg: Registry, notifier: Notifier, model: str, caller: str, reason: str, clock: Clock = utc_now
) -> dict[str, Any]:
    """End the running rollout: all traffic back to the champion, the candidate back to waiting for
    approval (or retired); the pointer."""
    new, event = _current(reg, model).abort(now(clock), caller, reason)
    pointer = reg.abort_rollout(new, event)
    announce_aborted(notifier, pointer, caller)
    return pointer


def announce_aborted(notifier: Notifier, pointer: dict[str, Any], by: str, guard: str | None = None) -> None:
    notifier.publish(
        notify.MODEL_ROLLOUT_ABORTED,
        {
            "model": pointer["model"],
            "rollout": pointer["id"],
            "version": pointer["candidate"],
            "champion": pointer["champion"],
            "by": by,
            "reason": pointer["end_reason"],
            "guard": guard,
        },
    )


def rollout_status(reg: Registry, model: str) -> dict[str, Any]:
    """The model's running or last rollout (None: never one) and its events, oldest first."""
    pointer = reg.rollout(model)
    if pointer is None and not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    events = reg.rollout_events(model, int(pointer["number"])) if pointer else []
    return {"model": model, "rollout": pointer, "events": events}
