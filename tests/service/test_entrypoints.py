"""The entry points: blueprints per area, errors mapped to HTTP once. (Event handlers as Lambda imports
them, in a fresh interpreter: tests/deploy/test_cold_start.py.)"""

from __future__ import annotations

import pytest
from chalice import Chalice
from chalice.test import Client

from app import app
from chalicelib.entrypoints.blueprint import Area
from chalicelib.errors import Conflict, IntegrityFailure, InvalidInput, MlopsError, NotFound


def test_app_py_registers_the_areas_and_every_event_handler_keeps_its_function_name():
    names = {source.name for source in app.event_sources}
    assert names == {
        "ingest_upload",
        "kickoff_retraining",
        "scheduled_retrain_check",
        "monitor_models",
        "advance_rollouts",
        "sweep_uploads",
        "evaluate_candidate",
        "plan_batch_job",
        "batch_shard_failed",
    }
    assert all(source.handler_string.startswith("chalicelib.entrypoints.") for source in app.event_sources)


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
