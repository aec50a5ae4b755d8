"""Errors of the ingest stage (uploads belong to the validation stage's part of the hierarchy)."""

from chalicelib.errors import Conflict, NotFound, ValidationError


class ObjectGone(ValidationError, NotFound):
    """The notified object (or the notified version of it) no longer exists."""


class ContentInProgress(ValidationError, Conflict):
    """The same bytes are being ingested as another upload that has not completed yet.

    Transient: the message fails and is delivered again later, when the other upload is recorded.
    """
