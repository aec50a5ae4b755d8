"""What the rollout routes do, on the in-memory registry, notifier and contracts: starting a rollout
(who may roll out what, against which champion, with which schedule), pausing, resuming and aborting
it, an approval that starts one under a rollout policy, what ``show_model`` and the status show; and
a revocation that reaches a rollout's candidate or champion aborting it. No AWS, no moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import errors, notify
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import rollout, rollouts, service
from chalicelib.validation import Contract, NoContract
from tests.support import contract_for

MODEL = "breast_cancer"
APPROVER = "alice (approver)"


def clock() -> datetime:
    return datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Contracts:
    """The contract reader in memory."""

    def __init__(self, *contracts: Contract) -> None:
        self.contracts = {c.dataset: c for c in contracts}

    def get(self, dataset: str) -> Contract:
        if dataset not in self.contracts:
            raise NoContract(f"no contract for dataset {dataset!r}")
        return self.contracts[dataset]


def judged(reg: MemoryRegistry, n: int, decision: str, against: int | None) -> int:
    """A version the evaluator judged against champion ``against``: promoted, pending or rejected."""
    version, _ = reg.register_version(MODEL, {"run_id": f"run-{n}", "primary_metric": "roc_auc"})
    gates = {"decision": decision, "reason": f"judged {decision}", "evaluated_against": against, "gates": []}
    if decision == "promote":
        reg.approve(MODEL, version, "evaluator", "every gate passed", against, "candidate", gates=gates)
    elif decision == "pending_approval":
        reg.set_status(MODEL, version, "pending_approval", "evaluator", "manual mode", gates=gates)
    else:
        reg.set_status(MODEL, version, "rejected", "evaluator", "worse", gates=gates)
    return version


@pytest.fixture
def reg() -> MemoryRegistry:
    reg = MemoryRegistry()
    judged(reg, 1, "promote", None)
    judged(reg, 2, "pending_approval", 1)
    return reg


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


CANARY_POLICY = {"rollout": {"strategy": "canary", "canary_percent": 5, "bake": "30m"}}


def start(reg: MemoryRegistry, notifier: MemoryNotifier, version: int = 2, **request: Any) -> dict[str, Any]:
    contracts = Contracts(contract_for(**CANARY_POLICY))
    return rollouts.start_rollout(
        reg, contracts, notifier, MODEL, version, APPROVER, "try it", request or None, clock=clock
    )


def test_a_person_starts_a_rollout_with_the_policy_schedule_or_their_own(reg, notifier):
    pointer = start(reg, notifier)
    assert (pointer["id"], pointer["candidate"], pointer["champion"], pointer["share"]) == (
        f"{MODEL}/r1",
        2,
        1,
        5.0,
    )
    assert pointer["schedule"] == {
        "strategy": "canary",
        "percent": 5.0,
        "bake_s": 1800,
        "steps": [5.0, 100.0],
    }
    assert pointer["by"] == APPROVER and pointer["started_at"] == "2026-12-01T10:00:00.000000+00:00"
    assert reg.version(MODEL, 2)["status"] == "rolling_out"
    ((kind, detail),) = notifier.messages
    assert kind == notify.MODEL_ROLLOUT_STARTED
    assert detail == {
        "model": MODEL,
        "rollout": f"{MODEL}/r1",
        "version": 2,
        "champion": 1,
        "schedule": "canary 5% -> 100%, each held 30 min 0 s",
        "by": APPROVER,
        "reason": "try it",
    }
    rollouts.abort(reg, notifier, MODEL, "bob (approver)", "not now", clock=clock)
    mine = start(reg, notifier, linear=25, every="10m")
    assert mine["number"] == 2 and mine["schedule"]["steps"] == [25.0, 50.0, 75.0, 100.0]
    assert mine["schedule"]["bake_s"] == 600 and mine["guards"] == rollout.Guards().to_dict()


def test_a_contract_without_a_rollout_policy_still_lets_a_person_roll_out_with_the_defaults(reg, notifier):
    pointer = rollouts.start_rollout(reg, Contracts(), notifier, MODEL, 2, APPROVER, "try", None, clock=clock)
    assert pointer["schedule"]["steps"] == [10.0, 100.0] and pointer["schedule"]["bake_s"] == 900


@pytest.mark.parametrize(
    ("request_doc", "field"),
    [
        ({"canary": 0}, "rollout.canary"),
        ({"canary": 10, "linear": 20}, "rollout"),
        ({"bake": "soon"}, "rollout.bake"),
        ({"every": "9d"}, "rollout.every"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field_and_changes_nothing(reg, notifier, request_doc, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        start(reg, notifier, **request_doc)
    assert reg.rollout(MODEL) is None and reg.version(MODEL, 2)["status"] == "pending_approval"


def test_what_cannot_be_rolled_out_is_a_409_or_404_naming_why(reg, notifier):
    judged(reg, 3, "rejected", 1)
    with pytest.raises(errors.Conflict, match="v1 is the champion already: nothing to roll out"):
        start(reg, notifier, version=1)
    with pytest.raises(errors.Conflict, match="v3 is rejected: only a version pending approval"):
        start(reg, notifier, version=3)
    with pytest.raises(errors.NotFound, match="has no version 9"):
        start(reg, notifier, version=9)
    with pytest.raises(errors.NotFound, match="no model named"):
        rollouts.start_rollout(reg, Contracts(), notifier, "nope", 1, APPROVER, "r", None, clock=clock)
    start(reg, notifier)
    with pytest.raises(errors.Conflict, match="v2 is rolling out already"):
        start(reg, notifier)
    judged(reg, 4, "pending_approval", 1)
    with pytest.raises(errors.Conflict, match=r"a rollout of v2 is in progress .*; abort it first"):
        start(reg, notifier, version=4)
    assert len(notifier.messages) == 1


def test_a_first_model_or_a_stale_judgement_has_nothing_to_roll_out_against(notifier):
    reg = MemoryRegistry()
    judged(reg, 1, "pending_approval", None)
    with pytest.raises(
        errors.Conflict, match="has no champion: a first model has nothing to roll out against"
    ):
        start(reg, notifier, version=1)
    reg.approve(MODEL, 1, APPROVER, "first", None, "pending_approval")
    judged(reg, 2, "pending_approval", None)  # judged when there was no champion: stale now
    with pytest.raises(
        errors.Conflict, match=r"stale approval: .*champion of that time, none, but the champion is now v1"
    ):
        start(reg, notifier, version=2)


def test_a_former_champion_can_be_rolled_out_again(reg, notifier):
    reg.approve(MODEL, 2, APPROVER, "better", 1, "pending_approval")
    pointer = start(reg, notifier, version=1)
    assert (pointer["candidate"], pointer["champion"], pointer["from_status"]) == (1, 2, "retired")


def test_pause_resume_and_abort_by_a_person_with_a_reason(reg, notifier):
    start(reg, notifier)
    paused = rollouts.pause(reg, MODEL, "bob (approver)", "a dashboard looks odd", clock=clock)
    assert paused["status"] == "paused" and paused["share"] == 5.0
    with pytest.raises(rollout.RolloutConflict, match=r"cannot pause rollout .*: it is paused"):
        rollouts.pause(reg, MODEL, "bob (approver)", "again", clock=clock)
    assert rollouts.resume(reg, MODEL, "bob (approver)", "fine", clock=clock)["status"] == "active"
    aborted = rollouts.abort(reg, notifier, MODEL, "bob (approver)", "a customer complained", clock=clock)
    assert (aborted["status"], aborted["share"], aborted["end_reason"]) == (
        "aborted",
        0.0,
        "a customer complained",
    )
    assert reg.version(MODEL, 2)["status"] == "pending_approval" and reg.champion(MODEL) == 1
    kind, detail = notifier.messages[-1]
    assert (
        kind == notify.MODEL_ROLLOUT_ABORTED and detail["by"] == "bob (approver)" and detail["version"] == 2
    )
    with pytest.raises(rollout.RolloutConflict, match="it is aborted"):
        rollouts.abort(reg, notifier, MODEL, "bob (approver)", "again", clock=clock)
    status = rollouts.rollout_status(reg, MODEL)
    assert status["rollout"] == aborted
    assert [(e["action"], e["by"]) for e in status["events"]] == [
        ("start", APPROVER),
        ("pause", "bob (approver)"),
        ("resume", "bob (approver)"),
        ("abort", "bob (approver)"),
    ]


def test_changes_without_a_rollout_are_409_and_an_unknown_model_404(reg, notifier):
    with pytest.raises(errors.Conflict, match=f"{MODEL} has no rollout"):
        rollouts.pause(reg, MODEL, APPROVER, "r", clock=clock)
    with pytest.raises(errors.NotFound, match="no model named 'nope'"):
        rollouts.abort(reg, notifier, "nope", APPROVER, "r", clock=clock)
    with pytest.raises(errors.NotFound, match="no model named 'nope'"):
        rollouts.rollout_status(reg, "nope")
    assert rollouts.rollout_status(reg, MODEL) == {"model": MODEL, "rollout": None, "events": []}


def test_champion_changes_wait_for_the_rollout_to_end(reg, notifier):
    start(reg, notifier)
    with pytest.raises(errors.Conflict, match=r"a rollout of v2 is in progress .*; abort it first"):
        service.rollback(reg, notifier, MODEL, APPROVER, "undo")
    with pytest.raises(errors.Conflict, match="v2 is rolling out: abort the rollout first, then reject it"):
        service.reject(reg, notifier, MODEL, 2, APPROVER, "no")


def test_show_model_includes_the_running_or_last_rollout(reg, notifier):
    assert service.show_model(reg, MODEL)["rollout"] is None
    pointer = start(reg, notifier)
    shown = service.show_model(reg, MODEL)
    assert shown["rollout"] == pointer and shown["champion"] == 1
    assert [v["status"] for v in shown["versions"]] == ["champion", "rolling_out"]


def test_an_approval_under_a_rollout_policy_starts_a_rollout_instead_of_a_switch(reg, notifier):
    contracts = Contracts(contract_for(**CANARY_POLICY))
    answer = rollouts.approve(reg, contracts, notifier, MODEL, 2, APPROVER, "looks good", clock=clock)
    assert answer["action"] == "rollout_started" and answer["champion"] == 1 and answer["audit"] is None
    assert answer["rollout"]["candidate"] == 2 and answer["rollout"]["schedule"]["percent"] == 5.0
    assert reg.champion(MODEL) == 1 and reg.version(MODEL, 2)["status"] == "rolling_out"
    assert [kind for kind, _ in notifier.messages] == [notify.MODEL_ROLLOUT_STARTED]
    with pytest.raises(errors.Conflict, match="you expected the champion to be v3, it is v1"):
        rollouts.approve(reg, contracts, notifier, MODEL, 2, APPROVER, "x", expected_champion=3, clock=clock)


def test_an_approval_without_a_rollout_policy_or_a_champion_switches_at_once(reg, notifier):
    answer = rollouts.approve(reg, Contracts(contract_for()), notifier, MODEL, 2, APPROVER, "ok", clock=clock)
    assert answer["action"] == "promoted" and answer["champion"] == 2 and answer["rollout"] is None
    assert answer["audit"]["to_version"] == 2 and reg.champion(MODEL) == 2
    first = MemoryRegistry()
    judged(first, 1, "pending_approval", None)
    contracts = Contracts(contract_for(**CANARY_POLICY))
    answer = rollouts.approve(first, contracts, notifier, MODEL, 1, APPROVER, "first", clock=clock)
    assert answer["action"] == "promoted" and first.champion(MODEL) == 1  # nothing to roll out against
