"""Lambda SnapStart's runtime hooks for the API function (issue 19), called here as Lambda would call
them: before the snapshot, and in each container restored from it. Lambda's runtime module is not
installed here, so registering with it is checked against a stand-in module of the same name."""

from __future__ import annotations

import random
import sys
import types
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws


@pytest.fixture(autouse=True)
def _fresh_clients():
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_without_lambdas_runtime_module_nothing_is_registered(monkeypatch):
    monkeypatch.setitem(sys.modules, bootstrap.SNAPSTART_MODULE, None)  # import fails, as here
    assert bootstrap.register_snapshot_hooks() is False


def test_with_lambdas_runtime_module_both_hooks_are_registered(monkeypatch):
    registered: dict[str, Any] = {}
    hooks = types.ModuleType(bootstrap.SNAPSTART_MODULE)
    hooks.register_before_snapshot = lambda fn: registered.setdefault("before", fn)  # type: ignore[attr-defined]
    hooks.register_after_restore = lambda fn: registered.setdefault("after", fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, bootstrap.SNAPSTART_MODULE, hooks)
    assert bootstrap.register_snapshot_hooks() is True
    assert registered == {"before": bootstrap.before_snapshot, "after": bootstrap.after_restore}


def test_containers_restored_from_one_snapshot_draw_different_random_numbers():
    random.seed(20261201)  # whatever the snapshot's state was
    snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two containers restored from the same memory
        random.setstate(snapshot)
        bootstrap.after_restore()
        draws.append([random.random() for _ in range(4)])
    random.setstate(snapshot)
    without_hook = [random.random() for _ in range(4)]
    random.setstate(snapshot)
    assert without_hook == [random.random() for _ in range(4)]  # what a restore alone would repeat
    assert draws[0] != draws[1]


def test_a_restored_container_makes_new_clients_with_the_credentials_of_now(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "SNAPSHOTKEY")
    bootstrap.before_snapshot()
    made = {service: aws.client(service) for service in bootstrap.SNAPSHOT_CLIENTS}
    assert made["s3"]._request_signer._credentials.access_key == "SNAPSHOTKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "RESTOREDKEY")  # the restored container's credentials
    assert aws.client("s3") is made["s3"]  # without the hook: the snapshot's client and credentials
    loader = aws._loader()
    bootstrap.after_restore()
    for service, old in made.items():
        new = aws.client(service)
        assert new is not old and new._request_signer._credentials.access_key == "RESTOREDKEY", service
    assert aws._loader() is loader  # the parsed service models are kept


def test_before_the_snapshot_the_predict_paths_libraries_are_loaded():
    bootstrap.before_snapshot()
    assert "onnxruntime" in sys.modules and "numpy" in sys.modules
    assert aws.client.cache_info().currsize == len(bootstrap.SNAPSHOT_CLIENTS)


def test_after_restore_the_container_forgets_its_cached_adapters():
    first = bootstrap.settings()
    bootstrap.after_restore()
    assert bootstrap.settings() is not first
