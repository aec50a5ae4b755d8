"""Tokens that expire (issue 15, "What to build" 7): ``mlops tokens create NAME --role R --expires
30d``. An expired token is refused (401) from the instant it expires, even from the lookup cache;
only API Gateway's policy cache (60 s) can outlive it, so the bound is expiry + 60 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chalice.app import AuthRequest

from chalicelib import auth
from chalicelib.adapters.memory.tokens import MemoryTokenRecords
from chalicelib.auth import InvalidTokenRequest, TokenCache, TokenStore, Unauthorized
from mlops.tokens import parse_expiry

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def world() -> tuple[TokenStore, list[datetime]]:
    now = [START]
    store = TokenStore(MemoryTokenRecords(), cache=TokenCache(ttl_s=1e9), clock=lambda: now[0])
    return store, now


def _authorized(store: TokenStore, token: str) -> bool:
    try:
        auth.authorize(
            AuthRequest("TOKEN", f"Bearer {token}", "arn:aws:execute-api:x:1:api/dev/GET/models"), store
        )
    except Unauthorized:
        return False
    return True


def test_a_token_works_until_it_expires_even_when_cached(world):
    store, now = world
    expires = (START + timedelta(hours=1)).isoformat()
    token, record = store.create("dana", "viewer", "tests", expires_at=expires)
    assert record["expires_at"] == expires
    assert _authorized(store, token)  # looked up and cached (for ever, in this cache)
    now[0] = START + timedelta(minutes=59, seconds=59)
    assert _authorized(store, token)
    now[0] = START + timedelta(hours=1)
    assert not _authorized(store, token)
    assert [r["expires_at"] for r in store.list()] == [expires]


def test_a_token_without_expiry_never_expires(world):
    store, now = world
    token, record = store.create("erin", "admin", "tests")
    now[0] = START + timedelta(days=3650)
    assert _authorized(store, token) and "expires_at" not in record


@pytest.mark.parametrize("expires", ["2026-11-30T11:59:59+00:00", "not a time", "2026-11-30T12:00:00+00:00"])
def test_an_expiry_that_is_not_a_future_instant_is_refused(world, expires):
    store, _ = world
    with pytest.raises(InvalidTokenRequest, match="expires"):
        store.create("fred", "viewer", "tests", expires_at=expires)
    assert store.list() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", START + timedelta(days=30)),
        ("12h", START + timedelta(hours=12)),
        ("90m", START + timedelta(minutes=90)),
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T08:00:00+01:00", datetime(2027, 1, 31, 7, tzinfo=UTC)),
    ],
)
def test_the_cli_reads_a_duration_or_an_instant(text, expected):
    assert parse_expiry(text, START) == expected.isoformat()


@pytest.mark.parametrize("text", ["", "30", "-1d", "0h", "d", "tomorrow"])
def test_the_cli_refuses_what_is_neither(text):
    with pytest.raises(InvalidTokenRequest, match="--expires"):
        parse_expiry(text, START)
