"""The registry port's contract, held by both stores: the in-memory one and DynamoDB (moto).

Versions, idempotent registration, conditional statuses, all-or-nothing promotion, rollback along the
ledger, the challenger pointer, ordered reads; and the concurrency guarantees the evaluator relies on
(``atomic_writes`` gives moto the atomicity DynamoDB has)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.errors import RegistryError
from chalicelib.registry import rollout, states
from chalicelib.registry.ports import Registry
from chalicelib.registry.states import NothingToRollBack, PromotionConflict, StatusConflict


@pytest.fixture(params=["memory", "moto"])
def registry(request: pytest.FixtureRequest) -> Registry:
    if request.param == "memory":
        return MemoryRegistry()
    settings = request.getfixturevalue("aws")
    return DynamoRegistry(settings.registry_table, settings.audit_table)


def candidate(run_id: str, auc: float = 0.95) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "manifest_key": f"models/d/candidates/{run_id}/manifest.json",
        "artifacts": {"bucket": "models", "prefix": f"models/d/candidates/{run_id}/"},
        "checksums": {"model.onnx": "ab" * 32},
        "metrics": {"roc_auc": auc, "log_loss": 0.12},
        "lineage": {"dataset": "d", "data_manifest": f"manifests/{run_id}.json", "code": "abc123"},
    }


def approved(registry: Registry, model: str, n: int) -> None:
    """Register n candidates and approve them: versions 1..n."""
    for i in range(1, n + 1):
        version, _ = registry.register_version(model, candidate(f"run-{i}"))
        registry.set_status(model, version, "approved", by="gates", reason="every gate passed")


def registered(registry: Registry, model: str, n: int) -> None:
    """Register n candidates: versions 1..n, status candidate."""
    for i in range(1, n + 1):
        registry.register_version(model, candidate(f"run-{i}"))


def promoted(registry: Registry, model: str, version: int, by: str, reason: str, expected: int | None) -> Any:
    """A registered candidate approved by the gates and promoted (one change, as the evaluator does)."""
    return registry.approve(
        model, version, by, reason, expected_champion=expected, expected_status="candidate"
    )


def race(n: int, work: Callable[[int], Any]) -> dict[int, Any]:
    """Run ``work(i)`` for i in 0..n-1 on n threads released together; each one's result or error."""
    outcomes: dict[int, Any] = {}
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = work(i)
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


# --- registration and reads -----------------------------------------------------------------------------


def test_versions_are_numbered_per_model_and_hold_the_candidate(registry):
    assert [registry.register_version("m", candidate(f"r{i}")) for i in range(3)] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    assert registry.register_version("other", candidate("r0")) == (1, True)
    v2 = registry.version("m", 2)
    assert v2["status"] == "candidate" and v2["gates"] == {}
    assert v2["metrics"] == {"roc_auc": 0.95, "log_loss": 0.12}
    assert v2["checksums"]["model.onnx"] == "ab" * 32 and v2["lineage"]["dataset"] == "d"
    assert v2["candidate_id"] == "r1" and v2["artifacts"]["prefix"] == "models/d/candidates/r1/"
    assert v2["transitions"][0]["from"] is None and v2["transitions"][0]["to"] == "candidate"
    assert v2["created_at"] == v2["updated_at"] == v2["transitions"][0]["at"]
    assert [v["version"] for v in registry.versions("m")] == [1, 2, 3]
    assert registry.models() == ["m", "other"]
    assert registry.version("m", 9) is None and registry.champion("m") is None
    assert registry.versions("unknown") == [] and registry.audit("unknown") == []


def test_a_record_reads_back_as_stored_not_as_the_caller_holds_it(registry):
    doc = {**candidate("r1"), "score": 1.0, "note": None, "pair": (1, 2), "model": "ignored", "status": "x"}
    registry.register_version("m", doc)
    stored = registry.version("m", 1)
    # Numbers are decimals in the store: a whole float reads back as an int; None is not stored.
    assert stored["score"] == 1 and isinstance(stored["score"], int) and "note" not in stored
    assert stored["pair"] == [1, 2]
    assert stored["model"] == "m" and stored["status"] == "candidate"  # reserved keys are the registry's
    stored["status"] = "champion"
    stored["transitions"].append({"to": "nowhere"})
    again = registry.version("m", 1)
    assert again["status"] == "candidate" and len(again["transitions"]) == 1


def test_registering_the_same_candidate_twice_gives_one_version(registry):
    assert registry.register_version("m", candidate("r1")) == (1, True)
    assert registry.register_version("m", candidate("r1")) == (1, False)
    assert registry.register_version("m", {"manifest_key": "k/manifest.json"}) == (2, True)
    assert registry.register_version("m", {"manifest_key": "k/manifest.json"}) == (2, False)
    assert len(registry.versions("m")) == 2
    with pytest.raises(ValueError, match="run_id"):
        registry.register_version("m", {"metrics": {}})
    with pytest.raises(ValueError, match="nan"):
        registry.register_version("m", {"run_id": "bad", "metrics": {"auc": float("nan")}})
    with pytest.raises(ValueError, match="model"):
        registry.register_version("", candidate("r9"))
    with pytest.raises(ValueError, match="positive integer"):
        registry.version("m", 0)


def test_concurrent_registrations_of_one_candidate_give_one_version(registry, atomic_writes):
    results = race(6, lambda _: registry.register_version("m", candidate("same")))
    versions = registry.versions("m")
    assert len(versions) == 1
    assert {v for v, _ in results.values()} == {versions[0]["version"]}
    assert sum(created for _, created in results.values()) == 1


# --- statuses --------------------------------------------------------------------------------------------


