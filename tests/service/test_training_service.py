"""The kickoff service on in-memory adapters: a trigger becomes a skip, a coalesce, or exactly one
run with its data pinned by a manifest. No moto: each test takes milliseconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory.contracts import MemoryContractStore
from chalicelib.adapters.memory.runs import MemoryRunsStore
from chalicelib.adapters.memory.snapshots import MemorySnapshotStore
from chalicelib.adapters.memory.training_launcher import RecordingLauncher
from chalicelib.training.handler import handle_retrain_batch
from chalicelib.training.messages import run_finished_message, trigger_from_message
from chalicelib.training.policy import DatasetState, Trigger
from chalicelib.training.service import TrainingPorts, check_schedule, handle_trigger
from chalicelib.validation.contract import Contract

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DATASET = "breast_cancer"
RETRAIN = {"min_new_rows": 100, "cooldown_minutes": 0, "max_champion_age_days": 30}


def contract(dataset: str = DATASET, training: dict[str, Any] | None = None) -> Contract:
    return Contract.parse(
        {
            "dataset": dataset,
            "version": 3,
            "columns": [
                {"name": "x", "type": "float", "classification": "confidential"},
                {"name": "y", "type": "integer", "classification": "internal", "allowed": [0, 1]},
            ],
            "target": "y",
            "task": "classification",
            "training": training if training is not None else {"retrain": RETRAIN},
        }
    )


class World:
    """The kickoff's ports in memory, a clock the test moves, and the validation stage's part:
    validated objects and the retrain-queue message announcing each."""

    def __init__(self, *contracts: Contract, runs: MemoryRunsStore | None = None) -> None:
        self.now = NOW
        self.runs = runs or MemoryRunsStore()
        self.snapshots = MemorySnapshotStore()
        self.launcher = RecordingLauncher()
        self.contracts = MemoryContractStore()
        for each in contracts or (contract(),):
            self.contracts.put(each)
        self.ports = TrainingPorts(self.runs, self.contracts, self.snapshots, self.launcher, lambda: self.now)

    def validated(
        self, upload_id: str, rows: int, drift: bool = False, dataset: str = DATASET
    ) -> dict[str, Any]:
        self.snapshots.put_validated(f"validated/{dataset}/{upload_id}.csv", b"x,y\n" * rows, upload_id)
        return {
            "event": "data.validated",
            "dataset": dataset,
            "upload_id": upload_id,
            "rows": rows,
            "drift": "drifted" if drift else "none",
        }

    def kickoff(self, message: dict[str, Any]) -> dict[str, Any]:
        return handle_trigger(self.ports, trigger_from_message(message))

    def request(self, reason: str = "relabelled data") -> dict[str, Any]:
        return handle_trigger(self.ports, Trigger(kind="request", dataset=DATASET, reason=reason))


@pytest.fixture
def world() -> World:
    return World()


def test_enough_valid_rows_launch_exactly_one_run_with_a_data_manifest(world):
    assert world.kickoff(world.validated("a", 60))["action"] == "skip"
    assert world.launcher.launched == []  # 60 rows < 100
    message = world.validated("b", 60)
    outcomes = [world.kickoff(message) for _ in range(3)]  # duplicates counted once, and only one run
    assert [o["action"] for o in outcomes] == ["launch", "skip", "skip"]
    assert "already counted" in outcomes[1]["reasons"][0]
    ((run_id, dataset),) = world.launcher.launched
    assert dataset == DATASET and outcomes[0]["run_id"] == run_id
    run = world.runs.get_run(run_id)
    assert run is not None
    assert run["status"] == "submitted" and run["data_objects"] == 2
    assert "120 new valid rows" in run["reasons"][0]
    assert run["job"] == {"backend": "memory", "job_id": "job-1"}
    manifest = world.snapshots.get_manifest(run["data_manifest_key"])
    assert manifest is not None and manifest["data_hash"] == run["data_hash"]
    assert all(o["sha256"] and o["version_id"] for o in manifest["objects"])
    state = world.runs.state(DATASET, NOW)
    assert state.run_in_flight == run_id and state.rows_since_training == 0


def test_a_run_record_says_why_on_what_data_and_contract_it_runs(world):
    world.kickoff(world.validated("a", 150))
    ((run_id, _),) = world.launcher.launched
    run = world.runs.get_run(run_id)
    assert run is not None
    assert run_id.startswith(f"{DATASET}-20261123T120000Z-") and run_id.endswith(run["data_hash"][:8])
    assert run["trigger"] == {"kind": "data", "reason": "upload a validated", "upload_id": "a"}
    assert run["contract_version"] == 3 and run["created_at"] == "2026-11-23T12:00:00+00:00"
    assert run["data_bytes"] == len(b"x,y\n" * 150) and run["attempts"] == 0
    assert run["data_manifest_key"] == f"manifests/{DATASET}/{run['data_hash']}.json"


def test_triggers_during_a_run_are_coalesced_not_lost(world):
    world.kickoff(world.validated("a", 150))
    outcome = world.kickoff(world.validated("b", 150))
    ((run_id, _),) = world.launcher.launched
    assert outcome["action"] == "coalesce" and outcome["run_id"] == run_id
    coalesced = world.runs.coalesced(DATASET)
    assert len(coalesced) == 1 and coalesced[0]["during_run"] == run_id
    assert world.runs.state(DATASET, NOW).rows_since_training == 150


def test_a_finished_run_with_triggers_waiting_launches_the_next_run_on_the_newer_data(world):
    world.kickoff(world.validated("a", 150))
    world.kickoff(world.validated("b", 150))
    ((first, _),) = world.launcher.launched
    waiting = world.runs.release(DATASET, first, succeeded=True, now=NOW)
    outcome = world.kickoff(run_finished_message(DATASET, first, len(waiting)))
    assert outcome["action"] == "launch" and outcome["run_id"] != first
    second = world.runs.get_run(outcome["run_id"])
    assert second is not None and second["data_objects"] == 2 and "150 new valid rows" in second["reasons"][0]


def test_a_request_launches_now_and_a_second_one_waits_for_that_run(world):
    world.kickoff(world.validated("a", 60))
    first = world.request("relabelled data (asked by ops (admin))")
    assert first["action"] == "launch" and first["run_id"] == world.launcher.launched[0][0]
    again = world.request("again")
    assert again["action"] == "coalesce" and again["run_id"] == first["run_id"]
    run = world.runs.get_run(first["run_id"])
    assert run is not None and run["reasons"] == ["requested: relabelled data (asked by ops (admin))"]


def test_a_request_without_validated_data_is_skipped_saying_so(world):
    outcome = world.request()
    assert outcome == {"action": "skip", "reasons": [f"no validated data for {DATASET!r} yet"]}
    assert world.launcher.launched == [] and world.runs.state(DATASET, NOW).run_in_flight is None


def test_a_dataset_without_a_contract_is_skipped_naming_it(world):
    outcome = handle_trigger(world.ports, Trigger(kind="request", dataset="unknown", reason="now"))
    assert outcome["action"] == "skip" and "cannot train 'unknown'" in outcome["reasons"][0]


def test_a_contract_with_a_bad_training_section_is_skipped_naming_the_field():
    world = World(contract(training={"retrain": {"every": "day"}}))
    outcome = world.kickoff(world.validated("a", 500))
    assert outcome["action"] == "skip" and "training.retrain.every" in outcome["reasons"][0]
    assert world.launcher.launched == []


def test_a_job_that_cannot_start_fails_its_run_frees_the_lock_and_raises(world):
    world.launcher.fail_with = RuntimeError("job queue disabled")
    with pytest.raises(RuntimeError, match="job queue disabled"):
        world.kickoff(world.validated("a", 150))
    (run,) = world.runs.list_runs(DATASET)
    assert run["status"] == "failed" and run["error"] == "could not start the job: job queue disabled"
    assert run["finished_at"] == "2026-11-23T12:00:00+00:00"
    assert world.runs.state(DATASET, NOW).run_in_flight is None
    assert world.runs.state(DATASET, NOW).last_trained_at is None


class RacedRuns(MemoryRunsStore):
    """Another kickoff takes the lock between this one's read of the state and its try_lock."""

    def try_lock(self, dataset: str, run_id: str, now: datetime, seen: DatasetState | None = None) -> bool:
        super().try_lock(dataset, "rival-run", now)
        return super().try_lock(dataset, run_id, now, seen)


