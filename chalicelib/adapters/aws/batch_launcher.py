"""A batch job's workers as one AWS Batch array job on the spot queue (``WorkerLauncher``).

One ``SubmitJob`` of the batch scoring job definition with ``arrayProperties.size`` = the worker
count (a single worker is a plain job: Batch arrays have 2 to 10,000 children); each child sees
``AWS_BATCH_JOB_ARRAY_INDEX``. Retries after a spot reclaim are the definition's (``Host EC2*`` ->
retry), and a retried child finds the shards still on the queue.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.settings import job_name


class ArrayJobLauncher:
    def __init__(self, job_queue: str, job_definition: str) -> None:
        self.job_queue = job_queue
        self.job_definition = job_definition

    def start(self, job_id: str, workers: int) -> dict[str, Any]:
        args: dict[str, Any] = {
            "jobName": job_name("batch", "score", job_id),
            "jobQueue": self.job_queue,
            "jobDefinition": self.job_definition,
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
            "job_queue": self.job_queue,
            "job_name": args["jobName"],
        }
