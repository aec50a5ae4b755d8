"""What every registry store checks and writes for a rollout (``chalicelib.registry.rollout``'s store
section and ``states``' rollout rules), without a store: the contract suite
(``tests/adapters/test_registry_contract.py``) holds the stores to them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib import errors
from chalicelib.registry import rollout, states
from chalicelib.registry.states import Promotion, StatusConflict

SCHEDULE = rollout.Schedule(rollout.CANARY, 10.0, 900)
T0 = "2026-12-01T10:00:00+00:00"


def started(from_status: str = "pending_approval", number: int = 1) -> tuple[rollout.Rollout, rollout.Event]:
    return rollout.start("m", number, 2, 1, SCHEDULE, rollout.Guards(), T0, "alice", "canary", from_status)


def test_rollout_conflicts_are_409s_and_a_running_rollout_names_its_candidate():
    assert issubclass(rollout.RolloutConflict, states.Conflict)
    assert issubclass(rollout.RolloutConflict, errors.Conflict)
    assert rollout.RolloutConflict is states.RolloutConflict
    new, _ = started()
    with pytest.raises(states.RolloutRunning, match=r"a rollout of v2 is in progress .*; abort it first"):
        states.check_no_rollout("m", new.to_dict())
    aborted, _ = new.abort(T0, "bob", "no")
    states.check_no_rollout("m", aborted.to_dict())
    states.check_no_rollout("m", None)
    assert "rolling_out" in states.STATUSES and states.PROMOTABLE == ("approved", "retired")


def test_a_rollout_start_records_an_approval_unless_there_is_one():
    assert [(t["from"], t["to"]) for t in rollout.start_moves("pending_approval", T0, "a", "r")] == [
        ("pending_approval", "approved"),
        ("approved", "rolling_out"),
    ]
    assert [(t["from"], t["to"]) for t in rollout.start_moves("candidate", T0, "a", "r")] == [
        ("candidate", "approved"),
        ("approved", "rolling_out"),
    ]
    assert [(t["from"], t["to"]) for t in rollout.start_moves("approved", T0, "a", "r")] == [
        ("approved", "rolling_out")
    ]
    assert [(t["from"], t["to"]) for t in rollout.start_moves("retired", T0, "a", "r")] == [
        ("retired", "rolling_out")
    ]


def test_a_start_is_checked_against_the_last_rollout_the_champion_and_the_candidate():
    new, event = started()
    doc = {"status": "pending_approval"}
    rollout.check_start(new, event, "pending_approval", None, 1, doc)
    with pytest.raises(ValueError, match="expected_status: a rollout starts from"):
        rollout.check_start(new, event, "approved", None, 1, {"status": "approved"})
    with pytest.raises(ValueError, match="expected_status"):
        rollout.check_start(*started("champion"), "champion", None, 1, {"status": "champion"})
    with pytest.raises(states.PromotionConflict, match="current champion is v3, not v1"):
        rollout.check_start(new, event, "pending_approval", None, 3, doc)
    with pytest.raises(StatusConflict, match="it is superseded, expected pending_approval"):
        rollout.check_start(new, event, "pending_approval", None, 1, {"status": "superseded"})
    with pytest.raises(errors.NotFound):
        rollout.check_start(new, event, "pending_approval", None, 1, None)
    ended, _ = new.abort(T0, "bob", "no")
    second, second_event = started(number=2)
    rollout.check_start(second, second_event, "pending_approval", ended.to_dict(), 1, doc)
    with pytest.raises(rollout.RolloutConflict, match="last rollout is r1: the next is r2, not r1"):
        rollout.check_start(new, event, "pending_approval", ended.to_dict(), 1, doc)
    with pytest.raises(rollout.RolloutConflict, match="in progress"):
        rollout.check_start(second, second_event, "pending_approval", new.to_dict(), 1, doc)
    with pytest.raises(ValueError, match="nan"):
        bad = rollout.Event(new.id, 1, "start", T0, "a", "r", 0.0, 10.0, figures={"psi": float("nan")})
        rollout.check_start(new, bad, "pending_approval", None, 1, doc)


def test_a_change_is_checked_against_the_revision_it_was_made_from():
    new, _ = started()
    paused, event = new.pause(T0, "bob", "wait")
    rollout.check_change(paused, event, new.to_dict(), rollout.CHANGE_ACTIONS)
    with pytest.raises(rollout.RolloutConflict, match="changed meanwhile"):
        rollout.check_change(paused, event, paused.to_dict(), rollout.CHANGE_ACTIONS)
    with pytest.raises(rollout.RolloutConflict, match="no rollout r1 running"):
        rollout.check_change(paused, event, None, rollout.CHANGE_ACTIONS)
    with pytest.raises(ValueError, match="'pause' is not a change this call makes"):
        rollout.check_change(paused, event, new.to_dict(), (rollout.ABORT,))
    aborted, abort = new.abort(T0, "bob", "no")
    with pytest.raises(ValueError, match="a pause makes m/r1 paused, not aborted"):
        rollout.check_change(aborted, replace(event, revision=2), new.to_dict(), rollout.CHANGE_ACTIONS)
    rollout.check_change(aborted, abort, new.to_dict(), (rollout.ABORT,))


def test_a_completion_is_a_promotion_from_rolling_out_only():
    new, _ = started()
    stepped, _ = new.advance(T0, "held", {})
    done, event = stepped.complete(T0, "baked", {})
    promotion = rollout.completion(done, event)
    assert (promotion.version, promotion.expected, promotion.action, promotion.rollout) == (
        2,
        1,
        "promote",
        "m/r1",
    )
    assert [(t["from"], t["to"]) for t in promotion.moves("rolling_out", T0)] == [("rolling_out", "champion")]
    with pytest.raises(StatusConflict, match="cannot complete rollout m/r1: m v2 is pending_approval"):
        promotion.moves("pending_approval", T0)
    entry = promotion.entry(2, T0, [3])
    assert (
        entry["rollout"] == "m/r1"
        and entry["approved"] is False
        and entry["reason"].startswith("rollout m/r1")
    )
    assert "rollout" not in Promotion("m", 2, "a", "r", 1).entry(2, T0)
    with pytest.raises(StatusConflict, match="only approved or retired versions can be promoted"):
        Promotion("m", 2, "a", "r", 1).moves("rolling_out", T0)  # an ordinary promote never takes one
    with pytest.raises(ValueError, match="a rollout's completion is a promotion of its own"):
        Promotion("m", 2, "a", "r", 1, approving="candidate", rollout="m/r1")
    assert states.superseded_reason(promotion).startswith("v2 became the champion (rollout m/r1 completed by")


def test_stored_pointers_and_events_read_back_the_same_whatever_the_store_dropped():
    new, event = started()
    stored = {k: v for k, v in new.to_dict().items() if v is not None}
    stored["schedule"] = {**stored["schedule"], "percent": 10}
    assert rollout.read_pointer(stored) == new.to_dict() and rollout.read_pointer(None) is None
    record = {k: v for k, v in rollout.event_record("m", 1, event).items() if v is not None}
    assert rollout.read_event({**record, "share_from": 0, "pk": "x", "sk": "y"}) == rollout.event_record(
        "m", 1, event
    )
    assert rollout.event_key(3, 12) == "000003#000012"
