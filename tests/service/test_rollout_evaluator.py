"""The rollout evaluator on in-memory stores: each guard aborts a bad release (all traffic back to the
champion, the candidate back to pending approval, the abort event naming the guard and its figures,
a notification); a good release steps and completes through the promotion transaction; a restart
mid-rollout continues where it was; a person's abort racing the evaluator's step ends in one outcome.

Captured traffic is written as /predict captures it during a rollout (canary + the champion's shadow
per request), with controlled latencies: no assertion depends on the machine's speed."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import notify
from chalicelib.registry import rollout as ro
from chalicelib.rollout import guards as g
from tests.rollout_support import DATASET, T0, Evaluated, good

MINUTE = timedelta(minutes=1)


def failing(i: int) -> dict[str, Any]:
    """The candidate refuses one record in ten that the champion takes."""
    return {"ours": None, "theirs": i % 2, "status": ("invalid", "ok")} if i % 10 == 0 else good(i)


def slow(i: int) -> dict[str, Any]:
    return {**good(i), "latency_ms": (25.0, 3.0)}


def contrary(i: int) -> dict[str, Any]:
    """Two answers in five differ, both ways (the classes' shares stay)."""
    return {"ours": 1 - i % 2 if i % 5 < 2 else i % 2, "theirs": i % 2}


def loses_rare_class(i: int) -> dict[str, Any]:
    """The champion predicts class 2 one time in ten; the candidate never does."""
    return {"ours": 0, "theirs": 2} if i % 10 == 0 else good(i)


def wrong_where_right(i: int) -> dict[str, Any]:
    """Both give the true label (i % 2) except on one in seven, where the candidate flips it."""
    return {"ours": 1 - i % 2 if i % 7 == 0 else i % 2, "theirs": i % 2}


def assert_aborted(world: Evaluated, guard: str, summary: dict[str, Any]) -> None:
    assert summary["action"] == g.ABORT and summary["guard"] == guard and summary["status"] == ro.ABORTED
    pointer = world.pointer()
    assert pointer["status"] == ro.ABORTED and pointer["share"] == 0.0
    assert pointer["evaluation"]["guards"][guard]["breached"]
    assert world.registry.champion(DATASET) == 1
    assert world.registry.version(DATASET, 2)["status"] == "pending_approval"
    abort = world.events()[-1]
    assert abort["action"] == ro.ABORT and abort["by"] == ro.EVALUATOR and abort["guard"] == guard
    assert abort["figures"]["guards"][guard]["breached"] and f"guard {guard} breached" in abort["reason"]
    ((kind, detail),) = world.notifier.messages
    assert (
        kind == notify.MODEL_ROLLOUT_ABORTED
        and detail["guard"] == guard
        and detail["rollout"] == f"{DATASET}/r1"
    )
    assert detail["figures"][guard]["breached"] and guard in detail["reason"]


@pytest.mark.parametrize(
    ("behaviour", "guard"),
    [
        (failing, "error_rate"),
        (slow, "latency_p99"),
        (contrary, "disagreement"),
        (loses_rare_class, "prediction_psi"),
    ],
)
def test_each_guard_aborts_a_bad_release_at_once(behaviour: Any, guard: str) -> None:
    world = Evaluated()
    world.traffic(T0 + MINUTE, 200, behaviour)
    summary = world.run(T0 + 5 * MINUTE)  # within the first step's bake: a breach does not wait
    assert_aborted(world, guard, summary)


def test_the_metric_guard_aborts_once_outcomes_show_the_candidate_worse() -> None:
    world = Evaluated(guards=ro.Guards(min_outcomes=150))
    sent = world.traffic(T0 + MINUTE, 200, wrong_where_right)
    assert world.run(T0 + 5 * MINUTE)["action"] == g.HOLD  # no outcomes yet: 14% flips pass the others
    world.label(T0 + 6 * MINUTE, {i: i % 2 for i in sent})
    summary = world.run(T0 + 10 * MINUTE)
    assert_aborted(world, "metric", summary)
    metric = summary["figures"]["guards"]["metric"]
    assert metric["metric"] == "accuracy" and metric["n"] == 200 and metric["champion"] == 1.0


def test_a_candidate_failing_at_once_is_aborted_before_min_requests() -> None:
    world = Evaluated()
    world.traffic(T0 + MINUTE, 10, lambda i: {"ours": None, "theirs": 0, "status": ("error", "ok")})
    summary = world.run(T0 + 2 * MINUTE)
    assert not summary["figures"]["sufficient"]
    assert_aborted(world, "error_rate", summary)


def test_a_good_release_steps_then_completes_through_the_promotion() -> None:
    world = Evaluated(schedule=ro.Schedule(ro.LINEAR, 50.0, 900))
    world.traffic(T0 + MINUTE, 150)
    held = world.run(T0 + 10 * MINUTE)  # enough records, not baked
    assert held["action"] == g.HOLD and "baking" in held["reason"]
    assert world.pointer()["revision"] == 1  # a hold writes nothing
    stepped = world.run(T0 + 16 * MINUTE)
    assert stepped["action"] == g.STEP and world.pointer()["share"] == 100.0 and world.pointer()["step"] == 1
    assert world.pointer()["evaluation"]["paired"] == 150
    # The new step judges its own records: those before it do not count.
    too_few = world.run(T0 + 32 * MINUTE)
    assert too_few["action"] == g.HOLD and "0 paired candidate records" in too_few["reason"]
    world.traffic(T0 + 33 * MINUTE, 120)
    done = world.run(T0 + 36 * MINUTE)
    assert done["action"] == g.COMPLETE and done["status"] == ro.COMPLETED
    assert world.registry.champion(DATASET) == 2
    assert world.registry.version(DATASET, 1)["status"] == "retired"
    assert [e["action"] for e in world.events()] == [ro.START, ro.STEP, ro.COMPLETE]
    assert world.events()[-1]["figures"]["paired"] == 120
    assert world.registry.audit(DATASET)[-1]["to_version"] == 2
    ((kind, detail),) = world.notifier.messages
    assert (
        kind == notify.MODEL_PROMOTED and detail["rollout"] == f"{DATASET}/r1" and detail["to_version"] == 2
    )
    assert world.run(T0 + 40 * MINUTE) == {}  # nothing running: nothing judged


def test_a_restart_mid_rollout_continues_where_it_was() -> None:
    """Each run builds its ports afresh; after a restart the registry is a new object holding only what
    was stored (a copy sharing nothing with the one the first runs used)."""
    world = Evaluated()
    world.traffic(T0 + MINUTE, 120)
    assert world.run(T0 + 16 * MINUTE)["action"] == g.STEP
    before = world.registry
    world.registry = copy.deepcopy(before)  # the function restarted: only the stored state is left
    world.traffic(T0 + 17 * MINUTE, 120)
    assert world.run(T0 + 25 * MINUTE)["action"] == g.HOLD  # the second step's bake started at 16 min
    assert world.run(T0 + 32 * MINUTE)["action"] == g.COMPLETE
    assert world.registry.champion(DATASET) == 2 and before.champion(DATASET) == 1
    assert [e["action"] for e in world.events()] == [ro.START, ro.STEP, ro.COMPLETE]


class PersonFirst:
    """The registry as the evaluator sees it, with a person's change landing between the evaluator's
    read and its write (the race the revision check settles)."""

    def __init__(self, world: Evaluated, change: str) -> None:
        self.world, self.change, self.raced = world, change, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world.registry, name)

    def _person(self) -> None:
        if self.raced:
            return
        self.raced += 1
        current = ro.Rollout.from_dict(self.world.pointer())
        at = (T0 + 16 * MINUTE).isoformat()
        if self.change == ro.ABORT:
            self.world.registry.abort_rollout(*current.abort(at, "bob (approver)", "customers complain"))
        else:
            self.world.registry.change_rollout(*current.pause(at, "bob (approver)", "hold on"))

    def change_rollout(self, new: ro.Rollout, event: ro.Event) -> dict[str, Any]:
        self._person()
        return self.world.registry.change_rollout(new, event)

    def abort_rollout(self, new: ro.Rollout, event: ro.Event) -> dict[str, Any]:
        self._person()
        return self.world.registry.abort_rollout(new, event)


