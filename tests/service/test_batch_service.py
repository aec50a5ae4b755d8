"""Batch inference's use cases on in-memory adapters: submitting, planning (once, however often the
request is delivered), the worker count, finishing with the manifest, the DLQ -> PARTIAL, progress."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import notify
from chalicelib.adapters.memory import batch_jobs as memory_batch_jobs
from chalicelib.adapters.memory.batch_io import MemoryInputs, MemoryJobFiles, MemoryShardQueue
from chalicelib.adapters.memory.batch_jobs import MemoryJobStore
from chalicelib.adapters.memory.batch_launcher import RecordingLauncher
from chalicelib.batch import service
from chalicelib.batch.exceptions import InvalidRequest, JobNotFound, ModelNotAvailable, ModelNotFound
from chalicelib.batch.finishing import finish_if_complete
from chalicelib.batch.jobs import FAILED, PARTIAL, RUNNING, SUBMITTED, SUCCEEDED
from chalicelib.batch.ports import BatchPorts

BUCKET = "data"
MODEL = "breast_cancer"


class Registry:
    """The registry's two answers batch asks for: champion per model, versions by number."""

    def __init__(
        self, champion: int | None = None, versions: dict[int, dict[str, Any]] | None = None
    ) -> None:
        self._champion = champion
        self._versions = versions or {}

    def champion(self, model: str) -> int | None:
        return self._champion if model == MODEL else None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        return self._versions.get(v) if model == MODEL else None

    def versions(self, model: str) -> list[dict[str, Any]]:
        return list(self._versions.values()) if model == MODEL else []


class Notices:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        self.published.append((detail_type, detail))
        return True


def _version(status: str = "champion", family: str = "logistic_regression") -> dict[str, Any]:
    return {"status": status, "family": family, "artifacts": {"model.onnx": {}}}


@pytest.fixture
def ports() -> BatchPorts:
    return BatchPorts(
        jobs=MemoryJobStore(),
        inputs=MemoryInputs(),
        files=MemoryJobFiles(),
        queue=MemoryShardQueue(),
        launcher=RecordingLauncher(),
        registry=Registry(
            champion=2, versions={1: _version("retired"), 2: _version(), 3: _version("rejected")}
        ),
        notifier=Notices(),
        bucket=BUCKET,
        max_workers=4,
    )


def _csv(rows: int) -> bytes:
    return b"id,a\n" + b"".join(b"%d,%d\n" % (i, i * 7) for i in range(rows))


def _inputs(ports: BatchPorts, prefix: str = "batch/input/x/", sizes: tuple[int, ...] = (400, 150)) -> None:
    inputs: MemoryInputs = ports.inputs  # type: ignore[assignment]
    for i, rows in enumerate(sizes):
        inputs.put(f"{prefix}part-{i}.csv", _csv(rows))


def _request(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "input_prefix": "batch/input/x/", "shard_bytes": 1024, **fields}


# --- submitting -------------------------------------------------------------------------------------


def test_submit_pins_the_champion_records_the_job_and_drops_the_request(ports):
    _inputs(ports)
    job = service.submit(ports, _request(), "alice (approver)")
    assert (job["status"], job["version"], job["engine"]) == (SUBMITTED, 2, "onnxruntime")
    assert (
        job["output_prefix"] == f"batch/output/{job['job_id']}/" and job["submitted_by"] == "alice (approver)"
    )
    assert ports.jobs.get(job["job_id"])["request_key"] == job["request_key"]
    dropped = json.loads(ports.files.read(f"batch/requests/{job['job_id']}.json") or b"")
    assert (dropped["version"], dropped["engine"], dropped["model"]) == (2, "onnxruntime", MODEL)


def test_submit_keeps_the_version_asked_for(ports):
    _inputs(ports)
    assert service.submit(ports, _request(version=1), "alice")["version"] == 1


def test_submit_refuses_an_input_prefix_with_nothing_under_it(ports):
    with pytest.raises(InvalidRequest, match=r"input_prefix: nothing under s3://data/batch/input/x/"):
        service.submit(ports, _request(), "alice")


