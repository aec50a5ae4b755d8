"""Real-time predictions: POST /models/{name}/predict (the champion) and .../versions/{v}/predict.

Every answer carries a fresh ``request_id`` (32 hex digits), the id its captured inference records
carry (``chalicelib.capture``), so a caller can report the true outcome later; a 400 for records
that cannot be scored carries it in the error body too. Every answer names the ``version`` that
answered; during a rollout the champion route's answer also names the rollout and its arm
(``chalicelib.serving.predict``)."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib import bootstrap
from chalicelib.capture.records import new_request_id
from chalicelib.entrypoints.auth import READS
from chalicelib.entrypoints.blueprint import Area, json_body, model_name, version_number
from chalicelib.errors import InvalidInput
from chalicelib.http import BadRequest
from chalicelib.serving.requests import PredictRequest

bp = Area(__name__)
# The routes app.py answers on the lean path (``blueprint.answer_lean``): the API's busiest.
LEAN_ROUTES = frozenset(
    {("POST", "/models/{name}/predict"), ("POST", "/models/{name}/versions/{version}/predict")}
)


def _predict(name: str, version: int | None) -> Any:
    from chalicelib.serving import predict
    from chalicelib.serving.schema import InvalidInput as InvalidRecords
    from chalicelib.serving.schema import Problem

    request_id = new_request_id()
    try:
        model = model_name(name)
        try:
            request = json_body(bp, PredictRequest, max_bytes=predict.MAX_BODY_BYTES)
        except BadRequest as exc:  # the body, not a record: one problem for the whole request
            raise InvalidRecords([Problem(None, exc.field, exc.problem)]) from exc
        return bootstrap.predictor().predict(
            model, request.records, version, request_id=request_id, routing_key=request.routing_key
        )
    except InvalidInput as exc:
        body = {"Code": "BadRequestError", "Message": str(exc), **exc.details(), "request_id": request_id}
        return Response(status_code=400, body=body)


@bp.route(
    "/models/{name}/predict",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=READS,
    body=PredictRequest,
)
def predict_champion(name: str) -> Any:
    """The champion scores ``{"records": [...]}``: per record the prediction (and class probabilities)."""
    return _predict(name, None)


@bp.route(
    "/models/{name}/versions/{version}/predict",
    methods=["POST"],
    content_types=["application/json"],
    authorizer=READS,
    body=PredictRequest,
)
def predict_version(name: str, version: str) -> Any:
    """A pinned version scores the records (any registered version that was not rejected)."""
    return _predict(name, version_number(version))
