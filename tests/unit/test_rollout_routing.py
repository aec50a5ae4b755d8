"""The rollout's split of the traffic: deterministic per routing key, monotonic in the share (a key
on the candidate stays there as the share grows), close to the share over many keys, different per
rollout, and safe for any text a JSON body can carry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.serving import routing
from tests.rollout_support import pointer

_keys = st.text(max_size=routing.MAX_ROUTING_KEY)  # lone surrogates included: JSON's "\ud800" escape
_shares = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@given(st.text(max_size=40), _keys)
def test_a_key_falls_in_one_bucket_within_range_every_time(rollout_id: str, key: str) -> None:
    first = routing.bucket(rollout_id, key)
    assert 0 <= first < routing.BUCKETS and routing.bucket(rollout_id, key) == first


@given(_keys, _shares, _shares)
def test_a_key_on_the_candidate_stays_on_it_as_the_share_grows(key: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if routing.to_candidate("m/r1", low, key):
        assert routing.to_candidate("m/r1", high, key)


@given(_keys)
def test_no_share_routes_nothing_and_all_of_it_routes_everything(key: str) -> None:
    assert not routing.to_candidate("m/r1", 0.0, key)
    assert routing.to_candidate("m/r1", 100.0, key)


def test_over_many_keys_the_candidates_part_is_close_to_its_share_and_differs_per_rollout() -> None:
    """10,000 fixed keys (the result is the same on every run: no randomness is involved)."""
    keys = [f"user-{i}" for i in range(10_000)]
    for share in (1.0, 10.0, 50.0):
        routed = sum(routing.to_candidate("m/r1", share, k) for k in keys) / len(keys)
        assert abs(routed - share / 100) < 0.01, (share, routed)
    first = {k for k in keys if routing.to_candidate("m/r1", 10.0, k)}
    second = {k for k in keys if routing.to_candidate("m/r2", 10.0, k)}
    assert len(first & second) < 0.2 * len(first)  # the next rollout tries other users first


def test_only_a_running_rollout_with_a_share_splits_the_traffic() -> None:
    assert routing.live_split(None) is None
    assert routing.live_split(pointer()) == ("breast_cancer/r1", 1, 2, 10.0)
    assert routing.live_split(pointer(status="paused")) == ("breast_cancer/r1", 1, 2, 10.0)
    for status in ("completed", "aborted"):
        assert routing.live_split(pointer(status=status, step=1)) is None
