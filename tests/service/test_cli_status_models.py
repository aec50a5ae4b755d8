"""``mlops status``'s models section: champions, versions waiting, a running rollout's progress and
its last guard verdicts, and how the last rollout ended (the registry in memory)."""

from __future__ import annotations

import io

from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import rollout
from mlops.status import print_models

MODEL = "iris"


def registry_with_a_canary() -> tuple[MemoryRegistry, rollout.Rollout]:
    reg = MemoryRegistry()
    for n in (1, 2, 3):
        reg.register_version(MODEL, {"run_id": f"run-{n}"})
    reg.approve(MODEL, 1, "evaluator", "first", None, "candidate")
    for n in (2, 3):
        reg.set_status(MODEL, n, "pending_approval", "evaluator", "manual", gates={"evaluated_against": 1})
    state, event = rollout.start(
        MODEL, 1, 2, 1, rollout.DEFAULT_SCHEDULE, rollout.Guards(), "2026-12-01T10:00:00+00:00",
        "alice (approver)", "canary", "pending_approval",
    )  # fmt: skip
    reg.start_rollout(state, event, "pending_approval")
    return reg, state


def test_a_running_canary_shows_its_step_share_and_the_versions_still_waiting() -> None:
    reg, _ = registry_with_a_canary()
    out = io.StringIO()
    print_models(reg, out)
    text = out.getvalue()
    assert "iris" in text and "champion v1" in text
    assert "waiting for approval: v3" in text  # v2 rolls out: it no longer waits
    assert (
        f"rollout {MODEL}/r1 of v2: active, step 1 of 2, 10% of the traffic since 2026-12-01T10:00:00" in text
    )


def test_an_aborted_rollout_shows_how_it_ended_and_its_guards() -> None:
    reg, state = registry_with_a_canary()
    figures = {"guards": {"error_rate": {"status": "breach"}, "disagreement": {"status": "ok"}}}
    new, event = state.abort(
        "2026-12-01T10:05:00+00:00", rollout.EVALUATOR, "error_rate breached", "error_rate", figures
    )
    reg.abort_rollout(new, event)
    out = io.StringIO()
    print_models(reg, out)
    text = out.getvalue()
    assert "aborted at 2026-12-01T10:05:00: error_rate breached" in text
    assert "last guards: error_rate breach, disagreement ok" in text
    assert "waiting for approval: v2, v3" in text  # back to waiting for a person
