"""The monitor's store (window reports, create-only breach records, prediction references): one suite,
run against the in-memory and the S3 (moto) implementation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory.monitoring import MemoryMonitoringStore
from chalicelib.monitoring.store import MonitoringStore, stamp

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", "moto"])
def store(request: pytest.FixtureRequest) -> MonitoringStore:
    if request.param == "memory":
        return MemoryMonitoringStore()
    from chalicelib.adapters.aws.monitoring import S3MonitoringStore

    settings = request.getfixturevalue("aws_module")
    return S3MonitoringStore(settings.data_bucket, settings.stage)


@pytest.fixture
def model() -> str:
    """A model of this test's own (the moto stack is shared by the module's tests)."""
    return f"m_{uuid.uuid4().hex[:10]}"


def _report(start: datetime, records: int = 10) -> dict[str, Any]:
    return {"window": stamp(start), "start": start.isoformat(), "volume": {"records": records}}


def test_windows_come_back_oldest_first_within_the_half_open_range(store, model):
    for hour in (3, 0, 2, 1, 4):
        store.put_window(model, _report(T0 + hour * HOUR))
    found = store.windows(model, T0 + HOUR, T0 + 4 * HOUR)
    assert [w["window"] for w in found] == [stamp(T0 + h * HOUR) for h in (1, 2, 3)]
    assert store.windows(model, T0 + 5 * HOUR, T0 + 9 * HOUR) == []
    assert store.windows(f"{model}x", T0, T0 + 9 * HOUR) == []


def test_a_window_reported_again_is_replaced(store, model):
    store.put_window(model, _report(T0, records=1))
    store.put_window(model, _report(T0, records=2))
    assert [w["volume"]["records"] for w in store.windows(model, T0, T0 + HOUR)] == [2]


def test_a_breach_is_recorded_once_whoever_records_it_again(store, model):
    breach = {"kind": "drift", "windows": [stamp(T0), stamp(T0 + HOUR)], "reason": "first"}
    assert store.add_breach(model, breach) is True
    assert store.add_breach(model, {**breach, "reason": "second"}) is False
    other = {**breach, "kind": "quality"}
    assert store.add_breach(model, other) is True
    found = store.breaches(model, T0, T0 + 2 * HOUR)
    assert sorted((b["kind"], b["reason"]) for b in found) == [("drift", "first"), ("quality", "first")]
    assert store.breaches(model, T0, T0 + HOUR) == []  # named by the last window of the run


def test_a_reference_is_kept_per_version(store, model):
    assert store.reference(model, 1) is None
    store.put_reference(model, 1, {"kind": "labels", "counts": {"a": 3}})
    store.put_reference(model, 2, {"kind": "numeric", "sample": [1.5]})
    assert store.reference(model, 1) == {"kind": "labels", "counts": {"a": 3}}
    assert store.reference(model, 2) == {"kind": "numeric", "sample": [1.5]}
