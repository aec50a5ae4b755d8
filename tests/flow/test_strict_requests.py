"""Strict, total request handling through the app on in-process moto (issue 14, "What to build" 6):
every JSON body on every route refuses unknown fields (400 naming the field and the allowed ones)
and numbers its field cannot hold (400 naming the field), and nothing a client sends is a 5xx.

The routes are read from the app, so a new route is covered without touching this file. One world
for the module: v1 champion (forest), v2 pending approval (logistic, manual policy), a batch input.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import boto3
import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.entrypoints.datasets import ContractDocument
from chalicelib.http import Body
from tests.support import (
    DATASET,
    HUGE_NUMBERS,
    body_documents,
    contract_for,
    evaluate,
    holdout_records,
    json_routes,
    json_text,
    json_values,
    number_fields,
    publish,
    raw_number,
)

TOO_LONG = "1" + "0" * 5000  # more digits than Python's int() reads (4,300): ValueError inside json.loads


@pytest.fixture(scope="module")
def world(aws_module):
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import TokenStore

    S3ContractStore(aws_module.data_bucket).put(contract_for())
    boto3.client("s3").put_object(Bucket=aws_module.data_bucket, Key="batch/input/day1.csv", Body=b"a\n1\n")
    token, _ = TokenStore(SsmTokenRecords.for_settings(aws_module)).create("ops", "admin", created_by="tests")
    with Client(app, stage_name="local") as client:
        publish(aws_module, "forest")
        evaluate(client, aws_module)  # v1 champion
        S3ContractStore(aws_module.data_bucket).put(contract_for(mode="manual"))
        publish(aws_module, "logistic")
        evaluate(client, aws_module)  # v2 pending approval
        yield client, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _fresh_container():
    bootstrap.reset()
    yield
    bootstrap.reset()


def _registry(settings: Any) -> DynamoRegistry:
    return DynamoRegistry(settings.registry_table, settings.audit_table)


def _send(world: Any, method: str, path: str, raw: bytes) -> Any:
    client, headers = world
    return client.http.request(method, path, headers=headers, body=raw)


# --- the routes, from the app --------------------------------------------------------------------------

PATH_VALUES = {"name": DATASET, "version": "2"}
ROUTES = json_routes(app)


def concrete(path: str) -> str:
    """The route's path with its parameters filled in (the module's model and pending version)."""
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return re.sub(r"\{[^}]*\}", "x", path)


def test_the_app_has_the_json_routes_this_module_checks():
    assert len(ROUTES) >= 9, (
        ROUTES
    )  # contract, retrain, 2 predict, approve, reject, rollback, challenger, batch


# --- What failed 6: the listed requests --------------------------------------------------------------


def test_a_typo_in_a_field_name_is_a_400_naming_it_and_changes_nothing(aws_module, world):
    """`"expected_champoin"` once skipped the champion check the caller asked for and promoted v2."""
    body = {"reason": "looked at the gates", "expected_champoin": 7}
    response = _send(world, "POST", f"/models/{DATASET}/versions/2/approve", json.dumps(body).encode())
    assert response.status_code == 400, response.json_body
    message = response.json_body["Message"]
    assert "expected_champoin" in message and "expected_champion" in message and "reason" in message
    assert _registry(aws_module).version(DATASET, 2)["status"] == "pending_approval"
    assert _registry(aws_module).champion(DATASET) == 1


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_a_number_too_long_for_python_is_a_400_naming_its_field_on_every_json_route(
    world, method, path, body
):
    raw = ('{"reason": "x", "limit": ' + TOO_LONG + "}").encode()
    response = _send(world, method, concrete(path), raw)
    assert response.status_code == 400, (path, response.status_code, response.body[:300])
    assert "limit" in response.json_body["Message"]


@pytest.mark.parametrize("number", [TOO_LONG, "1" + "0" * 400, "1e400", "-1e400"])
def test_a_predict_feature_beyond_a_double_is_a_400_naming_the_feature(world, number):
    others = {k: v for k, v in holdout_records(n=1)[0].items() if k != "mean_radius"}
    raw = ('{"records": [' + json.dumps(others)[:-1] + ', "mean_radius": ' + number + "}]}").encode()
    for path in (f"/models/{DATASET}/predict", f"/models/{DATASET}/versions/1/predict"):
        response = _send(world, "POST", path, raw)
        assert response.status_code == 400, (path, response.status_code, response.body[:300])
        assert "mean_radius" in response.json_body["Message"]


def test_a_batch_job_for_an_unknown_model_is_a_404_and_the_cli_says_so(world, monkeypatch, capsys):
    """`mlops batch submit` for an unknown model answered 409, as if the model existed."""
    import io
    import urllib.error
    import urllib.parse
    import urllib.request

    from mlops.cli import main

    body = {"model": "nothing", "input_prefix": "batch/input/"}
    response = _send(world, "POST", "/batch-jobs", json.dumps(body).encode())
    assert response.status_code == 404 and "no model named 'nothing'" in response.json_body["Message"]

    client, headers = world

    def urlopen(request: urllib.request.Request, timeout: float) -> Any:  # the CLI's HTTP, in process
        path = urllib.parse.urlsplit(request.full_url).path
        answer = client.http.request(
            request.get_method(), path, headers=dict(request.header_items()), body=request.data or b""
        )
        if answer.status_code >= 400:
            raise urllib.error.HTTPError(
                request.full_url, answer.status_code, "", None, io.BytesIO(answer.body)
            )  # type: ignore[arg-type]
        return io.BytesIO(answer.body)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setenv("MLOPS_API_URL", "http://api.local")
    monkeypatch.setenv("MLOPS_TOKEN", headers["Authorization"].removeprefix("Bearer "))
    assert main(["batch", "submit", "nothing", "batch/input/"]) == 1
    assert "mlops batch: 404: no model named 'nothing'" in capsys.readouterr().err


# --- properties over every JSON route: nothing a client sends is a 5xx -----------------------------------

EXAMPLES = {ContractDocument: lambda: contract_for(mode="manual").to_dict()}


def _valid(body: Any) -> Any:
    """Documents the route's declaration takes (a ``Body``: generated from it; else an example)."""
    if isinstance(body, type) and issubclass(body, Body):
        return body_documents(body)
    assert body in EXAMPLES, f"give tests/flow/test_strict_requests.py an example body for {body}"
    return st.builds(EXAMPLES[body])


