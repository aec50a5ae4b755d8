"""Which registered versions answer predictions, on every route (a pinned version, the champion, the
shadow challenger): pure rules over a version's record, read at call time (and cached per champion
pointer TTL by the predictor), so a change to the record stops serving within that TTL.

* a status in ``NOT_SERVABLE`` (``rejected``);
* ``tainted``: trained or evaluated on an upload revoked since (``chalicelib.revocation``). The
  record's ``tainted`` maps each revoked upload to how it reached the version and who revoked it
  and why (``chalicelib.registry.states.taint_detail``).

Standard library only: the registry's rules import it too, and a cold start should not pay numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOT_SERVABLE: frozenset[str] = frozenset({"rejected"})


def tainted_reason(doc: Mapping[str, Any] | None) -> str | None:
    """Why a version is tainted (None: it is not): each revoked upload, how it reached the version,
    and who revoked it and why."""
    tainted = (doc or {}).get("tainted") or {}
    if not tainted:
        return None
    parts = []
    for upload, detail in sorted(tainted.items()):
        ways = (("trained", detail.get("trained")), ("evaluated", detail.get("evaluated")))
        how = " and ".join(word for word, on in ways if on) or "built"
        parts.append(f"{how} on upload {upload}, revoked by {detail.get('by')}: {detail.get('reason')}")
    return "tainted: " + "; ".join(parts)


def refusal_reason(doc: Mapping[str, Any] | None) -> str | None:
    """Why a version must not answer predictions (None: it may): ``"is rejected: ..."``."""
    status = (doc or {}).get("status")
    if status in NOT_SERVABLE:
        return f"is {status}: a {status} version does not answer predictions"
    why = tainted_reason(doc)
    if why:
        return f"is {why}; a tainted version does not answer predictions"
    return None
