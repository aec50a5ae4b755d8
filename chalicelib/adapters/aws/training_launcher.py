"""Training runs on AWS Batch.

The job definition (``infra/template.yaml``, ``TrainingJobDefinition``) runs
``python -m training.main --run-id Ref::run_id --dataset Ref::dataset``; this adapter fills those
two parameters and picks the queue: the spot queue by default (spot first, on-demand when the
spot environment is full), or the on-demand queue for a run that cannot wait for spot capacity.
Retries after a spot reclaim are Batch's (the definition's retry strategy), not ours.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.settings import Settings, job_name


class BatchTrainingLauncher:
    def __init__(self, settings: Settings, on_demand: bool = False) -> None:
        self.job_queue = settings.ondemand_job_queue if on_demand else settings.spot_job_queue
        self.job_definition = settings.training_job_definition

    def launch(self, run_id: str, dataset: str) -> dict[str, Any]:
        if not run_id or not dataset:
            raise ValueError("run_id and dataset are required")
        name = job_name("train", dataset, run_id)
        response: dict[str, Any] = aws.client("batch").submit_job(
            jobName=name,
            jobQueue=self.job_queue,
            jobDefinition=self.job_definition,
            parameters={"run_id": run_id, "dataset": dataset},
            tags={"dataset": dataset, "run_id": run_id},
        )
        return {
            "backend": "batch",
            "job_id": response["jobId"],
            "job_queue": self.job_queue,
            "job_name": name,
        }