def test_set_status_is_conditional_and_records_transitions(registry):
    registry.register_version("m", candidate("r1"))
    gates = {"schema": {"passed": False}, "evaluated_against": None, "figures": [None, 1.0]}
    item = registry.set_status("m", 1, "pending_approval", by="gates", reason="breaking schema", gates=gates)
    # inside a stored value None stays (DynamoDB's NULL), and a whole float reads back as an int
    assert item["status"] == "pending_approval"
    assert item["gates"] == {"schema": {"passed": False}, "evaluated_against": None, "figures": [None, 1]}
    assert item == registry.version("m", 1)
    with pytest.raises(StatusConflict, match="it is pending_approval, expected candidate"):
        registry.set_status("m", 1, "approved", by="alice", reason="ok", expected="candidate")
    item = registry.set_status("m", 1, "approved", by="alice", reason="ok", expected="pending_approval")
    assert [(t["from"], t["to"], t["by"]) for t in item["transitions"]] == [
        (None, "candidate", "registry"),
        ("candidate", "pending_approval", "gates"),
        ("pending_approval", "approved", "alice"),
    ]
    assert item["gates"]["schema"] == {"passed": False}  # a move without gates keeps them
    with pytest.raises(ValueError, match="set by promote"):
        registry.set_status("m", 1, "champion", by="x", reason="y")
    with pytest.raises(ValueError, match="cannot move"):
        registry.set_status("m", 1, "approved", by="x", reason="y", expected="rejected")
    with pytest.raises(RegistryError, match="not registered"):
        registry.set_status("m", 7, "approved", by="x", reason="y")
    with pytest.raises(ValueError, match="nan"):
        registry.set_status("m", 1, "rejected", by="x", reason="y", gates={"auc": float("nan")})
    assert registry.version("m", 1)["status"] == "approved"
    registry.set_status("m", 1, "rejected", by="bob", reason="changed my mind")
    with pytest.raises(StatusConflict, match="it is rejected"):
        registry.set_status("m", 1, "approved", by="x", reason="y")


def test_concurrent_status_changes_of_one_version_make_one_move(registry, atomic_writes):
    registry.register_version("m", candidate("r1"))
    targets = ["approved", "rejected", "pending_approval"] * 2
    outcomes = race(
        6, lambda i: registry.set_status("m", 1, targets[i], by=f"w{i}", reason="race", expected="candidate")
    )
    moves = [i for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(moves) == 1
    assert all(isinstance(o, StatusConflict) for i, o in outcomes.items() if i != moves[0])
    doc = registry.version("m", 1)
    assert doc["status"] == targets[moves[0]] and len(doc["transitions"]) == 2


def test_update_gates_replaces_the_figures_only_in_the_expected_status(registry):
    approved(registry, "m", 1)
    registry.update_gates("m", 1, {"decision": "promote", "score": 0.5}, expected="approved")
    doc = registry.version("m", 1)
    assert doc["gates"] == {"decision": "promote", "score": 0.5} and doc["status"] == "approved"
    assert len(doc["transitions"]) == 2  # not a move
    with pytest.raises(StatusConflict, match="is approved, not candidate"):
        registry.update_gates("m", 1, {"decision": "x"}, expected="candidate")
    with pytest.raises(errors.NotFound, match="m v5 is not registered"):
        registry.update_gates("m", 5, {"decision": "x"}, expected="approved")
    assert registry.version("m", 1)["gates"]["decision"] == "promote"


# --- promotion -----------------------------------------------------------------------------------------


def test_promotion_moves_the_pointer_retires_the_champion_and_audits(registry):
    approved(registry, "m", 1)
    first = registry.promote("m", 1, by="evaluator", reason="first model", expected_champion=None)
    assert first["from_version"] is None and first["to_version"] == 1 and first["seq"] == 1
    assert first["model"] == "m" and first["action"] == "promote" and first["undoes"] is None
    assert first["approved"] is False and first["superseded"] == []
    registry.register_version("m", candidate("run-2"))
    registry.set_status("m", 2, "approved", by="gates", reason="every gate passed")
    second = registry.promote("m", 2, by="evaluator", reason="better auc", expected_champion=1)
    assert registry.champion("m") == 2
    assert registry.version("m", 2)["status"] == "champion"
    assert registry.version("m", 1)["status"] == "retired"
    assert registry.version("m", 1)["transitions"][-1] == {
        "from": "champion",
        "to": "retired",
        "at": second["at"],
        "by": "evaluator",
        "reason": "better auc",
    }
    ledger = registry.audit("m")
    assert [(e["action"], e["from_version"], e["to_version"], e["who"]) for e in ledger] == [
        ("promote", None, 1, "evaluator"),
        ("promote", 1, 2, "evaluator"),
    ]
    assert ledger[1]["reason"] == "better auc" and ledger[0]["at"] <= ledger[1]["at"]
    assert ledger[1]["id"] == second["id"] and ledger[1]["id"].startswith(second["at"])
    assert ledger[1] == second and ledger[0]["undoes"] is None


def test_stale_or_unpromotable_promotions_are_refused_and_change_nothing(registry):
    registered(registry, "m", 3)
    registry.register_version("m", candidate("unapproved"))
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "second", 1)
    registry.set_status("m", 3, "approved", by="gates", reason="every gate passed")
    with pytest.raises(PromotionConflict, match="current champion is v2, not v1"):
        registry.promote("m", 3, by="e", reason="stale", expected_champion=1)
    with pytest.raises(PromotionConflict, match="current champion is v2, not none"):
        registry.promote("m", 3, by="e", reason="stale", expected_champion=None)
    with pytest.raises(RegistryError, match="it is candidate"):
        registry.promote("m", 4, by="e", reason="not approved", expected_champion=2)
    with pytest.raises(RegistryError, match="not registered"):
        registry.promote("m", 9, by="e", reason="unknown", expected_champion=2)
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("m", 2, by="e", reason="again", expected_champion=2)
    with pytest.raises(StatusConflict, match="cannot approve m v3: it is approved, expected candidate"):
        registry.approve("m", 3, "e", "wrong status", expected_champion=2, expected_status="candidate")
    with pytest.raises(errors.NotFound, match="m v9 is not registered"):
        registry.approve("m", 9, "e", "unknown", expected_champion=2, expected_status="candidate")
    assert registry.champion("m") == 2 and registry.version("m", 3)["status"] == "approved"
    assert registry.version("m", 4)["status"] == "candidate"
    assert len(registry.audit("m")) == 2
    assert [len(v["transitions"]) for v in registry.versions("m")] == [4, 3, 2, 1]


