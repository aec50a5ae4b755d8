"""Requests /predict must refuse with a 4xx naming the record, the field and the problem (and 404s),
against one champion deployed once for the module (these tests only read)."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.serving import predict
from tests.support import DATASET, contract_for, evaluate, holdout_records, post, publish


@pytest.fixture(scope="module")
def client(aws_module):
    S3ContractStore(aws_module.data_bucket).put(contract_for())
    with Client(app, stage_name="local") as c:
        publish(aws_module, "forest")
        evaluate(c, aws_module)  # v1 champion
        publish(aws_module, "stump", tamper="model.onnx")
        evaluate(c, aws_module)  # v2 rejected (integrity)
        yield c


@pytest.fixture(autouse=True)
def _fresh_container():
    bootstrap.reset()
    yield
    bootstrap.reset()


# --- not found ------------------------------------------------------------------------------------------


def test_unknown_model_or_version_is_a_404_naming_it(client):
    records = holdout_records(n=1)
    unknown = post(client, "/models/nothing/predict", {"records": records})
    assert unknown.status_code == 404 and "no model named 'nothing'" in unknown.json_body["Message"]
    version = post(client, f"/models/{DATASET}/versions/9/predict", {"records": records})
    assert version.status_code == 404 and "no version 9" in version.json_body["Message"]
    assert post(client, f"/models/{DATASET}/versions/x/predict", {"records": records}).status_code == 400


def test_a_rejected_version_is_not_served(client):
    pinned = post(client, f"/models/{DATASET}/versions/2/predict", {"records": holdout_records(n=1)})
    assert pinned.status_code == 409 and "rejected" in pinned.json_body["Message"]


# --- malformed requests: 4xx naming the record, the field and the problem ------------------------------


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict(holdout_records(n=1)[0])
    for key, value in changes.items():
        if value is _DROP:
            record.pop(key)
        else:
            record[key] = value
    return record


_DROP = object()


@pytest.mark.parametrize(
    "records, record, field, fragment",
    [
        ([_record(mean_radius=_DROP)], 0, "mean_radius", "missing"),
        ([_record(colour="red")], 0, "colour", "unknown feature"),
        ([_record(mean_radius="12.5")], 0, "mean_radius", "expected a number"),
        ([_record(mean_radius=True)], 0, "mean_radius", "expected a number"),
        ([_record(mean_radius=[1])], 0, "mean_radius", "expected a number"),
        ([_record(), _record(mean_radius=-1.0)], 1, "mean_radius", "below the minimum 0"),
        ([_record(mean_radius=1e9)], 0, "mean_radius", "above the maximum"),
        ([_record(mean_radius=None)], 0, "mean_radius", "null is not allowed"),
        ([_record(), "not an object"], 1, None, "must be a JSON object"),
    ],
    ids=["missing", "unknown", "string", "boolean", "list", "below-min", "above-max", "null", "not-object"],
)
def test_a_bad_record_is_a_400_naming_record_field_and_problem(client, records, record, field, fragment):
    response = post(client, f"/models/{DATASET}/predict", {"records": records})
    assert response.status_code == 400
    problems = response.json_body["problems"]
    assert any(
        p["record"] == record and p["field"] == field and fragment in p["problem"] for p in problems
    ), problems
    assert fragment in response.json_body["Message"]


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"records": []}', "records': empty"),
        (b'{"rows": []}', "rows': unknown field; this body takes: records"),
        (b'{"records": {"a": 1}}', "expected a list, got an object"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"records": [', "not valid JSON"),
        (b'{"records": [{"mean_radius": NaN}]}', "NaN"),
        (b'{"records": ' + b"[" * 64 + b"]" * 64 + b"}", "nested deeper"),
        (b'{"records": [], "records": []}', "appears twice"),
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
    ],
    ids=[
        "empty-list",
        "unknown-key",
        "not-list",
        "not-object",
        "malformed",
        "nan",
        "deep",
        "duplicate",
        "no-body",
        "not-utf8",
    ],
)
def test_a_malformed_body_is_a_400_that_names_the_problem(client, raw, fragment):
    response = post(client, f"/models/{DATASET}/predict", None, raw=raw)
    assert response.status_code == 400 and fragment in response.json_body["Message"], response.json_body


def test_too_many_records_or_bytes_are_refused_with_the_limit(client):
    record = holdout_records(n=1)[0]
    many = post(client, f"/models/{DATASET}/predict", {"records": [record] * (predict.MAX_RECORDS + 1)})
    assert many.status_code == 400 and "more than the limit of 1,000 items" in many.json_body["Message"]
    padding = {"records": [record], "pad": "x" * predict.MAX_BODY_BYTES}
    big = post(client, f"/models/{DATASET}/predict", padding)
    assert big.status_code == 400 and "over the limit of 1,048,576" in big.json_body["Message"]


def test_many_bad_records_are_counted_and_the_first_named(client):
    bad = [_record(mean_radius="x")] * 50
    body = post(client, f"/models/{DATASET}/predict", {"records": bad}).json_body
    assert body["problem_count"] == 50 and len(body["problems"]) == 20 and "and 30 more" in body["Message"]


def test_a_wrong_content_type_is_a_4xx(client):
    response = client.http.post(
        f"/models/{DATASET}/predict", body=b"records", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


# --- the lean path (issue 19): the same answers as Chalice's own path ----------------------------------


def _event(client: Any, method: str, path: str, raw: bytes, headers: dict[str, str], text: bool) -> Any:
    event = client.http._local_gateway._generate_lambda_event(method, path, headers, raw)
    if text and isinstance(event.get("body"), bytes):  # API Gateway sends a text body as text
        event["body"] = event["body"].decode("utf-8", "surrogateescape")
    return event


def _both(event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    """(the lean path's answer or None, the app's answer, Chalice's own answer) to one event, with the
    same request id each time."""
    import copy

    from chalice import Chalice
    from chalice.local import LambdaContext

    from chalicelib.entrypoints import blueprint, predictions

    monkeypatch.setattr(predictions, "new_request_id", lambda: "0" * 32)
    context = LambdaContext("serverless-mlops-local", 1024)
    lean = blueprint.answer_lean(app, copy.deepcopy(event), context, predictions.LEAN_ROUTES)
    bootstrap.reset()
    answered = app(copy.deepcopy(event), context)
    bootstrap.reset()
    chalice = Chalice.__call__(app, copy.deepcopy(event), context)
    return lean, answered, chalice


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    import json

    assert (a["statusCode"], a["headers"], a["multiValueHeaders"]) == (
        b["statusCode"],
        b["headers"],
        b["multiValueHeaders"],
    )
    assert a.get("isBase64Encoded") == b.get("isBase64Encoded")
    assert json.loads(a["body"]) == json.loads(b["body"]), (a["body"], b["body"])


_GOOD = {"records": "good"}  # placeholder: filled with holdout records below


@pytest.mark.parametrize(
    "path, raw, headers, lean",
    [
        (f"/models/{DATASET}/predict", _GOOD, {"Content-Type": "application/json"}, True),
        (f"/models/{DATASET}/predict", _GOOD, {"content-type": "APPLICATION/JSON"}, True),
        (f"/models/{DATASET}/predict", _GOOD, {}, True),
        (f"/models/{DATASET}/versions/1/predict", _GOOD, {"Content-Type": "application/json"}, True),
        (f"/models/{DATASET}/versions/2/predict", _GOOD, {"Content-Type": "application/json"}, True),
        (f"/models/{DATASET}/versions/9/predict", _GOOD, {"Content-Type": "application/json"}, True),
        (f"/models/{DATASET}/versions/x/predict", _GOOD, {"Content-Type": "application/json"}, True),
        ("/models/nothing/predict", _GOOD, {"Content-Type": "application/json"}, True),
        ("/models/Bad%20Name/predict", _GOOD, {"Content-Type": "application/json"}, True),
        (f"/models/{DATASET}/predict", b'{"records": [{"mean_radius": "x"}]}', {}, True),
        (f"/models/{DATASET}/predict", b'{"records": [], "records": []}', {}, True),
        (f"/models/{DATASET}/predict", b'{"records": [{"a": NaN}]}', {}, True),
        (f"/models/{DATASET}/predict", b"", {}, True),
        (f"/models/{DATASET}/predict", b"\xff\xfe", {}, True),
        (f"/models/{DATASET}/predict", b"[1]", {}, True),
        (f"/models/{DATASET}/predict", _GOOD, {"Content-Type": "text/plain"}, False),
        (f"/models/{DATASET}/predict", _GOOD, {"Content-Type": "application/json; charset=utf-8"}, False),
        ("/health", b"", {}, False),
    ],
)
@pytest.mark.parametrize("text", [True, False], ids=["text-body", "bytes-body"])
def test_the_lean_path_answers_a_predict_request_as_chalice_does(
    client, monkeypatch, path, raw, headers, lean, text
):
    import json

    if raw is _GOOD:
        raw = json.dumps({"records": holdout_records(n=2)}).encode()
    method = "GET" if path == "/health" else "POST"
    event = _event(client, method, path, raw, headers, text)
    answer, answered, chalice = _both(event, monkeypatch)
    assert (answer is not None) == lean
    if answer is not None:
        _same(answer, chalice)
    _same(answered, chalice)


def test_the_lean_path_leaves_a_base64_body_to_chalice(client, monkeypatch):
    import base64
    import json

    raw = json.dumps({"records": holdout_records(n=1)}).encode()
    event = _event(
        client, "POST", f"/models/{DATASET}/predict", raw, {"Content-Type": "application/json"}, True
    )
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    answer, answered, chalice = _both(event, monkeypatch)
    assert answer is None and answered["statusCode"] == 200
    _same(answered, chalice)


def test_the_lean_path_sets_the_requests_log_keys_as_the_middleware_does(client, monkeypatch):
    import json

    from chalicelib.observability import logger

    raw = json.dumps({"records": holdout_records(n=1)}).encode()
    event = _event(
        client, "POST", f"/models/{DATASET}/predict", raw, {"Content-Type": "application/json"}, True
    )
    event["requestContext"]["requestId"] = "lean-request-1"
    answer, _, _ = _both(event, monkeypatch)
    assert answer is not None and answer["statusCode"] == 200
    from chalice.local import LambdaContext

    from chalicelib.entrypoints import blueprint, predictions

    event["requestContext"]["requestId"] = "lean-request-2"
    blueprint.answer_lean(app, event, LambdaContext("serverless-mlops-local", 1024), predictions.LEAN_ROUTES)
    keys = logger.get_current_keys()
    assert keys["correlation_id"] == "lean-request-2" and keys["handler"] == "api_handler"
