"""The entry points: blueprints per area, errors mapped to HTTP once, event handlers as Lambda runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chalice import Chalice
from chalice.test import Client

from app import app
from chalicelib.entrypoints.blueprint import Area
from chalicelib.errors import Conflict, IntegrityFailure, InvalidInput, MlopsError, NotFound

PROJECT = Path(__file__).resolve().parents[1]


def test_app_py_registers_the_areas_and_every_event_handler_keeps_its_function_name():
    names = {source.name for source in app.event_sources}
    assert names == {
        "ingest_upload",
        "kickoff_retraining",
        "scheduled_retrain_check",
        "evaluate_candidate",
        "plan_batch_job",
        "batch_shard_failed",
    }
    assert all(source.handler_string.startswith("chalicelib.entrypoints.") for source in app.event_sources)


def test_each_event_handler_has_its_middleware_when_lambda_imports_only_its_module():
    """Lambda imports ``chalicelib.entrypoints.<area>`` directly, never app.py (aws/chalice#1566)."""
    # Read from the app, not from the handlers: Chalice collects an app's middleware lazily, once.
    kinds = {"scheduled_retrain_check": "scheduled"}
    expected = {
        source.handler_string: len(list(app._get_middleware_handlers(kinds.get(source.name, "sqs"))))
        for source in app.event_sources
    }
    assert all(count >= 3 for count in expected.values()), expected
    probe = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for handler in sys.argv[1:]:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    out[handler] = len(getattr(importlib.import_module(module), name).middleware_handlers)\n"
        "assert 'app' not in sys.modules, 'app.py was imported'\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *expected], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def _app_raising(error: Exception) -> Chalice:
    area = Area(__name__)

    @area.route("/boom", methods=["GET"])
    def boom() -> dict[str, str]:
        raise error

    test_app = Chalice(app_name="errors-test")
    test_app.register_blueprint(area)
    return test_app


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("field: must be a number"), 400),
        (NotFound("no model named 'x'"), 404),
        (Conflict("run r-1 is in flight"), 409),
        (IntegrityFailure("model.onnx: sha256 differs"), 500),
    ],
)
def test_every_kind_of_project_error_becomes_its_http_status_with_the_message(error: MlopsError, status: int):
    with Client(_app_raising(error)) as client:
        response = client.http.get("/boom")
    assert response.status_code == status
    assert str(error) in response.json_body["Message"]


def test_an_invalid_input_with_details_answers_400_with_them_beside_the_message():
    class Problems(InvalidInput):
        def details(self) -> dict[str, object]:
            return {
                "problems": [{"record": 0, "field": "age", "problem": "not a number"}],
                "problem_count": 1,
            }

    with Client(_app_raising(Problems("record 0, age: not a number"))) as client:
        response = client.http.get("/boom")
    assert response.status_code == 400
    assert response.json_body["problems"][0]["field"] == "age"
    assert response.json_body["problem_count"] == 1
    assert response.json_body["Message"] == "record 0, age: not a number"


def test_an_unexpected_exception_stays_a_500_without_its_details():
    with Client(_app_raising(RuntimeError("secret internals"))) as client:
        response = client.http.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.body.decode()
