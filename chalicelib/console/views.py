"""What the console's pages show, shaped from the stores' records (pure: no AWS, no wiring).

The entry point (``chalicelib/entrypoints/console.py``) reads the registry, the uploads ledger, the
runs, the queues and the alarms, and these functions turn them into the documents the pages render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.ingest.uploads import Upload

RECENT_UPLOADS = 20
RECENT_RUNS = 20
DATASET_UPLOADS = 200  # a dataset page lists (and charts) at most its newest 200 uploads
RUN_DONE = frozenset({"succeeded", "failed"})

# The ledger's fields a page shows (the bucket, version id and etag are for the pipeline).
_UPLOAD_FIELDS = (
    "upload_id",
    "dataset",
    "key",
    "status",
    "problem",
    "rows",
    "new_rows",
    "repeated_rows",
    "issue_codes",
    "drift",
    "duplicate_of",
    "recorded_at",
    "size",
    "revoked_at",
    "revoked_by",
    "revoked_reason",
)


def upload_row(upload: Upload) -> dict[str, Any]:
    doc = upload.as_item()
    return {name: doc.get(name) for name in _UPLOAD_FIELDS}


def newest_first(uploads: Iterable[Upload]) -> list[Upload]:
    return sorted(uploads, key=lambda u: (u.recorded_at, u.key), reverse=True)


def model_row(name: str, champion: int | None, versions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pending = sorted(int(v["version"]) for v in versions if v.get("status") == "pending_approval")
    return {
        "model": name,
        "champion": champion,
        "versions": len(versions),
        "latest": max((int(v["version"]) for v in versions), default=None),
        "pending_approval": pending,
    }


def overview(
    *,
    contracts: Sequence[str],
    uploads: Sequence[Upload],
    models: Sequence[dict[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    queues: Sequence[Mapping[str, Any]],
    alarms: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The overview: datasets (with their upload counts by status), models with their champion and
    the versions waiting for approval, the newest uploads, runs in flight and the newest ones,
    queues with their DLQ depth, alarms, and ``warnings``: what a person should look at now."""
    by_dataset: dict[str, dict[str, int]] = {name: {} for name in contracts}
    last_upload: dict[str, str] = {}
    for u in uploads:
        if u.dataset is None:
            continue
        counts = by_dataset.setdefault(u.dataset, {})
        status = "revoked" if u.revoked else u.status
        counts[status] = counts.get(status, 0) + 1
        last_upload[u.dataset] = max(last_upload.get(u.dataset, ""), u.recorded_at)
    datasets = [
        {
            "dataset": name,
            "contract": name in contracts,
            "uploads": sum(counts.values()),
            "by_status": dict(sorted(counts.items())),
            "last_upload_at": last_upload.get(name),
        }
        for name, counts in sorted(by_dataset.items())
    ]
    ordered_runs = sorted(runs, key=lambda r: str(r.get("created_at", "")), reverse=True)
    in_flight = [dict(r) for r in ordered_runs if r.get("status") not in RUN_DONE]
    warnings = [
        f"{q['dlq']}: {q['dlq_depth']} message(s) in the dead-letter queue of {q['queue']}"
        for q in queues
        if q.get("dlq_depth")
    ]
    warnings += [f"alarm {a['name']} is {a['state']}" for a in alarms if a.get("state") == "ALARM"]
    pending = sum(len(m["pending_approval"]) for m in models)
    if pending:
        warnings.append(f"{pending} model version(s) waiting for approval")
    return {
        "datasets": datasets,
        "models": list(models),
        "uploads": [upload_row(u) for u in newest_first(uploads)[:RECENT_UPLOADS]],
        "uploads_total": len(uploads),
        "runs_in_flight": in_flight,
        "runs": [dict(r) for r in ordered_runs[:RECENT_RUNS]],
        "queues": list(queues),
        "alarms": list(alarms),
        "warnings": warnings,
    }


def drift_series(rows: Sequence[Mapping[str, Any]], reports: Mapping[str, Any]) -> dict[str, Any]:
    """Per feature, its drift statistic (PSI) on each upload with a drift report, oldest first:
    ``{"uploads": [{upload_id, recorded_at, verdict}], "features": {name: [psi | None, ...]},
    "drifted": {name: [bool | None, ...]}}`` (None: the upload has no figure for the feature)."""
    points = []
    for row in sorted(rows, key=lambda r: (str(r.get("recorded_at")), str(r.get("key")))):
        drift = (reports.get(str(row["upload_id"])) or {}).get("drift") or {}
        if drift.get("features"):
            points.append((row, drift))
    names = sorted({name for _, drift in points for name in drift["features"]})
    features: dict[str, list[float | None]] = {name: [] for name in names}
    drifted: dict[str, list[bool | None]] = {name: [] for name in names}
    for _, drift in points:
        flagged = set(drift.get("drifted_features") or ())
        for name in names:
            figure = (drift["features"].get(name) or {}).get("psi")
            features[name].append(float(figure) if isinstance(figure, int | float) else None)
            drifted[name].append(name in flagged if name in drift["features"] else None)
    return {
        "statistic": "psi",
        "uploads": [
            {
                "upload_id": row["upload_id"],
                "recorded_at": row.get("recorded_at"),
                "verdict": drift.get("verdict"),
            }
            for row, drift in points
        ],
        "features": features,
        "drifted": drifted,
    }
