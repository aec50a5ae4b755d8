"""Revoking an upload, and the lineage query behind it: which model versions an upload reached.

``POST /uploads/{id}/revoke`` (an admin, with a reason) and ``mlops uploads revoke``:

1. **Record** the revocation on the upload's ledger entry, once (who, when, why): only a valid upload
   reached training data. From then on the upload leaves every data snapshot (so every training set
   and holdout: ``chalicelib.training.service``), its rows no longer count as seen before
   (``chalicelib.validation.service.row_identity``), and a candidate trained on it is rejected
   (``chalicelib.registry.evaluator``). Nothing is deleted: the object, its report and its digest stay.
2. **Taint** every version of the dataset's model trained or evaluated on it (``tainted`` on the
   version record, per upload: how it reached the version, who revoked it and why). A tainted version
   answers no prediction (``chalicelib.serving.servable``) and never becomes champion again.
3. **Stop a rollout it reaches**: a running rollout whose candidate or champion is tainted now is
   aborted, by the revoker, the reason naming the revoked upload (all traffic back to the champion;
   and a champion change, the fallback below, is possible again). This is done by a repeat too.
   **Clear the waiting versions**: a tainted version pending approval (an aborted rollout's
   candidate included) is rejected, by the revoker, with the revocation as the reason (no debris
   waiting for an approval that can never be given).
4. **A tainted champion** raises a ``Champion tainted`` notification and, per the contract's
   ``promotion.revocation`` policy (``chalicelib.registry.policy.RevocationPolicy``): ``fallback``
   brings back the newest former champion that is neither tainted nor rejected (an audited champion
   change by the revoker, so ``mlops models history`` shows it: a rollback when that version is the
   one a rollback goes back to, else a promotion), and ``retrain`` asks for a retrain
   whose snapshot leaves the revoked upload out (a run record whose reasons name the revocation).
5. **Announce** ``Upload revoked`` with the versions tainted.

The audit trail of a revocation: the upload's ledger entry (who, when, why), each tainted version's
record, the rejections in the versions' transitions, the fallback in the model's audit ledger, the
retrain's run record, and the notifications.

A repeat answers 409 (``AlreadyRevoked``: the first decision stands) after marking any version the
first call did not reach (an interrupted revocation is finished by repeating it; the taints are
idempotent). Steps 3-5 belong to the call that recorded the revocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib import notify
from chalicelib.errors import Conflict
from chalicelib.ingest.exceptions import UploadNotFound
from chalicelib.ingest.ports import UploadLedger
from chalicelib.ingest.uploads import Upload
from chalicelib.notify import Notifier
from chalicelib.observability import logger
from chalicelib.registry import rollouts
from chalicelib.registry.candidate import trained_on
from chalicelib.registry.policy import PromotionPolicy, RevocationPolicy
from chalicelib.registry.ports import ContractReader, Registry
from chalicelib.registry.rollout import RUNNING, Rollout, RolloutConflict
from chalicelib.registry.states import (
    APPROVED,
    PENDING_APPROVAL,
    REJECTED,
    RETIRED,
    Champion,
    StatusConflict,
    rollback_of,
    taint_detail,
    tainted_reason,
)
from chalicelib.training.policy import Trigger
from chalicelib.training.service import TrainingPorts, handle_trigger
from chalicelib.validation.exceptions import ContractError, NoContract

WAITING = (PENDING_APPROVAL, APPROVED)


class AlreadyRevoked(Conflict):
    """The upload was revoked before (a 409): that decision stands."""


@dataclass(frozen=True)
class RevocationPorts:
    uploads: UploadLedger
    registry: Registry
    contracts: ContractReader
    notifier: Notifier
    training: TrainingPorts
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


# --- lineage ------------------------------------------------------------------------------------------


def evaluated_on(doc: dict[str, Any]) -> list[str]:
    """The uploads a version's holdout rows came from (what its gates judged it on)."""
    return [
        str(u.get("upload")) for u in (doc.get("gates") or {}).get("evaluated_on") or [] if u.get("upload")
    ]


def reached(doc: dict[str, Any], upload_id: str) -> tuple[bool, bool]:
    """Whether the upload was in the version's training data, and in its holdout."""
    return upload_id in trained_on(doc), upload_id in evaluated_on(doc)