@pytest.mark.parametrize(
    ("registry", "fields", "message"),
    [
        (Registry(versions={1: _version("pending_approval")}), {}, "has no champion: give a version"),
        (Registry(versions={3: _version("rejected")}), {"version": 3}, "v3 is rejected: .* it cannot score"),
        (
            Registry(
                champion=2,
                versions={
                    2: {**_version(), "tainted": {"u9": {"trained": True, "by": "ops", "reason": "bad"}}}
                },
            ),
            {},
            r"v2 is tainted: trained on upload u9, revoked by ops: bad; .* it cannot score",
        ),
    ],
)
def test_submit_refuses_a_version_that_cannot_score_now_as_a_conflict(ports, registry, fields, message):
    _inputs(ports)
    with pytest.raises(ModelNotAvailable, match=message):
        service.submit(replace(ports, registry=registry), _request(**fields), "alice")


@pytest.mark.parametrize(
    ("registry", "fields", "message"),
    [
        (Registry(), {}, "no model named 'breast_cancer'"),
        (Registry(), {"version": 2}, "no model named 'breast_cancer'"),
        (Registry(champion=2, versions={2: _version()}), {"version": 5}, "has no version 5"),
    ],
)
def test_submit_for_an_unknown_model_or_version_is_not_found(ports, registry, fields, message):
    """What failed 6 (issue 14): an unknown model answered 409, as if it existed and could not score."""
    _inputs(ports)
    with pytest.raises(ModelNotFound, match=message):
        service.submit(replace(ports, registry=registry), _request(**fields), "alice")


def test_submit_refuses_a_bad_request_naming_the_field(ports):
    with pytest.raises(InvalidRequest, match="engine"):
        service.submit(ports, _request(engine="gpu"), "alice")


# --- planning ---------------------------------------------------------------------------------------


def _submitted(ports: BatchPorts, **fields: Any) -> dict[str, Any]:
    _inputs(ports)
    return service.submit(ports, _request(**fields), "alice")


def test_planning_writes_the_plan_queues_every_shard_and_starts_the_workers(ports):
    job = _submitted(ports)
    planned = service.plan_request(ports, job["request_key"], None)
    stored = ports.jobs.get(job["job_id"])
    shards = stored["total_shards"]
    assert planned == {"job_id": job["job_id"], "status": RUNNING, "shards": shards, "workers": 4}
    assert stored["status"] == RUNNING and shards > 2 and stored["messages_sent"] is True
    plan = json.loads(ports.files.read(stored["plan_key"]) or b"")
    assert [o["key"] for o in plan["objects"]] == ["batch/input/x/part-0.csv", "batch/input/x/part-1.csv"]
    assert [o["header"] for o in plan["objects"]] == [["id", "a"], ["id", "a"]]
    messages = ports.queue.messages  # type: ignore[attr-defined]
    assert [m["shard"]["index"] for m in messages] == list(range(shards))
    assert {m["plan_key"] for m in messages} == {stored["plan_key"]}
    assert ports.launcher.started == [(job["job_id"], 4)]  # type: ignore[attr-defined]
    assert stored["launch"] == {"backend": "memory", "workers": 4} and stored["workers"] == 4


def test_a_redelivered_request_plans_queues_and_launches_nothing_twice(ports):
    job = _submitted(ports)
    first = service.plan_request(ports, job["request_key"], None)
    again = service.plan_request(ports, job["request_key"], None)
    assert again == first
    assert len(ports.queue.messages) == first["shards"]  # type: ignore[attr-defined]
    assert len(ports.launcher.started) == 1  # type: ignore[attr-defined]


def test_the_plan_is_immutable_once_written(ports):
    job = _submitted(ports)
    service.plan_request(ports, job["request_key"], None)
    ports.inputs.put("batch/input/x/part-9.csv", _csv(5000))  # type: ignore[attr-defined]
    ports.jobs.update(job["job_id"], status=SUBMITTED, messages_sent=False)  # as if planning crashed
    again = service.plan_request(ports, job["request_key"], None)
    assert again["shards"] == ports.jobs.get(job["job_id"])["total_shards"]
    assert "part-9" not in json.dumps(ports.queue.messages)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("requested", "shards", "expected"), [(None, 99, 4), (2, 99, 2), (10, 99, 4), (None, 2, 2)]
)
def test_workers_are_the_request_s_within_the_cap_and_the_shard_count(ports, requested, shards, expected):
    _inputs(ports, sizes=(shards * 80,))  # about 80 rows of 13 bytes per 1024-byte shard
    job = service.submit(ports, _request(**({"workers": requested} if requested else {})), "alice")
    planned = service.plan_request(ports, job["request_key"], None)
    assert planned["workers"] == min(expected, planned["shards"])


