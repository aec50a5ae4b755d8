"""Which version answers a request during a rollout: a deterministic split by a routing key.

A rollout (``chalicelib.registry.rollout``) gives its candidate a share of the champion route's
traffic. Each request falls in one of ``BUCKETS`` buckets by a hash of the rollout's id and the
request's routing key (a caller-supplied ``routing_key``, e.g. a user id, else the request id); the
candidate answers the buckets below ``share * BUCKETS / 100``. So:

* one key always lands in the same bucket within a rollout: a user sees one model per step, and
  stays with the candidate as its share grows (a bucket below 10% is below 30%);
* the rollout's id is part of the hash: the next rollout picks other users for its first step;
* the split depends on nothing but the key and the id (no clock, no container, no random state), so
  every warm container routes a key the same way.

Standard library only (the predict path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

BUCKETS = 10_000
MAX_ROUTING_KEY = 256


def bucket(rollout_id: str, key: str) -> int:
    """The key's bucket in ``[0, BUCKETS)`` for this rollout. Any text hashes, a lone surrogate too
    (JSON's ``"\\ud800"`` escape reads as one; it has no UTF-8 form, and must not fail the request)."""
    text = f"{rollout_id}\x00{key}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def threshold(share: float) -> int:
    """How many buckets a share (percent, 0-100) covers."""
    return max(0, min(BUCKETS, round(float(share) * BUCKETS / 100.0)))


def to_candidate(rollout_id: str, share: float, key: str) -> bool:
    """Whether the candidate answers the request with this routing key."""
    return bucket(rollout_id, key) < threshold(share)


def live_split(pointer: Mapping[str, Any] | None) -> tuple[str, int, int, float] | None:
    """What a predictor needs of a rollout pointer: (id, champion, candidate, share), or None when no
    rollout routes traffic now (none, completed, aborted, or at a share of 0)."""
    if not pointer or pointer.get("status") not in ("active", "paused"):
        return None
    share = float(pointer.get("share") or 0.0)
    if share <= 0:
        return None
    return str(pointer["id"]), int(pointer["champion"]), int(pointer["candidate"]), share
