"""Batch inference on the local cloud: a job through the API, what jobs cost, requests dropped in the
bucket (planned, or refused with the reason), shards whose workers are all lost (dead-lettered, the
job PARTIAL; a finisher losing the manifest race), and the chaos test.

Chaos: several local workers score a job of many shards while workers are killed with SIGKILL in
the middle of a shard (and restarted, as AWS Batch retries a reclaimed child) and one gets a spot
notice from a fake instance-metadata endpoint on 127.0.0.1. The output must equal a reference
scoring of the same input exactly: every row once, none missing, none twice, the manifest complete.
Seeded: the seed picks which worker each kill hits and at which step of its shard
(``BATCH_CHAOS_SEED`` replays a run); when a kill happens follows the workers' progress, not the
clock."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.local.batch_launcher import PROJECT_DIR, LocalWorkerLauncher
from chalicelib.batch import service as batch_service
from chalicelib.batch.jobs import FINAL
from chalicelib.settings import Settings
from mlops.datasets import breast_cancer_batch
from mlops.demo import subscribe_inbox
from tests.support import HANG_S, FakeMetadata, contract_for, publish, wait_until

SEED = int(os.environ.get("BATCH_CHAOS_SEED", "20261123"))


@pytest.fixture(scope="module")
def champion(local_cloud) -> Settings:
    """A logistic-regression champion for breast_cancer, promoted by the running evaluator. Its
    contract keyed-hashes the confidential features in captured records: the workers, under their
    role, make the stage's hash key (nothing has made it before them in this cloud) and use it."""
    from chalicelib.validation import Contract

    settings = Settings.from_env()
    doc = contract_for("logistic").to_dict()
    doc["monitoring"] = {"confidential": "hash"}
    S3ContractStore(settings.data_bucket).put(Contract.parse(doc))
    publish(settings, "logistic")
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    assert wait_until(lambda: registry.champion("breast_cancer"), timeout_s=HANG_S), (
        "no champion was promoted"
    )
    return settings


@pytest.fixture(scope="module")
def token(champion) -> str:
    raw, _ = bootstrap.tokens().create("batch-tests", "approver", created_by="tests")
    return raw


