"""Wiring: the one place where the stages' ports meet their AWS adapters, once per process.

Entry points (``chalicelib/entrypoints``, the CLI, the job entry points) ask here for what a service
needs and pass it in; services never build adapters or read the environment themselves. Each
function builds its adapter on first use (a boto3 client costs ~0.14 s, so a function pays only for
what it uses) and keeps it for the process. Tests that switch endpoints call ``reset()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalicelib.settings import Settings

_CACHED: list[Callable[..., Any]] = []


def _once[F: Callable[..., Any]](build: F) -> F:
    cached = functools.cache(build)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


@_once
def settings() -> Settings:
    """The stage's resource names, from the environment (read once)."""
    return Settings.from_env()


def reset() -> None:
    """Forget every adapter and the settings (tests switch endpoints and stages between cases)."""
    from chalicelib.adapters import aws

    aws.reset_clients()
    for cached in _CACHED:
        cached.cache_clear()  # type: ignore[attr-defined]
