"""What the /models API does, apart from HTTP: read the registry, approve, reject, roll back.

Every change names its caller (from the authorizer: ``"alice (approver)"``), which the registry
writes into the version's transitions and the audit ledger. Errors are typed so the API can answer
404 (``NotFound``: no such model or version), 409 (``Conflict``: a state the change cannot start
from: stale, repeated or superseded approvals, nothing to roll back, a concurrent change that won) or
400 (``ValueError``: the request itself). A 409 changed nothing.

Approval rules:

* only a version ``pending_approval`` (or ``approved`` but never promoted, a record from before
  approvals were promotions) can be approved; approving a champion, a rejected, a retired or a
  superseded version is refused;
* the approval stands on the gates' comparison with the champion of that time
  (``gates.evaluated_against``): if the champion changed since, the approval is **stale** and refused
  (every champion change supersedes the versions waiting, so this is a race the caller lost); the
  caller may also state the champion they saw (``expected_champion``), which must still hold;
* the approval and the promotion are one change (``Registry.approve``), conditional on that champion
  and on the version's status: of concurrent approvals, rejections and rollbacks exactly one wins,
  and a losing approval leaves no trace.
"""

from __future__ import annotations

from typing import Any

from chalicelib import notify
from chalicelib.notify import Notifier
from chalicelib.registry.ports import Registry
from chalicelib.registry.states import (
    ALLOWED,
    APPROVED,
    CHAMPION,
    PENDING_APPROVAL,
    REJECTED,
    ROLLING_OUT,
    SUPERSEDED,
    Conflict,
    NotFound,
    label,
    tainted_reason,
)

SUMMARY_KEYS = ("version", "status", "family", "primary_metric", "primary_value", "run_id", "created_at")
MAX_REASON = 2000


def reason_from(body: Any) -> str:
    """The required ``reason`` of a change, trimmed; ValueError naming the field otherwise (a reason
    is never cut: one too long is refused)."""
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: give a non-empty string saying why (it goes into the audit trail)")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise ValueError(f"reason: at most {MAX_REASON:,} characters, got {len(reason):,}; say it shorter")
    return reason


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """A version's line: its figures, its primary metric beside the champion's on the same rows (both
    slices: ``compared``), the gates' decision and reason, whether it is tainted, and the last status
    change (who moved it to its status and why: a person's rejection, a supersession)."""
    out = {k: doc.get(k) for k in SUMMARY_KEYS}
    gates = doc.get("gates") or {}
    out["decision"] = gates.get("decision")
    out["reason"] = gates.get("reason")
    out["compared"] = compared(doc)
    out["tainted"] = tainted_reason(doc)
    last = (doc.get("transitions") or [{}])[-1]
    out["status_by"] = last.get("by")
    out["status_reason"] = last.get("reason")
    return out


