"""GET /health: the API is up, which stage it is, and which code revision it runs."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.entrypoints.blueprint import Area

bp = Area(__name__)


@bp.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    from chalicelib.revision import code_revision

    return {"status": "ok", "stage": bootstrap.settings().stage, "revision": code_revision()}