def _names_a_field(response: Any, doc: Any, declared: tuple[str, ...]) -> bool:
    """A 400 names where the problem is: a field it carries, a key of the body (at any depth), a
    declared field, or says the body as a whole is not what the route takes."""
    answer = response.json_body
    if answer.get("field") or any(
        p.get("field") or p.get("record") is not None for p in answer.get("problems", [])
    ):
        return True
    message = answer["Message"]
    keys: set[str] = set(declared)

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            keys.update(map(str, value))
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect(doc)
    return any(key and key in message for key in keys) or any(
        phrase in message for phrase in ("JSON object", "not valid JSON", "request body", "digits")
    )


@given(data=st.data())
def test_no_json_body_is_a_5xx_and_every_400_names_the_field(world, data):
    method, path, body = data.draw(st.sampled_from(ROUTES), label="route")
    keys = st.sampled_from(body.field_names()) | st.text(max_size=12)
    doc = data.draw(
        json_values() | st.dictionaries(keys, json_values(), max_size=5) | _valid(body), label="body"
    )
    response = _send(world, method, concrete(path), json_text(doc))
    assert response.status_code < 500, (path, doc, response.body[:300])
    if response.status_code == 400:
        assert _names_a_field(response, doc, body.field_names()), (path, response.json_body)


@given(data=st.data())
def test_an_unknown_field_on_any_json_route_is_a_400_naming_it_and_the_allowed_ones(world, data):
    method, path, body = data.draw(st.sampled_from(ROUTES), label="route")
    doc = data.draw(_valid(body), label="valid body")
    extra = data.draw(st.text(min_size=1, max_size=16).filter(lambda k: k not in body.field_names()))
    response = _send(
        world, method, concrete(path), json_text({**doc, extra: data.draw(json_values(huge=False))})
    )
    assert response.status_code == 400, (path, extra, response.status_code, response.body[:300])
    message = response.json_body["Message"]
    assert repr(extra)[1:-1] in message or extra in message, message
    assert all(name in message for name in body.field_names()), message


@given(data=st.data())
def test_a_number_no_field_holds_is_a_400_naming_the_field_on_any_json_route(world, data):
    routes = [r for r in ROUTES if isinstance(r[2], type) and issubclass(r[2], Body) and number_fields(r[2])]
    method, path, body = data.draw(st.sampled_from(routes), label="route")
    doc = data.draw(_valid(body), label="valid body")
    field = data.draw(st.sampled_from(number_fields(body)))
    literal = data.draw(st.sampled_from(HUGE_NUMBERS))
    response = _send(world, method, concrete(path), json_text({**doc, field: raw_number(literal)}))
    assert response.status_code == 400, (path, field, literal, response.body[:300])
    assert field in response.json_body["Message"]


@given(data=st.data())
def test_no_path_parameter_is_a_5xx(world, data):
    routes = sorted((m, p) for p, methods in app.routes.items() for m in methods if "{" in p)
    method, path = data.draw(st.sampled_from(routes), label="route")
    for name in re.findall(r"\{([^}]*)\}", path):
        text = data.draw(
            st.text(min_size=1, max_size=300) | st.sampled_from(["1" * 5000, "²", "0", "-1", "x" * 3000]),
            label=name,
        )
        path = path.replace("{" + name + "}", urllib.parse.quote(text, safe=""))
    body = json_text({"reason": "fuzzing the path"})
    response = _send(world, method, path, body if method != "GET" else b"")
    assert response.status_code < 500, (method, path[:200], response.body[:300])
