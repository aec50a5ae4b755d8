"""Sticky decisions: what a person decided about a model holds for every rebuild of it.

A rollback or a rejection by a person is a judgement of a model that no gate made: the figures
said promote, and someone found otherwise (a corrupted upload, a complaint from the field). The
next retrain on the same data snapshot with the same training settings rebuilds that very model
(training is seeded), and the gates would say promote again. So each version records its
``fingerprint`` (``chalicelib.training.lineage.build_fingerprint``: the data hash, the columns as
read, the model and split settings), and a candidate whose fingerprint matches a version that was

* **rolled back** (the audit ledger holds a ``rollback`` entry from it), or
* **rejected by a person** (its last transition to ``rejected`` is not the evaluator's),

is rejected by the evaluator, the reason naming that decision: version, who, when, why. The gates'
own rejections are not sticky: a rebuild is judged afresh, against the champion of its day. New
data (another snapshot) or other settings make another model, judged on its merits.

Pure functions over the records the registry returns (``versions``, ``audit``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.registry.states import REJECTED, ROLLBACK

ROLLED_BACK = "rolled back"


def earlier_decision(
    versions: Iterable[Mapping[str, Any]],
    ledger: Iterable[Mapping[str, Any]],
    fingerprint: str | None,
    version: int,
    evaluator: str,
) -> dict[str, Any] | None:
    """The latest person's decision (rollback or rejection) about another version with this
    fingerprint, as ``{"version", "decision", "by", "at", "reason", "fingerprint"}``; None if none
    (or no fingerprint: a candidate built before fingerprints were recorded)."""
    if not fingerprint:
        return None
    same = {int(v["version"]): v for v in versions if v.get("fingerprint") == fingerprint}
    same.pop(version, None)
    if not same:
        return None
    found: list[dict[str, Any]] = []
    for entry in ledger:
        undone = entry.get("from_version")
        if entry.get("action") == ROLLBACK and undone is not None and int(undone) in same:
            found.append(
                _decision(int(undone), ROLLED_BACK, entry.get("who"), entry.get("at"), entry.get("reason"))
            )
    for number, doc in same.items():
        if doc.get("status") != REJECTED:
            continue
        last = next((t for t in reversed(doc.get("transitions") or []) if t.get("to") == REJECTED), None)
        if last is not None and last.get("by") != evaluator:
            found.append(_decision(number, REJECTED, last.get("by"), last.get("at"), last.get("reason")))
    if not found:
        return None
    latest = max(found, key=lambda d: str(d["at"] or ""))
    return {**latest, "fingerprint": fingerprint}


def sentence(decision: Mapping[str, Any]) -> str:
    """The decision as the reason of the candidate it rejects."""
    return (
        f"the same data snapshot and training settings built v{decision['version']}, which "
        f"{decision['by']} {decision['decision']} at {decision['at']} ({decision['reason']!s}): this "
        "rebuild is the same model and is not promoted again; upload new data or change the training "
        "settings to train another"
    )


def _decision(version: int, decision: str, by: Any, at: Any, reason: Any) -> dict[str, Any]:
    return {
        "version": version,
        "decision": decision,
        "by": str(by or "unknown"),
        "at": str(at or "unknown"),
        "reason": str(reason or "no reason given"),
    }
