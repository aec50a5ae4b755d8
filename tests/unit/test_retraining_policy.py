"""Retraining's pure rules: when a trigger launches, coalesces or skips a run, and the data hash that
identifies a run's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.training.policy import DatasetState, Trigger, decide
from chalicelib.training.settings import RetrainSettings
from chalicelib.training.snapshot import data_hash

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


POLICY = RetrainSettings(min_new_rows=100, max_champion_age_days=30, on_drift=True, cooldown_minutes=30)


def data(rows=0, drift=False):
    return Trigger(kind="data", dataset="d", rows=rows, drift=drift, upload_id="u")


@pytest.mark.parametrize(("rows", "action"), [(99, "skip"), (100, "launch"), (250, "launch")])
def test_new_rows_launch_at_min_new_rows(rows, action):
    assert decide(data(), DatasetState(rows_since_training=rows), POLICY, NOW).action == action


def test_a_run_in_flight_coalesces_every_trigger():
    state = DatasetState(rows_since_training=500, run_in_flight="run-1")
    for trigger in (data(), Trigger("request", "d", reason="now"), Trigger("schedule", "d")):
        decision = decide(trigger, state, POLICY, NOW)
        assert decision.action == "coalesce" and "run-1" in decision.reasons[0]


def test_cooldown_skips_data_triggers_but_not_requests():
    state = DatasetState(rows_since_training=500, last_run_started_at=NOW - timedelta(minutes=10))
    assert decide(data(), state, POLICY, NOW).action == "skip"
    assert "cooldown" in decide(data(), state, POLICY, NOW).reasons[0]
    assert decide(Trigger("request", "d", reason="new labels"), state, POLICY, NOW).action == "launch"
    later = DatasetState(rows_since_training=500, last_run_started_at=NOW - timedelta(minutes=31))
    assert decide(data(), later, POLICY, NOW).action == "launch"


def test_drift_launches_with_few_rows_only_when_on_drift():
    state = DatasetState(rows_since_training=10)
    assert decide(data(drift=True), state, POLICY, NOW).action == "launch"
    off = RetrainSettings(min_new_rows=100, on_drift=False)
    assert decide(data(drift=True), state, off, NOW).action == "skip"


def test_old_model_retrains_on_schedule_only_with_new_data():
    old = NOW - timedelta(days=31)
    assert (
        decide(
            Trigger("schedule", "d"), DatasetState(rows_since_training=5, last_trained_at=old), POLICY, NOW
        ).action
        == "launch"
    )
    assert (
        decide(
            Trigger("schedule", "d"), DatasetState(rows_since_training=0, last_trained_at=old), POLICY, NOW
        ).action
        == "skip"
    )
    young = NOW - timedelta(days=3)
    assert (
        decide(
            Trigger("schedule", "d"), DatasetState(rows_since_training=5, last_trained_at=young), POLICY, NOW
        ).action
        == "skip"
    )


def test_data_hash_identifies_the_data_not_the_listing_order():
    objects = [{"key": f"validated/d/{i}.csv", "sha256": str(i), "size": i} for i in range(5)]
    assert data_hash("d", objects) == data_hash("d", list(reversed(objects)))
    changed = [*objects[:-1], {**objects[-1], "sha256": "other"}]
    assert data_hash("d", objects) != data_hash("d", changed)
    assert data_hash("d", objects) != data_hash("e", objects)