def _post(cloud: Any, path: str, body: Any, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        cloud.api_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(cloud: Any, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(cloud.api_url + path, timeout=30) as response:
        return dict(json.loads(response.read()))


def _upload_inputs(settings: Settings, prefix: str, sizes: list[int], seed: int) -> list[bytes]:
    s3 = boto3.client("s3")
    bodies = []
    start = 0
    for i, rows in enumerate(sizes):
        data = breast_cancer_batch(rows, seed=seed + i, block_rows=rows)
        # distinct row ids across objects
        lines = data.split(b"\n", 1)
        body = lines[0] + b"\n" + lines[1].replace(b"patient-", b"patient-%d" % i)
        s3.put_object(Bucket=settings.data_bucket, Key=f"{prefix}part-{i}.csv", Body=body)
        bodies.append(body)
        start += rows
    return bodies


def _reference(settings: Settings, job: dict[str, Any], bodies: list[bytes]) -> dict[bytes, bytes]:
    """Each input object scored whole, in this process: row id -> output line."""
    from scoring.engine import Scorer, row_pieces, score_pieces

    from chalicelib.adapters.aws.artifacts import S3Artifacts
    from chalicelib.batch.sharding import parse_header
    from chalicelib.serving.model import load_version

    model = load_version(
        DynamoRegistry(settings.registry_table, settings.audit_table),
        S3Artifacts(),
        job["model"],
        int(job["version"]),
    )
    scorer = Scorer(model)
    lines: dict[bytes, bytes] = {}
    for body in bodies:
        header_line, rest = body.split(b"\n", 1)
        out = score_pieces(row_pieces(iter([rest])), parse_header(header_line), scorer, overlap=False)
        for line in out.data.splitlines()[1:]:
            lines[line.split(b",", 1)[0]] = line
    return lines


def _outputs(settings: Settings, job: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=job["manifest_key"])["Body"].read())
    lines: list[bytes] = []
    for part in manifest["parts"]:
        data = s3.get_object(Bucket=settings.data_bucket, Key=part["key"])["Body"].read()
        import hashlib

        assert hashlib.sha256(data).hexdigest() == part["sha256"]
        body = data.splitlines()[1:]
        assert len(body) == part["rows"]
        lines += body
    return manifest, lines


def _alive(pid: int) -> bool:
    """The process runs (a zombie, ended but not reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_job_submitted_through_the_api_scores_every_row_once(local_cloud, champion, token):
    bodies = _upload_inputs(champion, "batch/input/api/", [3000, 1200], seed=1)
    status, job = _post(
        local_cloud, "/batch-jobs",
        {"model": "breast_cancer", "input_prefix": "batch/input/api/", "output_prefix": "batch/output/", "shard_bytes": 100_000, "workers": 2},
        token,
    )  # fmt: skip
    assert status == 202, job
    assert job["version"] == DynamoRegistry(champion.registry_table, champion.audit_table).champion(
        "breast_cancer"
    )
    done = wait_until(
        lambda: _get(local_cloud, f"/batch-jobs/{job['job_id']}").get("status") in FINAL, timeout_s=HANG_S
    )
    assert done
    final = _get(local_cloud, f"/batch-jobs/{job['job_id']}")
    # Its workers take any shard of the work queue until they see their job over: let them go, so
    # the next test's shards are scored by that test's workers only.
    pids = bootstrap.batch_jobs().get(job["job_id"])["launch"]["pids"]
    assert wait_until(lambda: not any(_alive(pid) for pid in pids)), "hang: a worker did not exit"
    assert final["status"] == "SUCCEEDED", final
    assert final["rows"] == 4200 and final["shards_done"] == final["total_shards"] > 2
    assert final["cost"]["spot_usd"] < final["cost"]["on_demand_usd"]
    manifest, lines = _outputs(champion, final)
    assert manifest["complete"] and manifest["rows"] == 4200
    reference = _reference(champion, final, bodies)
    assert sorted(lines) == sorted(reference.values())
    # Every row captured once (the workers, under their role, wrote one object per shard), masked:
    # the bundled contract's features are confidential (keyed-hashed, as the contract here asks).
    from datetime import UTC, datetime, timedelta

    from chalicelib.adapters.aws.capture import S3CaptureSource

    now = datetime.now(UTC)
    source = S3CaptureSource(champion.data_bucket)
    captured = [
        r for r in source.records("breast_cancer", now - timedelta(hours=1), now + timedelta(minutes=1))
        if r["job_id"] == job["job_id"]
    ]  # fmt: skip
    assert len(captured) == 4200 and {r["role"] for r in captured} == {"batch"}
    assert len({(r["request_id"], r["index"]) for r in captured}) == 4200
    hashed = [v for r in captured for name, v in r["inputs"].items() if name != "row_id"]
    assert hashed and all(str(v).startswith("h:") for v in hashed)
    import boto3

    assert boto3.client("s3").head_object(Bucket=champion.data_bucket, Key="keys/capture-hash.key")
    assert len({r["request_id"] for r in captured}) == final["total_shards"]


KILL_STEPS = ("score", "write", "count", "finish")
KILLS = 6
NOTICE_AFTER_KILL = 2  # the slot killed second comes back on an instance that gets a spot notice
_EVENT = re.compile(r"\[(\d+)\] (?:shard (\d+)(?::? )(held before (\w+))?|held before (take))")


class Pool:
    """The job's local workers, one process per array slot, as AWS Batch runs them (a killed child is
    started again as a new attempt), each stoppable at a named step through its hold file.

    A worker says in its log (``.mlops/batch/<job>-<slot>.log``) when it is held and which shard it
    holds, so the test acts on what the workers did, never on how long they took."""

    def __init__(self, hold_dir: Path) -> None:
        self.hold_dir = hold_dir
        self.job_id = ""
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.attempts: dict[int, int] = {}
        # Every attempt's pid -> [a time it was running by, a time it was still running at]: the
        # seconds between are a lower bound of what it ran (what its cost must cover).
        self.lives: dict[int, list[float]] = {}

    def start(self, job_id: str, count: int) -> dict[str, Any]:
        """The planner's ``start_workers``: every worker starts held before scoring its first shard."""
        self.job_id = job_id
        for slot in range(count):
            self.launch(slot)
        return {"backend": "local", "workers": count, "pids": [p.pid for p in self.processes.values()]}

    def launch(self, slot: int, hold: str = "score", **env: str) -> None:
        """Start the slot's next attempt, held before ``hold`` from its first shard on."""
        self.hold(slot, hold)
        self.attempts[slot] = self.attempts.get(slot, 0) + 1
        process = LocalWorkerLauncher().launch(
            self.job_id,
            slot,
            self.attempts[slot],
            extra_env={"MLOPS_BATCH_HOLD_FILE": str(self._hold_file(slot)), **env},
        )
        running_by = time.time()  # Popen returns once the child has started
        self.lives[process.pid] = [running_by, running_by]
        self.processes[slot] = process

    def _seen_alive(self, process: subprocess.Popen[bytes]) -> bool:
        at = time.time()
        if process.poll() is not None:
            return False
        self.lives[process.pid][1] = at
        return True

    def wait_exited(self) -> None:
        """Wait until every worker has ended by itself, noting how long each was seen running."""
        deadline = time.monotonic() + HANG_S
        while any([self._seen_alive(p) for p in self.processes.values()]):
            assert time.monotonic() < deadline, "hang: a worker did not exit after its job ended"
            time.sleep(0.02)

    def seconds_ran(self) -> float:
        """At least this many seconds of worker time were used, over every attempt so far."""
        return sum(until - since for since, until in self.lives.values())

    def _hold_file(self, slot: int) -> Path:
        return self.hold_dir / f"hold-{slot}"

    def hold(self, slot: int, step: str) -> None:
        """Hold the slot's worker before ``step`` ("" lets it run); atomic, as the worker polls it."""
        path = self._hold_file(slot)
        path.with_suffix(".tmp").write_text(step)
        path.with_suffix(".tmp").replace(path)

    def log(self, slot: int) -> str:
        path = PROJECT_DIR / ".mlops" / "batch" / f"{self.job_id}-{slot}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def held(self, slot: int, step: str) -> tuple[bool, int | None]:
        """Whether the slot's current worker is held before ``step`` now, and the shard it holds: its
        latest shard or hold line says so (it logs nothing else about shards while held)."""
        pid = str(self.processes[slot].pid)
        last: tuple[bool, int | None] = (False, None)
        for match in _EVENT.finditer(self.log(slot)):
            if match.group(1) != pid:
                continue
            shard = None if match.group(2) is None else int(match.group(2))
            held_step = match.group(4) or match.group(5)
            last = (held_step == step, shard)
        return last

    def wait_held(self, slot: int, step: str) -> int | None:
        """Wait until the slot's worker is held before ``step``; the shard it holds (None before "take")."""
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            process = self.processes[slot]
            assert process.poll() is None, (
                f"worker {slot} (pid {process.pid}) ended with {process.returncode} before it was held "
                f"before {step}:\n{self.log(slot)[-3000:]}"
            )
            is_held, shard = self.held(slot, step)
            if is_held:
                return shard
            time.sleep(0.05)
        raise AssertionError(f"hang: worker {slot} was not held before {step}:\n{self.log(slot)[-3000:]}")

    def kill(self, slot: int) -> None:
        assert self._seen_alive(self.processes[slot])
        os.kill(self.processes[slot].pid, signal.SIGKILL)
        self.processes[slot].wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


