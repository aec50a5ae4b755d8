"""How many workers a job gets (pure). Starting them is a ``ports.WorkerLauncher``'s job: an AWS Batch
array job on the spot queue, or local processes (chalicelib/adapters)."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_MAX_WORKERS = 4


def max_workers(environ: Mapping[str, str] | None = None) -> int:
    """The stage's cap on a job's workers: ``BATCH_MAX_WORKERS`` (at least 1), default 4."""
    env = os.environ if environ is None else environ
    return max(1, int(env.get("BATCH_MAX_WORKERS", DEFAULT_MAX_WORKERS)))


def worker_count(requested: int | None, shards: int, maximum: int) -> int:
    """The request's workers (default: the maximum), within ``maximum`` and the shard count."""
    return max(1, min(requested or maximum, maximum, shards))
