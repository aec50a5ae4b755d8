"""Errors of the ingest stage (uploads belong to the validation stage's part of the hierarchy)."""

from chalicelib.errors import Conflict, NotFound, ValidationError


class ObjectGone(ValidationError, NotFound):
    """The notified object (or the notified version of it) no longer exists."""


class ContentInProgress(ValidationError, Conflict):
    """The same bytes are being ingested as another upload that has not completed yet.

    Transient: the message fails and is delivered again later, when the other upload is recorded.
    """


class UploadNotFound(ValidationError, NotFound):
    """No upload with that id in the ledger (a 404)."""


class NotRevocable(ValidationError, Conflict):
    """The upload is not valid (quarantined, a duplicate, missing, unroutable): it never reached
    training data, so there is nothing to revoke (a 409)."""