def test_a_dropped_request_pins_the_champion_then_plans(ports):
    _inputs(ports)
    files: MemoryJobFiles = ports.files  # type: ignore[assignment]
    version_id = files.put("batch/requests/nightly-42.json", json.dumps(_request()).encode())
    planned = service.plan_request(ports, "batch/requests/nightly-42.json", version_id)
    job = ports.jobs.get("nightly-42")
    assert planned["status"] == RUNNING and job["version"] == 2
    assert job["submitted_by"] == "s3:batch/requests/nightly-42.json"


def test_a_dropped_request_without_a_version_to_score_fails_the_job_once(ports):
    files: MemoryJobFiles = ports.files  # type: ignore[assignment]
    files.put("batch/requests/nightly-43.json", json.dumps(_request()).encode())
    ports = replace(ports, registry=Registry(versions={1: _version("pending_approval")}))
    planned = service.plan_request(ports, "batch/requests/nightly-43.json", None)
    assert planned["status"] == FAILED and "has no champion" in planned["error"]
    assert ports.jobs.get("nightly-43")["status"] == FAILED
    assert service.plan_request(ports, "batch/requests/nightly-43.json", None) == planned
    assert ports.launcher.started == []  # type: ignore[attr-defined]


def test_a_dropped_request_that_is_not_json_is_refused(ports):
    ports.files.put("batch/requests/bad.json", b"{not json")  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest, match="not JSON"):
        service.plan_request(ports, "batch/requests/bad.json", None)


def test_a_request_named_like_a_job_from_another_request_is_refused(ports):
    job = _submitted(ports)
    other = f"batch/requests/{job['job_id']}"  # the same name without .json: the same job id
    ports.files.put(other, json.dumps(_request()).encode())  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest, match="use another name"):
        service.plan_request(ports, other, None)


def test_a_job_with_no_rows_to_score_fails_naming_its_input(ports):
    _inputs(ports, sizes=(0,))  # a header and no rows
    job = service.submit(ports, _request(), "alice")
    planned = service.plan_request(ports, job["request_key"], None)
    assert planned["status"] == FAILED
    assert planned["error"] == "no rows to score under s3://data/batch/input/x/"
    assert ports.jobs.get(job["job_id"])["status"] == FAILED
    assert ports.queue.messages == [] and ports.launcher.started == []  # type: ignore[attr-defined]


# --- finishing, the DLQ -----------------------------------------------------------------------------


def _running(ports: BatchPorts, total: int = 2) -> None:
    ports.jobs.create({"job_id": "j1", "status": RUNNING, "model": "m", "version": 1, "total_shards": total,
                       "output_prefix": "batch/output/j1/", "running_at": "2020-11-23T00:00:00+00:00"})  # fmt: skip


def _part(i: int) -> dict[str, Any]:
    return {"key": f"batch/output/j1/part-{i:05d}.csv", "rows": 10 + i, "bytes": 100, "sha256": "ab" * 32}


def test_a_job_with_shards_left_does_not_finish(ports):
    _running(ports, total=3)
    assert ports.jobs.mark_done("j1", 0, _part(0)) is True
    assert ports.jobs.mark_done("j1", 0, _part(0)) is False
    job = ports.jobs.get("j1")
    assert job["shards_done"] == 1 and job["rows"] == 10
    assert finish_if_complete(ports, "j1") is None  # 1 of 3
    assert ports.files.read("batch/output/j1/_manifest.json") is None


