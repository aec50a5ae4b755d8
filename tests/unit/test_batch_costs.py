"""What a batch job costs (``chalicelib.batch.costs``): every worker-second of every attempt, for
every job state, priced as shown; and dollar figures that never read ``$0.000000``.

The property generates attempt histories as they happen (each attempt's true start and end, and
the records a worker writes: its start, a record at least every heartbeat, a last one when it ends
by itself, none after a kill) and checks the job's cost against the truth."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.batch import costs
from chalicelib.batch.jobs import FAILED, FINAL, HEARTBEAT_S, PARTIAL, PLANNING, RUNNING, SUBMITTED, SUCCEEDED

STATES = (SUBMITTED, PLANNING, RUNNING, SUCCEEDED, PARTIAL, FAILED)
NOW = 1_800_000_000.0
MS = 0.0005  # the job's worker-seconds are shown (and priced) to the millisecond


@st.composite
def attempt(draw: Any) -> dict[str, Any]:
    """One attempt as it happened (``truth``: the seconds it ran by NOW, ``killed``) and its record."""
    started = NOW - draw(st.floats(0.0, 20_000.0))
    ending = draw(st.sampled_from(("exited", "released", "killed", "running")))
    if ending == "running":
        ended = NOW
        seen = max(started, NOW - draw(st.floats(0.0, HEARTBEAT_S)))
        state = draw(st.sampled_from(("starting", "waiting", "scoring")))
    else:
        ended = draw(st.floats(started, NOW))
        if ending == "killed":  # its last record came at most one heartbeat before the kill
            seen = max(started, ended - draw(st.floats(0.0, HEARTBEAT_S)))
            state = draw(st.sampled_from(("starting", "waiting", "scoring")))
        else:  # its last act: the record that closes it
            seen, state = ended, ending
    return {
        "record": {
            "worker": f"w{draw(st.integers(0, 10**6))}",
            "state": state,
            "started": started,
            "seen": seen,
        },
        "truth": ended - started,
        "killed": ending == "killed",
    }


histories = st.lists(attempt(), max_size=8)


@given(st.sampled_from(STATES), histories)
def test_a_job_s_cost_is_its_worker_seconds_times_the_price_in_every_state(status, history):
    view = costs.job_cost({"status": status}, [a["record"] for a in history], NOW)
    cost, price = view["cost"], costs.rates()
    assert cost["worker_seconds"] == view["worker_seconds"]
    assert cost["vcpu_hours"] == pytest.approx(view["worker_seconds"] / 3600.0, rel=1e-5)
    assert cost["spot_usd"] == pytest.approx(view["worker_seconds"] / 3600.0 * price["spot"], rel=1e-5)
    assert cost["on_demand_usd"] == pytest.approx(
        view["worker_seconds"] / 3600.0 * price["on_demand"], rel=1e-5
    )
    assert view["attempts"] == len(history)


@given(st.sampled_from(STATES), histories)
def test_a_job_s_cost_covers_every_second_its_attempts_ran_killed_ones_included(status, history):
    view = costs.job_cost({"status": status}, [a["record"] for a in history], NOW)
    ran = math.fsum(a["truth"] for a in history)
    killed = sum(a["killed"] for a in history)
    assert view["worker_seconds"] >= ran - MS
    # Only a killed attempt is charged beyond what it ran: until it went silent, at most SILENCE_S.
    assert view["worker_seconds"] <= ran + killed * costs.SILENCE_S + MS


@given(st.sampled_from(STATES), histories, st.floats(0.0, 100.0))
def test_a_job_s_cost_never_shrinks_as_time_passes(status, history, later):
    records = [a["record"] for a in history]
    before = costs.job_cost({"status": status}, records, NOW)
    after = costs.job_cost({"status": status}, records, NOW + later)
    assert after["worker_seconds"] >= before["worker_seconds"]


@given(st.sampled_from(STATES), histories)
def test_a_cost_is_complete_only_when_the_job_ended_and_no_attempt_runs(status, history):
    view = costs.job_cost({"status": status}, [a["record"] for a in history], NOW)
    running = any(not a["killed"] and a["record"]["state"] not in ("exited", "released") for a in history)
    if status not in FINAL or running:
        assert view["cost"]["complete"] is False
    if status in FINAL and all(a["record"]["state"] in ("exited", "released") for a in history):
        assert view["cost"]["complete"] is True


def test_attempts_that_start_after_the_job_ended_still_cost():
    late = {"worker": "1-a2-99", "state": "exited", "started": NOW - 3.0, "seen": NOW - 1.0}
    view = costs.job_cost({"status": SUCCEEDED}, [late], NOW)
    assert view["worker_seconds"] == 2.0 and view["cost"]["complete"] is True


def test_a_job_without_attempts_costs_nothing_and_says_so():
    view = costs.job_cost({"status": FAILED}, [], NOW)
    assert view["worker_seconds"] == 0 and view["cost"]["spot_usd"] == 0 and view["cost"]["spot"] == "$0"


def test_cost_estimate_prices_worker_seconds_at_spot_and_on_demand():
    cost = costs.estimate(3600)
    assert cost["vcpu_hours"] == 1.0
    assert cost["on_demand_usd"] == pytest.approx(0.048) and cost["spot_usd"] == pytest.approx(0.0175)
    assert cost["saving_percent"] == pytest.approx(63.5, abs=0.1)
    custom = costs.estimate(
        7200, environ={"BATCH_PRICE_SPOT_VCPU_HOUR": "0.01", "BATCH_PRICE_ON_DEMAND_VCPU_HOUR": "0.04"}
    )
    assert custom["spot_usd"] == pytest.approx(0.02) and custom["saving_percent"] == 75.0


def test_a_few_worker_seconds_are_priced_not_rounded_to_zero():
    """Failure 7 of issue 14: 4.6 worker-seconds were shown as "$0.000000"."""
    cost = costs.estimate(4.6)
    assert cost["spot_usd"] == pytest.approx(4.6 / 3600 * 0.0175, rel=1e-5) and cost["spot_usd"] > 0
    assert cost["spot"] == "$0.0000224" and cost["on_demand"] == "$0.0000613"


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0.0, "$0"),
        (0.0000004, "< $0.000001"),
        (0.000001, "$0.00000100"),
        (0.0000223611, "$0.0000224"),
        (0.0175, "$0.0175"),
        (0.5, "$0.500"),
        (0.99951, "$1.00"),
        (1.0, "$1.00"),
        (1234.567, "$1,234.57"),
    ],
)
def test_dollars_read_with_three_significant_digits_or_cents(amount, text):
    assert costs.usd(amount) == text


@given(st.floats(min_value=costs.SMALLEST_USD, max_value=1e6))
def test_a_cost_of_a_micro_dollar_or_more_is_shown_within_half_a_percent(amount):
    text = costs.usd(amount)
    assert re.fullmatch(r"\$[0-9,]+(\.[0-9]+)?", text), text
    shown = float(text[1:].replace(",", ""))
    assert shown > 0 and shown == pytest.approx(amount, rel=0.005, abs=0.005)


def test_mlops_batch_shows_a_tiny_cost_in_dollars_it_can_read():
    from mlops.batch import final_record

    job = {"job_id": "bj-1", "status": "PARTIAL", "worker_seconds": 4.6, "attempts": 2,
           "cost": {**costs.estimate(4.6), "complete": False}}  # fmt: skip
    text = final_record(job)
    assert "$0.000000" not in text
    assert "spot $0.0000224, on-demand $0.0000613" in text and "so far" in text and "over 2 attempts" in text