def test_an_approval_promotes_records_both_moves_and_supersedes_the_versions_waiting(registry):
    registered(registry, "m", 5)
    promoted(registry, "m", 1, "evaluator", "first model", None)
    registry.set_status("m", 2, "pending_approval", by="evaluator", reason="manual mode")
    registry.set_status("m", 3, "approved", by="evaluator", reason="every gate passed")
    registry.set_status("m", 4, "pending_approval", by="evaluator", reason="manual mode")
    gates = {"decision": "promote", "evaluated_against": 1}
    entry = registry.approve(
        "m",
        4,
        "alice (approver)",
        "looked",
        expected_champion=1,
        expected_status="pending_approval",
        gates=gates,
    )
    assert (entry["action"], entry["approved"], entry["superseded"]) == ("promote", True, [2, 3])
    assert registry.audit("m")[-1] == entry
    doc = registry.version("m", 4)
    assert doc["status"] == "champion" and doc["gates"] == gates
    assert [(t["from"], t["to"], t["by"]) for t in doc["transitions"][-2:]] == [
        ("pending_approval", "approved", "alice (approver)"),
        ("approved", "champion", "alice (approver)"),
    ]
    statuses = {v["version"]: v["status"] for v in registry.versions("m")}
    assert statuses == {1: "retired", 2: "superseded", 3: "superseded", 4: "champion", 5: "candidate"}
    for version in (2, 3):
        last = registry.version("m", version)["transitions"][-1]
        assert last["by"] == "alice (approver)" and last["at"] == entry["at"]
        assert last["reason"].startswith("v4 became the champion (approved by alice (approver))")
    with pytest.raises(StatusConflict, match="it is superseded, expected pending_approval"):
        registry.approve("m", 2, "bob", "too late", expected_champion=4, expected_status="pending_approval")
    registry.set_status("m", 2, "rejected", by="bob", reason="tidy up")  # superseded can be rejected
    back = registry.rollback("m", by="oncall", reason="v4 misbehaves")
    assert back["superseded"] == [] and registry.champion("m") == 1


def test_a_version_waits_for_approval_only_while_its_champion_holds(registry):
    registered(registry, "m", 3)
    doc = registry.await_approval(
        "m", 1, "evaluator", "manual mode", {"evaluated_against": None}, "candidate", expected_champion=None
    )
    assert doc["status"] == "pending_approval" and doc["gates"] == {"evaluated_against": None}
    promoted(registry, "m", 2, "evaluator", "first model", None)  # supersedes v1
    with pytest.raises(PromotionConflict, match="current champion is v2, not none"):
        registry.await_approval("m", 3, "evaluator", "x", {"evaluated_against": None}, "candidate", None)
    assert registry.version("m", 3)["status"] == "candidate"
    with pytest.raises(StatusConflict, match="it is superseded"):
        registry.await_approval("m", 1, "evaluator", "x", {}, "candidate", expected_champion=2)
    registry.await_approval("m", 3, "evaluator", "manual", {"evaluated_against": 2}, "candidate", 2)
    assert registry.version("m", 3)["status"] == "pending_approval"


def test_an_approval_racing_rejections_of_the_same_version_has_one_winner(registry, atomic_writes):
    registered(registry, "m", 2)
    promoted(registry, "m", 1, "evaluator", "first model", None)
    registry.set_status("m", 2, "pending_approval", by="evaluator", reason="manual mode")

    def work(i: int) -> Any:
        if i % 2:
            return registry.set_status("m", 2, "rejected", f"rejecter-{i}", "no", expected="pending_approval")
        return registry.approve(
            "m", 2, f"approver-{i}", "yes", expected_champion=1, expected_status="pending_approval"
        )

    outcomes = race(6, work)
    winners = [i for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1, outcomes
    assert all(
        isinstance(o, StatusConflict | PromotionConflict) for i, o in outcomes.items() if i not in winners
    )
    (winner,) = winners
    doc = registry.version("m", 2)
    assert doc["status"] == ("rejected" if winner % 2 else "champion")
    assert {t["by"] for t in doc["transitions"][2:]} == {
        f"{'rejecter' if winner % 2 else 'approver'}-{winner}"
    }
    assert registry.champion("m") == (1 if winner % 2 else 2)
    assert len(registry.audit("m")) == (1 if winner % 2 else 2)


def test_concurrent_promotions_leave_one_champion_and_one_audit_entry(registry, atomic_writes):
    approved(registry, "m", 1)
    registry.promote("m", 1, by="e", reason="first", expected_champion=None)
    for i in range(2, 8):
        registry.register_version("m", candidate(f"run-{i}"))
        registry.set_status("m", i, "approved", by="gates", reason="every gate passed")
    outcomes = race(
        6, lambda i: registry.promote("m", i + 2, by=f"worker-{i + 2}", reason="race", expected_champion=1)
    )
    winners = [i + 2 for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1
    winner = winners[0]
    for i, outcome in outcomes.items():
        if i + 2 != winner:
            assert isinstance(outcome, PromotionConflict) and outcome.current == winner
            assert f"current champion is v{winner}" in str(outcome)
    statuses = {v["version"]: v["status"] for v in registry.versions("m")}
    assert registry.champion("m") == winner
    assert [v for v, s in statuses.items() if s == "champion"] == [winner]
    assert statuses[1] == "retired"
    others = [v for v in range(2, 8) if v != winner]
    assert all(statuses[v] == "superseded" for v in others)  # the champion changed after they were judged
    ledger = registry.audit("m")
    assert [(e["seq"], e["from_version"], e["to_version"]) for e in ledger] == [(1, None, 1), (2, 1, winner)]
    assert ledger[1]["superseded"] == others


# --- rollback ------------------------------------------------------------------------------------------


def test_rollback_twice_goes_back_two_steps(registry):
    registered(registry, "m", 3)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "better", 1)
    promoted(registry, "m", 3, "e", "better still", 2)
    back = registry.rollback("m", by="oncall", reason="v3 misbehaves")
    assert (back["action"], back["from_version"], back["to_version"], back["undoes"]) == ("rollback", 3, 2, 3)
    assert registry.champion("m") == 2
    again = registry.rollback("m", by="oncall", reason="v2 too")
    assert (again["from_version"], again["to_version"], again["undoes"]) == (2, 1, 2)
    assert registry.champion("m") == 1
    assert {v["version"]: v["status"] for v in registry.versions("m")} == {
        1: "champion",
        2: "retired",
        3: "retired",
    }
    with pytest.raises(NothingToRollBack, match="first champion"):
        registry.rollback("m", by="oncall", reason="once more")
    ledger = registry.audit("m")
    assert [(e["action"], e["from_version"], e["to_version"], e["who"]) for e in ledger] == [
        ("promote", None, 1, "e"),
        ("promote", 1, 2, "e"),
        ("promote", 2, 3, "e"),
        ("rollback", 3, 2, "oncall"),
        ("rollback", 2, 1, "oncall"),
    ]
    assert [e["seq"] for e in ledger] == [1, 2, 3, 4, 5]
    assert [e["at"] for e in ledger] == sorted(e["at"] for e in ledger)
    assert set(ledger[3]) >= {"who", "action", "from_version", "to_version", "reason", "at"}
    with pytest.raises(NothingToRollBack, match="no champion"):
        registry.rollback("other", by="oncall", reason="nothing")


def test_rollback_after_a_new_promotion_undoes_that_promotion(registry):
    registered(registry, "m", 4)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "better", 1)
    promoted(registry, "m", 3, "e", "better", 2)
    registry.rollback("m", by="oncall", reason="v3 bad")  # 3 -> 2
    promoted(registry, "m", 4, "e", "new candidate", 2)
    assert registry.rollback("m", by="oncall", reason="v4 bad")["to_version"] == 2
    assert registry.rollback("m", by="oncall", reason="v2 bad")["to_version"] == 1
    assert registry.champion("m") == 1


