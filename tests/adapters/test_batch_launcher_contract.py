"""The worker launcher's contract, held by the AWS Batch array job (moto's Batch, which runs no
containers), local processes (a stand-in command instead of the worker) and the recording launcher;
and what each back end starts."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from chalicelib import bootstrap
from chalicelib.adapters.aws.batch_launcher import ArrayJobLauncher
from chalicelib.adapters.local.batch_launcher import LocalWorkerLauncher
from chalicelib.adapters.memory.batch_launcher import RecordingLauncher
from chalicelib.batch.ports import WorkerLauncher
from chalicelib.settings import Settings

# Prints what a worker would see: its array index, attempt and job id.
STAND_IN = (
    "-c",
    "import os, sys; print(os.environ['AWS_BATCH_JOB_ARRAY_INDEX'], os.environ['AWS_BATCH_JOB_ATTEMPT'],"
    " sys.argv[-1], os.environ.get('EXTRA', '-'))",
)


@pytest.fixture(scope="module")
def batch_settings() -> Iterator[Settings]:
    """The local stage's stack in in-process moto, with Batch configured not to use Docker."""
    from mlops.cfn import deploy_stage

    with mock_aws(config={"batch": {"use_docker": False}}):
        bootstrap.reset()
        settings = Settings.for_stage("local")
        deploy_stage(settings)
        yield settings
        bootstrap.reset()


def _wait(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError):  # already reaped: it has ended
            os.waitpid(pid, 0)


def _log_lines(project: Path, job_id: str, index: int) -> list[str]:
    return (project / ".mlops" / "batch" / f"{job_id}-{index}.log").read_text().splitlines()


@pytest.fixture(params=["memory", "local", "moto"])
def launcher(request: pytest.FixtureRequest, tmp_path: Path) -> WorkerLauncher:
    if request.param == "memory":
        return RecordingLauncher()
    if request.param == "local":
        return LocalWorkerLauncher(project_dir=tmp_path, command=STAND_IN)
    settings = request.getfixturevalue("batch_settings")
    return ArrayJobLauncher(settings.spot_job_queue, settings.batch_scoring_job_definition)


@pytest.mark.parametrize("workers", [1, 3])
def test_start_says_what_it_started(launcher: WorkerLauncher, workers: int):
    job_id = f"bj-{uuid.uuid4().hex[:8]}"
    started = launcher.start(job_id, workers)
    assert started["workers"] == workers and started["backend"] in {"batch", "local", "memory"}
    _wait(started.get("pids", []))


# --- what each back end starts ------------------------------------------------------------------


def test_batch_starts_one_array_job_with_a_child_per_worker(batch_settings):
    launcher = ArrayJobLauncher(batch_settings.spot_job_queue, batch_settings.batch_scoring_job_definition)
    started = launcher.start("bj-20261123-101500-ab12", 4)
    assert started["job_name"] == "batch-score-bj-20261123-101500-ab12"
    assert started["job_queue"] == batch_settings.spot_job_queue
    (job,) = boto3.client("batch").describe_jobs(jobs=[started["batch_job_id"]])["jobs"]
    assert job["jobName"] == started["job_name"]
    assert job["arrayProperties"]["size"] == 4
    assert job["parameters"] == {"job_id": "bj-20261123-101500-ab12"}
    assert (
        job["jobDefinition"].rsplit("/", 1)[-1].split(":")[0] == batch_settings.batch_scoring_job_definition
    )


def test_batch_starts_a_single_worker_as_a_plain_job(batch_settings):
    launcher = ArrayJobLauncher(batch_settings.spot_job_queue, batch_settings.batch_scoring_job_definition)
    started = launcher.start("bj-single", 1)
    (job,) = boto3.client("batch").describe_jobs(jobs=[started["batch_job_id"]])["jobs"]
    assert "arrayProperties" not in job or not job["arrayProperties"].get("size")


def test_local_starts_one_process_per_worker_with_its_array_index(tmp_path):
    launcher = LocalWorkerLauncher(project_dir=tmp_path, command=STAND_IN)
    started = launcher.start("bj-local", 3)
    assert len(started["pids"]) == 3
    _wait(started["pids"])
    assert [_log_lines(tmp_path, "bj-local", i) for i in range(3)] == [
        [f"{i} 1 bj-local -"] for i in range(3)
    ]


def test_a_local_restart_is_a_later_attempt_with_its_own_environment(tmp_path):
    launcher = LocalWorkerLauncher(project_dir=tmp_path, command=STAND_IN)
    process = launcher.launch("bj-restart", 2, attempt=3, extra_env={"EXTRA": "notice"})
    assert process.wait() == 0
    assert _log_lines(tmp_path, "bj-restart", 2) == ["2 3 bj-restart notice"]


def test_the_local_launcher_runs_the_scoring_worker_of_the_project():
    launcher = LocalWorkerLauncher()
    assert launcher.command == ("-m", "scoring.worker")
    assert (launcher.project_dir / "jobs" / "scoring" / "worker.py").is_file()
    assert sys.executable  # the same interpreter runs the workers


def test_the_recording_launcher_remembers_every_start():
    launcher = RecordingLauncher()
    launcher.start("a", 2)
    launcher.start("b", 1)
    assert launcher.started == [("a", 2), ("b", 1)]