# What a worker's last record cannot cover: the process's exit after it (the worker leaves with
# os._exit right after its last record: milliseconds, on a busy machine more).
EXIT_S = 0.5


def _costed_seconds(job: dict[str, Any]) -> float:
    """The worker-seconds a job's cost prices (one vCPU per worker)."""
    return float(job["cost"]["vcpu_hours"]) * 3600.0


def test_a_job_s_cost_covers_every_worker_second_killed_retried_and_late_attempts_included(
    local_cloud, champion, token, monkeypatch, tmp_path
):
    """Failure 7 of issue 14: a killed attempt (its shard retried by another), the restarted child,
    and a child Batch retries after the job ended (it finds nothing to do) all ran, so all cost."""
    _upload_inputs(champion, "batch/input/costs/", [2400], seed=7)
    monkeypatch.setenv("BATCH_VISIBILITY_S", "3")  # the killed worker's shard comes back after this
    pool = Pool(tmp_path)
    monkeypatch.setattr(bootstrap, "batch_launcher", lambda: pool)
    status, job = _post(
        local_cloud, "/batch-jobs",
        {"model": "breast_cancer", "input_prefix": "batch/input/costs/", "shard_bytes": 100_000, "workers": 2},
        token,
    )  # fmt: skip
    assert status == 202, job
    try:
        assert wait_until(lambda: len(pool.processes) == 2, timeout_s=HANG_S), (
            "the planner started no workers"
        )
        pool.wait_held(0, "score")
        pool.hold(0, "write")
        pool.wait_held(0, "write")
        pool.kill(0)  # mid-shard: that shard is scored again by another attempt
        pool.launch(0, hold="")  # AWS Batch retries the child
        pool.hold(1, "")
        assert wait_until(lambda: _get(local_cloud, f"/batch-jobs/{job['job_id']}")["status"] in FINAL)
        pool.wait_exited()
        pool.launch(1, hold="")  # a retry that starts after the job ended: it only looks, then exits
        pool.wait_exited()
    finally:
        pool.stop_all()
    final = _get(local_cloud, f"/batch-jobs/{job['job_id']}")
    assert final["status"] == "SUCCEEDED", final
    ran, attempts = pool.seconds_ran(), len(pool.lives)
    print(
        f"{attempts} attempts ran at least {ran:.2f} s; the job's cost prices {_costed_seconds(final):.2f} s"
    )
    assert attempts == 4
    assert _costed_seconds(final) >= ran - EXIT_S * attempts, (final, ran)
    assert final["worker_seconds"] == pytest.approx(_costed_seconds(final), abs=0.01), final


