"""Which code a deployed function or job runs (chalicelib/revision.py, mlops deploy)."""

from __future__ import annotations

import subprocess

from chalicelib.revision import git_revision
from mlops.deploy import docker_build


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_the_revision_is_head_and_says_when_the_working_copy_differs(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert git_revision(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == f"{head}-dirty"


def test_without_git_there_is_no_revision(tmp_path):
    assert git_revision(tmp_path / "not-a-repository") is None


def test_the_job_image_is_built_with_its_code_revision():
    """Found at 21cd3ef: the image was built without CODE_VERSION, so every run's lineage on AWS
    said `unknown` (the job has no git inside the image)."""
    command = docker_build("123.dkr.ecr.eu-west-1.amazonaws.com/x-dev-jobs:t1", "abc123")
    assert command[command.index("--build-arg") + 1] == "CODE_VERSION=abc123"
