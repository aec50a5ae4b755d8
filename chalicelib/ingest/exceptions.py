"""Errors of the ingest stage (uploads belong to the validation stage's part of the hierarchy)."""

from chalicelib.errors import NotFound, ValidationError


class ObjectGone(ValidationError, NotFound):
    """The notified object (or the notified version of it) no longer exists."""