def test_a_partial_job_s_cost_covers_the_seconds_its_workers_ran(
    local_cloud, champion, token, monkeypatch, tmp_path
):
    """Failure 7 of issue 14 ("26.3 vs 0"): a job whose shard fails at once was priced at $0."""
    data = breast_cancer_batch(400, seed=5)
    header, first, rest = data.split(b"\n", 2)
    fields = first.split(b",")
    fields[1] = b"not-a-number"  # the first feature of the first row: the shard cannot be scored
    boto3.client("s3").put_object(
        Bucket=champion.data_bucket, Key="batch/input/costs-bad/part-0.csv",
        Body=header + b"\n" + b",".join(fields) + b"\n" + rest,
    )  # fmt: skip
    pool = Pool(tmp_path)
    monkeypatch.setattr(bootstrap, "batch_launcher", lambda: pool)
    status, job = _post(
        local_cloud, "/batch-jobs",
        {"model": "breast_cancer", "input_prefix": "batch/input/costs-bad/", "workers": 1},
        token,
    )  # fmt: skip
    assert status == 202, job
    try:
        assert wait_until(lambda: len(pool.processes) == 1, timeout_s=HANG_S), (
            "the planner started no workers"
        )
        pool.hold(0, "")
        assert wait_until(lambda: _get(local_cloud, f"/batch-jobs/{job['job_id']}")["status"] in FINAL)
        pool.wait_exited()
    finally:
        pool.stop_all()
    final = _get(local_cloud, f"/batch-jobs/{job['job_id']}")
    assert final["status"] == "PARTIAL", final
    ran = pool.seconds_ran()
    print(f"the worker ran at least {ran:.2f} s; the job's cost prices {_costed_seconds(final):.2f} s")
    assert ran > 0 and _costed_seconds(final) >= ran - EXIT_S, (final, ran)
    assert final["worker_seconds"] == pytest.approx(_costed_seconds(final), abs=0.01), final


def _drop_request(settings: Settings, job_id: str, request: dict[str, Any]) -> None:
    """A request file dropped under batch/requests/ by a person or a scheduler, not the API."""
    boto3.client("s3").put_object(
        Bucket=settings.data_bucket, Key=f"batch/requests/{job_id}.json", Body=json.dumps(request).encode()
    )


def _settled(job_id: str) -> dict[str, Any]:
    """The job once it is final (read as the operator: a dropped request's job exists only once planned)."""
    assert wait_until(lambda: (bootstrap.batch_jobs().get(job_id) or {}).get("status") in FINAL), (
        f"hang: job {job_id} never ended"
    )
    job = bootstrap.batch_jobs().get(job_id)
    assert job is not None
    return job