def models_of_upload(uploads: UploadLedger, registry: Registry, upload_id: str) -> dict[str, Any]:
    """``GET /uploads/{id}/models``: the upload, and every version of its dataset's model trained or
    evaluated on it (the model is named after the dataset), oldest first."""
    upload = _entry(uploads, upload_id)
    model = upload.dataset
    versions = registry.versions(model) if model else []
    champion = registry.champion(model) if model and versions else None
    lineage = []
    for doc in versions:
        trained, evaluated = reached(doc, upload_id)
        if trained or evaluated:
            lineage.append(
                {
                    "version": int(doc["version"]),
                    "status": doc.get("status"),
                    "champion": int(doc["version"]) == champion,
                    "trained": trained,
                    "evaluated": evaluated,
                    "tainted": tainted_reason(doc),
                }
            )
    return {
        "upload_id": upload_id,
        "dataset": model,
        "status": upload.status,
        "revoked": _revocation(upload),
        "model": model if versions else None,
        "champion": champion,
        "versions": lineage,
    }


# --- revocation ---------------------------------------------------------------------------------------


def revoke(ports: RevocationPorts, upload_id: str, by: str, reason: str) -> dict[str, Any]:
    """Revoke an upload (see the module docstring); what happened, step by step."""
    at = ports.clock().astimezone(UTC).isoformat(timespec="seconds")
    upload, created = ports.uploads.revoke(upload_id, by, reason, at)
    model = str(upload.dataset)
    detail = _detail(upload)
    tainted = []
    for doc in ports.registry.versions(model):
        trained, evaluated = reached(doc, upload_id)
        if trained or evaluated:
            ports.registry.taint(
                model, int(doc["version"]), upload_id, taint_detail(trained, evaluated, *detail)
            )
            tainted.append(int(doc["version"]))
    rollout = _abort_tainted_rollout(ports, model, upload_id, by, reason)
    if not created:
        raise AlreadyRevoked(
            f"upload {upload_id} was revoked already, by {upload.revoked_by} at {upload.revoked_at}: "
            f"{upload.revoked_reason}"
        )
    outcome: dict[str, Any] = {
        "upload_id": upload_id,
        "dataset": model,
        "revoked": _revocation(upload),
        "tainted": tainted,
        "rollout": rollout,
        "rejected": _reject_waiting(ports, model, tainted, upload_id, by, reason),
        "champion": _tainted_champion(ports, model, upload_id, by, reason),
    }
    logger.info(
        "upload revoked", extra={k: outcome[k] for k in ("upload_id", "dataset", "tainted", "rejected")}
    )
    ports.notifier.publish(
        notify.UPLOAD_REVOKED,
        {"model": model, "upload_id": upload_id, "by": by, "reason": reason, "tainted": tainted},
    )
    return outcome


def _abort_tainted_rollout(
    ports: RevocationPorts, model: str, upload_id: str, by: str, reason: str
) -> dict[str, Any] | None:
    """Abort the model's running rollout if its candidate or its champion is tainted; what was
    aborted (None: nothing). A rollout that changed meanwhile (a step, or its end) is read again."""
    for _ in range(3):
        pointer = ports.registry.rollout(model)
        if pointer is None or pointer["status"] not in RUNNING:
            return None
        roles = {int(pointer["candidate"]): "candidate", int(pointer["champion"]): "champion"}
        hit = [v for v in roles if tainted_reason(ports.registry.version(model, v))]
        if not hit:
            return None
        reached_ = " and ".join(f"v{v} (the {roles[v]})" for v in hit)
        why = f"upload {upload_id} was revoked by {by}: {reason}; it taints {reached_}"
        at = ports.clock().astimezone(UTC).isoformat(timespec="microseconds")
        new, event = Rollout.from_dict(pointer).abort(at, by, why)
        try:
            done = ports.registry.abort_rollout(new, event)
        except RolloutConflict:
            continue
        rollouts.announce_aborted(ports.notifier, done, by)
        return {"rollout": done["id"], "version": done["candidate"], "reason": why}
    return {"rollout": None, "note": f"the running rollout of {model} kept changing: abort it by hand"}


def _reject_waiting(
    ports: RevocationPorts, model: str, tainted: list[int], upload_id: str, by: str, reason: str
) -> list[int]:
    """Reject the tainted versions waiting for approval: none of them can be approved any more."""
    rejected = []
    for version in tainted:
        doc = ports.registry.version(model, version) or {}
        if doc.get("status") not in WAITING:
            continue
        try:
            ports.registry.set_status(
                model,
                version,
                REJECTED,
                by,
                f"upload {upload_id} was revoked: {reason}",
                expected=doc["status"],
            )
        except StatusConflict:
            continue  # a concurrent change moved it (a champion change superseded it, a person rejected it)
        rejected.append(version)
    return rejected


