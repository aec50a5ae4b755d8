"""The registry and audit tables: versions, idempotent registration, statuses, promotion, rollback."""

import threading

import pytest

from chalicelib.registry.store import (
    NothingToRollBack,
    PromotionConflict,
    Registry,
    RegistryError,
    StatusConflict,
)


@pytest.fixture
def registry(aws):
    return Registry(aws.registry_table, aws.audit_table)


def candidate(run_id, auc=0.95):
    return {
        "run_id": run_id,
        "manifest_key": f"models/d/candidates/{run_id}/manifest.json",
        "artifacts": {"bucket": "models", "prefix": f"models/d/candidates/{run_id}/"},
        "checksums": {"model.onnx": "ab" * 32},
        "metrics": {"roc_auc": auc, "log_loss": 0.12},
        "lineage": {"dataset": "d", "data_manifest": f"manifests/{run_id}.json", "code": "abc123"},
    }


def approved(registry, model, n):
    """Register n candidates and approve them: versions 1..n."""
    for i in range(1, n + 1):
        version, _ = registry.register_version(model, candidate(f"run-{i}"))
        registry.set_status(model, version, "approved", by="gates", reason="every gate passed")


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
    assert [v["version"] for v in registry.versions("m")] == [1, 2, 3]
    assert registry.models() == ["m", "other"]
    assert registry.version("m", 9) is None and registry.champion("m") is None


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


def test_concurrent_registrations_of_one_candidate_give_one_version(registry, atomic_writes):
    results = []
    barrier = threading.Barrier(6)

    def register():
        barrier.wait()
        results.append(registry.register_version("m", candidate("same")))

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = registry.versions("m")
    assert len(versions) == 1
    assert {v for v, _ in results} == {versions[0]["version"]}
    assert sum(created for _, created in results) == 1


def test_set_status_is_conditional_and_records_transitions(registry):
    registry.register_version("m", candidate("r1"))
    item = registry.set_status(
        "m", 1, "pending_approval", by="gates", reason="breaking schema", gates={"schema": {"passed": False}}
    )
    assert item["status"] == "pending_approval" and item["gates"] == {"schema": {"passed": False}}
    with pytest.raises(StatusConflict, match="it is pending_approval, expected candidate"):
        registry.set_status("m", 1, "approved", by="alice", reason="ok", expected="candidate")
    item = registry.set_status("m", 1, "approved", by="alice", reason="ok", expected="pending_approval")
    assert [(t["from"], t["to"], t["by"]) for t in item["transitions"]] == [
        (None, "candidate", "registry"),
        ("candidate", "pending_approval", "gates"),
        ("pending_approval", "approved", "alice"),
    ]
    with pytest.raises(ValueError, match="set by promote"):
        registry.set_status("m", 1, "champion", by="x", reason="y")
    with pytest.raises(ValueError, match="cannot move"):
        registry.set_status("m", 1, "approved", by="x", reason="y", expected="rejected")
    with pytest.raises(RegistryError, match="not registered"):
        registry.set_status("m", 7, "approved", by="x", reason="y")
    registry.set_status("m", 1, "rejected", by="bob", reason="changed my mind")
    with pytest.raises(StatusConflict, match="it is rejected"):
        registry.set_status("m", 1, "approved", by="x", reason="y")


def test_promotion_moves_the_pointer_retires_the_champion_and_audits(registry):
    approved(registry, "m", 2)
    first = registry.promote("m", 1, by="evaluator", reason="first model", expected_champion=None)
    assert first["from_version"] is None and first["to_version"] == 1 and first["seq"] == 1
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


def test_stale_or_unpromotable_promotions_are_refused_and_change_nothing(registry):
    approved(registry, "m", 3)
    registry.register_version("m", candidate("unapproved"))
    registry.promote("m", 1, by="e", reason="first", expected_champion=None)
    registry.promote("m", 2, by="e", reason="second", expected_champion=1)
    with pytest.raises(PromotionConflict, match="current champion is v2, not v1"):
        registry.promote("m", 3, by="e", reason="stale", expected_champion=1)
    with pytest.raises(PromotionConflict, match="current champion is v2, not none"):
        registry.promote("m", 3, by="e", reason="stale", expected_champion=None)
    with pytest.raises(RegistryError, match="it is candidate"):
        registry.promote("m", 4, by="e", reason="not approved", expected_champion=2)
    with pytest.raises(RegistryError, match="not registered"):
        registry.promote("m", 9, by="e", reason="unknown", expected_champion=2)
    assert registry.champion("m") == 2 and registry.version("m", 3)["status"] == "approved"
    assert len(registry.audit("m")) == 2


def test_concurrent_promotions_leave_one_champion_and_one_audit_entry(registry, atomic_writes):
    approved(registry, "m", 7)
    registry.promote("m", 1, by="e", reason="first", expected_champion=None)
    outcomes = {}
    barrier = threading.Barrier(6)

    def contend(v):
        barrier.wait()
        try:
            outcomes[v] = registry.promote("m", v, by=f"worker-{v}", reason="race", expected_champion=1)
        except PromotionConflict as exc:
            outcomes[v] = exc

    threads = [threading.Thread(target=contend, args=(v,)) for v in range(2, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, o in outcomes.items() if isinstance(o, dict)]
    assert len(winners) == 1
    winner = winners[0]
    for v, outcome in outcomes.items():
        if v != winner:
            assert isinstance(outcome, PromotionConflict) and outcome.current == winner
            assert f"current champion is v{winner}" in str(outcome)
    statuses = {v["version"]: v["status"] for v in registry.versions("m")}
    assert registry.champion("m") == winner
    assert [v for v, s in statuses.items() if s == "champion"] == [winner]
    assert statuses[1] == "retired"
    assert all(statuses[v] == "approved" for v in range(2, 8) if v != winner)
    ledger = registry.audit("m")
    assert [(e["seq"], e["from_version"], e["to_version"]) for e in ledger] == [(1, None, 1), (2, 1, winner)]


def test_rollback_twice_goes_back_two_steps(registry):
    approved(registry, "m", 3)
    registry.promote("m", 1, by="e", reason="first", expected_champion=None)
    registry.promote("m", 2, by="e", reason="better", expected_champion=1)
    registry.promote("m", 3, by="e", reason="better still", expected_champion=2)
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
    approved(registry, "m", 4)
    registry.promote("m", 1, by="e", reason="first", expected_champion=None)
    registry.promote("m", 2, by="e", reason="better", expected_champion=1)
    registry.promote("m", 3, by="e", reason="better", expected_champion=2)
    registry.rollback("m", by="oncall", reason="v3 bad")  # 3 -> 2
    registry.promote("m", 4, by="e", reason="new candidate", expected_champion=2)
    assert registry.rollback("m", by="oncall", reason="v4 bad")["to_version"] == 2
    assert registry.rollback("m", by="oncall", reason="v2 bad")["to_version"] == 1
    assert registry.champion("m") == 1
