"""AWS adapters. Here: lazily created boto3 clients, one per service and process, and the helpers
every boto3 adapter shares (error codes, S3 create-only writes).

Creating a client costs ~0.14 s, so none is made at import time: a function pays only for the
clients it uses. ``AWS_ENDPOINT_URL`` (set by the local cloud and the tests) points every client
at moto.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
_LOADER: list[Any] = []  # botocore's data loader, shared: it caches the service models it has read
_LOADER_LOCK = threading.Lock()


def _loader() -> Any:
    with _LOADER_LOCK:
        if not _LOADER:
            _LOADER.append(botocore.session.get_session().get_component("data_loader"))
        return _LOADER[0]


@functools.cache
def client(service: str) -> Any:
    """The process's client of one AWS service. Each is made in a session of its own (credentials,
    region and endpoint read from the environment then, as ``boto3.session.Session()`` does), but
    all share one data loader: the JSON files every client reads (endpoints, partitions, retry and
    default configuration) are parsed once per process, and a client made again (after a SnapStart
    restore, ``refresh_clients``) finds its own service model parsed already (~30 ms instead of
    ~0.15 s)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(botocore_session=core).client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()


def refresh_clients() -> None:
    """Forget the clients made so far, keeping the service models they loaded: the next call of
    ``client`` makes a new one, with the credentials and connections of now (SnapStart's
    after-restore hook, ``chalicelib.bootstrap.after_restore``)."""
    client.cache_clear()


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


MISSING_OBJECT = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412"})


def put_if_absent(bucket: str, key: str, body: bytes, **kwargs: Any) -> bool:
    """Create an S3 object only if the key is free (``IfNoneMatch="*"``). True if this call wrote it.

    S3 answers 412 when the key exists; under a concurrent write it may answer 409
    ConditionalRequestConflict instead, which means "try again" (the retry then sees the 412).
    """
    from botocore.exceptions import ClientError

    for attempt in range(5):
        try:
            client("s3").put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in PRECONDITION_FAILED:
                return False
            if code in {"ConditionalRequestConflict", "409"} and attempt < 4:
                time.sleep(0.1 * 2**attempt)
                continue
            raise
        return True
    return False
