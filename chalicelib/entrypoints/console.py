"""The web console (``GET /console`` and its static files) and the reads only its pages need.

The page and its files carry no data and need no token: a browser's navigation cannot send a bearer
token. The page asks for one, keeps it in the tab's sessionStorage and calls the JSON API with it,
so every figure it shows comes through a route guarded like the rest (``READS``; ``/session``
always needs a token, since it says whose it is). docs/console.md describes the pages.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice import Response

from chalicelib import bootstrap
from chalicelib.entrypoints.auth import CHANGES, READS
from chalicelib.entrypoints.blueprint import Area, dataset_name
from chalicelib.entrypoints.blueprint import upload_id as _upload_id  # the routes' parameter is upload_id
from chalicelib.errors import NotFound

bp = Area(__name__)


@bp.route("/console", methods=["GET"])
def console_page() -> Response:
    from chalicelib import console

    return Response(body=console.read(console.PAGE), status_code=200, headers=console.headers(console.PAGE))


@bp.route("/console/assets/{name}", methods=["GET"])
def console_asset(name: str) -> Response:
    """One of the console's files, by a name from its allow-list (``chalicelib.console.ASSETS``)."""
    from chalicelib import console

    asset = console.ASSETS.get(name)
    if asset is None:
        return Response(
            body={"Code": "NotFoundError", "Message": "no such console asset"},
            status_code=404,
            headers={
                "Content-Type": "application/json",
                "Cache-Control": "no-store",
                **console.SECURITY_HEADERS,
            },
        )
    return Response(body=console.read(asset), status_code=200, headers=console.headers(asset))


@bp.route("/session", methods=["GET"], authorizer=CHANGES)
def session() -> dict[str, Any]:
    """Who the token belongs to and its role (the console shows approvers their buttons)."""
    from chalicelib.auth import ROLES

    context = bp.current_request.context or {}
    authorizer = context.get("authorizer") or {}
    role = authorizer.get("role")
    models = authorizer.get("models")
    return {
        "name": authorizer.get("name"),
        "role": role,
        "roles": list(ROLES[: ROLES.index(role) + 1]) if role in ROLES else [],
        "models": models.split(",") if models else None,
    }


@bp.route("/overview", methods=["GET"], authorizer=READS)
def overview() -> dict[str, Any]:
    """Datasets, models with champions and pending approvals, recent uploads, runs, queues with their
    DLQ depths, alarms, and warnings (chalicelib/console/views.py)."""
    from chalicelib.console import views

    registry = bootstrap.registry()
    models = [
        views.model_row(name, registry.champion(name), registry.versions(name)) for name in registry.models()
    ]
    operations = bootstrap.operations()
    return views.overview(
        contracts=bootstrap.contracts().datasets(),
        uploads=bootstrap.uploads().scan(),
        models=models,
        runs=bootstrap.runs_store().list_runs(None),
        queues=operations.queues(),
        alarms=operations.alarms(),
    )


@bp.route("/datasets/{name}/uploads", methods=["GET"], authorizer=READS)
def dataset_uploads(name: str) -> dict[str, Any]:
    """The dataset's uploads, newest first (at most ``DATASET_UPLOADS``), and per feature its drift
    statistic on each of them, oldest first (from their reports), for the chart."""
    from chalicelib.console import views

    dataset = dataset_name(name)
    uploads = views.newest_first(u for u in bootstrap.uploads().scan() if u.dataset == dataset)
    if not uploads:
        try:
            bootstrap.contracts().get(dataset)
        except NotFound:
            raise NotFound(f"no dataset named {dataset!r} (no contract, no upload)") from None
    shown = uploads[: views.DATASET_UPLOADS]
    store = bootstrap.validation_store()
    with_reports = [u for u in shown if u.report_key and u.status == "valid"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = dict(
            zip(
                (u.upload_id for u in with_reports),
                pool.map(lambda u: store.get_json(str(u.report_key)), with_reports),
                strict=True,
            )
        )
    rows = [views.upload_row(u) for u in shown]
    return {
        "dataset": dataset,
        "uploads": rows,
        "total": len(uploads),
        "drift": views.drift_series(rows, reports),
    }


@bp.route("/uploads/{upload_id}/report", methods=["GET"], authorizer=READS)
def upload_report(upload_id: str) -> dict[str, Any]:
    """The upload's validation report (issues with their fixes, column statistics, drift): values of
    confidential and pii columns are never in it."""
    upload = bootstrap.uploads().get(_upload_id(upload_id))
    if upload is None:
        raise NotFound(f"no upload with id {upload_id!r}")
    if not upload.report_key:
        raise NotFound(f"upload {upload_id} has no report (status {upload.status}: {upload.problem or '-'})")
    report = bootstrap.validation_store().get_json(upload.report_key)
    if report is None:
        raise NotFound(f"the report of upload {upload_id} is missing at {upload.report_key}")
    return {"upload": upload.as_item(), "report": report}
