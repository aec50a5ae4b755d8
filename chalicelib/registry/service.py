"""What the /models API does, apart from HTTP: read the registry, approve, reject, roll back.

Every change names its caller (from the authorizer: ``"alice (approver)"``), which the registry
writes into the version's transitions and the audit ledger. Errors are typed so the API can answer
404 (``NotFound``), 409 (``Conflict``: stale or repeated approvals, nothing to roll back, a
concurrent change) or 400 (``ValueError``).

Approval rules:

* only a version ``pending_approval`` (or ``approved`` but not yet promoted, after a race) can be
  approved; approving a champion, a rejected or a retired version is refused as a repeat;
* the approval stands on the gates' comparison with the champion of that time
  (``gates.evaluated_against``): if the champion changed since, the approval is **stale** and refused;
  the caller may also state the champion they saw (``expected_champion``), which must still hold;
* the promotion is conditional on that champion (one transaction with the audit entry), so two
  people approving different versions at once cannot both win.
"""

from __future__ import annotations

from typing import Any

from chalicelib import errors, notify
from chalicelib.errors import RegistryError
from chalicelib.notify import Notifier
from chalicelib.registry.ports import Registry
from chalicelib.registry.states import (
    APPROVED,
    CHAMPION,
    PENDING_APPROVAL,
    REJECTED,
    NothingToRollBack,
    PromotionConflict,
    StatusConflict,
    label,
)

SUMMARY_KEYS = ("version", "status", "family", "primary_metric", "primary_value", "run_id", "created_at")
MAX_REASON = 500


class NotFound(RegistryError, errors.NotFound):
    """No such model, or no such version of it."""


class Conflict(RegistryError, errors.Conflict):
    """A change that the registry's current state does not allow (stale approval, wrong status...)."""


def reason_from(body: Any) -> str:
    """The required ``reason`` of a change, trimmed; ValueError naming the field otherwise."""
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: give a non-empty string saying why (it goes into the audit trail)")
    return reason.strip()[:MAX_REASON]


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc.get(k) for k in SUMMARY_KEYS}
    gates = doc.get("gates") or {}
    out["decision"] = gates.get("decision")
    out["reason"] = gates.get("reason")
    return out


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
        "champion_version": next((_summary(v) for v in versions if v["version"] == champion), None),
        "versions": [_summary(v) for v in versions],
    }


def show_version(reg: Registry, model: str, version: int) -> dict[str, Any]:
    doc = reg.version(model, version)
    if doc is None:
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
    if status not in (PENDING_APPROVAL, APPROVED):
        raise Conflict(
            f"{model} v{version} is {status}: only a version pending approval can be approved"
            + (" (it was approved already)" if status == CHAMPION else "")
        )
    champion = reg.champion(model)
    gates = doc.get("gates") or {}
    if "evaluated_against" in gates and gates["evaluated_against"] != champion:
        raise Conflict(
            f"stale approval: the gates compared v{version} with v{gates['evaluated_against']}, but the "
            f"champion is now {label(champion)}; reject it or train a new candidate to compare afresh"
        )
    if expected_champion is not None and expected_champion != champion:
        raise Conflict(
            f"stale approval: you expected the champion to be {label(expected_champion)}, "
            f"it is {label(champion)}"
        )
    try:
        if status == PENDING_APPROVAL:
            reg.set_status(model, version, APPROVED, caller, reason, expected=PENDING_APPROVAL)
        entry = reg.promote(model, version, caller, reason, expected_champion=champion)
    except (StatusConflict, PromotionConflict) as exc:
        raise Conflict(str(exc)) from None
    notifier.publish(
        notify.MODEL_PROMOTED,
        {"model": model, "from_version": champion, "to_version": version, "by": caller, "reason": reason},
    )
    return entry


def reject(
    reg: Registry, notifier: Notifier, model: str, version: int, caller: str, reason: str
) -> dict[str, Any]:
    doc = show_version(reg, model, version)
    if doc["status"] == CHAMPION:
        raise Conflict(f"{model} v{version} is the champion: roll back first, then reject it")
    if doc["status"] == REJECTED:
        raise Conflict(f"{model} v{version} is rejected already")
    try:
        updated = reg.set_status(model, version, REJECTED, caller, reason)
    except StatusConflict as exc:
        raise Conflict(str(exc)) from None
    notifier.publish(
        notify.VERSION_REJECTED, {"model": model, "version": version, "by": caller, "reason": reason}
    )
    return updated


def set_challenger(
    reg: Registry, model: str, version: int | None, caller: str, reason: str
) -> dict[str, Any]:
    if not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    try:
        return reg.set_challenger(model, version, caller, reason)
    except StatusConflict as exc:
        raise Conflict(str(exc)) from None
    except RegistryError as exc:
        raise NotFound(str(exc)) from None


def rollback(reg: Registry, notifier: Notifier, model: str, caller: str, reason: str) -> dict[str, Any]:
    if not reg.versions(model):
        raise NotFound(f"no model named {model!r}")
    try:
        entry = reg.rollback(model, caller, reason)
    except (NothingToRollBack, PromotionConflict, RegistryError) as exc:
        raise Conflict(str(exc)) from None
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
