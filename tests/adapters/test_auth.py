"""API tokens on in-process moto: hashed in SSM, lookup, revocation and its cache, and the authorizer's
policy per role. The pure rules are in tests/unit/test_auth.py, the gateway and the CLI in
tests/flow/test_auth_api.py."""

from __future__ import annotations

import hashlib
import json
import re

import boto3
import pytest
from chalice.app import AuthRequest
from chalice.local import ARNMatcher

from chalicelib import auth
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


# --- the authorizer --------------------------------------------------------------------------------


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