def test_a_retired_version_can_be_promoted_again_and_is_then_rolled_back_like_any(registry):
    registered(registry, "m", 2)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "better", 1)
    registry.promote("m", 1, by="alice", reason="v1 after all", expected_champion=2)
    assert registry.champion("m") == 1 and registry.version("m", 2)["status"] == "retired"
    assert registry.rollback("m", by="oncall", reason="undo")["to_version"] == 2
    registry.set_status("m", 1, "rejected", by="alice", reason="never again")
    with pytest.raises(RegistryError, match="it is rejected"):
        registry.promote("m", 1, by="e", reason="x", expected_champion=2)


def test_concurrent_rollbacks_each_undo_a_different_promotion(registry, atomic_writes):
    registered(registry, "m", 3)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "better", 1)
    promoted(registry, "m", 3, "e", "better", 2)
    outcomes = race(4, lambda i: registry.rollback("m", by=f"oncall-{i}", reason="race"))
    # Racing rollbacks that read the same champion: one wins, the others conflict; one that reads
    # after a win goes back one more step. Never the same promotion undone twice.
    done = [o for o in outcomes.values() if isinstance(o, dict)]
    assert 1 <= len(done) <= 2
    assert all(isinstance(o, dict | PromotionConflict | NothingToRollBack) for o in outcomes.values()), (
        outcomes
    )
    assert registry.champion("m") == 3 - len(done)
    ledger = registry.audit("m")
    assert [e["action"] for e in ledger] == ["promote"] * 3 + ["rollback"] * len(done)
    assert [e["undoes"] for e in ledger[3:]] == [3, 2][: len(done)]


# --- challenger ----------------------------------------------------------------------------------------


def test_the_challenger_pointer_names_a_servable_version_or_none(registry):
    approved(registry, "m", 2)
    assert registry.challenger("m") is None
    doc = registry.set_challenger("m", 2, by="alice", reason="shadow it")
    assert (doc["version"], doc["by"], doc["reason"], doc["model"]) == (2, "alice", "shadow it", "m")
    assert registry.challenger("m") == 2
    with pytest.raises(RegistryError, match="not registered"):
        registry.set_challenger("m", 7, by="alice", reason="x")
    registry.set_status("m", 1, "rejected", by="alice", reason="bad")
    with pytest.raises(StatusConflict, match="rejected"):
        registry.set_challenger("m", 1, by="alice", reason="x")
    assert registry.challenger("m") == 2
    cleared = registry.set_challenger("m", None, by="alice", reason="done")
    assert cleared["version"] is None and registry.challenger("m") is None
    assert registry.audit("m") == []  # not a champion change


def test_a_rollback_whose_reads_straddle_a_competing_rollback_reports_a_conflict(aws, monkeypatch):
    """DynamoDB reads are not one snapshot: a rival rollback can commit between this rollback's read of
    the versions and of the pointer. The outcome must then be a conflict to re-read, not a claim that
    the target "is champion" and cannot be promoted (seen once in twenty racing runs on moto)."""
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    registered(registry, "m", 3)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "better", 1)
    promoted(registry, "m", 3, "e", "better", 2)
    read_versions = registry.versions
    rival: list[dict[str, Any]] = []

    def versions_after_a_rival_commits(model: str) -> list[dict[str, Any]]:
        if not rival:
            rival.append(
                DynamoRegistry(aws.registry_table, aws.audit_table).rollback("m", by="rival", reason="r")
            )
        return read_versions(model)

    monkeypatch.setattr(registry, "versions", versions_after_a_rival_commits)
    with pytest.raises(PromotionConflict, match="current champion is v2, not v3"):
        registry.rollback("m", by="oncall", reason="mine")
    assert rival[0]["to_version"] == 2 and registry.champion("m") == 2
    assert [e["who"] for e in registry.audit("m")] == ["e", "e", "e", "rival"]


def test_a_version_sent_to_wait_while_a_promotion_commits_is_superseded_by_it(aws):
    """The evaluator's await_approval (conditional on the champion) can commit between a promotion's
    reads and its transaction. The promotion must not leave that version waiting for an approval
    that its own commit makes stale: it notices and supersedes it too."""
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    registered(registry, "m", 3)
    promoted(registry, "m", 1, "e", "first", None)
    registry.set_status("m", 2, "pending_approval", by="evaluator", reason="manual mode")
    read_versions = registry.versions
    rival: list[dict[str, Any]] = []

    def versions_then_a_rival_judges(model: str) -> list[dict[str, Any]]:
        found = read_versions(model)
        if not rival:
            other = DynamoRegistry(aws.registry_table, aws.audit_table)
            gates = {"decision": "pending_approval", "evaluated_against": 1}
            rival.append(other.await_approval("m", 3, "evaluator", "manual mode", gates, "candidate", 1))
        return found

    registry.versions = versions_then_a_rival_judges  # type: ignore[method-assign]
    entry = registry.approve(
        "m", 2, "alice (approver)", "ok", expected_champion=1, expected_status="pending_approval"
    )
    assert rival[0]["status"] == "pending_approval" and registry.champion("m") == 2
    assert read_versions("m")[2]["status"] == "superseded" and entry["superseded"] == [3]


