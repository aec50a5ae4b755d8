"""Starting a training run: an AWS Batch job on spot capacity, or locally a subprocess.

``JOB_BACKEND=batch`` (deployed stages) submits to the spot job queue; ``JOB_BACKEND=local`` (the
local cloud) runs the same entry point, ``python -m training.main``, as a child process that
inherits the local cloud's endpoint and names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[2]


def launch(run_id: str, dataset: str, settings: Settings) -> dict[str, Any]:
    backend = os.environ.get("JOB_BACKEND", "batch")
    if backend == "batch":
        from chalicelib.training.batch import submit_training

        return submit_training(run_id, dataset, settings)
    if backend == "local":
        return launch_local(run_id, dataset)
    raise ValueError(f"JOB_BACKEND={backend!r}: expected 'batch' or 'local'")


def launch_local(run_id: str, dataset: str) -> dict[str, Any]:
    logs = PROJECT_DIR / ".mlops" / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{run_id}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_DIR / "jobs"), str(PROJECT_DIR), env.get("PYTHONPATH", "")]
    )
    env["MLOPS_CAPACITY"] = "local"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "training.main", "--run-id", run_id, "--dataset", dataset],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the invocation, as a Batch job would
        )
    return {"backend": "local", "pid": process.pid, "log": str(log_path.relative_to(PROJECT_DIR))}