def test_the_last_shard_writes_the_manifest_once_and_the_job_succeeds(ports):
    _running(ports)
    ports.jobs.heartbeat("j1", "0-a1-7", "exited", started=time.time() - 7200)
    ports.jobs.mark_done("j1", 0, _part(0))
    ports.jobs.mark_done("j1", 1, _part(1))
    assert finish_if_complete(ports, "j1") == SUCCEEDED
    assert finish_if_complete(ports, "j1") is None  # the second caller changes nothing
    job = ports.jobs.get("j1")
    manifest = json.loads(ports.files.read(job["manifest_key"]) or b"")
    assert (
        manifest["complete"] and manifest["rows"] == 21 and [p["index"] for p in manifest["parts"]] == [0, 1]
    )
    assert job["status"] == "SUCCEEDED" and job["rows"] == 21
    cost = service.get(ports.jobs, "j1")["cost"]
    assert cost["spot_usd"] == pytest.approx(0.035, rel=1e-3) and cost["on_demand_usd"] == pytest.approx(
        0.096, rel=1e-3
    )
    [(detail_type, detail)] = ports.notifier.published  # type: ignore[attr-defined]
    assert detail_type == notify.BATCH_JOB_SUCCEEDED
    assert (
        detail["output"] == "s3://data/batch/output/j1/" and detail["rows"] == 21 and detail["job_id"] == "j1"
    )
    assert detail["cost_spot_usd"] == pytest.approx(0.035, rel=1e-3) and detail["cost_complete"] is True


def test_a_finisher_that_loses_the_manifest_race_uses_the_winner_s(ports):
    _running(ports)
    ports.jobs.mark_done("j1", 0, _part(0))
    ports.jobs.mark_done("j1", 1, _part(1))
    winner = {"job_id": "j1", "rows": 21, "parts": [], "failed_shards": [], "complete": True}
    ports.files.create("batch/output/j1/_manifest.json", json.dumps(winner).encode())
    assert finish_if_complete(ports, "j1") == SUCCEEDED
    assert json.loads(ports.files.read("batch/output/j1/_manifest.json") or b"") == winner


def test_a_dead_lettered_shard_ends_the_job_partial_with_the_shard_named(ports):
    _running(ports)
    ports.jobs.mark_done("j1", 0, _part(0))
    ports.jobs.record_error("j1", 1, "ConnectionError: the bucket went away", "w1")
    body = json.dumps(
        {"job_id": "j1", "shard": {"index": 1, "key": "in/a.csv", "version_id": None, "start": 10, "end": 99}}
    )
    outcome = service.shard_dead_lettered(ports, body)
    assert outcome["counted"] and outcome["finished"] == "PARTIAL"
    job = ports.jobs.get("j1")
    assert job["status"] == "PARTIAL" and job["failed_shards"] == [1]
    manifest = json.loads(ports.files.read(job["manifest_key"]) or b"")
    assert (
        manifest["failed_shards"][0]["index"] == 1
        and "bucket went away" in manifest["failed_shards"][0]["reason"]
    )
    assert not manifest["complete"]
    assert [t for t, _ in ports.notifier.published] == [notify.BATCH_JOB_PARTIAL]  # type: ignore[attr-defined]


def test_a_shard_dead_lettered_twice_counts_once(ports):
    _running(ports, total=3)
    body = json.dumps({"job_id": "j1", "shard": {"index": 2, "key": "in/a.csv", "start": 0, "end": 9}})
    assert service.shard_dead_lettered(ports, body)["counted"] is True
    again = service.shard_dead_lettered(ports, body)
    assert again["counted"] is False and again["finished"] is None
    assert ports.jobs.get("j1")["shards_failed"] == 1
    assert "workers lost" in ports.jobs.shards("j1")[0]["reason"]  # no error recorded: the likely cause


# --- progress ---------------------------------------------------------------------------------------


def test_a_running_job_shows_live_workers_rate_and_failed_shards(ports):
    _running(ports, total=3)
    ports.jobs.mark_done("j1", 0, _part(0))
    ports.jobs.mark_failed("j1", 1, "bad value", input_key="in/a.csv")
    ports.jobs.heartbeat("j1", "0-a1", "scoring", started=time.time())
    ports.jobs.heartbeat("j1", "1-a1", "exited", started=time.time())
    job = service.get(ports.jobs, "j1")
    assert job["workers_running"] == 1
    assert job["elapsed_s"] > 0 and job["rows_per_s"] is not None
    assert job["failed"] == [{"index": 1, "reason": "bad value", "input_key": "in/a.csv"}]


def test_a_finished_job_shows_no_live_figures(ports):
    _running(ports, total=1)
    ports.jobs.mark_done("j1", 0, _part(0))
    finish_if_complete(ports, "j1")
    job = service.get(ports.jobs, "j1")
    assert job["status"] == SUCCEEDED and "workers_running" not in job and "failed" not in job


