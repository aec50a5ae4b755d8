"""Batch job names derived from a dataset and a run id keep to AWS Batch's alphabet and length."""

from __future__ import annotations

import re

from chalicelib.settings import MAX_JOB_NAME, job_name


def test_job_name_keeps_to_batch_alphabet_and_length():
    assert job_name("train", "iris", "2026-11-23T10:15:00Z") == "train-iris-2026-11-23T10-15-00Z"
    assert job_name("train", "my data.v2", "r/1") == "train-my-data-v2-r-1"
    long = job_name("train", "d" * 300, "run-42")
    assert len(long) == MAX_JOB_NAME and long.endswith("-run-42") and long.startswith("train-d")
    assert len(job_name("train", "d", "r" * 300)) == MAX_JOB_NAME
    assert job_name("batch", "score", "job/7") == "batch-score-job-7"  # a batch scoring array job
    for name in (long, job_name("train", "x", "é ü/©")):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", name)