def compared(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The version's primary metric and the champion's on the same holdout rows, whole and in its
    slices (rows of uploads the champion was trained on, rows of uploads since), as the gates
    measured them; None when it was not compared with a champion (the first model, a rebuild)."""
    gates = doc.get("gates") or {}
    metric = doc.get("primary_metric")
    figures = gates.get("metrics") or {}
    if not metric or not figures.get("champion") or gates.get("evaluated_against") is None:
        return None

    def pair(metrics: dict[str, Any], rows: Any) -> dict[str, Any]:
        return {
            "rows": rows,
            "candidate": (metrics.get("candidate") or {}).get(metric),
            "champion": (metrics.get("champion") or {}).get(metric),
        }

    slices = gates.get("slices") or {}
    return {
        "against": gates["evaluated_against"],
        "metric": metric,
        **pair(figures, (gates.get("comparison") or {}).get("rows", gates.get("holdout_rows"))),
        "slices": {name: pair(s.get("metrics") or {}, s.get("rows")) for name, s in slices.items()},
    }


def list_models(reg: Registry) -> list[dict[str, Any]]:
    out = []
    for name in reg.models():
        versions = reg.versions(name)
        out.append(
            {
                "model": name,
                "champion": reg.champion(name),
                "versions": len(versions),
                "latest": max((int(v["version"]) for v in versions), default=None),
                "pending_approval": [int(v["version"]) for v in versions if v["status"] == PENDING_APPROVAL],
            }
        )
    return out


def show_model(reg: Registry, model: str) -> dict[str, Any]:
    versions = reg.versions(model)
    if not versions:
        raise NotFound(f"no model named {model!r}")
    champion = reg.champion(model)
    return {
        "model": model,
        "champion": champion,
        "challenger": reg.challenger(model),
        # The running or last rollout (None: never one): its step, share and last guard figures.
        "rollout": reg.rollout(model),
        "champion_version": next((_summary(v) for v in versions if v["version"] == champion), None),
        "versions": [_summary(v) for v in versions],
    }


def show_version(reg: Registry, model: str, version: int) -> dict[str, Any]:
    doc = reg.version(model, version)
    if doc is None:
        if not reg.versions(model):
            raise NotFound(f"no model named {model!r}")
        raise NotFound(f"{model} has no version {version}")
    return doc


def audit(reg: Registry, model: str) -> list[dict[str, Any]]:
    if not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    return reg.audit(model)


def approve(
    reg: Registry,
    notifier: Notifier,
    model: str,
    version: int,
    caller: str,
    reason: str,
    expected_champion: Any = None,
) -> dict[str, Any]:
    doc = show_version(reg, model, version)
    status = doc["status"]
    if status == SUPERSEDED:
        why = (doc.get("transitions") or [{}])[-1].get("reason") or "a newer champion was chosen"
        raise Conflict(f"{model} v{version} cannot be approved: it was superseded: {why}")
    if status not in (PENDING_APPROVAL, APPROVED):
        raise Conflict(
            f"{model} v{version} is {status}: only a version pending approval can be approved"
            + (" (it was approved already)" if status in (CHAMPION, ROLLING_OUT) else "")
        )
    champion = reg.champion(model)
    check_fresh(version, doc, champion)
    if expected_champion is not None and expected_champion != champion:
        raise Conflict(
            f"stale approval: you expected the champion to be {label(expected_champion)}, "
            f"it is {label(champion)}"
        )
    entry = reg.approve(model, version, caller, reason, expected_champion=champion, expected_status=status)
    notifier.publish(
        notify.MODEL_PROMOTED,
        {"model": model, "from_version": champion, "to_version": version, "by": caller, "reason": reason},
    )
    return entry


def check_fresh(version: int, doc: dict[str, Any], champion: int | None) -> None:
    """Conflict if the gates compared the version with another champion than the current one: an
    approval (or a rollout) would stand on a stale comparison."""
    gates = doc.get("gates") or {}
    if "evaluated_against" in gates and gates["evaluated_against"] != champion:
        raise Conflict(
            f"stale approval: the gates compared v{version} with the champion of that time, "
            f"{label(gates['evaluated_against'])}, but the champion is now {label(champion)}; "
            "reject it or train a new candidate to compare afresh"
        )


def reject(
    reg: Registry, notifier: Notifier, model: str, version: int, caller: str, reason: str
) -> dict[str, Any]:
    doc = show_version(reg, model, version)
    if doc["status"] == CHAMPION:
        raise Conflict(f"{model} v{version} is the champion: roll back first, then reject it")
    if doc["status"] == REJECTED:
        raise Conflict(f"{model} v{version} is rejected already")
    if doc["status"] == ROLLING_OUT:
        raise Conflict(f"{model} v{version} is rolling out: abort the rollout first, then reject it")
    if doc["status"] not in ALLOWED[REJECTED]:
        raise Conflict(f"{model} v{version} is {doc['status']}: it cannot be rejected")
    # Conditional on the status just read: a concurrent change that wins makes this a StatusConflict.
    updated = reg.set_status(model, version, REJECTED, caller, reason, expected=doc["status"])
    notifier.publish(
        notify.VERSION_REJECTED, {"model": model, "version": version, "by": caller, "reason": reason}
    )
    return updated


def set_challenger(
    reg: Registry, model: str, version: int | None, caller: str, reason: str
) -> dict[str, Any]:
    if not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    return reg.set_challenger(model, version, caller, reason)


def rollback(reg: Registry, notifier: Notifier, model: str, caller: str, reason: str) -> dict[str, Any]:
    if not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    entry = reg.rollback(model, caller, reason)
    notifier.publish(
        notify.MODEL_ROLLED_BACK,
        {
            "model": model,
            "from_version": entry["from_version"],
            "to_version": entry["to_version"],
            "by": caller,
            "reason": reason,
        },
    )
    return entry
