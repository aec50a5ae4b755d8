"""IAM instead of tokens (issue 15, "What to build" 7): where a team has an identity provider,
``MLOPS_AUTH=iam`` makes API Gateway check SigV4 signatures on every guarded route, the caller's IAM
policy decides the routes (the same table as the tokens' roles), and the audit trail names the ARN."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from chalice import IAMAuthorizer

from chalicelib import auth
from mlops.policies import api_role_policy
from tests.support import load_app


def _guards(app) -> dict[tuple[str, str], object]:
    return {
        (method, path): entry.authorizer
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


def test_with_mlops_auth_iam_every_guarded_route_is_signed_and_none_uses_the_tokens(monkeypatch):
    tokens_app = load_app(monkeypatch, "true")
    guarded = {route for route, guard in _guards(tokens_app).items() if guard is not None}
    monkeypatch.setenv("MLOPS_AUTH", "iam")
    iam_app = load_app(monkeypatch, "true")
    guards = _guards(iam_app)
    assert guarded and {route for route, guard in guards.items() if guard is not None} == guarded
    assert all(isinstance(guards[route], IAMAuthorizer) for route in guarded)


def test_an_unknown_mode_is_refused_at_import(monkeypatch):
    monkeypatch.setenv("MLOPS_AUTH", "ldap")
    with pytest.raises(ValueError, match="MLOPS_AUTH='ldap'"):
        load_app(monkeypatch, "true")


def test_the_caller_is_the_iam_arn():
    request = SimpleNamespace(context={"identity": {"userArn": "arn:aws:iam::123456789012:user/alice"}})
    assert auth.caller_from(request) == "arn:aws:iam::123456789012:user/alice (iam)"


@pytest.mark.parametrize("role", auth.ROLES)
def test_each_role_s_iam_policy_allows_exactly_its_routes(role):
    api = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
    (statement,) = api_role_policy(role, api)["Statement"]
    assert statement["Action"] == ["execute-api:Invoke"]
    expected = {
        f"{api}/{method}{path.replace('{name}', '*').replace('{version}', '*').replace('{upload_id}', '*').replace('{run_id}', '*').replace('{job_id}', '*')}"
        for (method, path), minimum in auth.PERMISSIONS.items()
        if auth.role_allows(role, minimum)
    }
    assert set(statement["Resource"]) == expected
    if role == "viewer":
        assert f"{api}/POST/models/*/versions/*/approve" not in statement["Resource"]
