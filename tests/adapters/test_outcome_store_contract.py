"""The outcome store port (accepted outcomes, create-only): one suite, run against the in-memory and
the S3 (moto) implementation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.adapters.memory.outcomes import MemoryOutcomeStore
from chalicelib.monitoring.outcomes import Outcome
from chalicelib.monitoring.ports import OutcomeStore
from tests.adapters.buckets import MemoryBucket, MotoBucket

T0 = datetime(2026, 12, 1, 23, 59, 59, 500000, tzinfo=UTC)


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> tuple[OutcomeStore, Any]:
    if request.param == "memory":
        objects = MemoryObjects()
        return MemoryOutcomeStore(objects, "data"), MemoryBucket(objects, "data")
    from chalicelib.adapters.aws.outcomes import S3OutcomeStore

    settings = request.getfixturevalue("aws_module")
    return S3OutcomeStore(settings.data_bucket), MotoBucket(settings.data_bucket)


@pytest.fixture
def model() -> str:
    """A model of this test's own (the moto stack is shared by the module's tests)."""
    return f"m_{uuid.uuid4().hex[:10]}"


def _outcomes(model: str, at: datetime, n: int, source: str = "api:1") -> list[Outcome]:
    return [Outcome(model, n % 2, at, source, request_id=f"{i:032x}", index=i) for i in range(n)]


def test_added_outcomes_are_received_back_equal_and_tagged(backend, model):
    store, bucket = backend
    outcomes = [*_outcomes(model, T0, 3), Outcome(model, "yes", T0, "api:1", row_id="r-1")]
    key = store.add(model, outcomes, "api:1", classification="confidential")
    assert key.startswith(f"monitoring/{model}/outcomes/2026-12-01/") and key.endswith(".jsonl")
    assert list(store.received(model, T0, T0 + timedelta(milliseconds=1))) == outcomes
    seen = bucket.peek(key)
    assert seen.tags == {"dataset": model, "classification": "confidential", "stage": "outcomes"}


def test_adding_the_same_source_again_stores_nothing_new_and_returns_the_same_key(backend, model):
    store, bucket = backend
    first = store.add(model, _outcomes(model, T0, 2, "upload:k@v1"), "upload:k@v1", classification="internal")
    again = store.add(model, _outcomes(model, T0, 5, "upload:k@v1"), "upload:k@v1", classification="internal")
    assert again == first
    assert bucket.version_count(first) == 1
    assert len(list(store.received(model, T0, T0 + timedelta(seconds=1)))) == 2


def test_received_is_the_half_open_range_oldest_first_across_days(backend, model):
    store, _ = backend
    times = [T0 - timedelta(days=2), T0, T0 + timedelta(milliseconds=500), T0 + timedelta(days=1)]
    for n, at in enumerate(times):
        store.add(model, _outcomes(model, at, 1, f"api:{n}"), f"api:{n}", classification="internal")
    got = list(store.received(model, T0, T0 + timedelta(days=1)))
    assert [o.received_at for o in got] == [T0, T0 + timedelta(milliseconds=500)]
    assert len(list(store.received(model, T0 - timedelta(days=3), T0 + timedelta(days=2)))) == 4
    assert list(store.received(model, T0 + timedelta(days=3), T0 + timedelta(days=4))) == []
    assert list(store.received(f"{model}x", T0 - timedelta(days=3), T0 + timedelta(days=2))) == []


def test_an_empty_batch_or_a_mix_of_times_is_refused_and_nothing_is_written(backend, model):
    store, _ = backend
    with pytest.raises(ValueError):
        store.add(model, [], "api:1", classification="internal")
    mixed = _outcomes(model, T0, 1) + _outcomes(model, T0 + timedelta(seconds=1), 1)
    with pytest.raises(ValueError):
        store.add(model, mixed, "api:1", classification="internal")
    assert list(store.received(model, T0 - timedelta(days=1), T0 + timedelta(days=1))) == []


def test_arrivals_are_the_receiving_times_in_the_half_open_range_oldest_first(backend, model):
    store, _ = backend
    later = T0 + timedelta(minutes=5)
    store.add(model, _outcomes(model, later, 2, "api:2"), "api:2")
    store.add(model, _outcomes(model, T0, 3, "api:1"), "api:1")
    assert store.arrivals(model, T0, later + timedelta(seconds=1)) == [T0, later]
    assert store.arrivals(model, T0 + timedelta(seconds=1), later) == []
    assert store.arrivals(f"{model}x", T0, later + timedelta(seconds=1)) == []