def test_a_request_dropped_in_the_bucket_is_planned_with_the_champion_pinned_and_scored(
    local_cloud, champion
):
    _upload_inputs(champion, "batch/input/dropped/", [500], seed=17)
    job_id = f"nightly-{uuid.uuid4().hex[:8]}"
    _drop_request(champion, job_id, {"model": "breast_cancer", "input_prefix": "batch/input/dropped/"})
    job = _settled(job_id)
    assert wait_until(lambda: not any(_alive(pid) for pid in job["launch"]["pids"])), (
        "hang: a worker did not exit"
    )
    final = _get(local_cloud, f"/batch-jobs/{job_id}")
    assert final["status"] == "SUCCEEDED", final
    assert final["version"] == DynamoRegistry(champion.registry_table, champion.audit_table).champion(
        "breast_cancer"
    )
    assert final["submitted_by"] == f"s3:batch/requests/{job_id}.json"
    assert final["rows"] == 500
    # The contract's pii columns are left out of the outputs (the request named none to keep).
    assert final["include_pii"] == [] and final["pii_dropped"] == [
        c.name for c in contract_for("logistic").columns if c.classification == "pii"
    ]


def test_a_dropped_request_for_an_unknown_model_records_a_failed_job_naming_it(local_cloud, champion):
    job_id = f"unknown-{uuid.uuid4().hex[:8]}"
    _drop_request(champion, job_id, {"model": "no_such_model", "input_prefix": "batch/input/dropped/"})
    job = _settled(job_id)
    assert job["status"] == "FAILED" and "no model named 'no_such_model'" in job["error"], job


def test_a_dropped_request_for_a_model_whose_contract_is_gone_records_a_failed_job_asking_for_it(
    local_cloud, champion
):
    """Which columns are pii is in the contract: without it the planner cannot choose what the outputs
    may carry, so it refuses the job (and says how to fix it) rather than guess."""
    s3 = boto3.client("s3")
    key = "contracts/breast_cancer.json"
    marker = s3.delete_object(Bucket=champion.data_bucket, Key=key)["VersionId"]
    try:
        job_id = f"no-contract-{uuid.uuid4().hex[:8]}"
        _drop_request(champion, job_id, {"model": "breast_cancer", "input_prefix": "batch/input/dropped/"})
        job = _settled(job_id)
    finally:  # the contract comes back: its delete marker goes
        s3.delete_object(Bucket=champion.data_bucket, Key=key, VersionId=marker)
    assert job["status"] == "FAILED", job
    assert "contract cannot be read" in job["error"] and "store the contract again" in job["error"], job


class _NoCapacity:
    """A worker launcher whose workers never get to run (no capacity, or reclaimed at once)."""

    def start(self, job_id: str, count: int) -> dict[str, Any]:
        return {"backend": "none", "workers": count, "pids": []}


def _submitted_without_workers(cloud: Any, settings: Settings, token: str, prefix: str, seed: int) -> str:
    """A one-shard job through the API whose workers never run (the caller patches the launcher)."""
    _upload_inputs(settings, prefix, [300], seed=seed)
    status, job = _post(
        cloud, "/batch-jobs", {"model": "breast_cancer", "input_prefix": prefix, "workers": 1}, token
    )
    assert status == 202, job
    job_id = str(job["job_id"])
    assert wait_until(lambda: (bootstrap.batch_jobs().get(job_id) or {}).get("messages_sent")), (
        "never planned"
    )
    return job_id


def _every_worker_lost(settings: Settings, job_id: str) -> None:
    """Each worker that takes the job's shard is lost before it settles it: the test takes the shard's
    message as such a worker would and lets it go back, maxReceiveCount times; the next receive finds
    it gone to the DLQ. Driven by the message's receive count, not by time."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.batch_work_queue)["QueueUrl"]
    redrive = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    max_receives = int(json.loads(redrive["RedrivePolicy"])["maxReceiveCount"])

    def lost_worker_takes_the_shard() -> int:
        """One receive of the job's shard message (returned at once, unsettled); its receive count."""
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", []):  # fmt: skip
            if json.loads(message["Body"])["job_id"] == job_id:
                return int(message["Attributes"]["ApproximateReceiveCount"])
        return 0

    received = 0
    while received < max_receives:
        count = wait_until(lost_worker_takes_the_shard)
        assert count == received + 1, (
            f"the shard's message was received {count} times, expected {received + 1}"
        )
        received = count
    assert lost_worker_takes_the_shard() == 0, "after maxReceiveCount receives the message belongs to the DLQ"


