"""API authentication end to end on in-process moto: the authorizer behind chalice's local gateway
(answers as API Gateway gives them) and `mlops tokens`."""

from __future__ import annotations

import argparse
import hashlib
import json
import re

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib import auth, bootstrap
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import (
    Principal,
    TokenStore,
    authorize,
    caller_from,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    auth.reset_cache()
    yield
    auth.reset_cache()


@pytest.fixture
def store(aws):
    return TokenStore(SsmTokenRecords.for_settings(aws))


# --- end to end through the local gateway ------------------------------------------------------


def _app(seen):
    app = Chalice(app_name="auth-test")

    @app.authorizer(ttl_seconds=auth.AUTHORIZER_TTL_S)
    def token_auth(auth_request):
        return authorize(auth_request, bootstrap.tokens())

    @app.route("/models", methods=["GET"], authorizer=token_auth)
    def list_models():
        seen.append(caller_from(app.current_request))
        return {"models": []}

    @app.route("/models/{name}/rollback", methods=["POST"], authorizer=token_auth)
    def rollback(name):
        seen.append(caller_from(app.current_request))
        return {"model": name, "rolled_back": True}

    @app.route("/datasets/{name}/contract", methods=["PUT"], authorizer=token_auth)
    def put_contract(name):
        seen.append(caller_from(app.current_request))
        return {"dataset": name}

    return app


@pytest.fixture
def api(aws):
    from mlops.localapi import install_gateway_auth_semantics

    install_gateway_auth_semantics()
    install_gateway_auth_semantics()  # idempotent
    seen: list[str] = []
    with Client(_app(seen), stage_name="local") as client:
        yield client.http, seen


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_api_without_authorization_header_is_401(api):
    http, seen = api
    response = http.get("/models")
    assert response.status_code == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert seen == []


def test_api_with_a_bad_token_is_401(api, store):
    http, seen = api
    for header in [f"Bearer {auth.new_token()}", "Bearer nonsense", "Basic dXNlcjpwYXNz"]:
        response = http.get("/models", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert json.loads(response.body) == {"message": "Unauthorized"}
        assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert seen == []


def test_api_viewer_may_read_but_rollback_is_403(api, store):
    http, seen = api
    token, _ = store.create("val", "viewer", "ops")
    assert http.get("/models", headers=_bearer(token)).status_code == 200
    response = http.post("/models/iris/rollback", headers=_bearer(token))
    assert response.status_code == 403
    assert seen == ["val (viewer)"]


def test_api_approver_may_roll_back_and_the_handler_sees_the_caller(api, store):
    http, seen = api
    token, _ = store.create("alice", "approver", "ops")
    response = http.post("/models/iris/rollback", headers=_bearer(token))
    assert response.status_code == 200
    assert json.loads(response.body) == {"model": "iris", "rolled_back": True}
    assert seen == ["alice (approver)"]
    assert http.put("/datasets/iris/contract", headers=_bearer(token)).status_code == 403


def test_api_admin_may_put_a_contract(api, store):
    http, seen = api
    token, _ = store.create("root", "admin", "ops")
    response = http.put("/datasets/iris/contract", headers={"Authorization": token})  # bare token
    assert response.status_code == 200
    assert seen == ["root (admin)"]


def test_api_revoked_token_is_401(api, store):
    http, _ = api
    token, _ = store.create("alice", "approver", "ops")
    assert http.get("/models", headers=_bearer(token)).status_code == 200
    store.revoke("alice")
    assert http.get("/models", headers=_bearer(token)).status_code == 401


def test_api_authorizer_failing_otherwise_is_500(aws, monkeypatch):
    from mlops.localapi import install_gateway_auth_semantics

    install_gateway_auth_semantics()

    def broken(self, token):
        raise RuntimeError("SSM throttled")

    monkeypatch.setattr(TokenStore, "lookup", broken)
    with Client(_app([]), stage_name="local") as client:
        response = client.http.get("/models", headers=_bearer(auth.new_token()))
    assert response.status_code == 500
    assert json.loads(response.body) == {"message": None}


# --- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def cli(aws, monkeypatch):
    """`mlops tokens ...` as cli.py will dispatch it, on in-process moto (no local cloud to connect)."""
    from mlops import localcloud, tokens

    monkeypatch.setattr(localcloud, "connect", lambda *a, **k: "in-process moto")
    parser = argparse.ArgumentParser(prog="mlops")
    tokens.add_parser(parser.add_subparsers(dest="command", required=True))
    return lambda *argv: tokens.run(parser.parse_args(["tokens", *argv]))


def test_cli_create_prints_the_token_once_and_list_shows_it_without_the_token(cli, aws, capsys):
    assert cli("create", "alice", "--role", "approver", "--created-by", "ops") == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert re.fullmatch(r"mlops_[A-Za-z0-9_-]{43}", token)
    assert "cannot be shown again" in err
    assert f"export MLOPS_TOKEN={token}" in err and "Authorization: Bearer" in err
    assert TokenStore(SsmTokenRecords.for_settings(aws)).lookup(token) == Principal("alice", "approver")

    assert cli("list") == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "approver" in listing and "ops" in listing
    assert hashlib.sha256(token.encode()).hexdigest()[:12] in listing
    assert token not in listing and hashlib.sha256(token.encode()).hexdigest() not in listing


def test_cli_create_twice_is_refused_unless_replace(cli, capsys):
    assert cli("create", "alice", "--role", "viewer") == 0
    assert cli("create", "alice", "--role", "viewer") == 1
    assert "--replace" in capsys.readouterr().err
    assert cli("create", "alice", "--role", "admin", "--replace") == 0


def test_cli_create_with_an_invalid_name_is_a_usage_error(cli, capsys):
    assert cli("create", "al ice", "--role", "viewer") == 2
    assert "invalid token name" in capsys.readouterr().err


def test_cli_revoke_removes_the_token(cli, aws, capsys):
    cli("create", "alice", "--role", "viewer")
    token = capsys.readouterr().out.strip()
    assert cli("revoke", "alice") == 0
    auth.reset_cache()
    assert TokenStore(SsmTokenRecords.for_settings(aws)).lookup(token) is None
    assert "revoked alice's token" in capsys.readouterr().out
    assert cli("list") == 0
    assert "alice" not in capsys.readouterr().out
    assert cli("revoke", "alice") == 1
    assert "has no token" in capsys.readouterr().err


def test_a_token_scoped_to_models_reaches_only_routes_that_name_them(api, store):
    """Issue 15, "What to build" 7: tokens can be scoped to models. A scoped token's policy lists
    only routes that name one of its models; everything else is 403, whatever its role."""
    http, seen = api
    token, record = store.create("ci", "admin", "ops", models=["iris", "breast_cancer"])
    assert record["models"] == ["iris", "breast_cancer"]
    assert http.post("/models/iris/rollback", headers=_bearer(token)).status_code == 200
    assert http.put("/datasets/breast_cancer/contract", headers=_bearer(token)).status_code == 200
    assert http.post("/models/churn/rollback", headers=_bearer(token)).status_code == 403
    assert http.put("/datasets/churn/contract", headers=_bearer(token)).status_code == 403
    assert http.get("/models", headers=_bearer(token)).status_code == 403  # lists every model
    assert seen == ["ci (admin)", "ci (admin)"]


def test_a_scope_must_name_models_that_can_exist(store):
    with pytest.raises(auth.InvalidTokenRequest, match="models"):
        store.create("ci", "viewer", "ops", models=["Not A Name"])
    with pytest.raises(auth.InvalidTokenRequest, match="models"):
        store.create("ci", "viewer", "ops", models=[])


def test_cli_create_with_an_expiry_and_a_scope_records_both_and_list_shows_them(cli, aws, capsys):
    assert (
        cli("create", "ci", "--role", "approver", "--expires", "30d", "--models", "iris, breast_cancer") == 0
    )
    out, err = capsys.readouterr()
    principal = TokenStore(SsmTokenRecords.for_settings(aws)).lookup(out.strip())
    assert principal is not None and principal.models == ("iris", "breast_cancer")
    assert (
        principal.expires_at is not None and "expires 20" in err and "models iris, breast_cancer only" in err
    )
    assert cli("list") == 0
    assert "models: iris, breast_cancer" in capsys.readouterr().out
    assert cli("create", "late", "--role", "viewer", "--expires", "2020-01-01") == 2
    assert "not in the future" in capsys.readouterr().err
