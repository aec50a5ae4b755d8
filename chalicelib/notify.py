"""Notifications: the events the stages announce, and the port they announce them through.

Each event has a type (one of ``DETAIL_TYPES``) and a detail: ``model`` and the event's figures. The
SNS adapter (``chalicelib.adapters.aws.notifier``) publishes it to the stage's topic, with the type
as the subject and as a message attribute (``type`` and ``model`` let subscribers filter: an email for
promotions only, a chat channel for one model); the in-memory one records it.

Publishing happens after the change it announces has committed. A failure to publish is logged and
counted but does not undo or retry the change: the registry and its audit ledger (or the batch job's
record) are the record, the notification is a courtesy. So ``publish`` answers False instead of
raising.
"""

from __future__ import annotations

from typing import Any, Protocol

MODEL_PROMOTED = "Model promoted"
MODEL_ROLLED_BACK = "Model rolled back"
MODEL_ROLLOUT_STARTED = "Model rollout started"
MODEL_ROLLOUT_ABORTED = "Model rollout aborted"
APPROVAL_NEEDED = "Model version awaiting approval"
VERSION_REJECTED = "Model version rejected"
UPLOAD_REVOKED = "Upload revoked"
CHAMPION_TAINTED = "Champion tainted"
BATCH_JOB_SUCCEEDED = "Batch job succeeded"
BATCH_JOB_PARTIAL = "Batch job partial"
MONITOR_BREACH = "Model monitoring breach"
# A completed rollout is announced as ``Model promoted`` (naming the rollout), as every champion change.
DETAIL_TYPES = (
    MODEL_PROMOTED,
    MODEL_ROLLED_BACK,
    MODEL_ROLLOUT_STARTED,
    MODEL_ROLLOUT_ABORTED,
    APPROVAL_NEEDED,
    VERSION_REJECTED,
    UPLOAD_REVOKED,
    CHAMPION_TAINTED,
    BATCH_JOB_SUCCEEDED,
    BATCH_JOB_PARTIAL,
    MONITOR_BREACH,
)


class Notifier(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """Announce one event; True if it was accepted. ValueError for a type not in DETAIL_TYPES."""
        ...


def check_detail_type(detail_type: str) -> None:
    """Every adapter refuses an unknown type the same way: it is a bug in the caller, not a failure
    to deliver."""
    if detail_type not in DETAIL_TYPES:
        raise ValueError(f"unknown notification {detail_type!r}")