def test_versions_beyond_one_transaction_are_superseded_right_after_it(aws, monkeypatch):
    """A transaction holds at most 100 items: the versions waiting beyond SUPERSEDE_IN_TRANSACTION are
    superseded by follow-up writes, each conditional on the pointer still naming the new champion."""
    from chalicelib.adapters.aws import registry as module

    monkeypatch.setattr(module, "SUPERSEDE_IN_TRANSACTION", 1)
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    registered(registry, "m", 5)
    promoted(registry, "m", 1, "e", "first", None)
    for version in (2, 3, 4):
        registry.set_status("m", version, "pending_approval", by="evaluator", reason="manual mode")
    entry = registry.approve("m", 5, "alice", "ok", expected_champion=1, expected_status="candidate")
    assert entry["superseded"] == [2]  # the one in the transaction
    statuses = {v["version"]: v["status"] for v in registry.versions("m")}
    assert statuses == {1: "retired", 2: "superseded", 3: "superseded", 4: "superseded", 5: "champion"}
    for version in (3, 4):
        assert registry.version("m", version)["transitions"][-1]["reason"].startswith(
            "v5 became the champion"
        )


# --- taint ------------------------------------------------------------------------------------------------


def test_a_taint_is_recorded_once_per_upload_and_changes_no_status(registry):
    registered(registry, "m", 2)
    promoted(registry, "m", 1, "evaluator", "first model", None)
    detail = states.taint_detail(True, False, "ops (admin)", "scaled by three", "2026-11-30T13:00:00+00:00")
    assert registry.taint("m", 1, "u1", detail) is True
    assert registry.taint("m", 1, "u1", {**detail, "by": "someone else"}) is False  # once per upload
    assert registry.taint("m", 1, "u2", {**detail, "trained": False, "evaluated": True}) is True
    doc = registry.version("m", 1)
    assert doc["status"] == "champion" and registry.champion("m") == 1
    assert doc["tainted"] == {"u1": detail, "u2": {**detail, "trained": False, "evaluated": True}}
    assert states.tainted_reason(doc) == (
        "tainted: trained on upload u1, revoked by ops (admin): scaled by three; "
        "evaluated on upload u2, revoked by ops (admin): scaled by three"
    )
    assert registry.version("m", 2).get("tainted") is None
    with pytest.raises(errors.NotFound, match="m v7 is not registered"):
        registry.taint("m", 7, "u1", detail)


def test_a_tainted_version_cannot_become_champion_by_any_change(registry):
    registered(registry, "m", 3)
    promoted(registry, "m", 1, "evaluator", "first model", None)
    promoted(registry, "m", 2, "evaluator", "second model", 1)
    registry.set_status("m", 3, "pending_approval", by="evaluator", reason="manual mode")
    detail = states.taint_detail(True, True, "ops (admin)", "bad export", "2026-11-30T13:00:00+00:00")
    registry.taint("m", 1, "u1", detail)
    registry.taint("m", 3, "u1", detail)
    with pytest.raises(
        StatusConflict,
        match="cannot make m v1 the champion: it is tainted: trained and evaluated on upload u1",
    ):
        registry.rollback("m", "alice", "back to v1")
    with pytest.raises(StatusConflict, match="m v3 the champion: it is tainted"):
        registry.approve("m", 3, "alice", "ok", expected_champion=2, expected_status="pending_approval")
    with pytest.raises(StatusConflict, match=r"m v3 is tainted: .*; it cannot shadow the champion"):
        registry.set_challenger("m", 3, "alice", "shadow it")
    assert registry.champion("m") == 2 and len(registry.audit("m")) == 2
    assert registry.version("m", 3)["status"] == "pending_approval"


def test_a_promotion_racing_a_taint_of_its_version_never_leaves_a_tainted_version_made_champion_unseen(
    registry, atomic_writes
):
    """Of an approval and a taint of the same version, whichever commits second sees the first: the
    approval is refused, or the version is champion and its record says tainted (the revocation then
    sees a tainted champion). Never a champion promoted after the taint."""
    registered(registry, "m", 2)
    promoted(registry, "m", 1, "evaluator", "first model", None)
    registry.set_status("m", 2, "pending_approval", by="evaluator", reason="manual mode")
    detail = states.taint_detail(True, False, "ops (admin)", "bad", "2026-11-30T13:00:00+00:00")

    def work(i: int) -> Any:
        if i == 0:
            return registry.taint("m", 2, "u1", detail)
        return registry.approve(
            "m", 2, "alice", "ok", expected_champion=1, expected_status="pending_approval"
        )

    outcomes = race(2, work)
    assert outcomes[0] is True
    doc = registry.version("m", 2)
    assert doc["tainted"] == {"u1": detail}
    if isinstance(outcomes[1], dict):  # the approval committed first
        assert doc["status"] == "champion"
        entry = registry.audit("m")[-1]
        assert entry["to_version"] == 2 and entry["at"] <= doc["updated_at"]
    else:
        assert isinstance(outcomes[1], StatusConflict) and "tainted" in str(outcomes[1])
        assert doc["status"] == "pending_approval" and registry.champion("m") == 1


# --- rollouts ---------------------------------------------------------------------------------------------

SCHEDULE = rollout.Schedule(rollout.CANARY, 10.0, 900)
T0 = "2026-12-01T10:00:00+00:00"


def rolled(
    registry: Registry, model: str = "m", candidate_version: int = 2, champion: int = 1, number: int = 1
) -> tuple[rollout.Rollout, dict[str, Any]]:
    """A rollout of ``candidate_version`` (pending approval) against ``champion``, started."""
    new, event = rollout.start(
        model, number, candidate_version, champion, SCHEDULE, rollout.Guards(), T0, "alice (approver)",
        "try it on 10%", from_status="pending_approval",
    )  # fmt: skip
    return new, registry.start_rollout(new, event, "pending_approval")