# --- costs: every attempt's worker-seconds, whatever the job's state ------------------------------------


def _costed(job: dict[str, Any]) -> float:
    """The worker-seconds the job's cost prices (one vCPU per worker)."""
    return float(job["cost"]["vcpu_hours"]) * 3600.0


def test_a_job_s_cost_covers_the_seconds_its_workers_used_after_it_finished(ports, monkeypatch):
    """Failure 7 of issue 14 ("9.2 vs 4.6"): the cost was fixed when the last shard was counted,
    while the finishing worker, and a retry that came later, were still using seconds."""
    base = time.time() - 20.0
    clock = {"now": base}
    monkeypatch.setattr(memory_batch_jobs, "time", SimpleNamespace(time=lambda: clock["now"]))

    def record(at: float, worker: str, state: str, started: float) -> None:
        clock["now"] = base + at
        ports.jobs.heartbeat("j1", worker, state, started=base + started)

    _running(ports, total=1)
    record(4.6, "0-a1-7", "scoring", started=0.0)
    ports.jobs.mark_done("j1", 0, _part(0))
    assert finish_if_complete(ports, "j1") == SUCCEEDED
    assert service.get(ports.jobs, "j1")["cost"]["complete"] is False  # its finisher still runs
    record(9.2, "0-a1-7", "exited", started=0.0)
    record(12.3, "0-a2-8", "exited", started=10.0)  # a retry after the job ended: nothing to do
    job = service.get(ports.jobs, "j1")
    assert job["worker_seconds"] == pytest.approx(9.2 + 2.3) and job["attempts"] == 2
    assert _costed(job) == pytest.approx(job["worker_seconds"], abs=0.001) and job["cost"]["complete"]


@pytest.mark.parametrize("status", [SUBMITTED, RUNNING, SUCCEEDED, PARTIAL, FAILED])
def test_a_job_in_any_state_is_priced_from_its_attempts(ports, status):
    ports.jobs.create({"job_id": "j1", "status": status, "model": "m", "version": 1})
    ports.jobs.heartbeat("j1", "0-a1-7", "exited", started=time.time() - 26.3)
    job = service.get(ports.jobs, "j1")
    assert job["worker_seconds"] >= 26.3 and _costed(job) == pytest.approx(job["worker_seconds"], abs=0.001)
    assert job["cost"]["spot_usd"] > 0 and job["cost"]["spot"] != "$0.000000"
    assert job["cost"]["complete"] is (status in (SUCCEEDED, PARTIAL, FAILED))


def test_a_job_that_failed_before_any_worker_started_costs_nothing(ports):
    ports.jobs.create({"job_id": "j1", "status": FAILED, "error": "no rows", "model": "m"})
    job = service.get(ports.jobs, "j1")
    assert job["worker_seconds"] == 0 and job["cost"]["spot"] == "$0" and job["cost"]["complete"] is True


def test_an_unknown_job_is_not_found(ports):
    with pytest.raises(JobNotFound, match="no batch job 'nope'"):
        service.get(ports.jobs, "nope")


def test_partial_is_the_status_when_any_shard_failed(ports):
    _running(ports, total=1)
    ports.jobs.mark_failed("j1", 0, "bad")
    assert finish_if_complete(ports, "j1") == PARTIAL


# --- pii in outputs ---------------------------------------------------------------------------------


