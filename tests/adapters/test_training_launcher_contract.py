"""The training launcher port, one suite for its three adapters: AWS Batch (in-process moto, which
registers jobs and runs nothing), the local child process (on a stand-in entry point) and the
recording double the service tests use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.local.training_launcher import LocalTrainingLauncher
from chalicelib.adapters.memory.training_launcher import RecordingLauncher
from chalicelib.training.ports import Launcher

# Stands in for training.main: says what it was started with, then exits.
ECHO = "import os, sys\nprint('args', sys.argv[1:], 'capacity', os.environ['MLOPS_CAPACITY'], 'cwd', os.getcwd())\n"


@dataclass
class Backend:
    name: str
    launcher: Launcher
    identity: Callable[[dict[str, Any]], object]  # what tells two launched jobs apart


@pytest.fixture(scope="module")
def batch_stack() -> Iterator[Any]:
    from moto import mock_aws

    from chalicelib.adapters import aws
    from chalicelib.settings import Settings
    from mlops.cfn import deploy_stage

    with mock_aws(config={"batch": {"use_docker": False}}):
        aws.reset_clients()
        settings = Settings.for_stage("local")
        deploy_stage(settings)
        yield settings
        aws.reset_clients()


@pytest.fixture(params=["memory", "batch", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", RecordingLauncher(), lambda job: job["job_id"])
    elif request.param == "batch":
        from chalicelib.adapters.aws.training_launcher import BatchTrainingLauncher

        launcher = BatchTrainingLauncher(request.getfixturevalue("batch_stack"))
        yield Backend("batch", launcher, lambda job: job["job_id"])
    else:
        (tmp_path / "jobs").mkdir()
        (tmp_path / "jobs" / "echo_job.py").write_text(ECHO)
        started: list[int] = []

        def identity(job: dict[str, Any]) -> object:
            started.append(job["pid"])
            return job["pid"]

        yield Backend("local", LocalTrainingLauncher(tmp_path, module="echo_job"), identity)
        for pid in started:
            _reap(pid)


def test_a_launch_says_where_the_job_went_and_each_job_is_its_own(backend):
    first = backend.launcher.launch("run-1", "iris")
    second = backend.launcher.launch("run-2", "iris")
    assert first["backend"] == second["backend"] == backend.name
    assert backend.identity(first) != backend.identity(second)


@pytest.mark.parametrize(("run_id", "dataset"), [("", "iris"), ("run-1", "")])
def test_a_launch_without_a_run_or_dataset_is_refused(backend, run_id, dataset):
    with pytest.raises(ValueError, match="required"):
        backend.launcher.launch(run_id, dataset)


def test_the_local_job_runs_the_entry_point_with_the_run_in_the_project_with_local_capacity(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "echo_job.py").write_text(ECHO)
    job = LocalTrainingLauncher(tmp_path, module="echo_job").launch("run-7", "iris")
    _reap(job["pid"])
    assert job["log"] == os.path.join(".mlops", "runs", "run-7.log")
    output = (tmp_path / job["log"]).read_text()
    assert "args ['--run-id', 'run-7', '--dataset', 'iris'] capacity local" in output
    assert f"cwd {tmp_path}" in output


def test_a_recording_launcher_records_runs_in_order_and_can_refuse():
    launcher = RecordingLauncher()
    launcher.launch("run-1", "a")
    launcher.launch("run-2", "b")
    assert launcher.launched == [("run-1", "a"), ("run-2", "b")]
    refusing = RecordingLauncher(fail_with=RuntimeError("queue disabled"))
    with pytest.raises(RuntimeError, match="queue disabled"):
        refusing.launch("run-3", "a")
    assert refusing.launched == []


def _reap(pid: int) -> None:
    """Wait for a child the launcher started (it may already have been reaped by subprocess)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
