"""The runs store port, one suite for both adapters: in memory and DynamoDB (in-process moto).

What the kickoff and the training job rely on: an upload counted once, the single-flight lock
(one winner among concurrent callers, expiry, release only by its holder), coalesced triggers kept
in order, runs created once and updated only if they exist, and numbers read back as JSON numbers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.adapters.memory.runs import MemoryRunsStore
from chalicelib.errors import Conflict, NotFound
from chalicelib.training.exceptions import NoRun, RunExists
from chalicelib.training.policy import DatasetState, Trigger
from chalicelib.training.ports import RunsStore
from chalicelib.training.runs import LOCK_SECONDS

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "moto"])
def runs(request: pytest.FixtureRequest) -> Iterator[RunsStore]:
    if request.param == "memory":
        yield MemoryRunsStore()
    else:
        # One stack per module; every test works on its own dataset and run ids.
        yield DynamoRunsStore(request.getfixturevalue("aws_module").runs_table)


@pytest.fixture
def dataset() -> str:
    return f"d-{uuid.uuid4().hex[:8]}"


def _upload(dataset: str, upload_id: str, rows: int, drift: bool = False) -> Trigger:
    return Trigger(kind="data", dataset=dataset, upload_id=upload_id, rows=rows, drift=drift, reason="r")


def _run(dataset: str, created_at: str = "2026-11-23T12:00:00+00:00", **fields: object) -> dict[str, object]:
    return {
        "run_id": f"{dataset}-{uuid.uuid4().hex[:8]}",
        "dataset": dataset,
        "status": "queued",
        "created_at": created_at,
        **fields,
    }


# --- dataset state ---------------------------------------------------------------------------------


def test_a_dataset_never_seen_has_the_empty_state(runs, dataset):
    assert runs.state(dataset, NOW) == DatasetState()
    assert runs.coalesced(dataset) == []


def test_an_upload_is_counted_once_however_often_it_is_announced(runs, dataset):
    assert runs.count_upload(_upload(dataset, "u1", 60))
    assert not runs.count_upload(_upload(dataset, "u1", 60))
    assert runs.count_upload(_upload(dataset, "u2", 40))
    state = runs.state(dataset, NOW)
    assert state.rows_since_training == 100 and not state.drift_pending


def test_a_drifted_upload_marks_drift_pending(runs, dataset):
    runs.count_upload(_upload(dataset, "u1", 5, drift=True))
    runs.count_upload(_upload(dataset, "u2", 5))
    assert runs.state(dataset, NOW).drift_pending


def test_concurrent_announcements_of_one_upload_count_it_once(runs, dataset, atomic_writes):
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def announce(_: int) -> None:
        barrier.wait()
        results.append(runs.count_upload(_upload(dataset, "same", 10)))

    _all(announce, 6)
    assert sorted(results) == [False] * 5 + [True]
    assert runs.state(dataset, NOW).rows_since_training == 10


# --- the lock --------------------------------------------------------------------------------------


def test_taking_the_lock_starts_a_run_and_resets_the_counts(runs, dataset):
    runs.count_upload(_upload(dataset, "u1", 150, drift=True))
    runs.coalesce(dataset, Trigger(kind="schedule", dataset=dataset), None)
    assert runs.try_lock(dataset, "run-1", NOW)
    assert runs.state(dataset, NOW) == DatasetState(last_run_started_at=NOW, run_in_flight="run-1")
    assert runs.coalesced(dataset) == []


def test_the_lock_is_refused_when_the_counts_changed_since_the_decision_read_them(runs, dataset):
    runs.count_upload(_upload(dataset, "u1", 150))
    seen = runs.state(dataset, NOW)
    runs.count_upload(_upload(dataset, "u2", 20, drift=True))  # counted after the read
    assert not runs.try_lock(dataset, "run-1", NOW, seen)
    assert runs.state(dataset, NOW) == DatasetState(rows_since_training=170, drift_pending=True)
    assert runs.try_lock(dataset, "run-1", NOW, runs.state(dataset, NOW))
    assert runs.state(dataset, NOW).run_in_flight == "run-1"


def test_a_lock_taken_on_an_unchanged_read_of_a_new_dataset_holds(runs, dataset):
    assert runs.try_lock(dataset, "run-1", NOW, runs.state(dataset, NOW))
    assert runs.state(dataset, NOW).run_in_flight == "run-1"


def test_a_held_lock_refuses_another_run(runs, dataset):
    assert runs.try_lock(dataset, "run-1", NOW)
    assert not runs.try_lock(dataset, "run-2", NOW + timedelta(seconds=LOCK_SECONDS - 1))
    assert runs.state(dataset, NOW).run_in_flight == "run-1"


def test_single_flight_lock_under_concurrent_triggers(runs, dataset, atomic_writes):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        barrier.wait()
        results.append(runs.try_lock(dataset, f"run-{i}", NOW))

    _all(contend, 8)
    assert sorted(results) == [False] * 7 + [True]
    holder = runs.state(dataset, NOW).run_in_flight
    assert holder is not None and holder.startswith("run-")


def test_expired_lock_can_be_taken_and_release_only_by_its_holder(runs, dataset):
    assert runs.try_lock(dataset, "old", NOW - timedelta(hours=5))
    assert runs.state(dataset, NOW).run_in_flight is None  # expired
    assert runs.try_lock(dataset, "new", NOW)
    runs.release(dataset, "old", succeeded=True, now=NOW)  # not the holder: no effect
    assert runs.state(dataset, NOW).run_in_flight == "new"
    assert runs.state(dataset, NOW).last_trained_at is None
    runs.release(dataset, "new", succeeded=True, now=NOW)
    assert runs.state(dataset, NOW).run_in_flight is None and runs.state(dataset, NOW).last_trained_at == NOW


def test_a_failed_run_frees_the_lock_without_counting_as_trained(runs, dataset):
    runs.try_lock(dataset, "run-1", NOW)
    runs.release(dataset, "run-1", succeeded=False, now=NOW)
    state = runs.state(dataset, NOW)
    assert state.run_in_flight is None and state.last_trained_at is None
    assert runs.try_lock(dataset, "run-2", NOW)


def test_triggers_coalesced_during_a_run_are_kept_in_order_and_returned_on_release(runs, dataset):
    runs.try_lock(dataset, "run-1", NOW)
    runs.coalesce(dataset, _upload(dataset, "u7", 10), "run-1")
    runs.coalesce(dataset, Trigger(kind="request", dataset=dataset, reason="asked"), "run-1")
    coalesced = runs.release(dataset, "run-1", succeeded=True, now=NOW)
    assert [(c["kind"], c["reason"], c["upload_id"], c["during_run"]) for c in coalesced] == [
        ("data", "r", "u7", "run-1"),
        ("request", "asked", None, "run-1"),
    ]
    assert all(isinstance(c["at"], str) for c in coalesced)
    assert runs.coalesced(dataset) == coalesced  # kept until the next run takes the lock


# --- runs ------------------------------------------------------------------------------------------


def test_a_run_reads_back_as_written_without_its_empty_fields(runs, dataset):
    run = _run(dataset, reasons=["a", "b"], trigger={"kind": "data", "upload_id": None}, note=None)
    runs.create_run(run)
    expected = {k: v for k, v in run.items() if k != "note"}
    assert runs.get_run(str(run["run_id"])) == expected


def test_numbers_read_back_as_json_numbers_and_non_finite_ones_as_null(runs, dataset):
    run = _run(dataset, attempts=0)
    runs.create_run(run)
    run_id = str(run["run_id"])
    runs.update_run(
        run_id, primary_value=0.9375, seconds=12.0, metrics={"rmse": float("nan")}, figures=(1, 2.5)
    )
    got = runs.get_run(run_id)
    assert got is not None
    assert got["primary_value"] == 0.9375 and isinstance(got["primary_value"], float)
    assert got["seconds"] == 12 and isinstance(got["seconds"], int)
    assert got["metrics"] == {"rmse": None} and got["figures"] == [1, 2.5] and got["attempts"] == 0


def test_a_run_id_is_recorded_once(runs, dataset):
    run = _run(dataset)
    runs.create_run(run)
    with pytest.raises(RunExists) as error:
        runs.create_run({**run, "status": "other"})
    assert isinstance(error.value, Conflict)
    assert runs.get_run(str(run["run_id"])) == run


def test_updates_set_fields_and_only_of_a_recorded_run(runs, dataset):
    run = _run(dataset)
    runs.create_run(run)
    runs.update_run(str(run["run_id"]), status="submitted", job={"backend": "memory", "job_id": "j1"})
    runs.update_run(str(run["run_id"]), error=None)
    assert runs.get_run(str(run["run_id"])) == {
        **run,
        "status": "submitted",
        "job": {"backend": "memory", "job_id": "j1"},
        "error": None,
    }
    with pytest.raises(NoRun) as error:
        runs.update_run("no-such-run", status="failed")
    assert isinstance(error.value, NotFound)
    assert runs.get_run("no-such-run") is None


def test_attempts_count_up_and_only_for_a_recorded_run(runs, dataset):
    run = _run(dataset, attempts=0)
    runs.create_run(run)
    assert [runs.add_attempt(str(run["run_id"])) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NoRun):
        runs.add_attempt("no-such-run")


def test_runs_are_listed_per_dataset_oldest_first(runs, dataset):
    other = f"{dataset}-other"
    late = _run(dataset, created_at="2026-11-23T12:00:02+00:00")
    early = _run(dataset, created_at="2026-11-23T12:00:01+00:00")
    elsewhere = _run(other, created_at="2026-11-23T12:00:00+00:00")
    for run in (late, early, elsewhere):
        runs.create_run(run)
    assert runs.list_runs(dataset) == [early, late]
    ours = {early["run_id"], late["run_id"], elsewhere["run_id"]}
    assert [r["run_id"] for r in runs.list_runs() if r["run_id"] in ours] == [
        elsewhere["run_id"],
        early["run_id"],
        late["run_id"],
    ]
    assert runs.list_runs(f"{dataset}-none") == []


def _all(target: Callable[[int], None], count: int) -> None:
    """Run ``target(i)`` for i < count on as many threads at once, and wait for all."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
