"""The app's wiring, read from app.py without AWS: which routes need a token, and the queues and
schedules the event runtime subscribes its functions to."""

from __future__ import annotations

import pytest

from mlops.runtime import subscriptions_from_app
from tests.support import load_app

# Routes that carry no data, so need no token: a browser's navigation to the console cannot send one.
OPEN_ROUTES = {"/health", "/console", "/console/assets/{name}"}
# A read that means nothing without a token: whose token it is.
ALWAYS_GUARDED = {"/session"}


@pytest.mark.parametrize("reads", ["true", "false"])
def test_every_changing_route_needs_a_token_and_reads_as_configured(monkeypatch, reads):
    from chalicelib.auth import PERMISSIONS

    routes = load_app(monkeypatch, reads).routes
    for path, methods in routes.items():
        for method, entry in methods.items():
            if path in OPEN_ROUTES:
                assert entry.authorizer is None
                continue
            assert (method, path) in PERMISSIONS, f"{method} {path} is missing from auth.PERMISSIONS"
            reading = method == "GET" or path.endswith("/predict")  # predictions change nothing
            protected = not reading or reads == "true" or path in ALWAYS_GUARDED
            assert (entry.authorizer is not None) == protected, f"{method} {path}"


def test_subscriptions_come_from_the_decorators_and_the_stage_config():
    from app import app
    from mlops.localcloud import stage_config

    (sub,) = [
        s
        for s in subscriptions_from_app(app, "local", stage_config("local"))
        if s.handler_name == "ingest_upload"
    ]
    assert sub.queue_name == "serverless-mlops-local-ingest"
    assert (sub.batch_size, sub.batching_window_s) == (1, 0.0)  # one upload an invocation
    assert sub.timeout_s == 900
    assert sub.function_name == "serverless-mlops-local-ingest_upload"


def test_schedules_come_from_the_decorators_with_their_rate():
    from app import app
    from mlops.localcloud import stage_config
    from mlops.runtime import schedules_from_app

    schedules = {s.handler_name: s for s in schedules_from_app(app, "local", stage_config("local"))}
    assert sorted(schedules) == ["advance_rollouts", "monitor_models", "scheduled_retrain_check"]
    intervals = {"advance_rollouts": 300}  # the rollout evaluator; the others hourly
    for name, schedule in schedules.items():
        assert schedule.interval_s == intervals.get(name, 3600)
        assert schedule.function_name == f"serverless-mlops-local-{name}"
