"""``GET /models/{name}/champion?at=`` through the app on in-process moto: the ledger written by the
DynamoDB registry (promotions and a rollback) read back through the route, at instants taken from
the ledger itself (GET /models/{name}/audit); its errors; and its token in deployed stages."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.aws.registry import DynamoRegistry
from tests.support import load_app

MODEL = "churn"


@pytest.fixture(scope="module")
def ledger(aws_module) -> list[dict[str, Any]]:
    """v1 promoted on Nov 1, v2 on Nov 2, rolled back to v1 on Nov 3, v3 on Nov 4 (09:30 UTC)."""
    clock = {"now": datetime(2026, 11, 1, 9, 30, tzinfo=UTC)}
    registry = DynamoRegistry(aws_module.registry_table, aws_module.audit_table, clock=lambda: clock["now"])
    for day, n in ((1, 1), (2, 2), (4, 3)):
        if n == 3:  # before v3 is approved: a champion change supersedes the versions approved but waiting
            clock["now"] = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
            registry.rollback(MODEL, "ops (admin)", "v2 mislabels new customers")
        version, _ = registry.register_version(MODEL, {"run_id": f"run-{n}", "family": "logistic_regression"})
        registry.set_status(MODEL, version, "approved", "evaluator", "every gate passed")
        clock["now"] = datetime(2026, 11, day, 9, 30, tzinfo=UTC)
        registry.promote(
            MODEL, version, "evaluator", "every gate passed", expected_champion=registry.champion(MODEL)
        )
    return registry.audit(MODEL)


@pytest.fixture
def client(ledger):
    with Client(app, stage_name="local") as c:
        yield c


def _champion(client: Client, at: str | None = None, model: str = MODEL) -> Any:
    query = "" if at is None else "?at=" + urllib.parse.quote(at, safe="")
    return client.http.get(f"/models/{model}/champion{query}")


def _shifted(at: str, **delta: float) -> str:
    return (datetime.fromisoformat(at) + timedelta(**delta)).isoformat()


def test_the_champion_at_three_instants_read_from_the_ledger(client, ledger):
    trail = client.http.get(f"/models/{MODEL}/audit").json_body["entries"]
    assert [(e["action"], e["to_version"]) for e in trail] == [
        ("promote", 1),
        ("promote", 2),
        ("rollback", 1),
        ("promote", 3),
    ]
    first = _champion(client, _shifted(trail[0]["at"], hours=1)).json_body
    assert (
        first["champion"] == 1
        and first["change"]["action"] == "promote"
        and first["change"]["who"] == "evaluator"
    )
    rolled_back = _champion(client, trail[2]["at"]).json_body
    assert rolled_back["champion"] == 1 and rolled_back["change"]["action"] == "rollback"
    assert (
        rolled_back["change"]["reason"] == "v2 mislabels new customers"
        and rolled_back["change"]["undoes"] == 2
    )
    assert rolled_back["since"] == datetime.fromisoformat(trail[2]["at"]).isoformat()
    before = _champion(client, _shifted(trail[0]["at"], seconds=-1))
    assert before.status_code == 200 and before.json_body["champion"] is None
    assert "no champion yet" in before.json_body["note"]


def test_without_at_it_is_the_champion_now(client, ledger):
    answer = _champion(client).json_body
    assert answer["champion"] == 3 and answer["until"] is None and answer["change"]["to_version"] == 3


def test_an_instant_with_an_offset_a_raw_plus_or_none_is_read_as_utc(client, ledger):
    during_v2 = datetime.fromisoformat(ledger[1]["at"]) + timedelta(hours=2)
    local = during_v2.astimezone(datetime.fromisoformat("2026-11-01T00:00:00+05:30").tzinfo).isoformat()
    raw_plus = client.http.get(f"/models/{MODEL}/champion?at={local}")  # '+' unencoded: a space
    for response in (
        _champion(client, local),
        raw_plus,
        _champion(client, during_v2.replace(tzinfo=None).isoformat()),
    ):
        assert response.status_code == 200, response.json_body
        assert response.json_body["champion"] == 2 and response.json_body["at"] == during_v2.isoformat()


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        (f"/models/{MODEL}/champion?at=yesterday", 400, "at: 'yesterday' is not an ISO 8601 instant"),
        (f"/models/{MODEL}/champion?at=", 400, "at: "),
        (f"/models/{MODEL}/champion?at=2026-11-01&at=2026-11-02", 400, "at: give one instant"),
        (f"/models/{MODEL}/champion?when=2026-11-01", 400, "when: unknown query parameter; allowed: at"),
        ("/models/nothing/champion", 404, "no model named 'nothing'"),
        ("/models/Not A Name/champion", 400, "must be"),
    ],
)
def test_a_bad_request_names_the_problem(client, ledger, path, status, fragment):
    response = client.http.get(path)
    assert response.status_code == status and fragment in response.json_body["Message"], response.json_body


def test_reading_the_champion_history_needs_a_token_in_deployed_stages(aws_module, ledger, monkeypatch):
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import TokenStore

    token, _ = TokenStore(SsmTokenRecords.for_settings(aws_module)).create(
        "victor", "viewer", created_by="tests"
    )
    with Client(load_app(monkeypatch, "true"), stage_name="local") as deployed:
        assert deployed.http.get(f"/models/{MODEL}/champion").status_code == 401
        answer = deployed.http.get(f"/models/{MODEL}/champion", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json_body["champion"] == 3


# --- mlops models history, on the same routes ---------------------------------------------------------


@pytest.fixture
def cli(client, monkeypatch):
    """``mlops models ...`` with its API calls answered by the app (as over HTTP: errors as ApiError)."""
    from mlops import models

    def call(method: str, path: str, body: Any = None, **_: Any) -> Any:
        assert method == "GET"
        response = client.http.get(path)
        if response.status_code >= 400:
            raise models.ApiError(response.status_code, response.json_body["Message"])
        return response.json_body

    monkeypatch.setattr(models, "call", call)

    def run(*argv: str) -> int:
        from mlops.cli import main

        return main(["models", *argv])

    return run


def test_mlops_models_history_prints_every_period_and_why_it_changed(cli, ledger, capsys):
    assert cli("history", MODEL) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{MODEL}: 4 champion change(s), oldest first"
    assert "v1    from 2026-11-01 09:30:00 UTC until 2026-11-02 09:30:00 UTC" in out
    assert "#3 rollback v2 -> v1 by ops (admin): v2 mislabels new customers" in out
    assert "v3    from 2026-11-04 09:30:00 UTC until now" in out


def test_mlops_models_history_at_an_instant_prints_that_champion(cli, ledger, capsys):
    assert cli("history", MODEL, "--at", "2026-11-02T15:00:00+05:30") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{MODEL} at 2026-11-02 09:30:00 UTC: champion v2"
    assert "#2 promote v1 -> v2 by evaluator: every gate passed" in out
    assert cli("history", MODEL, "--at", "2026-10-01") == 0
    assert "champion none" in capsys.readouterr().out
    assert cli("history", MODEL, "--at", "soon") == 1
    assert "400: at: 'soon' is not an ISO 8601 instant" in capsys.readouterr().err


def test_the_demo_s_history_step_asks_three_instants_of_the_recorded_ledger(
    client, ledger, monkeypatch, capsys
):
    """``mlops demo``'s step, on this ledger (it ends with a rollback there too): every check holds."""
    from mlops import demo

    def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        response = client.http.get(url)
        return response.status_code, response.json_body

    monkeypatch.setattr(demo, "http", http)
    monkeypatch.setattr(demo, "DATASET", MODEL)
    run = demo.Demo()
    demo._history_story(run, "", ledger[:3])  # v1, v2, rolled back to v1
    out = capsys.readouterr().out
    assert run.failures == [], out
    assert out.count("[ok]") == 3 and "before the first champion: none (churn had no champion yet" in out