def with_champion_and_waiting(registry: Registry, model: str = "m", waiting: int = 1) -> None:
    """v1 champion, then ``waiting`` versions pending approval (v2, v3...)."""
    registered(registry, model, 1 + waiting)
    promoted(registry, model, 1, "evaluator", "first model", None)
    for version in range(2, 2 + waiting):
        registry.set_status(model, version, "pending_approval", by="evaluator", reason="manual mode")


def test_a_rollout_starts_as_one_change_with_its_approval_and_event(registry):
    with_champion_and_waiting(registry)
    assert registry.rollout("m") is None and registry.rollout_events("m") == []
    new, pointer = rolled(registry)
    assert pointer == new.to_dict() == registry.rollout("m")
    assert (pointer["status"], pointer["share"], pointer["revision"], pointer["id"]) == (
        "active",
        10.0,
        1,
        "m/r1",
    )
    doc = registry.version("m", 2)
    assert doc["status"] == "rolling_out"
    assert [(t["from"], t["to"], t["by"]) for t in doc["transitions"][-2:]] == [
        ("pending_approval", "approved", "alice (approver)"),
        ("approved", "rolling_out", "alice (approver)"),
    ]
    (event,) = registry.rollout_events("m")
    assert (event["action"], event["revision"], event["share_from"], event["share_to"]) == (
        "start",
        1,
        0.0,
        10.0,
    )
    assert (event["model"], event["number"], event["rollout"], event["by"]) == (
        "m",
        1,
        "m/r1",
        "alice (approver)",
    )
    assert event["figures"] == {"schedule": SCHEDULE.to_dict()} and event["guard"] is None
    assert registry.champion("m") == 1 and len(registry.audit("m")) == 1  # not a champion change (yet)


def test_a_rollout_starts_only_from_what_was_read(registry):
    with_champion_and_waiting(registry, waiting=2)
    registry.set_status("m", 3, "rejected", by="bob", reason="no")
    start = rollout.start("m", 1, 3, 1, SCHEDULE, rollout.Guards(), T0, "a", "r", "pending_approval")
    with pytest.raises(
        StatusConflict, match="cannot roll out m v3: it is rejected, expected pending_approval"
    ):
        registry.start_rollout(*start, "pending_approval")
    stale = rollout.start("m", 1, 2, 7, SCHEDULE, rollout.Guards(), T0, "a", "r", "pending_approval")
    with pytest.raises(PromotionConflict, match="current champion is v1, not v7"):
        registry.start_rollout(*stale, "pending_approval")
    skipped = rollout.start("m", 2, 2, 1, SCHEDULE, rollout.Guards(), T0, "a", "r", "pending_approval")
    with pytest.raises(rollout.RolloutConflict, match="last rollout is r0: the next is r1, not r2"):
        registry.start_rollout(*skipped, "pending_approval")
    unknown = rollout.start("m", 1, 9, 1, SCHEDULE, rollout.Guards(), T0, "a", "r", "pending_approval")
    with pytest.raises(errors.NotFound, match="m v9 is not registered"):
        registry.start_rollout(*unknown, "pending_approval")
    with pytest.raises(ValueError, match="expected_status"):
        registry.start_rollout(*start, "approved")
    registry.taint("m", 2, "u1", states.taint_detail(True, False, "ops", "bad", T0))
    tainted = rollout.start("m", 1, 2, 1, SCHEDULE, rollout.Guards(), T0, "a", "r", "pending_approval")
    with pytest.raises(StatusConflict, match="m v2 the champion: it is tainted"):
        registry.start_rollout(*tainted, "pending_approval")
    assert registry.rollout("m") is None and registry.rollout_events("m") == []
    assert registry.version("m", 2)["status"] == "pending_approval"


def test_a_rollout_steps_pauses_and_resumes_each_change_an_event(registry):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    paused, event = new.pause("2026-12-01T10:05:00+00:00", "bob (approver)", "looking at a dashboard")
    assert registry.change_rollout(paused, event)["status"] == "paused"
    resumed, event = paused.resume("2026-12-01T10:06:00+00:00", "bob (approver)", "looks fine")
    assert registry.change_rollout(resumed, event)["step_started_at"] == "2026-12-01T10:06:00+00:00"
    figures = {"guards": [{"name": "error_rate", "value": 0.0, "limit": 0.01, "breached": False}]}
    stepped, event = resumed.advance("2026-12-01T10:30:00+00:00", "every guard held", figures)
    pointer = registry.change_rollout(stepped, event)
    assert (pointer["step"], pointer["share"], pointer["revision"], pointer["status"]) == (
        1,
        100.0,
        4,
        "active",
    )
    assert pointer["evaluation"] == {
        "guards": [{"name": "error_rate", "value": 0, "limit": 0.01, "breached": False}]
    }
    assert registry.rollout("m") == pointer
    events = registry.rollout_events("m", 1)
    assert [(e["action"], e["revision"], e["by"]) for e in events] == [
        ("start", 1, "alice (approver)"),
        ("pause", 2, "bob (approver)"),
        ("resume", 3, "bob (approver)"),
        ("step", 4, rollout.EVALUATOR),
    ]
    assert events[-1]["figures"] == pointer["evaluation"] and events[-1]["share_to"] == 100.0
    assert registry.version("m", 2)["status"] == "rolling_out" and registry.champion("m") == 1


def test_a_stale_rollout_change_is_refused_and_writes_nothing(registry):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    paused, event = new.pause("2026-12-01T10:05:00+00:00", "bob", "wait")
    registry.change_rollout(paused, event)
    stepped, step = new.advance("2026-12-01T10:30:00+00:00", "every guard held", {})  # from revision 1
    with pytest.raises(rollout.RolloutConflict, match=r"changed meanwhile .*paused at revision 2"):
        registry.change_rollout(stepped, step)
    aborted, abort = new.abort("2026-12-01T10:31:00+00:00", "carol", "stale view")
    with pytest.raises(rollout.RolloutConflict, match="changed meanwhile"):
        registry.abort_rollout(aborted, abort)
    with pytest.raises(rollout.RolloutConflict, match="changed meanwhile"):
        registry.change_rollout(paused, event)  # the same change twice
    assert registry.rollout("m") == paused.to_dict()
    assert [e["action"] for e in registry.rollout_events("m")] == ["start", "pause"]
    assert registry.version("m", 2)["status"] == "rolling_out"
    resumed, _ = paused.resume("2026-12-01T10:40:00+00:00", "bob", "go")
    with pytest.raises(ValueError, match="event: it is m/r1 revision 2, the rollout m/r1 revision 3"):
        registry.change_rollout(resumed, event)  # not this change's event
    assert registry.rollout("m") == paused.to_dict()


