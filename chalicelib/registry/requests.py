"""The bodies the /models routes that change something take, each declared once (``Body``: unknown
fields and numbers out of range are a 400 naming the field; ``chalicelib.http``).

    POST /models/{name}/versions/{v}/approve   {"reason": "...", "expected_champion": 3 | null}
    POST /models/{name}/versions/{v}/reject    {"reason": "..."}
    POST /models/{name}/rollback               {"reason": "..."}
    PUT  /models/{name}/challenger             {"reason": "...", "version": 4 | null}
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from chalicelib.http import MAX_VERSION, Body, Change, Reason

__all__ = ["Approval", "Challenger", "Change"]


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