def _tainted_champion(
    ports: RevocationPorts, model: str, upload_id: str, by: str, reason: str
) -> dict[str, Any]:
    """Notify, fall back and retrain as the policy says, if the champion is tainted now."""
    champion = ports.registry.champion(model)
    doc = ports.registry.version(model, champion) if champion is not None else None
    why = tainted_reason(doc)
    if champion is None or not why:
        return {"version": champion, "tainted": False}
    policy, note = _policy(ports, model)
    outcome: dict[str, Any] = {"version": champion, "tainted": True, "reason": why}
    if note:
        outcome["note"] = note
    ports.notifier.publish(
        notify.CHAMPION_TAINTED,
        {"model": model, "version": champion, "upload_id": upload_id, "by": by, "reason": why},
    )
    revoked = f"upload {upload_id} revoked by {by}: {reason}"
    outcome["fallback"] = _fall_back(ports, model, champion, by, revoked) if policy.fallback else None
    outcome["retrain"] = _retrain(ports, model, revoked) if policy.retrain else None
    return outcome


def _fall_back(ports: RevocationPorts, model: str, champion: int, by: str, revoked: str) -> dict[str, Any]:
    """Bring back the newest former champion that is neither tainted nor rejected, if any: by a
    rollback when it is the one a rollback goes back to (the audit ledger's undo stack stays a plain
    history of undos), else by promoting it."""
    docs = {int(d["version"]): d for d in ports.registry.versions(model)}
    ledger = sorted(ports.registry.audit(model), key=lambda e: int(e["seq"]))
    former = [int(e["to_version"]) for e in reversed(ledger)]
    target = next(
        (
            v
            for v in dict.fromkeys(former)
            if v != champion and docs.get(v, {}).get("status") == RETIRED and not tainted_reason(docs.get(v))
        ),
        None,
    )
    if target is None:
        return {
            "to_version": None,
            "note": f"no former champion of {model} is untainted: predictions answer 409 until a new champion",
        }
    why = f"fallback: v{champion} is tainted ({revoked}); v{target} is the newest former champion not tainted"
    try:
        undo = (
            rollback_of(model, Champion(champion, int(ledger[-1]["seq"])), ledger, by, why)
            if ledger
            else None
        )
    except Conflict:
        undo = None  # nothing to undo, or the ledger moved: promote instead
    try:
        if undo is not None and undo.version == target:
            entry = ports.registry.rollback(model, by, why)
        else:
            entry = ports.registry.promote(model, target, by, why, expected_champion=champion)
    except Conflict as exc:  # a concurrent champion change won: nothing changed here
        return {"to_version": None, "note": f"fallback not made: {exc}"}
    ports.notifier.publish(
        notify.MODEL_ROLLED_BACK if entry.get("action") == "rollback" else notify.MODEL_PROMOTED,
        {"model": model, "from_version": champion, "to_version": target, "by": by, "reason": why},
    )
    return {"to_version": target, "action": entry.get("action"), "audit": entry.get("id"), "reason": why}


def _retrain(ports: RevocationPorts, model: str, revoked: str) -> dict[str, Any]:
    """Ask for a retrain now (its snapshot leaves the revoked uploads out). The revocation stands
    whatever happens here: a failure to start is reported, not raised."""
    try:
        return handle_trigger(ports.training, Trigger(kind="request", dataset=model, reason=revoked[:500]))
    except Exception as exc:
        logger.exception("retrain after a revocation could not start", extra={"dataset": model})
        return {"action": "failed", "reasons": [f"the retrain could not start: {exc}"]}


def _policy(ports: RevocationPorts, model: str) -> tuple[RevocationPolicy, str | None]:
    try:
        return PromotionPolicy.from_contract(ports.contracts.get(model)).revocation, None
    except (NoContract, ContractError) as exc:
        return RevocationPolicy(
            fallback=True, retrain=False
        ), f"the contract cannot be read ({exc}): fallback only"


def _entry(uploads: UploadLedger, upload_id: str) -> Upload:
    upload = uploads.get(upload_id)
    if upload is None:
        raise UploadNotFound(f"no upload with id {upload_id!r}")
    return upload


def _detail(upload: Upload) -> tuple[str, str, str]:
    return str(upload.revoked_by), str(upload.revoked_reason), str(upload.revoked_at)


def _revocation(upload: Upload) -> dict[str, Any] | None:
    if not upload.revoked:
        return None
    return {"at": upload.revoked_at, "by": upload.revoked_by, "reason": upload.revoked_reason}
