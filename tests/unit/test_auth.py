"""API authentication's pure rules: parsing the header, the token cache, roles and the routes they
may call, the caller seen by a handler."""

from __future__ import annotations

from chalicelib import auth
from chalicelib.auth import (
    PERMISSIONS,
    ROLES,
    Principal,
    TokenCache,
    allowed_routes,
    caller_from,
    parse_authorization,
)


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


def _by_role(role):
    return {route for route, minimum in PERMISSIONS.items() if minimum == role}


def test_viewer_gets_only_viewer_routes():
    assert set(allowed_routes("viewer")) == _by_role("viewer")


def test_reporter_gets_viewer_routes_and_sending_outcomes():
    assert set(allowed_routes("reporter")) == _by_role("viewer") | {("POST", "/models/{name}/outcomes")}


def test_approver_gets_viewer_reporter_and_approver_routes():
    assert set(allowed_routes("approver")) == _by_role("viewer") | _by_role("reporter") | _by_role("approver")


def test_admin_gets_all_routes():
    assert set(allowed_routes("admin")) == set(PERMISSIONS)


def test_permissions_table_uses_known_roles_and_methods():
    assert set(PERMISSIONS.values()) == set(ROLES)
    assert {method for method, _ in PERMISSIONS} <= {"GET", "POST", "PUT", "DELETE", "PATCH"}
    assert all(path.startswith("/") for _, path in PERMISSIONS)


def test_caller_from_the_authorizer_context():
    class Request:
        def __init__(self, context):
            self.context = context

    assert caller_from(Request({"authorizer": {"name": "alice", "role": "approver"}})) == "alice (approver)"
    assert caller_from(Request({})) == "anonymous"
    assert caller_from(Request(None)) == "anonymous"
