"""Wiring: the one place where the stages' ports meet their AWS adapters, once per process.

Entry points (``chalicelib/entrypoints``, the CLI, the job entry points) ask here for what a service
needs and pass it in; services never build adapters or read the environment themselves. Each
function builds its adapter on first use (a boto3 client costs ~0.14 s, so a function pays only for
what it uses) and keeps it for the process. Tests that switch endpoints call ``reset()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.notify import Notifier
    from chalicelib.registry.ports import Registry
    from chalicelib.serving.ports import ArtifactReader
    from chalicelib.serving.predict import Predictor

_CACHED: list[Callable[..., Any]] = []


def _once[F: Callable[..., Any]](build: F) -> F:
    cached = functools.cache(build)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


@_once
def settings() -> Settings:
    """The stage's resource names, from the environment (read once)."""
    return Settings.from_env()


# --- registry, serving and notifications ------------------------------------------------------------


@_once
def registry() -> Registry:
    """The model registry and its audit ledger (DynamoDB)."""
    from chalicelib.adapters.aws.registry import DynamoRegistry

    return DynamoRegistry(settings().registry_table, settings().audit_table)


@_once
def artifacts() -> ArtifactReader:
    """Stored model artifacts and candidate files (S3)."""
    from chalicelib.adapters.aws.artifacts import S3Artifacts

    return S3Artifacts()


@_once
def notifier() -> Notifier:
    """The stage's notifications (SNS)."""
    from chalicelib.adapters.aws.notifier import SnsNotifier

    return SnsNotifier(settings())


@_once
def predictor() -> Predictor:
    """This container's predictor: its champion pointers and model sessions live as long as it does."""
    from chalicelib.serving.predict import Predictor

    return Predictor(registry(), artifacts())


# --- end of registry, serving and notifications -----------------------------------------------------


def reset() -> None:
    """Forget every adapter and the settings (tests switch endpoints and stages between cases)."""
    from chalicelib.adapters import aws

    aws.reset_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]