def test_a_shard_whose_workers_are_all_lost_is_dead_lettered_and_the_job_ends_partial_naming_it(
    local_cloud, champion, token, monkeypatch
):
    """After the work queue's maxReceiveCount receives SQS moves the shard's message to its DLQ, where
    batch_shard_failed marks the shard failed and, the job's last shard settled, writes its manifest,
    ends it PARTIAL and announces it."""
    inbox = subscribe_inbox(champion, "batch-tests-lost-inbox")
    monkeypatch.setattr(bootstrap, "batch_launcher", lambda: _NoCapacity())
    job_id = _submitted_without_workers(local_cloud, champion, token, "batch/input/lost/", seed=19)
    _every_worker_lost(champion, job_id)
    final_job = _settled(job_id)
    final = _get(local_cloud, f"/batch-jobs/{job_id}")
    assert final_job["status"] == final["status"] == "PARTIAL", final
    assert final["shards_failed"] == final["total_shards"] == 1 and final["rows"] == 0, final
    assert final["failed"] == [
        {
            "index": 0,
            "reason": "dead-lettered after repeated failures: failed on every attempt (workers lost while scoring it)",
            "input_key": "batch/input/lost/part-0.csv",
        }
    ], final
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=champion.data_bucket, Key=final["manifest_key"])["Body"].read()
    )
    assert [f["index"] for f in manifest["failed_shards"]] == [0] and not manifest["complete"], manifest
    announced = wait_until(lambda: [n for n in inbox() if n.get("job_id") == job_id])
    assert [n["type"] for n in announced] == ["Batch job partial"], announced