def test_a_persons_abort_racing_the_evaluators_step_ends_in_one_outcome() -> None:
    world = Evaluated()
    world.traffic(T0 + MINUTE, 120)
    summary = world.run(T0 + 16 * MINUTE, registry=PersonFirst(world, ro.ABORT))
    assert summary["action"] == g.HOLD and summary["retried"] and summary["status"] == ro.ABORTED
    assert [(e["action"], e["by"]) for e in world.events()] == [
        (ro.START, "alice (approver)"),
        (ro.ABORT, "bob (approver)"),
    ]
    assert world.pointer()["status"] == ro.ABORTED and world.registry.champion(DATASET) == 1
    assert world.notifier.messages == []  # the person's abort is theirs to announce


def test_a_pause_racing_the_step_is_decided_anew_and_a_breach_still_aborts_it() -> None:
    world = Evaluated()
    world.traffic(T0 + MINUTE, 120)
    held = world.run(T0 + 16 * MINUTE, registry=PersonFirst(world, ro.PAUSE))
    assert held["action"] == g.HOLD and held["retried"] and "paused" in held["reason"]
    assert [e["action"] for e in world.events()] == [ro.START, ro.PAUSE]
    world.traffic(T0 + 20 * MINUTE, 120, slow)
    summary = world.run(T0 + 25 * MINUTE)
    assert_aborted(world, "latency_p99", summary)


def test_a_candidate_no_longer_servable_is_aborted() -> None:
    world = Evaluated()
    world.registry.taint(
        DATASET, 2, "u9", {"trained": True, "evaluated": False, "by": "ops", "reason": "consent"}
    )
    summary = world.run(T0 + 5 * MINUTE)
    assert summary["action"] == g.ABORT and summary["guard"] == "servable" and "tainted" in summary["reason"]
    assert world.pointer()["status"] == ro.ABORTED


def test_holds_write_nothing_and_return_their_figures() -> None:
    world = Evaluated()
    world.traffic(T0 + MINUTE, 40)
    summary = world.run(T0 + 16 * MINUTE)
    assert summary["action"] == g.HOLD and summary["figures"]["paired"] == 40
    assert summary["figures"]["window"] == {"start": T0.isoformat(), "end": (T0 + 16 * MINUTE).isoformat()}
    assert world.pointer()["revision"] == 1 and world.pointer()["evaluation"] is None
    assert len(world.events()) == 1 and world.notifier.messages == []