def test_a_trigger_that_loses_the_race_for_the_lock_waits_for_the_winner():
    world = World(runs=RacedRuns())
    outcome = world.kickoff(world.validated("a", 150))
    assert outcome == {
        "action": "coalesce",
        "reasons": ["run rival-run started first"],
        "run_id": "rival-run",
    }
    assert world.launcher.launched == [] and world.runs.list_runs() == []
    (waiting,) = world.runs.coalesced(DATASET)
    assert waiting["during_run"] == "rival-run" and waiting["upload_id"] == "a"


class LateUpload(MemoryRunsStore):
    """Another upload is published and counted after this kickoff read the state and took its
    snapshot, but before its try_lock: the worst moment for it to arrive."""

    def __init__(self, world_ref: list[World], late: tuple[str, int, bool]) -> None:
        super().__init__()
        self.world_ref = world_ref
        self.late: tuple[str, int, bool] | None = late

    def try_lock(self, dataset: str, run_id: str, now: datetime, seen: DatasetState | None = None) -> bool:
        if self.late:
            upload_id, rows, drift = self.late
            self.late = None  # once
            (world,) = self.world_ref
            self.count_upload(trigger_from_message(world.validated(upload_id, rows, drift=drift)))
        return super().try_lock(dataset, run_id, now, seen)


