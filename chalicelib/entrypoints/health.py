"""GET /health: the API is up, and which stage it is."""

from __future__ import annotations

from chalicelib.entrypoints.blueprint import Area
from chalicelib.settings import Settings

bp = Area(__name__)


@bp.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "stage": Settings.from_env().stage}
