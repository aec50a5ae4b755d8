"""What can go wrong with a batch inference job, each with a name that says so."""

from __future__ import annotations

from chalicelib.errors import BatchError, Conflict, InvalidInput, NotFound

__all__ = ["BadShard", "BatchError", "InvalidRequest", "JobNotFound", "ModelNotAvailable"]


class InvalidRequest(BatchError, InvalidInput):
    """A batch job request that cannot be accepted; the message names the field and the fix."""


class JobNotFound(BatchError, NotFound):
    """No batch job with that id."""


class ModelNotAvailable(BatchError, Conflict):
    """The model (or the version asked for) cannot score: not registered, rejected, or no champion."""


class BadShard(BatchError):
    """A shard's rows cannot be scored (bad values, wrong columns): retrying will not help."""
