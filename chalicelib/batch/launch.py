"""Starting a job's workers: an AWS Batch array job on the spot queue, or local processes.

``JOB_BACKEND=batch``: one ``SubmitJob`` of the batch scoring job definition with
``arrayProperties.size`` = the worker count (a single worker is a plain job: Batch arrays have 2 to
10,000 children); each child sees ``AWS_BATCH_JOB_ARRAY_INDEX``. Retries after a spot reclaim are
the definition's (``Host EC2*`` -> retry), and a retried child finds the shards still on the queue.
``JOB_BACKEND=local``: N child processes of ``python -m scoring.worker`` (logs in ``.mlops/batch/``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.adapters import aws
from chalicelib.settings import Settings, job_name

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_MAX_WORKERS = 4


def worker_count(requested: int | None, shards: int, environ: dict[str, str] | None = None) -> int:
    """The request's workers (default: the maximum), within ``BATCH_MAX_WORKERS`` and the shard count."""
    env = os.environ if environ is None else environ
    maximum = max(1, int(env.get("BATCH_MAX_WORKERS", DEFAULT_MAX_WORKERS)))
    return max(1, min(requested or maximum, maximum, shards))


def start_workers(job_id: str, workers: int, settings: Settings) -> dict[str, Any]:
    backend = os.environ.get("JOB_BACKEND", "batch")
    if backend == "batch":
        return submit_array_job(job_id, workers, settings)
    if backend == "local":
        return {
            "backend": "local",
            "workers": workers,
            "pids": [launch_local_worker(job_id, i).pid for i in range(workers)],
        }
    raise ValueError(f"JOB_BACKEND={backend!r}: expected 'batch' or 'local'")


def submit_array_job(job_id: str, workers: int, settings: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "jobName": job_name("batch", "score", job_id),
        "jobQueue": settings.spot_job_queue,
        "jobDefinition": settings.batch_scoring_job_definition,
        "parameters": {"job_id": job_id},
        "tags": {"batch_job_id": job_id},
    }
    if workers > 1:
        args["arrayProperties"] = {"size": workers}
    response = aws.client("batch").submit_job(**args)
    return {
        "backend": "batch",
        "workers": workers,
        "batch_job_id": response["jobId"],
        "job_queue": settings.spot_job_queue,
        "job_name": args["jobName"],
    }


def launch_local_worker(
    job_id: str, index: int, attempt: int = 1, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """One local worker process (array index ``index``); ``attempt`` > 1 is a restart, as Batch retries."""
    logs = PROJECT_DIR / ".mlops" / "batch"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_DIR / "jobs"), str(PROJECT_DIR), env.get("PYTHONPATH", "")]
    )
    env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt)
    env.setdefault("MLOPS_CAPACITY", "local")
    # No instance metadata on a laptop: no spot notices unless a (fake) endpoint is configured.
    env.setdefault("MLOPS_IMDS_ENDPOINT", "")
    env.update(extra_env or {})
    with (logs / f"{job_id}-{index}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "scoring.worker", "--job-id", job_id],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the invocation, as a Batch job would
        )
