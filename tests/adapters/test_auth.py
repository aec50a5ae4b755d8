"""API authentication: tokens hashed in SSM, roles, the authorizer, the local gateway's answers, the CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
import re

import boto3
import pytest
from chalice import Chalice
from chalice.app import AuthRequest
from chalice.local import ARNMatcher
from chalice.test import Client

from chalicelib import auth, bootstrap
from chalicelib.adapters import aws as aws_clients
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import (
    PERMISSIONS,
    ROLES,
    InvalidTokenRequest,
    Principal,
    TokenCache,
    TokenExists,
    TokenStore,
    Unauthorized,
    allowed_routes,
    authorize,
    caller_from,
    parse_authorization,
)

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/models"


@pytest.fixture(autouse=True)
def _fresh_cache():
    auth.reset_cache()
    yield
    auth.reset_cache()


@pytest.fixture
def store(aws):
    return TokenStore(SsmTokenRecords.for_settings(aws))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _parameters(path):
    ssm = boto3.client("ssm")
    return ssm.get_parameters_by_path(Path=path, WithDecryption=True)["Parameters"]


# --- storage ---------------------------------------------------------------------------------------


def test_stored_parameter_is_a_securestring_named_by_the_hash_and_holds_no_token(aws, store):
    token, record = store.create("alice", "approver", "ops@example.com")

    digest = hashlib.sha256(token.encode()).hexdigest()
    [parameter] = _parameters(aws.tokens_path)
    assert parameter["Name"] == f"/serverless-mlops/local/tokens/{digest}"
    assert parameter["Type"] == "SecureString"
    value = json.loads(parameter["Value"])
    assert set(value) == {"name", "role", "created_at", "created_by"}
    assert value["name"] == "alice" and value["role"] == "approver"
    assert value["created_by"] == "ops@example.com"
    everything = json.dumps(_parameters(aws.tokens_path), default=str)
    assert token not in everything and token[len("mlops_") :] not in everything
    assert re.fullmatch(r"mlops_[A-Za-z0-9_-]{43}", token)
    assert record["id"] == digest[:12]


def test_store_encrypts_with_the_stage_kms_key(aws, store):
    store.create("alice", "viewer", "ops")
    [described] = boto3.client("ssm").describe_parameters()["Parameters"]
    assert described["KeyId"] == "alias/serverless-mlops-local"


def test_tokens_path_follows_prefix_and_stage(aws):
    assert aws.tokens_path == "/serverless-mlops/local/tokens"


# --- lookup, revocation, cache ---------------------------------------------------------------------


def test_lookup_of_a_created_token_gives_its_principal(store):
    token, _ = store.create("alice", "approver", "ops")
    principal = store.lookup(token)
    assert principal == Principal("alice", "approver")
    assert principal.caller == "alice (approver)"


def test_lookup_of_a_wrong_token_is_none(store):
    store.create("alice", "approver", "ops")
    assert store.lookup(auth.new_token()) is None
    assert store.lookup("not-a-token") is None


def test_lookup_after_revoke_is_none(store):
    token, _ = store.create("alice", "approver", "ops")
    assert store.lookup(token) is not None
    assert store.revoke("alice") is True
    auth.reset_cache()
    assert store.lookup(token) is None
    assert store.revoke("alice") is False


def test_lookup_makes_one_ssm_call_per_token_within_the_cache_ttl(aws, monkeypatch):
    clock = FakeClock()
    store = TokenStore(SsmTokenRecords.for_settings(aws), cache=TokenCache(clock=clock))
    token, _ = store.create("alice", "viewer", "ops")
    ssm = aws_clients.client("ssm")
    calls = []
    real = ssm.get_parameter
    monkeypatch.setattr(ssm, "get_parameter", lambda **kw: calls.append(kw) or real(**kw))

    for _ in range(5):
        assert store.lookup(token) == Principal("alice", "viewer")
    assert len(calls) == 1
    assert calls[0]["WithDecryption"] is True

    wrong = auth.new_token()
    assert store.lookup(wrong) is None
    assert store.lookup(wrong) is None
    assert len(calls) == 2  # a miss is cached too


def test_revoked_token_works_until_the_cache_ttl_then_stops(aws):
    """A revocation made elsewhere (another process) reaches this one within CACHE_TTL_S."""
    clock = FakeClock()
    here = TokenStore(
        SsmTokenRecords.for_settings(aws), cache=TokenCache(ttl_s=auth.CACHE_TTL_S, clock=clock)
    )
    elsewhere = TokenStore(SsmTokenRecords.for_settings(aws), cache=TokenCache())
    token, _ = here.create("alice", "viewer", "ops")
    assert here.lookup(token) is not None

    elsewhere.revoke("alice")
    clock.now += auth.CACHE_TTL_S - 1
    assert here.lookup(token) is not None  # still cached: the documented window
    clock.now += 1
    assert here.lookup(token) is None


def test_cache_ttl_and_authorizer_ttl_are_as_documented():
    assert auth.CACHE_TTL_S == 30
    assert auth.AUTHORIZER_TTL_S == 60
    assert "30 s" in auth.__doc__ and "60 s" in auth.__doc__ and "90 s" in auth.__doc__


def test_cache_forgets_its_oldest_entry_when_full():
    cache = TokenCache(max_entries=2)
    cache.put("a", Principal("a", "viewer"))
    cache.put("b", None)
    cache.put("c", Principal("c", "admin"))
    assert cache.get("a") == (False, None)
    assert cache.get("b") == (True, None)
    assert cache.get("c") == (True, Principal("c", "admin"))


def test_create_refuses_a_second_token_for_a_name_unless_replace(store):
    first, _ = store.create("alice", "viewer", "ops")
    with pytest.raises(TokenExists, match=r"alice.*replace"):
        store.create("alice", "admin", "ops")
    assert store.lookup(first) == Principal("alice", "viewer")

    second, _ = store.create("alice", "admin", "ops", replace=True)
    auth.reset_cache()
    assert store.lookup(first) is None
    assert store.lookup(second) == Principal("alice", "admin")
    assert [r["name"] for r in store.list()] == ["alice"]


@pytest.mark.parametrize("name", ["", "a" * 65, "al ice", "alice/x", "bob!", "ünï"])
def test_create_refuses_invalid_names(store, name):
    with pytest.raises(InvalidTokenRequest, match="invalid token name"):
        store.create(name, "viewer", "ops")


def test_create_accepts_names_of_the_allowed_characters(store):
    token, _ = store.create("ci-bot_1.prod@example.com", "viewer", "ops")
    assert store.lookup(token).name == "ci-bot_1.prod@example.com"
    store.create("a" * 64, "viewer", "ops")


def test_create_refuses_an_unknown_role(store):
    with pytest.raises(InvalidTokenRequest, match="unknown role 'root'"):
        store.create("alice", "root", "ops")


def test_list_shows_ids_and_records_never_tokens_nor_full_hashes(store):
    alice, _ = store.create("alice", "approver", "ops")
    bob, _ = store.create("bob", "viewer", "ops")
    records = store.list()
    assert [(r["name"], r["role"]) for r in records] == [("alice", "approver"), ("bob", "viewer")]
    assert records[0]["id"] == hashlib.sha256(alice.encode()).hexdigest()[:12]
    text = json.dumps(records)
    for token in (alice, bob):
        assert token not in text
        assert hashlib.sha256(token.encode()).hexdigest() not in text


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_authorization_variants():
    token = auth.new_token()
    assert parse_authorization(f"Bearer {token}") == token
    assert parse_authorization(f"bearer {token}") == token
    assert parse_authorization(f"BEARER   {token}  ") == token
    assert parse_authorization(token) == token
    assert parse_authorization(f"  {token}\n") == token
    for bad in [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {token}",
        f"Bearer {token} extra",
        f"Token {token}",
        "mlops_short",
        token[len("mlops_") :],  # no prefix
        token + "x",
        f"Bearer Bearer {token}",
    ]:
        assert parse_authorization(bad) is None, bad


# --- roles and the policy --------------------------------------------------------------------------


def _by_role(role):
    return {route for route, minimum in PERMISSIONS.items() if minimum == role}


def test_viewer_gets_only_viewer_routes():
    assert set(allowed_routes("viewer")) == _by_role("viewer")


def test_approver_gets_viewer_and_approver_routes():
    assert set(allowed_routes("approver")) == _by_role("viewer") | _by_role("approver")


def test_admin_gets_all_routes():
    assert set(allowed_routes("admin")) == set(PERMISSIONS)


def test_permissions_table_uses_known_roles_and_methods():
    assert set(PERMISSIONS.values()) == set(ROLES)
    assert {method for method, _ in PERMISSIONS} <= {"GET", "POST", "PUT", "DELETE", "PATCH"}
    assert all(path.startswith("/") for _, path in PERMISSIONS)


def _concrete(path):
    # A route as a client calls it; "predict" as a name checks a wildcard cannot leak into a longer route.
    return re.sub(r"\{[^}]+\}", "predict", path)


def _policy_allows(response, method, path):
    resources = response.to_dict(AuthRequest("TOKEN", "t", METHOD_ARN))["policyDocument"]["Statement"][0][
        "Resource"
    ]
    arn = f"arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/{method}{_concrete(path)}"
    return ARNMatcher(arn).does_any_resource_match(resources)


@pytest.mark.parametrize("role", ROLES)
def test_authorizer_policy_allows_exactly_the_routes_of_the_role(store, role):
    token, _ = store.create(f"user-{role}", role, "ops")
    response = authorize(AuthRequest("TOKEN", f"Bearer {token}", METHOD_ARN), store=store)
    assert response.principal_id == f"user-{role}"
    assert response.context == {"name": f"user-{role}", "role": role}
    allowed = {route for route in PERMISSIONS if _policy_allows(response, *route)}
    assert allowed == set(allowed_routes(role))


def test_authorizer_raises_unauthorized_for_unknown_and_malformed_tokens(store):
    for header in [f"Bearer {auth.new_token()}", "Basic dXNlcjpwYXNz", "", "garbage"]:
        with pytest.raises(Unauthorized) as raised:
            authorize(AuthRequest("TOKEN", header, METHOD_ARN), store=store)
        assert str(raised.value) == "Unauthorized"


def test_authorizer_logs_name_and_role_never_the_token(store, caplog):
    token, _ = store.create("alice", "approver", "ops")
    with caplog.at_level("INFO", logger=auth.logger.name):
        authorize(AuthRequest("TOKEN", f"Bearer {token}", METHOD_ARN), store=store)
        with pytest.raises(Unauthorized):
            authorize(AuthRequest("TOKEN", f"Bearer {auth.new_token()}", METHOD_ARN), store=store)
    logged = [json.loads(auth.logger.registered_formatter.format(r)) for r in caplog.records]
    assert {"message": "authorized", "principal": "alice", "role": "approver"}.items() <= logged[0].items()
    assert logged[1]["message"] == "authorization refused"
    text = json.dumps(logged)
    assert token not in text and "mlops_" not in text


def test_caller_from_the_authorizer_context():
    class Request:
        def __init__(self, context):
            self.context = context

    assert caller_from(Request({"authorizer": {"name": "alice", "role": "approver"}})) == "alice (approver)"
    assert caller_from(Request({})) == "anonymous"
    assert caller_from(Request(None)) == "anonymous"


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
