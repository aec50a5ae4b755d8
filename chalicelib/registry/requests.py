"""The bodies the /models routes that change something take, each declared once (``Body``: unknown
fields and numbers out of range are a 400 naming the field; ``chalicelib.http``).

    POST /models/{name}/versions/{v}/approve   {"reason": "...", "expected_champion": 3 | null}
    POST /models/{name}/versions/{v}/reject    {"reason": "..."}
    POST /models/{name}/rollback               {"reason": "..."}
    PUT  /models/{name}/challenger             {"reason": "...", "version": 4 | null}
    POST /models/{name}/rollout                {"reason": "...", "version": 4, "canary": 10, "bake": "15m"}
                                               or {..., "linear": 20, "every": "10m"}
    POST /models/{name}/rollout/pause|resume|abort   {"reason": "..."}
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from chalicelib.http import MAX_VERSION, Body, Change, Reason

__all__ = ["Approval", "Challenger", "Change", "RolloutStart"]


class Approval(Body):
    """approve: the reason, and optionally the champion the caller saw (a stale approval is a 409)."""

    reason: Reason
    expected_champion: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_VERSION,
                description="the champion's version number you saw (1, 2, 3...): the approval is "
                "refused (409) if another one is champion by then; null or left out: no check",
            ),
        ]
        | None
    ) = None


class Challenger(Body):
    """challenger: the version to shadow the champion on /predict, or null to clear it."""

    reason: Reason
    version: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_VERSION,
                description="a version number (1, 2, 3...) to shadow the champion, or null for no challenger",
            ),
        ]
        | None
    ) = None


_SHARE = Meta(gt=0, lt=100, description="a share of the traffic in percent, above 0 and below 100 (e.g. 10)")
_DURATION = (
    'a duration such as "15m", "90s", "1h" or "2d" (a number: minutes), at most 7 days; '
    "left out: the contract's promotion.rollout bake"
)


class RolloutStart(Body):
    """rollout: the version to roll out, why, and optionally the schedule (``canary`` or ``linear``
    with ``bake``/``every``; what is left out comes from the contract's ``promotion.rollout``)."""

    reason: Reason
    version: Annotated[
        int, Meta(ge=1, le=MAX_VERSION, description="the version number (1, 2, 3...) to roll out")
    ]
    canary: Annotated[float, _SHARE] | None = None
    linear: Annotated[float, _SHARE] | None = None
    bake: (
        Annotated[str, Meta(max_length=32, description=_DURATION)]
        | Annotated[float, Meta(ge=0, le=7 * 24 * 60, description=_DURATION)]
        | None
    ) = None
    every: (
        Annotated[str, Meta(max_length=32, description=_DURATION)]
        | Annotated[float, Meta(ge=0, le=7 * 24 * 60, description=_DURATION)]
        | None
    ) = None

    def schedule_request(self) -> dict[str, object] | None:
        """The schedule fields given, for ``Schedule.from_request`` (None: none given)."""
        given = {k: v for k in ("canary", "linear", "bake", "every") if (v := getattr(self, k)) is not None}
        return given or None
