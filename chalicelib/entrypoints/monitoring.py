"""Monitoring: the hourly monitor (``monitor_models``), ``GET /models/{name}/monitoring``, and outcomes
(the true labels) arriving over the API. (The uploads under ``outcomes/`` arrive through the ingest
queue: ``datasets.ingest_upload`` routes them.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalice import Rate, Response
from chalice.app import CloudWatchEvent

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES, READS
from chalicelib.entrypoints.blueprint import Area, json_body, model_name
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.monitoring.requests import OutcomesRequest

bp = Area(__name__)

DEFAULT_SPAN = timedelta(hours=24)
MAX_SPAN = timedelta(days=31)


@bp.schedule(Rate(1, unit=Rate.HOURS), name="monitor_models")
def monitor_models(event: CloudWatchEvent) -> dict[str, Any]:
    """Hourly: report every model's closed windows, and act on the breaches they sustain."""
    from chalicelib.monitoring.service import MonitorFailed, run_monitor
    from chalicelib.observability import emit_dimensioned
    from chalicelib.timeutil import utc_now

    def count_breaches(done: dict[str, Any]) -> None:
        recorded = sum(len(result.get("breaches") or []) for result in done.values())
        emit_dimensioned(
            {"stage": bootstrap.settings().stage}, [("MonitorBreaches", "Count", float(recorded))]
        )

    try:
        done = run_monitor(bootstrap.monitor_ports(), utc_now())
    except MonitorFailed as failed:
        count_breaches(failed.done)  # the breaches of the models that were monitored still count
        raise
    count_breaches(done)
    return done


def _instant(params: Any, name: str, default: datetime) -> datetime:
    given = params.getlist(name) if params and name in params else []
    if len(given) > 1:
        raise InvalidInput(f"{name}: give one instant, not several")
    if not given:
        return default
    try:
        moment = datetime.fromisoformat(given[0])
    except ValueError:
        raise InvalidInput(f"{name}: not an ISO 8601 instant (e.g. 2026-12-01T10:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.route("/models/{name}/monitoring", methods=["GET"], authorizer=READS)
def model_monitoring(name: str) -> dict[str, Any]:
    """The model's window reports and breaches with a start in ``[from, to)`` (ISO 8601; default: the
    last 24 hours; at most 31 days), oldest first."""
    model = model_name(name)
    params = bp.current_request.query_params
    unknown = sorted(set(params or ()) - {"from", "to"})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown query parameter; allowed: from, to")
    from chalicelib.timeutil import utc_now

    now = utc_now()
    end = _instant(params, "to", now)
    start = _instant(params, "from", end - DEFAULT_SPAN)
    if start >= end:
        raise InvalidInput("from: must be before to")
    if end - start > MAX_SPAN:
        raise InvalidInput("from: at most 31 days before to")
    if bootstrap.registry().champion(model) is None and not bootstrap.registry().versions(model):
        raise NotFound(f"no model named {model!r}")
    store = bootstrap.monitoring_store()
    return {
        "model": model,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "windows": store.windows(model, start, end),
        "breaches": store.breaches(model, start, end),
    }


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
