"""The retrain queue's messages: what announces validated data or a finished run, as triggers."""

from __future__ import annotations

from typing import Any

from chalicelib.training.policy import Trigger


def trigger_from_message(body: dict[str, Any]) -> Trigger:
    """A retrain-queue message -> a Trigger. Raises ValueError on an unknown message."""
    event = body.get("event")
    dataset = body.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ValueError("retrain message has no 'dataset'")
    if event == "data.validated":
        return Trigger(
            kind="data",
            dataset=dataset,
            upload_id=str(body.get("upload_id")),
            # What counts is the rows no earlier upload holds, and changed ones; a message from
            # before rows were compared across uploads has only "rows".
            rows=int(body.get("new_rows", body.get("rows", 0))),
            repeated_rows=int(body.get("repeated_rows", 0)),
            # Only a drifted upload is drift: "stable", "insufficient_data" (too few rows to judge)
            # and "reference" are not.
            drift=body.get("drift") == "drifted",
            reason=f"upload {body.get('upload_id')} validated",
        )
    if event == "run.finished":
        return Trigger(
            kind="run_finished",
            dataset=dataset,
            reason=f"run {body.get('run_id')} finished with triggers waiting",
        )
    if event == "monitor.breach":
        return Trigger(
            kind="monitor", dataset=dataset, reason=str(body.get("reason") or "a sustained breach")
        )
    raise ValueError(f"unknown retrain message event {event!r}")


def run_finished_message(dataset: str, run_id: str, coalesced: int) -> dict[str, Any]:
    """What a run that ends with ``coalesced`` triggers waiting sends, so the kickoff looks again."""
    return {"event": "run.finished", "dataset": dataset, "run_id": run_id, "coalesced": coalesced}


def monitor_breach_message(dataset: str, kinds: list[str], reason: str, window: str) -> dict[str, Any]:
    """What the monitor sends when a breach is sustained (``chalicelib.monitoring``): a trigger of kind
    ``monitor``, decided by the same policy and single-flight lock as every other."""
    return {"event": "monitor.breach", "dataset": dataset, "kinds": kinds, "reason": reason, "window": window}