def test_rows_counted_between_a_kickoffs_read_and_its_lock_are_in_the_run_or_still_counted():
    worlds: list[World] = []
    world = World(runs=LateUpload(worlds, ("late", 40, True)))
    worlds.append(world)
    outcome = world.kickoff(world.validated("a", 150))
    assert outcome["action"] == "launch"
    run = world.runs.get_run(outcome["run_id"])
    assert run is not None
    manifest = world.snapshots.get_manifest(run["data_manifest_key"])
    assert manifest is not None
    in_run = {o["upload_id"] for o in manifest["objects"]}
    state = world.runs.state(DATASET, NOW)
    # The late upload is either trained on by this run (and its drift named), or still counted.
    if "late" in in_run:
        assert any("drifted" in r for r in run["reasons"]), run["reasons"]
    else:
        assert state.rows_since_training == 40 and state.drift_pending
    assert world.launcher.launched == [(outcome["run_id"], DATASET)]


def test_the_schedule_retrains_only_datasets_whose_model_is_old_and_has_new_rows():
    world = World(contract("old"), contract("young"), contract("untrained"))
    for dataset, trained in (("old", NOW - timedelta(days=31)), ("young", NOW - timedelta(days=3))):
        world.runs.try_lock(dataset, f"{dataset}-run-0", trained)
        world.runs.release(dataset, f"{dataset}-run-0", succeeded=True, now=trained)
    for dataset in ("old", "young", "untrained"):  # counted, as if announced before the model aged
        world.runs.count_upload(trigger_from_message(world.validated(f"{dataset}-u", 5, dataset=dataset)))
    outcomes = check_schedule(world.ports)
    assert {d: o["action"] for d, o in outcomes.items()} == {
        "old": "launch",
        "young": "skip",
        "untrained": "skip",
    }
    assert "older than max_champion_age_days 30" in outcomes["old"]["reasons"][0]
    assert [d for _, d in world.launcher.launched] == ["old"]


def test_a_queue_batch_fails_only_the_message_that_cannot_be_read(world):
    good = world.validated("a", 150)
    event = {
        "Records": [
            {"messageId": "m-good", "body": json.dumps(good), "eventSource": "aws:sqs"},
            {"messageId": "m-bad", "body": "not json", "eventSource": "aws:sqs"},
            {
                "messageId": "m-odd",
                "body": json.dumps({"event": "odd", "dataset": DATASET}),
                "eventSource": "aws:sqs",
            },
        ]
    }
    assert handle_retrain_batch(world.ports, event, None) == {
        "batchItemFailures": [{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-odd"}]
    }
    assert len(world.launcher.launched) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"event": "data.validated"}, "no 'dataset'"),
        ({"event": "odd", "dataset": "d"}, "unknown retrain message"),
    ],
)
def test_a_retrain_message_that_is_not_understood_is_refused_saying_why(body, problem):
    with pytest.raises(ValueError, match=problem):
        trigger_from_message(body)


@pytest.mark.parametrize("verdict", ["insufficient_data", "stable", "reference"])
def test_an_upload_whose_drift_is_not_drifted_counts_its_rows_but_is_no_drift_trigger(world, verdict):
    message = {**world.validated("small", 60), "drift": verdict}
    outcome = world.kickoff(message)
    assert outcome["action"] == "skip" and "no drift" in outcome["reasons"][0]
    state = world.runs.state(DATASET, NOW)
    assert state.rows_since_training == 60 and not state.drift_pending
    assert world.kickoff({**world.validated("drifted", 10), "drift": "drifted"})["action"] == "launch"
