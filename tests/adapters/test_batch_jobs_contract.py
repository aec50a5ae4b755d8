"""The batch jobs store's contract, held by both implementations: in memory and on DynamoDB (moto).

Every test runs against both, so the in-memory store the service tests use cannot drift from the
table the functions and workers use."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.aws.batch_jobs import DynamoJobStore
from chalicelib.adapters.memory.batch_jobs import MemoryJobStore
from chalicelib.batch.jobs import COUNTERS, FAILED, PLANNING, RUNNING, SUBMITTED
from chalicelib.batch.ports import JobStore


@pytest.fixture(params=["memory", "moto"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return MemoryJobStore()
    settings = request.getfixturevalue("aws_module")
    request.getfixturevalue("atomic_writes")
    return DynamoJobStore(settings.batch_jobs_table)


@pytest.fixture
def job_id() -> str:
    """A fresh id per test: the moto table is shared by the module's tests."""
    return f"j-{uuid.uuid4().hex[:12]}"


def _job(job_id: str, **fields: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": RUNNING, "model": "m", "version": 1, "total_shards": 3, **fields}


def _part(i: int) -> dict[str, Any]:
    return {"key": f"batch/output/j/part-{i:05d}.csv", "rows": 10 + i, "bytes": 100, "sha256": "ab" * 32}


# --- the job --------------------------------------------------------------------------------------


def test_a_created_job_reads_back_with_every_counter_at_zero_and_no_none_fields(store, job_id):
    assert store.create(_job(job_id, workers_requested=None, family=None, ratio=0.25)) is True
    job = store.get(job_id)
    assert job is not None
    assert {c: job[c] for c in COUNTERS} == dict.fromkeys(COUNTERS, 0)
    assert job["status"] == RUNNING and job["version"] == 1 and job["ratio"] == 0.25
    assert "workers_requested" not in job and "family" not in job
    assert "created_at" in job and "pk" not in job and "sk" not in job


def test_creating_a_job_twice_is_refused_and_keeps_the_first(store, job_id):
    assert store.create(_job(job_id, model="first"))
    assert store.create(_job(job_id, model="second")) is False
    assert store.get(job_id)["model"] == "first"


def test_an_unknown_job_reads_as_none(store, job_id):
    assert store.get(job_id) is None


def test_update_sets_fields_only_on_an_existing_job(store, job_id):
    assert store.update(job_id, status=PLANNING) is False
    assert store.get(job_id) is None
    store.create(_job(job_id, status=SUBMITTED))
    assert store.update(job_id, status=PLANNING, plan={"shards": [1, 2]}, cleared=None) is True
    job = store.get(job_id)
    assert job["status"] == PLANNING and job["plan"] == {"shards": [1, 2]}
    assert job["cleared"] is None  # a field set to None is kept, as None


def test_update_with_expected_statuses_applies_only_from_one_of_them(store, job_id):
    store.create(_job(job_id, status=SUBMITTED))
    assert store.update(job_id, expected=(RUNNING,), status=FAILED) is False
    assert store.get(job_id)["status"] == SUBMITTED
    assert store.update(job_id, expected=(SUBMITTED, PLANNING), status=RUNNING) is True
    assert store.get(job_id)["status"] == RUNNING


def test_a_claim_is_won_once(store, job_id):
    assert store.claim(job_id, "workers_started_at") is False  # no job
    store.create(_job(job_id))
    assert store.claim(job_id, "workers_started_at") is True
    assert store.claim(job_id, "workers_started_at") is False
    assert store.claim(job_id, "other_flag") is True
    assert isinstance(store.get(job_id)["workers_started_at"], str)


def test_add_adds_to_counters_decimally_and_skips_zeros(store, job_id):
    store.create(_job(job_id))
    store.add(job_id, worker_seconds=0.1, interruptions=1, failures=0)
    store.add(job_id, worker_seconds=0.2, interruptions=1)
    job = store.get(job_id)
    assert job["worker_seconds"] == 0.3 and job["interruptions"] == 2 and job["failures"] == 0
    store.add(job_id, worker_seconds=0.7)
    assert store.get(job_id)["worker_seconds"] == 1  # a whole number reads back as an int
    assert isinstance(store.get(job_id)["worker_seconds"], int)


# --- shards ---------------------------------------------------------------------------------------


def test_a_shard_is_counted_once_however_often_it_is_marked_done(store, job_id):
    store.create(_job(job_id))
    assert store.mark_done(job_id, 0, _part(0)) is True
    assert store.mark_done(job_id, 0, _part(0)) is False
    assert store.mark_failed(job_id, 0, "too late") is False  # settled: a failure does not count either
    job = store.get(job_id)
    assert job["shards_done"] == 1 and job["rows"] == 10 and job["shards_failed"] == 0


def test_settled_shards_list_in_index_order_with_their_part_or_reason(store, job_id):
    store.create(_job(job_id, total_shards=12))
    store.mark_done(job_id, 11, _part(11))
    store.mark_failed(job_id, 2, "x" * 5000, input_key="in/a.csv", input_range=[10, 99])
    store.mark_done(job_id, 0, _part(0))
    shards = store.shards(job_id)
    assert [s["index"] for s in shards] == [0, 2, 11]
    assert shards[0]["status"] == "done" and shards[0]["sha256"] == "ab" * 32 and shards[0]["rows"] == 10
    assert shards[1]["status"] == "failed" and shards[1]["input_range"] == [10, 99]
    assert len(shards[1]["reason"]) == 2000  # cut
    job = store.get(job_id)
    assert (job["shards_done"], job["shards_failed"], job["rows"]) == (2, 1, 31)


def test_the_last_error_of_a_shard_is_kept(store, job_id):
    store.create(_job(job_id))
    assert store.last_error(job_id, 1) is None
    store.record_error(job_id, 1, "ConnectionError: first", "w1")
    store.record_error(job_id, 1, "TimeoutError: second", "w2")
    assert store.last_error(job_id, 1) == "TimeoutError: second"
    assert store.shards(job_id) == []  # an error settles nothing


def _race(times: int, action: Callable[[int], bool]) -> list[bool]:
    barrier = threading.Barrier(times)
    results: list[bool] = [False] * times

    def run(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_finishers_of_one_shard_count_it_once(store, job_id):
    store.create(_job(job_id))
    results = _race(
        8, lambda i: store.mark_done(job_id, 0, _part(0)) if i % 2 else store.mark_failed(job_id, 0, "lost")
    )
    assert results.count(True) == 1
    job = store.get(job_id)
    assert job["shards_done"] + job["shards_failed"] == 1
    assert len(store.shards(job_id)) == 1


def test_concurrent_claims_have_one_winner(store, job_id):
    store.create(_job(job_id))
    assert _race(8, lambda i: store.claim(job_id, "workers_started_at")).count(True) == 1


# --- workers --------------------------------------------------------------------------------------


def test_each_worker_attempt_keeps_its_last_state_its_start_and_when_it_was_seen(store, job_id):
    store.create(_job(job_id))
    before = time.time()
    store.heartbeat(job_id, "0-a1-11", "scoring", started=before - 2.5)
    store.heartbeat(job_id, "1-a1-12", "waiting", started=before - 1.25)
    store.heartbeat(job_id, "0-a1-11", "exited", started=before - 2.5)
    workers = {w["worker"]: w for w in store.workers(job_id)}
    assert set(workers) == {"0-a1-11", "1-a1-12"}
    assert workers["0-a1-11"]["state"] == "exited" and workers["1-a1-12"]["state"] == "waiting"
    assert workers["0-a1-11"]["started"] == pytest.approx(before - 2.5) and workers["1-a1-12"]["started"] == (
        pytest.approx(before - 1.25)
    )
    assert all(before - 1 <= w["seen"] <= time.time() + 1 for w in workers.values())
    assert "worker_seconds" not in store.get(job_id)  # computed from the attempts (costs.job_cost)
    assert store.shards(job_id) == []  # heartbeats are not shards
