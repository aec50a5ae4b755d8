"""Submitting a training run to AWS Batch (Lambda side: boto3 only, no scikit-learn).

The job definition (``infra/template.yaml``, ``TrainingJobDefinition``) runs
``python -m training.main --run-id Ref::run_id --dataset Ref::dataset``; this module fills those
two parameters and picks the queue: the spot queue by default (spot first, on-demand when the
spot environment is full), or the on-demand queue for a run that cannot wait for spot capacity.
Retries after a spot reclaim are Batch's (the definition's retry strategy), not ours.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.adapters import aws
from chalicelib.settings import Settings

# SubmitJob: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number.
MAX_JOB_NAME = 128
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


def job_name(dataset: str, run_id: str) -> str:
    """``train-<dataset>-<run_id>`` in Batch's alphabet, at most 128 characters.

    Characters Batch refuses become ``-``. When the name is too long the dataset part is
    shortened first: the run id is what tells two jobs apart in the console.
    """
    safe_dataset = _NOT_ALLOWED.sub("-", dataset)
    safe_run = _NOT_ALLOWED.sub("-", run_id)
    name = f"train-{safe_dataset}-{safe_run}"
    if len(name) > MAX_JOB_NAME:
        room = max(MAX_JOB_NAME - len("train--") - len(safe_run), 1)
        name = f"train-{safe_dataset[:room]}-{safe_run}"[:MAX_JOB_NAME]
    return name


def submit_training(run_id: str, dataset: str, settings: Settings, on_demand: bool = False) -> dict[str, str]:
    """Submit one training run; returns where it went and Batch's job id."""
    if not run_id or not dataset:
        raise ValueError("run_id and dataset are required")
    queue = settings.ondemand_job_queue if on_demand else settings.spot_job_queue
    name = job_name(dataset, run_id)
    response: dict[str, Any] = aws.client("batch").submit_job(
        jobName=name,
        jobQueue=queue,
        jobDefinition=settings.training_job_definition,
        parameters={"run_id": run_id, "dataset": dataset},
        tags={"dataset": dataset, "run_id": run_id},
    )
    return {"backend": "batch", "job_id": response["jobId"], "job_queue": queue, "job_name": name}
