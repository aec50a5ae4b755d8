"""GET /health: the API is up, and which stage it is."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.entrypoints.blueprint import Area

bp = Area(__name__)


@bp.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "stage": bootstrap.settings().stage}
