"""The API tokens' contract, held by both record stores: in memory and in SSM Parameter Store (moto).

The records port (create-only puts, reads, listing, deletes) and the rules ``TokenStore`` applies on
top of it (one token per name, replace, revoke, cached lookups) run against both."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from chalicelib import auth
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.adapters.memory.tokens import MemoryTokenRecords
from chalicelib.auth import InvalidTokenRequest, Principal, TokenCache, TokenExists, TokenRecords, TokenStore


@pytest.fixture(params=["memory", "moto"])
def records(request: pytest.FixtureRequest) -> TokenRecords:
    if request.param == "memory":
        return MemoryTokenRecords()
    stage = SsmTokenRecords.for_settings(request.getfixturevalue("aws_module"))
    # A path of its own per test: the moto stack is shared by the module's tests.
    return SsmTokenRecords(f"{stage.path}/{uuid.uuid4().hex[:8]}", key_id=stage.key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(records: TokenRecords, clock: Clock) -> TokenStore:
    return TokenStore(records, cache=TokenCache(clock=clock))


# --- the records ----------------------------------------------------------------------------------


def test_a_record_is_stored_create_only_as_json(records: TokenRecords):
    digest = "a" * 64
    assert records.get(digest) is None
    assert records.put(digest, {"name": "alice", "role": "viewer"}) is True
    assert records.put(digest, {"name": "mallory", "role": "admin"}) is False
    assert json.loads(records.get(digest) or "") == {"name": "alice", "role": "viewer"}


def test_records_list_every_digest_and_delete_says_whether_there_was_one(records: TokenRecords):
    assert records.items() == []
    records.put("a" * 64, {"name": "alice", "role": "viewer"})
    records.put("b" * 64, {"name": "bob", "role": "admin"})
    assert sorted(d for d, _ in records.items()) == ["a" * 64, "b" * 64]
    assert records.delete("a" * 64) is True
    assert records.delete("a" * 64) is False
    assert [d for d, _ in records.items()] == ["b" * 64]
    assert records.get("a" * 64) is None


# --- the rules on top ---------------------------------------------------------------------------


def test_a_created_token_is_found_and_only_its_hash_is_stored(store: TokenStore, records: TokenRecords):
    token, record = store.create("alice", "approver", "ops")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert record["id"] == digest[:12]
    assert store.lookup(token) == Principal("alice", "approver")
    assert [d for d, _ in records.items()] == [digest]
    assert token not in json.dumps(records.items())


def test_an_unknown_token_is_nobody(store: TokenStore):
    store.create("alice", "approver", "ops")
    assert store.lookup(auth.new_token()) is None


def test_a_second_token_for_a_name_is_refused_unless_it_replaces_the_first(store: TokenStore, clock: Clock):
    first, _ = store.create("alice", "viewer", "ops")
    with pytest.raises(TokenExists, match=r"alice.*replace"):
        store.create("alice", "admin", "ops")
    second, _ = store.create("alice", "admin", "ops", replace=True)
    clock.now += auth.CACHE_TTL_S
    assert store.lookup(first) is None
    assert store.lookup(second) == Principal("alice", "admin")
    assert [(r["name"], r["role"]) for r in store.list()] == [("alice", "admin")]


def test_bad_names_and_roles_are_refused_before_anything_is_stored(store: TokenStore, records: TokenRecords):
    with pytest.raises(InvalidTokenRequest, match="invalid token name"):
        store.create("al ice", "viewer", "ops")
    with pytest.raises(InvalidTokenRequest, match="unknown role 'root'"):
        store.create("alice", "root", "ops")
    assert records.items() == []


def test_list_is_by_name_with_ids_and_never_a_token(store: TokenStore):
    bob, _ = store.create("bob", "viewer", "ops")
    alice, _ = store.create("alice", "approver", "ops")
    listed = store.list()
    assert [(r["name"], r["role"], r["created_by"]) for r in listed] == [
        ("alice", "approver", "ops"),
        ("bob", "viewer", "ops"),
    ]
    assert listed[1]["id"] == hashlib.sha256(bob.encode()).hexdigest()[:12]
    assert alice not in json.dumps(listed)


def test_a_revoked_token_stops_working_here_at_once(store: TokenStore):
    token, _ = store.create("alice", "approver", "ops")
    assert store.lookup(token) is not None
    assert store.revoke("alice") is True
    assert store.lookup(token) is None
    assert store.revoke("alice") is False


def test_a_revocation_elsewhere_reaches_a_cached_lookup_within_the_ttl(records: TokenRecords, clock: Clock):
    here = TokenStore(records, cache=TokenCache(clock=clock))
    elsewhere = TokenStore(records, cache=TokenCache())
    token, _ = here.create("alice", "viewer", "ops")
    assert here.lookup(token) is not None
    elsewhere.revoke("alice")
    clock.now += auth.CACHE_TTL_S - 1
    assert here.lookup(token) is not None  # the documented window
    clock.now += 1
    assert here.lookup(token) is None


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServerError"])
def test_ssm_overloaded_is_a_lookup_unavailable_and_access_denied_stays_an_error(aws_module, code):
    """An overloaded store refuses the lookup (the authorizer answers 401, never a 5xx); a denied
    read is a deployment's mistake and stays an error that shows it."""
    from botocore.stub import Stubber

    from chalicelib.adapters import aws

    records = SsmTokenRecords.for_settings(aws_module)
    ssm = aws.client("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", service_error_code=code, http_status_code=400)
        with pytest.raises(auth.TokenLookupUnavailable, match=code):
            records.get("ab" * 32)
        stub.add_client_error(
            "get_parameter", service_error_code="AccessDeniedException", http_status_code=400
        )
        with pytest.raises(Exception, match="AccessDenied") as denied:
            records.get("ab" * 32)
        assert not isinstance(denied.value, auth.TokenLookupUnavailable)
