"""Identity under attack (issue 15, "What to build" 7): every request with an unknown token used to
cost one SSM lookup, so a flood of random tokens became SSM throttling and 500s for every caller.
Lookups that miss the cache now spend a per-process budget (a token bucket): past it, an unknown
token is refused (401) without a lookup; a failure to look up for a reason of the store's load
(throttling) is a 401 too, never a 5xx. Tokens already looked up keep working from the cache."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.app import AuthRequest

from chalicelib import auth
from chalicelib.adapters.memory.tokens import MemoryTokenRecords
from chalicelib.auth import LookupBudget, TokenCache, TokenLookupUnavailable, TokenStore, Unauthorized


class Counting(MemoryTokenRecords):
    """Records that count lookups, and can be made to fail as a throttled store does."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.throttled = False

    def get(self, digest: str) -> str | None:
        self.gets += 1
        if self.throttled:
            raise TokenLookupUnavailable("the token store is throttling lookups")
        return super().get(digest)


def _request(token: str) -> AuthRequest:
    return AuthRequest("TOKEN", f"Bearer {token}", "arn:aws:execute-api:eu-west-1:1:api/dev/GET/models")


@pytest.fixture
def world() -> tuple[Counting, TokenStore, list[float]]:
    now = [0.0]
    records = Counting()
    store = TokenStore(
        records,
        cache=TokenCache(clock=lambda: now[0]),
        budget=LookupBudget(rate=5, burst=10, clock=lambda: now[0]),
    )
    return records, store, now


def _outcome(store: TokenStore, token: str) -> Any:
    try:
        return auth.authorize(_request(token), store)
    except Unauthorized:
        return 401


def test_a_flood_of_random_tokens_costs_at_most_the_budget_in_lookups_and_every_answer_is_401(world):
    records, store, now = world
    alice, _ = store.create("alice", "approver", created_by="tests")
    assert _outcome(store, alice) != 401  # looked up once: cached from now on
    gets = records.gets
    outcomes = [_outcome(store, auth.new_token()) for _ in range(1000)]
    assert outcomes == [401] * 1000
    assert records.gets - gets <= 10  # the burst; no time passed
    assert _outcome(store, alice) != 401  # a known caller is not locked out: it is cached
    now[0] += 2.0  # two seconds: 10 more lookups
    for _ in range(100):
        _outcome(store, auth.new_token())
    assert records.gets - gets <= 20


def test_a_new_valid_token_works_once_the_budget_refills(world):
    _, store, now = world
    for _ in range(50):
        _outcome(store, auth.new_token())
    bob, _ = store.create("bob", "viewer", created_by="tests")
    assert _outcome(store, bob) == 401  # the budget is spent: refused without a lookup (documented)
    now[0] += 0.2  # one lookup's worth at 5/s
    assert _outcome(store, bob) != 401


def test_a_throttled_store_refuses_with_401_never_an_error(world):
    records, store, _ = world
    carol, _ = store.create("carol", "admin", created_by="tests")
    records.throttled = True
    assert _outcome(store, carol) == 401
    records.throttled = False
    assert _outcome(store, carol) != 401  # nothing cached from the failed lookup
