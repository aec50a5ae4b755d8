"""The registry's rules without a store: status moves, promotability, new version records, and the
rollback rule read from the audit ledger."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import RegistryError
from chalicelib.registry import states
from chalicelib.registry.states import (
    ALLOWED,
    PROMOTABLE,
    STATUSES,
    Champion,
    NothingToRollBack,
    Promotion,
    PromotionConflict,
    StatusConflict,
    rollback_of,
)


def entry(
    seq: int, frm: int | None, to: int, action: str = "promote", undoes: int | None = None
) -> dict[str, Any]:
    return {"seq": seq, "from_version": frm, "to_version": to, "action": action, "undoes": undoes}


def test_status_changes_never_make_or_unmake_a_champion():
    assert set(ALLOWED) == {"pending_approval", "approved", "rejected"}
    assert all(set(sources) <= set(STATUSES) - {"champion"} for sources in ALLOWED.values())
    assert "rejected" not in {s for sources in ALLOWED.values() for s in sources}  # rejected is final
    assert PROMOTABLE == ("approved", "retired")
    for target in ("champion", "retired", "candidate", "paused"):
        with pytest.raises(ValueError, match="cannot be set here"):
            states.sources(target, None)
    assert states.sources("approved", None) == ("candidate", "pending_approval")
    assert states.sources("approved", "pending_approval") == ("pending_approval",)
    with pytest.raises(ValueError, match="cannot move from 'champion' to 'rejected'"):
        states.sources("rejected", "champion")


def test_a_move_from_an_unexpected_status_is_a_conflict_naming_both():
    states.check_source("m", 1, "approved", "candidate", ("candidate", "pending_approval"))
    with pytest.raises(StatusConflict, match="it is rejected, expected candidate or pending_approval"):
        states.check_source("m", 1, "approved", "rejected", ("candidate", "pending_approval"))


def test_only_approved_or_retired_versions_are_promotable():
    for status in PROMOTABLE:
        states.check_promotable("m", 1, status)
    for status in ("candidate", "pending_approval", "champion", "rejected"):
        with pytest.raises(RegistryError, match=f"it is {status}"):
            states.check_promotable("m", 1, status)


def test_a_new_version_record_keeps_the_candidate_but_not_the_registry_s_own_keys():
    doc = states.version_record(
        "m", 3, {"run_id": "r", "metrics": {"auc": 0.9}, "status": "champion", "version": 9, "pk": "x"}, "t0"
    )
    assert doc["status"] == "candidate" and doc["version"] == 3 and doc["model"] == "m" and "pk" not in doc
    assert doc["candidate_id"] == "r" and doc["metrics"] == {"auc": 0.9} and doc["gates"] == {}
    assert doc["transitions"] == [
        {"from": None, "to": "candidate", "at": "t0", "by": "registry", "reason": "registered"}
    ]
    assert states.candidate_id({"manifest_key": "k", "run_id": ""}) == "k"
    with pytest.raises(ValueError, match="run_id"):
        states.candidate_id({})
    with pytest.raises(ValueError, match=r"candidate\.metrics\[1\]"):
        states.candidate_id({"run_id": "r", "metrics": [1.0, float("inf")]})


def test_a_promotion_checks_the_pointer_it_replaces():
    first = Promotion("m", 1, "e", "first", expected=None)
    first.check_pointer(None)
    with pytest.raises(PromotionConflict, match="current champion is v1, not none"):
        first.check_pointer(Champion(1, 1))
    second = Promotion("m", 2, "e", "better", expected=1)
    second.check_pointer(Champion(1, 5))
    undo = Promotion("m", 1, "e", "undo", expected=2, action="rollback", undoes=2, expected_seq=2)
    undo.check_pointer(Champion(2, 2))
    with pytest.raises(PromotionConflict):  # 2 -> 1 -> 2 in between: the same champion, a later seq
        undo.check_pointer(Champion(2, 4))
    with pytest.raises(RegistryError, match="already the champion"):
        Promotion("m", 2, "e", "again", expected=2)
    with pytest.raises(ValueError, match="positive integer"):
        Promotion("m", 0, "e", "x", expected=None)
    assert undo.entry(3, "t") == {
        "who": "e",
        "action": "rollback",
        "from_version": 2,
        "to_version": 1,
        "reason": "undo",
        "at": "t",
        "seq": 3,
        "undoes": 2,
        "approved": False,
        "superseded": [],
    }
    assert states.audit_id("2026-01-01T00:00:00", 12) == "2026-01-01T00:00:00#00000012"


def test_rollback_undoes_the_promotion_on_top_of_the_stack():
    ledger = [entry(1, None, 1), entry(2, 1, 2), entry(3, 2, 3)]
    back = rollback_of("m", Champion(3, 3), ledger, "oncall", "bad")
    assert (back.version, back.expected, back.undoes, back.expected_seq, back.action) == (
        2,
        3,
        3,
        3,
        "rollback",
    )
    ledger.append(entry(4, 3, 2, "rollback", undoes=3))
    again = rollback_of("m", Champion(2, 4), ledger, "oncall", "bad")
    assert (again.version, again.undoes) == (1, 2)  # two steps back, never 2 -> 3 again
    ledger.append(entry(5, 2, 1, "rollback", undoes=2))
    with pytest.raises(NothingToRollBack, match="first champion"):
        rollback_of("m", Champion(1, 5), ledger, "oncall", "bad")
    with pytest.raises(NothingToRollBack, match="no champion"):
        rollback_of("m", None, [], "oncall", "bad")


def test_a_promotion_after_a_rollback_is_the_next_one_undone():
    ledger = [
        entry(1, None, 1),
        entry(2, 1, 2),
        entry(3, 2, 3),
        entry(4, 3, 2, "rollback", 3),
        entry(5, 2, 4),
    ]
    assert rollback_of("m", Champion(4, 5), ledger, "o", "r").version == 2


def test_a_ledger_that_does_not_lead_to_the_pointer_is_refused():
    complete = [entry(1, None, 1), entry(2, 1, 2)]
    with pytest.raises(RegistryError, match="behind its champion pointer"):
        rollback_of("m", Champion(2, 3), complete, "o", "r")  # seq 3 not visible yet
    with pytest.raises(RegistryError, match="does not end with its champion v3"):
        rollback_of("m", Champion(3, 2), complete, "o", "r")
    with pytest.raises(RegistryError, match="inconsistent at seq 3"):
        rollback_of("m", Champion(1, 3), [*complete, entry(3, 2, 1, "rollback", undoes=1)], "o", "r")
    # entries after the pointer's seq (a promotion committing now) are not part of this rollback
    assert rollback_of("m", Champion(2, 2), [*complete, entry(3, 2, 5)], "o", "r").version == 1


def test_a_rejected_or_unknown_version_cannot_be_the_challenger():
    states.check_challenger("m", 2, {"status": "pending_approval"})
    with pytest.raises(StatusConflict, match="rejected"):
        states.check_challenger("m", 2, {"status": "rejected"})
    with pytest.raises(RegistryError, match="not registered"):
        states.check_challenger("m", 2, None)


def test_an_approval_records_the_approval_and_the_promotion_together():
    approval = Promotion("m", 3, "alice (approver)", "looked", expected=2, approving="pending_approval")
    assert [(t["from"], t["to"], t["by"]) for t in approval.moves("pending_approval", "t")] == [
        ("pending_approval", "approved", "alice (approver)"),
        ("approved", "champion", "alice (approver)"),
    ]
    legacy = Promotion("m", 3, "evaluator", "gates", expected=2, approving="approved")
    assert [(t["from"], t["to"]) for t in legacy.moves("approved", "t")] == [("approved", "champion")]
    for status in ("rejected", "champion", "superseded", "candidate"):
        with pytest.raises(StatusConflict, match=f"it is {status}, expected pending_approval"):
            approval.moves(status, "t")
    with pytest.raises(ValueError, match="an approval starts from"):
        Promotion("m", 3, "x", "y", expected=2, approving="retired")
    plain = Promotion("m", 3, "e", "r", expected=2)
    assert [(t["from"], t["to"]) for t in plain.moves("retired", "t")] == [("retired", "champion")]
    with pytest.raises(StatusConflict, match="it is pending_approval"):
        plain.moves("pending_approval", "t")
    assert approval.entry(4, "t", [1])["approved"] is True and approval.entry(4, "t", [1])["superseded"] == [
        1
    ]


def test_a_champion_change_supersedes_exactly_the_versions_waiting_for_approval():
    versions = [
        {"version": v, "status": s}
        for v, s in enumerate(
            [
                "retired",
                "champion",
                "pending_approval",
                "approved",
                "rejected",
                "candidate",
                "pending_approval",
            ],
            start=1,
        )
    ]
    promotion = Promotion("m", 7, "alice (approver)", "ok", expected=2, approving="pending_approval")
    assert states.to_supersede(versions, promotion) == [(3, "pending_approval"), (4, "approved")]
    why = states.superseded_reason(promotion)
    assert why.startswith("v7 became the champion (approved by alice (approver))")
    rollback = Promotion("m", 1, "ops (admin)", "bad", expected=2, action="rollback", undoes=2)
    assert "v1 became the champion (rollback by ops (admin))" in states.superseded_reason(rollback)
    assert "superseded" in ALLOWED["rejected"] and "superseded" not in ALLOWED
