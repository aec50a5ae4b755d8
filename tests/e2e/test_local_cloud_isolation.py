"""Each local cloud starts from what it was given, not from the last one this process ran.

moto keeps its backends in module globals, and its threaded server serves them whatever port it
listens on: a second local cloud started in the same process (the test suite does this, one per
module) found the first one's buckets, objects, registry items and queues. The console's browser
scenario, run after the batch chaos module, met that module's champion and its candidate never
became champion. A cloud in memory starts empty; a cloud with a state directory starts with exactly
that directory's state.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.settings import Settings
from mlops.localcloud import LocalCloud, free_port

MARK = "incoming/leftover/from-the-first-cloud.csv"


@pytest.fixture
def restored_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _cloud(**kwargs: Any) -> LocalCloud:
    # No events, no API, no IAM: only the stack and its state matter here.
    return LocalCloud(port=free_port(), api_port=None, events=False, enforce_iam=False, **kwargs)


def _leave_a_mark(cloud: LocalCloud) -> None:
    s3 = boto3.client("s3", endpoint_url=cloud.endpoint)
    s3.put_object(Bucket=Settings.for_stage("local").data_bucket, Key=MARK, Body=b"a,b\n1,2\n")
    boto3.client("s3", endpoint_url=cloud.endpoint).create_bucket(Bucket="only-in-the-first-cloud")


def _marks(cloud: LocalCloud) -> tuple[bool, bool]:
    s3 = boto3.client("s3", endpoint_url=cloud.endpoint)
    listed = s3.list_objects_v2(Bucket=Settings.for_stage("local").data_bucket, Prefix=MARK)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    return listed.get("KeyCount", 0) > 0, "only-in-the-first-cloud" in buckets


def test_a_cloud_in_memory_starts_without_the_previous_cloud_s_state(restored_environ):
    first = _cloud().start()
    try:
        _leave_a_mark(first)
        assert _marks(first) == (True, True)  # the check can see a mark
    finally:
        first.stop()
    second = _cloud().start()
    try:
        assert _marks(second) == (False, False)
    finally:
        second.stop()


def test_a_cloud_with_a_state_directory_starts_with_that_state_only(restored_environ, tmp_path: Path):
    kept = _cloud(state_dir=tmp_path / "kept").start()
    try:
        boto3.client("s3", endpoint_url=kept.endpoint).create_bucket(Bucket="only-in-the-kept-state")
    finally:
        kept.stop()
    other = _cloud().start()  # in memory, in between: its mark must not reach the kept state
    try:
        _leave_a_mark(other)
    finally:
        other.stop()
    again = _cloud(state_dir=tmp_path / "kept").start()
    try:
        buckets = {
            b["Name"] for b in boto3.client("s3", endpoint_url=again.endpoint).list_buckets()["Buckets"]
        }
        assert "only-in-the-kept-state" in buckets
        assert _marks(again) == (False, False)
    finally:
        again.stop()
