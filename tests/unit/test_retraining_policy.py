"""Retraining's pure rules: when a trigger launches, coalesces or skips a run, and the data hash that
identifies a run's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.training.messages import trigger_from_message
from chalicelib.training.policy import DatasetState, Trigger, decide
from chalicelib.training.settings import RetrainSettings
from chalicelib.training.snapshot import build_manifest, contributing_uploads, data_hash

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


def test_a_data_trigger_counts_new_rows_and_says_how_many_repeat_earlier_uploads():
    message = {"event": "data.validated", "dataset": "d", "upload_id": "u2", "rows": 400, "new_rows": 0,
               "repeated_rows": 400, "drift": "stable"}  # fmt: skip
    trigger = trigger_from_message(message)
    assert (trigger.rows, trigger.repeated_rows) == (0, 400)
    decision = decide(trigger, DatasetState(rows_since_training=0), POLICY, NOW)
    assert decision.action == "skip"
    assert decision.reasons[1] == "upload u2: 0 new row(s); 400 repeat earlier uploads (not counted)"
    # An announcement from before rows were compared across uploads counts all its rows.
    older = trigger_from_message({k: v for k, v in message.items() if k not in ("new_rows", "repeated_rows")})
    assert (older.rows, older.repeated_rows) == (400, 0)


def test_the_manifest_lists_uploads_oldest_first_and_can_leave_some_out():
    objects = [
        {"key": "validated/d/b.csv", "upload_id": "b", "uploaded_at": "20261130T120000.000000Z", "size": 2},
        {"key": "validated/d/a.csv", "upload_id": "a", "uploaded_at": "20261130T130000.000000Z", "size": 1},
        {"key": "validated/d/c.csv", "upload_id": "c", "uploaded_at": "20261130T120000.000000Z", "size": 3},
    ]
    manifest = build_manifest("d", objects)
    assert manifest is not None and contributing_uploads(manifest) == ["b", "c", "a"]  # time, then upload id
    assert manifest["bytes"] == 6 and "later object" in manifest["order"]
    without = build_manifest("d", objects, exclude_uploads={"c"})
    assert without is not None and contributing_uploads(without) == ["b", "a"] and without["bytes"] == 3
    assert without["data_hash"] != manifest["data_hash"]
    assert build_manifest("d", objects, exclude_uploads={"a", "b", "c"}) is None
    # Which upload is newer decides which copy of a row wins: the order is part of the data's identity.
    swapped = [
        {**o, "uploaded_at": "20261130T110000.000000Z"} if o["upload_id"] == "a" else o for o in objects
    ]
    assert data_hash("d", swapped) != data_hash("d", objects)


def test_a_monitoring_breach_launches_with_any_new_row_and_says_why() -> None:
    breach = Trigger("monitor", "d", reason="drift in 2 windows in a row")
    decision = decide(breach, DatasetState(rows_since_training=1), POLICY, NOW)
    assert decision.action == "launch"
    assert decision.reasons == ["monitoring: drift in 2 windows in a row"]


def test_a_monitoring_breach_without_new_rows_is_skipped_asking_for_labelled_data() -> None:
    decision = decide(Trigger("monitor", "d", reason="accuracy"), DatasetState(), POLICY, NOW)
    assert decision.action == "skip"
    assert any("upload labelled data" in reason for reason in decision.reasons)


def test_a_monitoring_breach_waits_out_the_cooldown_and_a_run_in_flight() -> None:
    breach = Trigger("monitor", "d", reason="quality")
    cooling = DatasetState(rows_since_training=500, last_run_started_at=NOW - timedelta(minutes=10))
    assert decide(breach, cooling, POLICY, NOW).action == "skip"
    running = DatasetState(rows_since_training=500, run_in_flight="run-7")
    assert decide(breach, running, POLICY, NOW).action == "coalesce"


def test_the_monitor_message_becomes_a_monitor_trigger() -> None:
    from chalicelib.training.messages import monitor_breach_message

    message = monitor_breach_message("d", ["drift"], "drift in 2 windows", "20261201T1000Z")
    trigger = trigger_from_message(message)
    assert (trigger.kind, trigger.dataset, trigger.reason) == ("monitor", "d", "drift in 2 windows")
