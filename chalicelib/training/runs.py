"""Runs and the per-dataset retrain state, as records: their ids, the lock's lifetime, and the shape
of what the runs store keeps (adapters in ``chalicelib.adapters.*.runs`` store these documents).

The state document of a dataset holds ``rows_since_training``, ``drift_pending``,
``last_trained_at``, ``last_run_started_at``, the single-flight lock (``lock_run_id`` with
``lock_expires_at``, epoch seconds) and the triggers ``coalesced`` while the lock is held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.timeutil import parse_iso
from chalicelib.training.policy import DatasetState, Decision, Trigger

LOCK_SECONDS = 4 * 3600  # longer than a job's 3 attempts of one hour: a dead run frees the lock later


def run_id_for(dataset: str, now: datetime, data_hash: str) -> str:
    return f"{dataset}-{now:%Y%m%dT%H%M%SZ}-{data_hash[:8]}"


def lock_expiry(now: datetime) -> int:
    """When a lock taken at ``now`` stops holding, in epoch seconds."""
    return int(now.timestamp()) + LOCK_SECONDS


def lock_is_free(holder: str | None, expires_at: float | None, now: datetime) -> bool:
    """Whether the lock can be taken at ``now``: nobody holds it, or its holder's time has run out.
    (The DynamoDB adapter states the same rule as its condition expression.)"""
    return holder is None or expires_at is None or expires_at < int(now.timestamp())


def dataset_state(doc: dict[str, Any] | None, now: datetime) -> DatasetState:
    """The policy's view of a stored state document; a lock past its expiry is no run in flight."""
    if not doc:
        return DatasetState()
    live = float(doc.get("lock_expires_at", 0)) > now.timestamp()
    return DatasetState(
        rows_since_training=int(doc.get("rows_since_training", 0)),
        drift_pending=bool(doc.get("drift_pending", False)),
        last_trained_at=parse_iso(doc.get("last_trained_at")),
        last_run_started_at=parse_iso(doc.get("last_run_started_at")),
        run_in_flight=doc.get("lock_run_id") if live else None,
    )


def coalesced_entry(trigger: Trigger, run_id: str | None, at: str) -> dict[str, Any]:
    """What is kept of a trigger that waits for run ``run_id``."""
    return {
        "kind": trigger.kind,
        "reason": trigger.reason,
        "upload_id": trigger.upload_id,
        "at": at,
        "during_run": run_id,
    }


def queued_run(
    run_id: str,
    trigger: Trigger,
    decision: Decision,
    manifest: dict[str, Any],
    contract_version: int,
    created_at: str,
) -> dict[str, Any]:
    """The record of a run the kickoff decided to launch, before its job is submitted."""
    return {
        "run_id": run_id,
        "dataset": trigger.dataset,
        "status": "queued",
        "reasons": decision.reasons,
        "trigger": {"kind": trigger.kind, "reason": trigger.reason, "upload_id": trigger.upload_id},
        "data_manifest_key": manifest["key"],
        "data_hash": manifest["data_hash"],
        "data_objects": len(manifest["objects"]),
        "data_bytes": manifest["bytes"],
        "contract_version": contract_version,
        "created_at": created_at,
        "attempts": 0,
    }