def test_an_aborted_rollout_sends_the_candidate_back_and_frees_the_next(registry):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    aborted, event = new.abort(
        "2026-12-01T10:20:00+00:00", rollout.EVALUATOR, "disagreement 0.4 > 0.2", guard="disagreement",
        evaluation={"guards": [{"name": "disagreement", "value": 0.4, "limit": 0.2, "breached": True}]},
    )  # fmt: skip
    pointer = registry.abort_rollout(aborted, event)
    assert (pointer["status"], pointer["share"], pointer["end_reason"]) == (
        "aborted",
        0.0,
        "disagreement 0.4 > 0.2",
    )
    doc = registry.version("m", 2)
    assert doc["status"] == "pending_approval"
    assert doc["transitions"][-1] == {
        "from": "rolling_out",
        "to": "pending_approval",
        "at": "2026-12-01T10:20:00+00:00",
        "by": rollout.EVALUATOR,
        "reason": "disagreement 0.4 > 0.2",
    }
    last = registry.rollout_events("m")[-1]
    assert (last["action"], last["guard"], last["share_from"], last["share_to"]) == (
        "abort",
        "disagreement",
        10.0,
        0.0,
    )
    assert registry.champion("m") == 1 and len(registry.audit("m")) == 1
    with pytest.raises(rollout.RolloutConflict, match=r"cannot abort rollout m/r1 .*: it is aborted"):
        aborted.abort("2026-12-01T10:21:00+00:00", "bob", "again")
    # The next rollout is r2, of the same version (approved again) or another.
    again, _ = rolled(registry, number=2)
    assert registry.rollout("m")["id"] == "m/r2" and registry.version("m", 2)["status"] == "rolling_out"
    assert [(e["number"], e["action"]) for e in registry.rollout_events("m")] == [
        (1, "start"),
        (1, "abort"),
        (2, "start"),
    ]
    assert [e["action"] for e in registry.rollout_events("m", 2)] == ["start"]
    assert again.id == "m/r2"


def test_a_former_champion_rolls_out_without_a_new_approval_and_returns_to_retired(registry):
    registered(registry, "m", 2)
    promoted(registry, "m", 1, "e", "first", None)
    promoted(registry, "m", 2, "e", "second", 1)
    new, event = rollout.start("m", 1, 1, 2, SCHEDULE, rollout.Guards(), T0, "alice", "v1 again", "retired")
    registry.start_rollout(new, event, "retired")
    assert [(t["from"], t["to"]) for t in registry.version("m", 1)["transitions"][-1:]] == [
        ("retired", "rolling_out")
    ]
    aborted, event = new.abort("2026-12-01T10:20:00+00:00", "alice", "no")
    registry.abort_rollout(aborted, event)
    assert registry.version("m", 1)["status"] == "retired"


def test_champion_changes_are_refused_while_a_rollout_runs(registry):
    with_champion_and_waiting(registry, waiting=2)
    registry.register_version("m", candidate("run-4"))
    registry.set_status("m", 4, "approved", by="gates", reason="ok")
    new, _ = rolled(registry)
    message = r"a rollout of v2 is in progress \(m rollout 1, active\); abort it first"
    with pytest.raises(states.RolloutRunning, match=message):
        registry.approve("m", 3, "bob", "ok", expected_champion=1, expected_status="pending_approval")
    with pytest.raises(states.RolloutRunning, match=message):
        registry.promote("m", 4, "bob", "ok", expected_champion=1)
    paused, event = new.pause("2026-12-01T10:05:00+00:00", "bob", "wait")
    registry.change_rollout(paused, event)
    with pytest.raises(states.Conflict, match=r"in progress \(m rollout 1, paused\); abort it first"):
        registry.rollback("m", "oncall", "undo")
    with pytest.raises(rollout.RolloutConflict, match="in progress"):
        rolled(registry, candidate_version=3, number=2)  # one rollout at a time
    assert isinstance(states.RolloutRunning("m", new.to_dict()), errors.Conflict)
    assert registry.champion("m") == 1 and len(registry.audit("m")) == 1
    assert {v["version"]: v["status"] for v in registry.versions("m")} == {
        1: "champion",
        2: "rolling_out",
        3: "pending_approval",
        4: "approved",
    }
    aborted, event = paused.abort("2026-12-01T10:06:00+00:00", "bob", "abort it first, then")
    registry.abort_rollout(aborted, event)
    registry.promote("m", 4, "bob", "ok now", expected_champion=1)
    assert registry.champion("m") == 4