@pytest.fixture
def with_contract(ports: BatchPorts) -> BatchPorts:
    from chalicelib.adapters.memory.contracts import MemoryContractStore
    from chalicelib.validation import Contract

    contracts = MemoryContractStore()
    contracts.put(
        Contract.parse(
            {
                "dataset": MODEL,
                "columns": [
                    {"name": "id", "type": "string", "classification": "internal"},
                    {"name": "email", "type": "string", "classification": "pii"},
                    {"name": "phone", "type": "string", "classification": "pii"},
                    {"name": "a", "type": "float", "classification": "confidential"},
                    {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
                ],
                "target": "y",
                "task": "classification",
                "row_id": "id",
            }
        )
    )
    return replace(ports, contracts=contracts)


def test_a_job_leaves_out_every_pii_column_unless_the_request_names_it(with_contract):
    _inputs(with_contract)
    default = service.submit(with_contract, _request(), "alice (approver)")
    assert (default["include_pii"], default["pii_dropped"]) == ([], ["email", "phone"])
    named = service.submit(with_contract, _request(include_pii=["email"]), "alice (approver)")
    assert (named["include_pii"], named["pii_dropped"]) == (["email"], ["phone"])
    stored = with_contract.jobs.get(named["job_id"])
    assert stored is not None and stored["include_pii"] == ["email"]
    request = json.loads(with_contract.files.read(named["request_key"]) or b"")
    assert request["include_pii"] == ["email"]


def test_the_pii_choice_is_logged_with_the_job(with_contract, caplog):
    _inputs(with_contract)
    caplog.set_level("INFO")
    job = service.submit(with_contract, _request(include_pii=["phone"]), "alice (approver)")
    logged = [r for r in caplog.records if r.getMessage() == "batch job submitted"]
    assert [(r.job_id, r.include_pii, r.pii_dropped) for r in logged] == [
        (job["job_id"], ["phone"], ["email"])
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["mail"], "include_pii: 'mail' is not a column of the breast_cancer contract"),
        (["a"], "include_pii: 'a' is confidential, not pii"),
        (["id"], "include_pii: 'id' is internal, not pii"),
    ],
)
def test_a_request_naming_an_unknown_or_non_pii_column_is_refused(with_contract, names, message):
    _inputs(with_contract)
    with pytest.raises(InvalidRequest, match=message):
        service.submit(with_contract, _request(include_pii=names), "alice (approver)")


def test_a_dropped_request_naming_a_non_pii_column_fails_the_job_naming_the_field(with_contract):
    _inputs(with_contract)
    with_contract.files.create(
        "batch/requests/nightly.json", json.dumps(_request(include_pii=["a"])).encode()
    )
    outcome = service.plan_request(with_contract, "batch/requests/nightly.json", None)
    assert outcome["status"] == FAILED and "include_pii" in outcome["error"]


def test_a_model_whose_contract_cannot_be_read_cannot_score_pii_unknown(ports):
    from chalicelib.adapters.memory.contracts import MemoryContractStore

    _inputs(ports)
    with pytest.raises(ModelNotAvailable, match="which columns are pii is unknown"):
        service.submit(replace(ports, contracts=MemoryContractStore()), _request(), "alice (approver)")


def _attempt(jobs: MemoryJobStore, run: Any) -> Any:
    """A worker attempt (``scoring.worker.Worker``) on the in-memory jobs store, its loop replaced
    by ``run``; started 12.5 s before its first record."""
    import threading

    from scoring.worker import SpotWatcher, Worker

    worker = Worker.__new__(Worker)
    worker.job_id, worker.worker_id, worker.state = "j1", "0-a2-77", "starting"
    worker.started, worker.jobs, worker.watcher = time.time() - 12.5, jobs, SpotWatcher("", interval_s=1)
    worker._beats, worker._beat_lock, worker._closed = threading.Event(), threading.Lock(), False
    worker._run = run
    return worker


@pytest.mark.parametrize("ending", ["nothing to do", "spot notice", "error"])
def test_every_way_out_of_a_worker_attempt_ends_with_the_record_that_closes_its_seconds(ports, ending):
    """A retry that finds the job over, a spot notice, a crash: the attempt's seconds, from its
    process's start, are on its last record, and a heartbeat in flight cannot reopen it."""
    jobs: MemoryJobStore = ports.jobs  # type: ignore[assignment]
    ports.jobs.create({"job_id": "j1", "status": SUCCEEDED, "model": "m", "version": 1})

    def run() -> int:
        assert jobs.workers("j1")[0]["state"] == "starting"  # recorded before anything else
        if ending == "error":
            raise RuntimeError("the model could not be loaded")
        worker.state = "released" if ending == "spot notice" else worker.state
        return 0

    worker = _attempt(jobs, run)
    if ending == "error":
        with pytest.raises(RuntimeError):
            worker.run()
    else:
        assert worker.run() == 0
    worker.state = "scoring"
    worker.beat()  # a heartbeat after the last record: ignored
    [record] = jobs.workers("j1")
    assert record["state"] == "exited" and record["started"] == pytest.approx(worker.started)
    job = service.get(ports.jobs, "j1")
    assert job["worker_seconds"] >= 12.5 and job["cost"]["complete"] is True
