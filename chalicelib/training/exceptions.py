"""Errors of the training stage (Lambda side)."""

from __future__ import annotations

from chalicelib.errors import Conflict, NotFound, TrainingError

__all__ = ["NoRun", "RunExists", "TrainingError"]


class RunExists(TrainingError, Conflict):
    """A run with that id is already recorded: a run id names one run, once."""


class NoRun(TrainingError, NotFound):
    """No run with that id is recorded."""