def test_a_completed_rollout_makes_the_champion_like_any_promotion_and_rolls_back_like_one(registry):
    with_champion_and_waiting(registry, waiting=2)
    new, _ = rolled(registry)
    stepped, event = new.advance("2026-12-01T10:15:00+00:00", "every guard held", {"guards": []})
    stepped = rollout.Rollout.from_dict(registry.change_rollout(stepped, event))
    done, event = stepped.complete("2026-12-01T10:30:00+00:00", "the last step baked", {"guards": []})
    entry = registry.complete_rollout(done, event)
    assert (entry["action"], entry["from_version"], entry["to_version"], entry["seq"]) == ("promote", 1, 2, 2)
    assert entry["rollout"] == "m/r1" and entry["who"] == rollout.EVALUATOR and entry["superseded"] == [3]
    assert entry["reason"] == "rollout m/r1 completed: the last step baked"
    assert registry.audit("m")[-1] == entry
    assert registry.champion("m") == 2
    assert {v["version"]: v["status"] for v in registry.versions("m")} == {
        1: "retired",
        2: "champion",
        3: "superseded",
    }
    assert [(t["from"], t["to"]) for t in registry.version("m", 2)["transitions"][-3:]] == [
        ("pending_approval", "approved"),
        ("approved", "rolling_out"),
        ("rolling_out", "champion"),
    ]
    assert registry.version("m", 3)["transitions"][-1]["reason"].startswith(
        "v2 became the champion (rollout m/r1 completed by rollout-guard)"
    )
    pointer = registry.rollout("m")
    assert (pointer["status"], pointer["ended_at"], pointer["share"], pointer["revision"]) == (
        "completed",
        "2026-12-01T10:30:00+00:00",
        0.0,
        3,
    )
    assert [e["action"] for e in registry.rollout_events("m")] == ["start", "step", "complete"]
    assert registry.rollout_events("m")[-1]["share_to"] == 100.0
    with pytest.raises(rollout.RolloutConflict, match="changed meanwhile"):
        registry.complete_rollout(done, event)
    back = registry.rollback("m", "oncall", "v2 misbehaves after all")
    assert (back["from_version"], back["to_version"], back["undoes"]) == (2, 1, 2)
    assert registry.champion("m") == 1


def test_a_completion_is_refused_when_its_candidate_is_no_longer_rolling_out(registry):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    stepped, event = new.advance("2026-12-01T10:15:00+00:00", "held", {})
    registry.change_rollout(stepped, event)
    registry.taint("m", 2, "u1", states.taint_detail(True, False, "ops", "bad", T0))
    done, event = stepped.complete("2026-12-01T10:30:00+00:00", "baked", {})
    with pytest.raises(StatusConflict, match="m v2 the champion: it is tainted"):
        registry.complete_rollout(done, event)
    assert registry.champion("m") == 1 and registry.rollout("m")["status"] == "active"
    assert [e["action"] for e in registry.rollout_events("m")] == ["start", "step"]


def test_a_manual_abort_racing_the_automatic_step_commits_exactly_one(registry, atomic_writes):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    stepped, step = new.advance("2026-12-01T10:15:00+00:00", "every guard held", {"guards": []})
    aborted, abort = new.abort("2026-12-01T10:15:00+00:00", "bob (approver)", "I saw a bad answer")
    outcomes = race(
        2,
        lambda i: (
            registry.change_rollout(stepped, step) if i == 0 else registry.abort_rollout(aborted, abort)
        ),
    )
    winners = [i for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1, outcomes
    (loser,) = {0, 1} - set(winners)
    assert isinstance(outcomes[loser], rollout.RolloutConflict)
    events = registry.rollout_events("m")
    assert [e["action"] for e in events] == ["start", "step" if winners == [0] else "abort"]
    expected_status = "rolling_out" if winners == [0] else "pending_approval"
    assert registry.version("m", 2)["status"] == expected_status
    assert registry.rollout("m") == (stepped if winners == [0] else aborted).to_dict()


def test_a_manual_abort_racing_the_completion_commits_exactly_one(registry, atomic_writes):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    stepped, event = new.advance("2026-12-01T10:15:00+00:00", "held", {})
    registry.change_rollout(stepped, event)
    done, complete = stepped.complete("2026-12-01T10:30:00+00:00", "baked", {})
    aborted, abort = stepped.abort("2026-12-01T10:30:00+00:00", "bob (approver)", "stop")
    outcomes = race(
        2,
        lambda i: (
            registry.complete_rollout(done, complete) if i == 0 else registry.abort_rollout(aborted, abort)
        ),
    )
    winners = [i for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, rollout.RolloutConflict) for i, o in outcomes.items() if i not in winners)
    assert registry.champion("m") == (2 if winners == [0] else 1)
    assert len(registry.audit("m")) == (2 if winners == [0] else 1)
    assert registry.version("m", 2)["status"] == ("champion" if winners == [0] else "pending_approval")
    assert [e["action"] for e in registry.rollout_events("m")][-1] == (
        "complete" if winners == [0] else "abort"
    )


def test_a_rollout_start_racing_an_approval_commits_exactly_one(registry, atomic_writes):
    with_champion_and_waiting(registry, waiting=2)
    start = rollout.start("m", 1, 2, 1, SCHEDULE, rollout.Guards(), T0, "alice", "canary", "pending_approval")

    def work(i: int) -> Any:
        if i == 0:
            return registry.start_rollout(*start, "pending_approval")
        return registry.approve("m", 3, "bob", "ok", expected_champion=1, expected_status="pending_approval")

    outcomes = race(2, work)
    winners = [i for i, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, states.Conflict) for i, o in outcomes.items() if i not in winners)
    if winners == [0]:
        assert registry.champion("m") == 1 and registry.rollout("m")["status"] == "active"
    else:
        assert registry.champion("m") == 3 and registry.rollout("m") is None
        assert registry.version("m", 2)["status"] == "superseded"


def test_the_champion_ledger_holds_only_champion_changes_beside_rollout_events(registry):
    with_champion_and_waiting(registry)
    new, _ = rolled(registry)
    paused, event = new.pause("2026-12-01T10:05:00+00:00", "bob", "wait")
    registry.change_rollout(paused, event)
    assert [e["action"] for e in registry.audit("m")] == ["promote"]
    assert registry.audit("other") == [] and registry.rollout_events("other") == []
    assert registry.rollout("other") is None and registry.models() == ["m"]


def test_a_rollout_lives_in_the_store_not_in_the_adapter(aws):
    """A function restarted mid-rollout (a new adapter on the same tables) reads it back and goes on."""
    registry = DynamoRegistry(aws.registry_table, aws.audit_table)
    with_champion_and_waiting(registry)
    rolled(registry)
    restarted = DynamoRegistry(aws.registry_table, aws.audit_table)
    found = rollout.Rollout.from_dict(restarted.rollout("m"))
    assert found.status == "active" and found.share == 10.0 and found.revision == 1
    stepped, event = found.advance("2026-12-01T10:15:00+00:00", "held", {})
    assert restarted.change_rollout(stepped, event)["share"] == 100.0
    assert [e["action"] for e in DynamoRegistry(aws.registry_table, aws.audit_table).rollout_events("m")] == [
        "start",
        "step",
    ]
