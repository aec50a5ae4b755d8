"""The training launcher on in-process moto's AWS Batch (no Docker: jobs run nothing): the run goes to
the chosen queue with its parameters, and an empty run or dataset is refused."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.adapters.aws.training_launcher import BatchTrainingLauncher
from chalicelib.settings import Settings


@pytest.mark.parametrize("on_demand", [False, True], ids=["spot", "on-demand"])
def test_submit_training_submits_the_run_to_the_chosen_queue(batch_stack, on_demand):
    settings, _ = batch_stack
    run_id = "20261123T101500Z-4f2a"
    submitted = BatchTrainingLauncher(settings, on_demand=on_demand).launch(run_id, "breast_cancer")

    queue = settings.ondemand_job_queue if on_demand else settings.spot_job_queue
    assert submitted == {
        "backend": "batch",
        "job_id": submitted["job_id"],
        "job_queue": queue,
        "job_name": f"train-breast_cancer-{run_id}",
    }
    (job,) = boto3.client("batch").describe_jobs(jobs=[submitted["job_id"]])["jobs"]
    assert job["jobName"] == f"train-breast_cancer-{run_id}"
    assert job["jobQueue"].rsplit("/", 1)[-1] == queue
    assert job["jobDefinition"].rsplit("/", 1)[-1].split(":")[0] == settings.training_job_definition
    assert job["parameters"] == {"run_id": run_id, "dataset": "breast_cancer"}


def test_submit_training_refuses_an_empty_run_or_dataset():
    settings = Settings.for_stage("local")
    with pytest.raises(ValueError):
        BatchTrainingLauncher(settings).launch("", "iris")
    with pytest.raises(ValueError):
        BatchTrainingLauncher(settings).launch("run-1", "")
