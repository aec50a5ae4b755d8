"""One error hierarchy for the whole project, mapped to HTTP in one place (``chalicelib.entrypoints``).

Every error the code raises on purpose derives from ``MlopsError``. Each stage has its own base
(``ValidationError``, ``TrainingError``, ``RegistryError``, ``ServingError``, ``BatchError``,
``AuthError``), and each concrete error also derives from one of the kinds below, which decide the
HTTP answer: ``InvalidInput`` 400, ``NotFound`` 404, ``Conflict`` 409. Anything else is a bug and
stays a 500 (logged by Chalice, never shown to the client).
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error the project raises on purpose."""


class InvalidInput(MlopsError, ValueError):
    """The caller sent something that cannot be accepted; the message names the field and the fix."""

    def details(self) -> dict[str, object]:
        """Structured fields for the 400 body beside the message (e.g. every problem of a request)."""
        return {}


class NotFound(MlopsError, LookupError):
    """The thing asked for does not exist."""


class Conflict(MlopsError):
    """The request is valid but clashes with the current state (a run in flight, a stale approval)."""


class IntegrityFailure(MlopsError):
    """Stored bytes differ from what was verified: never used. Not the client's fault: a 500 naming it."""


# --- one base per stage ----------------------------------------------------------------------------


class ValidationError(MlopsError):
    """Base of the validation stage's errors (contracts, uploads)."""


class TrainingError(MlopsError):
    """Base of the training stage's errors (retrain requests, runs)."""


class RegistryError(MlopsError):
    """Base of the model registry's errors."""


class ServingError(MlopsError):
    """Base of the errors of scoring with a registered model."""


class BatchError(MlopsError):
    """Base of the batch inference errors."""


class AuthError(MlopsError):
    """Base of the API tokens' errors."""


class MonitoringError(MlopsError):
    """Base of the errors of monitoring models in production."""
