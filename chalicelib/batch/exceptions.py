"""What can go wrong with a batch inference job, each with a name that says so."""

from __future__ import annotations

from chalicelib.errors import BatchError, Conflict, InvalidInput, NotFound

__all__ = ["BadShard", "BatchError", "InvalidRequest", "JobNotFound", "ModelNotAvailable", "ModelNotFound"]


class InvalidRequest(BatchError, InvalidInput):
    """A batch job request that cannot be accepted; the message names the field and the fix."""


class JobNotFound(BatchError, NotFound):
    """No batch job with that id."""


class ModelNotFound(BatchError, NotFound):
    """No model of that name is registered, or it has no version of that number: a 404."""


class ModelNotAvailable(BatchError, Conflict):
    """The model is registered but cannot score now: it has no champion, or the version asked for
    was rejected (or its contract cannot be read): a 409."""


class BadShard(BatchError):
    """A shard's rows cannot be scored (bad values, wrong columns): retrying will not help."""
