"""Batch inference on spot workers: requests, shard plans, the jobs table, finishing, costs.

The Lambda side (planner, API, DLQ handler) lives here, on the ports of ``ports.py`` (their AWS and
in-memory adapters are in ``chalicelib/adapters``); the workers that score shards are in the job image
(``jobs/scoring/``).
"""

from chalicelib.batch.exceptions import (
    BadShard,
    BatchError,
    InvalidRequest,
    JobNotFound,
    ModelNotAvailable,
    ModelNotFound,
)
from chalicelib.batch.jobs import FAILED, PARTIAL, PLANNING, RUNNING, SUBMITTED, SUCCEEDED
from chalicelib.batch.requests import BatchRequest
from chalicelib.batch.sharding import Shard

__all__ = [
    "FAILED",
    "PARTIAL",
    "PLANNING",
    "RUNNING",
    "SUBMITTED",
    "SUCCEEDED",
    "BadShard",
    "BatchError",
    "BatchRequest",
    "InvalidRequest",
    "JobNotFound",
    "ModelNotAvailable",
    "ModelNotFound",
    "Shard",
]
