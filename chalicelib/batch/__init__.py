"""Batch inference on spot workers: requests, shard plans, the jobs table, finishing, costs.

The Lambda side (planner, API, DLQ handler) lives here and needs only boto3; the workers that score
shards are in the job image (``jobs/scoring/``).
"""

from chalicelib.batch.exceptions import BadShard, BatchError, InvalidRequest, JobNotFound, ModelNotAvailable
from chalicelib.batch.jobs import FAILED, PARTIAL, PLANNING, RUNNING, SUBMITTED, SUCCEEDED, JobStore
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
    "JobStore",
    "ModelNotAvailable",
    "Shard",
]
