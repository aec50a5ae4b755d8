"""Lazily created boto3 clients, one per service and process.

Creating a client costs ~0.14 s, so none is made at import time: a function pays only for the
clients it uses. ``AWS_ENDPOINT_URL`` (set by the local cloud and the tests) points every client
at moto.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@functools.cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
