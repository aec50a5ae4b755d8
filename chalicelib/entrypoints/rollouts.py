"""Rollouts: the evaluator (``advance_rollouts``, every five minutes) that judges each running rollout
on its captured traffic and steps, completes or aborts it (``chalicelib.rollout.service``). Starting,
pausing, resuming and aborting one by hand are the registry's routes."""

from __future__ import annotations

from typing import Any

from chalice import Rate
from chalice.app import CloudWatchEvent

from chalicelib import bootstrap
from chalicelib.entrypoints.blueprint import Area

bp = Area(__name__)


@bp.schedule(Rate(5, unit=Rate.MINUTES), name="advance_rollouts")
def advance_rollouts(event: CloudWatchEvent) -> dict[str, Any]:
    """Every five minutes: judge every running rollout; count the aborts (``RolloutAborts``, alarmed)."""
    from chalicelib.observability import emit_dimensioned, logger
    from chalicelib.rollout.service import RolloutsFailed
    from chalicelib.rollout.service import advance_rollouts as judge_all
    from chalicelib.timeutil import utc_now

    def count_aborts(done: dict[str, Any]) -> None:
        aborts = sum(1 for result in done.values() if result.get("action") == "abort")
        emit_dimensioned({"stage": bootstrap.settings().stage}, [("RolloutAborts", "Count", float(aborts))])
        for model, result in done.items():
            logger.info("rollout judged", extra={"model": model, **result})

    try:
        done = judge_all(bootstrap.rollout_ports(), utc_now())
    except RolloutsFailed as failed:
        count_aborts(failed.done)  # the aborts of the rollouts that were judged still count
        raise
    count_aborts(done)
    return done
