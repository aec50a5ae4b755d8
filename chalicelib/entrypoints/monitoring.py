"""Monitoring: outcomes (the true labels) arriving over the API. (The uploads under ``outcomes/``
arrive through the ingest queue: ``datasets.ingest_upload`` routes them.)"""

from __future__ import annotations

import uuid

from chalice import Response

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES
from chalicelib.entrypoints.blueprint import Area, json_body, model_name
from chalicelib.monitoring.requests import OutcomesRequest

bp = Area(__name__)


@bp.route(
    "/models/{name}/outcomes",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=CHANGES,
    body=OutcomesRequest,
)
def post_outcomes(name: str) -> Response:
    """``{"outcomes": [{"request_id", "index"?, "label"} | {"row_id", "label"}, ...]}``: stored all or
    none. 202 ``{"accepted", "key"}``; 400 naming every bad item and field; 404 unknown model."""
    from chalicelib.monitoring.outcomes_service import accept

    model = model_name(name)
    request = json_body(bp, OutcomesRequest)
    # Each request is its own source: a client that sends the same outcomes twice stores them twice,
    # and the join counts the second as duplicates (docs/monitoring.md).
    answer = accept(bootstrap.outcome_ports(), model, request.outcomes, source=f"api:{uuid.uuid4().hex}")
    return Response(status_code=202, body=answer)
