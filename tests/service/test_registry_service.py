"""What the /models API does, on the in-memory registry and notifier: reads, approvals (repeated, stale,
with a wrong expected champion), rejections, rollbacks, the challenger. No AWS, no moto."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors, notify
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import service

MODEL = "breast_cancer"
APPROVER = "alice (approver)"


def register(reg: MemoryRegistry, n: int, **fields: Any) -> int:
    version, _ = reg.register_version(MODEL, {"run_id": f"run-{n}", "family": "random_forest", **fields})
    return version


def judged(reg: MemoryRegistry, n: int, decision: str, against: int | None) -> int:
    """A version the evaluator judged against champion ``against``: approved+promoted, pending or rejected."""
    version = register(reg, n, primary_metric="roc_auc", primary_value=0.9 + n / 100)
    gates = {"decision": decision, "reason": f"judged {decision}", "evaluated_against": against, "gates": []}
    if decision == "promote":
        reg.set_status(MODEL, version, "approved", "evaluator", "every gate passed", gates=gates)
        reg.promote(MODEL, version, "evaluator", "every gate passed", expected_champion=against)
    elif decision == "pending_approval":
        reg.set_status(MODEL, version, "pending_approval", "evaluator", "manual mode", gates=gates)
    else:
        reg.set_status(MODEL, version, "rejected", "evaluator", "worse", gates=gates)
    return version


@pytest.fixture
def reg() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


@pytest.fixture
def pending(reg: MemoryRegistry) -> MemoryRegistry:
    """v1 champion, v2 pending approval (judged against v1)."""
    judged(reg, 1, "promote", None)
    judged(reg, 2, "pending_approval", 1)
    return reg


# --- reads ---------------------------------------------------------------------------------------------


def test_reading_shows_models_versions_and_gates(pending):
    assert service.list_models(pending) == [
        {"model": MODEL, "champion": 1, "versions": 2, "latest": 2, "pending_approval": [2]}
    ]
    shown = service.show_model(pending, MODEL)
    assert shown["champion"] == 1 and shown["challenger"] is None
    assert [v["status"] for v in shown["versions"]] == ["champion", "pending_approval"]
    assert shown["champion_version"]["version"] == 1 and shown["champion_version"]["decision"] == "promote"
    assert set(shown["versions"][1]) == {
        *service.SUMMARY_KEYS,
        "decision",
        "reason",
        "status_by",
        "status_reason",
        "compared",
        "tainted",
    }
    assert shown["versions"][1]["status_by"] == "evaluator"
    assert shown["versions"][1]["reason"] == "judged pending_approval"
    assert service.show_version(pending, MODEL, 2)["gates"]["evaluated_against"] == 1
    assert [e["to_version"] for e in service.audit(pending, MODEL)] == [1]


def test_unknown_models_and_versions_are_not_found(pending, notifier):
    for read in (
        lambda: service.show_model(pending, "unknown"),
        lambda: service.audit(pending, "unknown"),
        lambda: service.show_version(pending, MODEL, 9),
        lambda: service.approve(pending, notifier, MODEL, 9, APPROVER, "x"),
        lambda: service.approve(pending, notifier, "unknown", 1, APPROVER, "x"),
        lambda: service.reject(pending, notifier, "unknown", 1, APPROVER, "x"),
        lambda: service.reject(pending, notifier, MODEL, 9, APPROVER, "x"),
        lambda: service.rollback(pending, notifier, "unknown", APPROVER, "x"),
        lambda: service.set_challenger(pending, "unknown", 1, APPROVER, "x"),
        lambda: service.set_challenger(pending, MODEL, 7, APPROVER, "x"),
    ):
        with pytest.raises(errors.NotFound):
            read()
    assert service.list_models(MemoryRegistry()) == [] and notifier.messages == []
    with pytest.raises(errors.NotFound, match="no model named 'unknown'"):
        service.show_version(pending, "unknown", 1)


def test_a_change_needs_a_reason():
    assert service.reason_from({"reason": "  looked at the gates  "}) == "looked at the gates"
    for body in ({}, {"reason": " "}, {"reason": 3}, ["reason"]):
        with pytest.raises(ValueError, match="reason"):
            service.reason_from(body)


# --- approvals -----------------------------------------------------------------------------------------


def test_approval_promotes_and_records_the_approver(pending, notifier):
    entry = service.approve(pending, notifier, MODEL, 2, APPROVER, "looked at the gates")
    assert pending.champion(MODEL) == 2 and entry["to_version"] == 2 and entry["from_version"] == 1
    last = pending.audit(MODEL)[-1]
    assert last["who"] == APPROVER and last["reason"] == "looked at the gates"
    assert [t["by"] for t in pending.version(MODEL, 2)["transitions"]][-2:] == [APPROVER] * 2
    assert notifier.messages == [
        (
            notify.MODEL_PROMOTED,
            {
                "model": MODEL,
                "from_version": 1,
                "to_version": 2,
                "by": APPROVER,
                "reason": "looked at the gates",
            },
        )
    ]


def test_repeated_approval_is_refused(pending, notifier):
    service.approve(pending, notifier, MODEL, 2, APPROVER, "ok")
    with pytest.raises(service.Conflict, match="approved already"):
        service.approve(pending, notifier, MODEL, 2, APPROVER, "ok")
    assert len(pending.audit(MODEL)) == 2 and len(notifier.messages) == 1


def test_stale_approval_is_refused(pending, notifier):
    # A version whose gates compared it with another champion than the current one (a record from
    # before champion changes superseded the versions waiting): its approval is stale.
    judged(pending, 3, "pending_approval", None)
    with pytest.raises(
        service.Conflict,
        match="stale approval: the gates compared v3 with the champion of that time, none, but the champion is now v1",
    ):
        service.approve(pending, notifier, MODEL, 3, APPROVER, "ok")
    service.approve(pending, notifier, MODEL, 2, APPROVER, "ok")
    with pytest.raises(service.Conflict, match="roll back first"):  # v2 is the champion
        service.reject(pending, notifier, MODEL, 2, APPROVER, "x")
    assert pending.champion(MODEL) == 2 and pending.version(MODEL, 3)["status"] == "superseded"


def test_approval_with_a_wrong_expected_champion_is_refused(pending, notifier):
    with pytest.raises(service.Conflict, match="you expected the champion to be v7"):
        service.approve(pending, notifier, MODEL, 2, APPROVER, "ok", expected_champion=7)
    assert pending.champion(MODEL) == 1 and notifier.messages == []
    service.approve(pending, notifier, MODEL, 2, APPROVER, "ok", expected_champion=1)
    assert pending.champion(MODEL) == 2


def test_an_approved_version_the_evaluator_could_not_promote_can_be_approved(pending, notifier):
    pending.set_status(MODEL, 2, "approved", "evaluator", "every gate passed")
    service.approve(pending, notifier, MODEL, 2, APPROVER, "finish it")
    assert pending.champion(MODEL) == 2
    assert [t["to"] for t in pending.version(MODEL, 2)["transitions"]][-2:] == ["approved", "champion"]


def test_only_versions_pending_approval_can_be_approved(pending, notifier):
    rejected = judged(pending, 3, "reject", 1)
    for version, status in ((1, "champion"), (rejected, "rejected")):
        with pytest.raises(service.Conflict, match=f"is {status}: only a version pending approval"):
            service.approve(pending, notifier, MODEL, version, APPROVER, "x")


# --- rejections ----------------------------------------------------------------------------------------


def test_reject_records_the_reason_and_caller(pending, notifier):
    updated = service.reject(pending, notifier, MODEL, 2, APPROVER, "bias review")
    assert updated["status"] == "rejected"
    last = pending.version(MODEL, 2)["transitions"][-1]
    assert last["by"] == APPROVER and last["reason"] == "bias review"
    assert notifier.messages == [
        (notify.VERSION_REJECTED, {"model": MODEL, "version": 2, "by": APPROVER, "reason": "bias review"})
    ]
    with pytest.raises(service.Conflict, match="rejected already"):
        service.reject(pending, notifier, MODEL, 2, APPROVER, "again")


# --- rollbacks -----------------------------------------------------------------------------------------


def test_rollback_twice_goes_back_two_champions_then_refuses(reg, notifier):
    judged(reg, 1, "promote", None)
    judged(reg, 2, "promote", 1)
    judged(reg, 3, "promote", 2)
    first = service.rollback(reg, notifier, MODEL, APPROVER, "latency spike")
    assert first["to_version"] == 2 and reg.champion(MODEL) == 2
    second = service.rollback(reg, notifier, MODEL, "ops (admin)", "still bad")
    assert second["to_version"] == 1 and reg.champion(MODEL) == 1
    with pytest.raises(service.Conflict, match="first champion"):
        service.rollback(reg, notifier, MODEL, "ops (admin)", "again")
    trail = service.audit(reg, MODEL)
    assert [(e["action"], e["from_version"], e["to_version"], e["who"]) for e in trail] == [
        ("promote", None, 1, "evaluator"),
        ("promote", 1, 2, "evaluator"),
        ("promote", 2, 3, "evaluator"),
        ("rollback", 3, 2, APPROVER),
        ("rollback", 2, 1, "ops (admin)"),
    ]
    assert [(t, d["from_version"], d["to_version"]) for t, d in notifier.messages] == [
        (notify.MODEL_ROLLED_BACK, 3, 2),
        (notify.MODEL_ROLLED_BACK, 2, 1),
    ]


def test_a_model_without_a_champion_cannot_be_rolled_back(reg, notifier):
    judged(reg, 1, "pending_approval", None)
    with pytest.raises(service.Conflict, match="no champion"):
        service.rollback(reg, notifier, MODEL, APPROVER, "x")


# --- challenger ----------------------------------------------------------------------------------------


def test_a_challenger_must_be_servable(pending):
    rejected = judged(pending, 3, "reject", 1)
    doc = service.set_challenger(pending, MODEL, 2, APPROVER, "shadow before approving")
    assert doc["version"] == 2 and doc["by"] == APPROVER
    assert service.show_model(pending, MODEL)["challenger"] == 2
    with pytest.raises(service.Conflict, match="rejected"):
        service.set_challenger(pending, MODEL, rejected, APPROVER, "x")
    assert service.set_challenger(pending, MODEL, None, APPROVER, "done")["version"] is None
    assert pending.challenger(MODEL) is None


# --- issue 14: debris, races, messages ---------------------------------------------------------------


def test_a_champion_change_supersedes_the_versions_waiting_for_approval(pending, notifier):
    # v1 champion; v2 pending (judged against v1); v3 pending too; v4 approved but never promoted.
    judged(pending, 3, "pending_approval", 1)
    v4 = register(pending, 4)
    pending.set_status(MODEL, v4, "approved", "evaluator", "every gate passed")
    entry = service.approve(pending, notifier, MODEL, 3, APPROVER, "v3 it is")
    statuses = {v["version"]: v["status"] for v in pending.versions(MODEL)}
    assert statuses == {1: "retired", 2: "superseded", 3: "champion", 4: "superseded"}
    for version in (2, 4):
        last = pending.version(MODEL, version)["transitions"][-1]
        assert last["to"] == "superseded" and last["by"] == APPROVER
        assert "v3 became the champion" in last["reason"]
    assert entry["superseded"] == [2, 4] and pending.audit(MODEL)[-1]["superseded"] == [2, 4]
    assert service.list_models(pending)[0]["pending_approval"] == []


def test_approving_a_superseded_version_is_a_409_that_names_the_champion(pending, notifier):
    judged(pending, 3, "pending_approval", 1)
    service.approve(pending, notifier, MODEL, 3, APPROVER, "v3 it is")
    with pytest.raises(service.Conflict) as refused:
        service.approve(pending, notifier, MODEL, 2, APPROVER, "v2 after all")
    assert "superseded" in str(refused.value) and "v3" in str(refused.value)
    assert "None" not in str(refused.value)
    assert pending.champion(MODEL) == 3 and len(notifier.messages) == 1


def test_a_first_model_waiting_for_approval_is_superseded_by_another_first_model(reg, notifier):
    """The issue's "compared v1 with vNone": two first models wait (no champion to compare with);
    approving one supersedes the other, whose approval is then a 409 without a Python repr."""
    judged(reg, 1, "pending_approval", None)
    judged(reg, 2, "pending_approval", None)
    service.approve(reg, notifier, MODEL, 2, APPROVER, "the better one")
    with pytest.raises(service.Conflict) as refused:
        service.approve(reg, notifier, MODEL, 1, APPROVER, "this one too")
    assert "None" not in str(refused.value) and "superseded" in str(refused.value)
    assert reg.version(MODEL, 1)["status"] == "superseded"


class _RejectsDuringApproval:
    """A registry on which a rival's reject commits just before the approval's promotion is written:
    the interleaving that gave 500 and left the version approved with the caller recorded."""

    def __init__(self, reg: MemoryRegistry, version: int) -> None:
        self._reg, self._version = reg, version

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._reg, name)
        if name not in ("promote", "approve"):
            return found

        def after_a_rival_reject(model: str, *args: Any, **kwargs: Any) -> Any:
            service.reject(self._reg, MemoryNotifier(), model, self._version, "bob (approver)", "no")
            return found(model, *args, **kwargs)

        return after_a_rival_reject


def test_an_approval_that_loses_to_a_reject_is_a_409_and_changes_nothing(pending, notifier):
    racing = _RejectsDuringApproval(pending, 2)
    with pytest.raises(service.Conflict, match="rejected"):
        service.approve(racing, notifier, MODEL, 2, APPROVER, "ship it")  # type: ignore[arg-type]
    doc = pending.version(MODEL, 2)
    assert doc["status"] == "rejected"
    assert [t["by"] for t in doc["transitions"] if t["by"] == APPROVER] == []
    assert pending.champion(MODEL) == 1 and len(pending.audit(MODEL)) == 1 and notifier.messages == []


def test_a_long_reason_is_refused_not_cut():
    long = "word " * 1000
    with pytest.raises(ValueError, match="reason: at most"):
        service.reason_from({"reason": long})
    fits = "w" * service.MAX_REASON
    assert service.reason_from({"reason": fits}) == fits