def test_a_finisher_that_loses_the_race_to_write_the_manifest_ends_the_job_with_the_first_one(
    local_cloud, champion, token, monkeypatch
):
    """A worker and batch_shard_failed can settle a job's last shards at the same moment, and both
    finish it (chalicelib/batch/finishing.py). Here a worker writes its manifest (a moment earlier)
    just before the handler writes its own: injected at that point, so the race is decided, not
    timed. The handler's create-only write is refused, it reads the worker's manifest, and the job
    ends with it, announced once."""
    from chalicelib.adapters.aws.batch_io import S3JobFiles
    from chalicelib.batch.sharding import manifest_key
    from mlops import localiam

    inbox = subscribe_inbox(champion, "batch-tests-race-inbox")
    monkeypatch.setattr(bootstrap, "batch_launcher", lambda: _NoCapacity())
    job_id = _submitted_without_workers(local_cloud, champion, token, "batch/input/race/", seed=23)
    key = manifest_key(str(bootstrap.batch_jobs().get(job_id)["output_prefix"]))
    create, first = S3JobFiles.create, {}

    def a_worker_writes_it_first(self: S3JobFiles, key_: str, body: bytes) -> bool:
        if key_ == key and not first:
            manifest = json.loads(body)
            manifest["created_at"] = "2026-12-01T00:00:00.000+00:00"
            first["body"] = json.dumps(manifest, indent=2).encode()
            with localiam.acting_as("batch_scoring_job"):
                assert create(self, key_, first["body"])
        return bool(create(self, key_, body))

    monkeypatch.setattr(S3JobFiles, "create", a_worker_writes_it_first)
    _every_worker_lost(champion, job_id)
    final = _settled(job_id)
    assert final["status"] == "PARTIAL" and final["manifest_key"] == key, final
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=champion.data_bucket, Key=key)["Body"].read() == first["body"]
    versions = s3.list_object_versions(Bucket=champion.data_bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1, "the first manifest was overwritten"
    announced = wait_until(lambda: [n for n in inbox() if n.get("job_id") == job_id])
    assert [n["type"] for n in announced] == ["Batch job partial"], announced


@pytest.mark.slow
def test_chaos_killed_and_reclaimed_workers_lose_and_duplicate_nothing(
    local_cloud, champion, token, monkeypatch, tmp_path
):
    """Every worker is held before it scores a shard; each kill picks (seeded) a slot and a step,
    lets that worker run to the step on a shard no kill has interrupted yet, and kills it there. So
    the kills always land mid-shard and the job cannot end before the last one (the other workers
    hold unfinished shards), however fast or slow the machine is."""
    rng = random.Random(SEED)
    plan = [(rng.randrange(3), rng.choice(KILL_STEPS)) for _ in range(KILLS)]
    print(f"chaos seed {SEED} (replay with BATCH_CHAOS_SEED={SEED}): kills (slot, step) {plan}")
    bodies = _upload_inputs(champion, "batch/input/chaos/", [24000, 16000, 9000], seed=SEED % 1000)
    # A held worker keeps extending its shard's visibility; a killed one's shard returns after this.
    monkeypatch.setenv("BATCH_VISIBILITY_S", "10")
    monkeypatch.setenv("MLOPS_SPOT_POLL_S", "0.3")
    pool = Pool(tmp_path)
    monkeypatch.setattr(bootstrap, "batch_launcher", lambda: pool)
    status, job = _post(
        local_cloud, "/batch-jobs",
        {"model": "breast_cancer", "input_prefix": "batch/input/chaos/", "shard_bytes": 200_000, "workers": 3},
        token,
    )  # fmt: skip
    assert status == 202, job
    job_id = job["job_id"]
    assert wait_until(lambda: len(pool.processes) == 3, timeout_s=HANG_S), "the planner started no workers"
    metadata = FakeMetadata()
    interrupted: set[int] = set()  # shards a kill (or the notice) took from a worker: each at most once

    def held_on_a_fresh_shard(slot: int) -> int:
        """Wait until the slot's worker holds, before scoring, a shard nothing interrupted yet; a shard
        interrupted before is let through whole (a second interruption would only add receives)."""
        while True:
            shard = pool.wait_held(slot, "score")
            assert shard is not None
            if shard not in interrupted:
                return shard
            pool.hold(slot, "take")
            pool.wait_held(slot, "take")
            pool.hold(slot, "score")

    def status_now() -> str:
        return str((bootstrap.batch_jobs().get(job_id) or {}).get("status"))

    kills: list[tuple[int, str, int]] = []
    try:
        for number, (slot, step) in enumerate(plan, start=1):
            shard = held_on_a_fresh_shard(slot)
            pool.hold(slot, step)
            assert pool.wait_held(slot, step) == shard
            pool.kill(slot)
            interrupted.add(shard)
            kills.append((slot, step, shard))
            if number != NOTICE_AFTER_KILL:
                pool.launch(slot)
                continue
            # This slot comes back on an instance that will be reclaimed: the notice arrives while
            # its worker holds a shard, and the worker must give it back and exit by itself.
            pool.launch(slot, MLOPS_IMDS_ENDPOINT=metadata.url)
            interrupted.add(held_on_a_fresh_shard(slot))
            metadata.notice()
            assert metadata.served.wait(HANG_S), "the worker's spot watcher never read the notice"
            pool.hold(slot, "")
            try:
                returncode = pool.processes[slot].wait(timeout=HANG_S)
            except subprocess.TimeoutExpired:
                raise AssertionError("hang: the worker given a spot notice did not exit") from None
            assert returncode == 0, (
                f"a worker given a spot notice must exit cleanly:\n{pool.log(slot)[-3000:]}"
            )
            assert "spot notice" in pool.log(slot), pool.log(slot)[-3000:]
            pool.launch(slot)
        for slot in pool.processes:  # every restarted worker has started (and counted itself)
            pool.wait_held(slot, "score")
        assert status_now() not in FINAL, "the job ended while every worker was held"
        for slot in pool.processes:
            pool.hold(slot, "")
        deadline = time.monotonic() + HANG_S
        while status_now() not in FINAL and time.monotonic() < deadline:
            for slot, process in list(pool.processes.items()):  # Batch retries a child that ended early
                if process.poll() is not None and status_now() not in FINAL:
                    pool.launch(slot, hold="")
            time.sleep(0.2)
        final = batch_service.get(bootstrap.batch_jobs(), job_id)
    finally:
        pool.stop_all()
        metadata.close()
    print(f"kills (slot, step, shard): {kills}")
    assert len(kills) == KILLS
    assert final["status"] == "SUCCEEDED", final
    # Every restart after a kill or the notice counts, and so does the notice itself.
    assert final["interruptions"] >= KILLS + 2
    manifest, lines = _outputs(champion, final)
    reference = _reference(champion, final, bodies)
    ids = [line.split(b",", 1)[0] for line in lines]
    assert len(ids) == len(set(ids)), "a row was scored twice"
    assert set(ids) == set(reference), "a row is missing (or unknown)"
    assert sorted(lines) == sorted(reference.values()), "an output differs from the reference scoring"
    assert (
        manifest["complete"] and manifest["rows"] == 49000 and len(manifest["parts"]) == final["total_shards"]
    )
