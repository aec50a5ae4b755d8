"""The promotion stage: a candidate's manifest arrives; verify, register, score, gate, decide.

Triggered by the models bucket's notification of ``models/<dataset>/candidates/<run-id>/manifest.json``
(through the promotion queue: ``chalicelib.registry.handler``). For each manifest:

1. **Verify** (``chalicelib.registry.candidate``): every artifact the manifest lists is read and
   checked against its SHA-256 and size, under the candidate's own prefix; the version id of each is
   recorded, so what is served later is exactly what was checked.
2. **Register** the candidate as the model's next version (the model is named after the dataset). A
   duplicate notification finds the version already registered and, once it has been judged, does
   nothing: one manifest, one version, one decision.
3. **Score** the candidate and the champion with onnxruntime on the same rows
   (``chalicelib.registry.scoring``).
4. **Gate** with the dataset's promotion policy (``chalicelib.registry.gates.evaluate``) and store every
   gate's figure on the version, with the policy and the champion it was compared with.
5. **Decide**: ``reject`` -> ``rejected``; ``pending_approval`` -> ``pending_approval`` (a person
   approves through the API), conditional on the champion scored in step 3, so that no version waits
   for an approval that is stale from the start; ``promote`` -> the approval and the champion change
   at once (one transaction, conditional on the champion scored in step 3, with its audit entry), or,
   when the policy has a rollout strategy (``promotion.rollout``) and there is a champion, the
   approval and the start of a rollout (``rolling_out``; the rollout's completion makes it the
   champion). If another promotion won meanwhile, the candidate is still a ``candidate`` and is
   judged again against the new champion (up to ``ATTEMPTS`` times). If a rollout of another version
   is running, no champion change or second rollout can start: the candidate waits for a person's
   approval instead, the reason saying so.
6. **Notify** after the change committed.

A tampered or incomplete candidate (checksum mismatch, missing artifact, unreadable manifest) is
registered and rejected with an ``integrity`` gate naming the artifact: it is on record, and it never
serves. Any other failure (the registry or the bucket unreachable) raises, and the message is retried
and finally lands in the promotion DLQ.
"""

from __future__ import annotations

from typing import Any

from chalicelib import notify
from chalicelib.errors import RegistryError
from chalicelib.observability import logger, metrics
from chalicelib.registry import candidate as candidates
from chalicelib.registry import rollouts
from chalicelib.registry.candidate import Candidate, trained_on
from chalicelib.registry.decisions import earlier_decision, sentence
from chalicelib.registry.gates import PENDING_APPROVAL, PROMOTE, REJECT, GateResult, Verdict, evaluate
from chalicelib.registry.policy import PromotionPolicy
from chalicelib.registry.ports import EvaluatorPorts
from chalicelib.registry.scoring import Scored, candidate_figures, compare, finite, score_candidate
from chalicelib.registry.states import (
    APPROVED,
    CANDIDATE,
    REJECTED,
    PromotionConflict,
    RolloutConflict,
    StatusConflict,
    taint_detail,
    tainted_reason,
)
from chalicelib.serving.model import load_version

EVALUATOR = "evaluator"
ATTEMPTS = 3


class _AlreadyJudged(Exception):
    """A concurrent delivery of the same manifest judged the version first: one decision per version."""


def evaluate_manifest(
    ports: EvaluatorPorts, bucket: str, key: str, version_id: str | None = None
) -> dict[str, Any]:
    """Verify, register, score, gate and decide one candidate (see the module docstring)."""
    candidate = Candidate.at(key)
    problem = candidates.load(ports.artifacts, candidate, bucket, version_id)
    version, created = ports.registry.register_version(
        candidate.dataset, candidates.registration(candidate, bucket)
    )
    ids = {"model": candidate.dataset, "version": version, "run_id": candidate.run_id}
    try:
        outcome = _judge_version(ports, candidate, ids, problem)
    except _AlreadyJudged:
        now = ports.registry.version(candidate.dataset, version) or {}
        outcome = {**ids, "action": "duplicate", "status": now.get("status")}
    _announce(ports.notifier, outcome, created)
    return outcome


def _judge_version(
    ports: EvaluatorPorts, candidate: Candidate, ids: dict[str, Any], problem: str | None
) -> dict[str, Any]:
    doc = ports.registry.version(candidate.dataset, ids["version"]) or {}
    status = doc.get("status")
    if problem is not None:
        if status != CANDIDATE:
            return {**ids, "action": "duplicate", "status": status}
        return _reject_as_corrupt(ports, ids, problem)
    if not _awaits_judgement(doc):
        return {**ids, "action": "duplicate", "status": status}
    if _taint_if_revoked(ports, candidate.dataset, ids["version"], doc):
        return _reject_as_tainted(ports, ids, status or CANDIDATE)
    policy = PromotionPolicy.from_contract(ports.contracts.get(candidate.dataset))
    return _decide(ports, candidate, ids, policy, status or CANDIDATE)


def _taint_if_revoked(ports: EvaluatorPorts, model: str, version: int, doc: dict[str, Any]) -> bool:
    """Mark the version tainted by every revoked upload it was trained on (a run that started before
    the revocation, or a revocation that raced this registration); True if it is tainted."""
    revoked = ports.revocations.revoked(model)
    for upload in sorted(set(trained_on(doc)) & revoked):
        entry = ports.revocations.get(upload)
        detail = taint_detail(
            True,
            False,
            str(entry.revoked_by if entry else "unknown"),
            str(entry.revoked_reason if entry else "revoked"),
            str(entry.revoked_at if entry else ports.clock().isoformat()),
        )
        ports.registry.taint(model, version, upload, detail)
    return tainted_reason(ports.registry.version(model, version)) is not None


def _reject_as_tainted(ports: EvaluatorPorts, ids: dict[str, Any], status: str) -> dict[str, Any]:
    """A candidate built on a revoked upload: rejected, the reason naming the revocation."""
    doc = ports.registry.version(ids["model"], ids["version"]) or {}
    why = str(tainted_reason(doc))
    gate = GateResult("revoked_uploads", False, {"tainted": doc.get("tainted")}, why)
    verdict = Verdict(passed=False, gates=[gate], decision=REJECT)
    record = {**verdict.to_dict(), "evaluated_at": ports.clock().isoformat(timespec="seconds")}
    try:
        _set(ports, ids, REJECTED, status, verdict.reason, record)
    except _AlreadyJudged:
        return {
            **ids,
            "action": "duplicate",
            "status": (ports.registry.version(ids["model"], ids["version"]) or {}).get("status"),
        }
    return {**ids, "action": "rejected", "reason": verdict.reason, "gates": record}


def _awaits_judgement(doc: dict[str, Any]) -> bool:
    """A new candidate, or one the evaluator approved but did not promote (a record from before
    approvals were promotions, when it could crash in between)."""
    transitions = doc.get("transitions") or []
    resumable = bool(transitions) and transitions[-1].get("by") == EVALUATOR
    return doc.get("status") == CANDIDATE or (doc.get("status") == APPROVED and resumable)


def _reject_as_corrupt(ports: EvaluatorPorts, ids: dict[str, Any], problem: str) -> dict[str, Any]:
    gate = GateResult("integrity", False, {"problem": problem}, problem)
    reason = f"integrity: {problem}"
    record: dict[str, Any] = {"decision": REJECT, "reason": reason, "gates": [gate.to_dict()]}
    try:
        _set(ports, ids, REJECTED, CANDIDATE, reason, record)
    except _AlreadyJudged:
        return {**ids, "action": "duplicate", "status": REJECTED}
    return {**ids, "action": "rejected", "reason": reason}


def _decide(
    ports: EvaluatorPorts, candidate: Candidate, ids: dict[str, Any], policy: PromotionPolicy, status: str
) -> dict[str, Any]:
    """Judge against the champion of the moment and act; again if the champion changed meanwhile."""
    earlier = earlier_decision(
        ports.registry.versions(candidate.dataset),
        ports.registry.audit(candidate.dataset),
        candidate.manifest.get("fingerprint"),
        ids["version"],
        EVALUATOR,
    )
    if earlier is not None:
        return _reject_as_decided(ports, candidate, ids, policy, status, earlier)
    rebuild = _rebuilds_champion(ports, candidate)
    if rebuild is not None:
        return _reject_as_decided(ports, candidate, ids, policy, status, rebuild, "same_as_champion")
    scored = score_candidate(candidate)
    model, version = ids["model"], ids["version"]
    for _ in range(ATTEMPTS):
        champion = ports.registry.champion(candidate.dataset)
        record, verdict = _judge(ports, candidate, scored, policy, champion)
        try:
            if verdict.decision == REJECT:
                _set(ports, ids, REJECTED, status, verdict.reason, record)
                return {**ids, "action": "rejected", "reason": verdict.reason, "gates": record}
            if verdict.decision == PENDING_APPROVAL:
                waiting = ports.registry.await_approval(
                    model, version, EVALUATOR, verdict.reason, record, status, expected_champion=champion
                )
                if tainted_reason(ports.registry.version(model, version)):
                    # A revocation tainted it meanwhile and may have looked for waiting versions
                    # before this one waited: nobody can approve it, so it does not wait.
                    return _reject_as_tainted(ports, ids, str(waiting["status"]))
                return {**ids, "action": "pending_approval", "reason": verdict.reason, "gates": record}
            assert verdict.decision == PROMOTE
            if policy.rollout.enabled and champion is not None:
                pointer = rollouts.begin(
                    ports.registry, policy.rollout, model, version, status, champion, EVALUATOR,
                    verdict.reason, rollouts.now(ports.clock), gates=record,
                )  # fmt: skip
                return {
                    **ids,
                    "action": "rollout_started",
                    "from_version": champion,
                    "rollout": pointer,
                    "gates": record,
                }
            entry = ports.registry.approve(
                model, version, EVALUATOR, verdict.reason, champion, expected_status=status, gates=record
            )
        except PromotionConflict as exc:
            logger.info("champion changed during evaluation; judging again", extra={**ids, "error": str(exc)})
            continue
        except RolloutConflict as exc:
            # A rollout of another version is running (or started meanwhile): this one cannot be
            # promoted nor rolled out now; a person decides once that rollout has ended.
            return _wait_for_the_rollout(ports, ids, record, verdict.reason, status, champion, str(exc))
        except StatusConflict:
            if tainted_reason(ports.registry.version(model, version)):  # revoked during the evaluation
                return _reject_as_tainted(ports, ids, status)
            raise _AlreadyJudged() from None
        return {
            **ids,
            "action": "promoted",
            "from_version": champion,
            "audit": entry["id"],
            "superseded": entry.get("superseded", []),
            "gates": record,
        }
    raise RegistryError(
        f"{candidate.dataset} v{ids['version']}: the champion kept changing during evaluation; retrying later"
    )


def _wait_for_the_rollout(
    ports: EvaluatorPorts,
    ids: dict[str, Any],
    record: dict[str, Any],
    verdict_reason: str,
    status: str,
    champion: int | None,
    why: str,
) -> dict[str, Any]:
    """The gates said promote while a rollout is running: the candidate waits for approval."""
    reason = f"{verdict_reason}; not promoted now: {why}"
    try:
        ports.registry.await_approval(
            ids["model"], ids["version"], EVALUATOR, reason, record, status, expected_champion=champion
        )
    except StatusConflict:
        raise _AlreadyJudged() from None
    # (A PromotionConflict: the rollout completed meanwhile; the message is retried and judged anew.)
    return {**ids, "action": "pending_approval", "reason": reason, "gates": record}


def _reject_as_decided(
    ports: EvaluatorPorts,
    candidate: Candidate,
    ids: dict[str, Any],
    policy: PromotionPolicy,
    status: str,
    earlier: dict[str, Any],
    gate_name: str = "earlier_decision",
) -> dict[str, Any]:
    """A rebuild of a model a person rolled back or rejected, or of the champion itself: rejected,
    naming that decision or that champion (``chalicelib.registry.decisions``); not scored (the
    figures would be that model's)."""
    gate = GateResult(gate_name, False, earlier, earlier.get("sentence") or sentence(earlier))
    verdict = Verdict(passed=False, gates=[gate], decision=REJECT)
    record = {
        **verdict.to_dict(),
        "evaluated_at": ports.clock().isoformat(timespec="seconds"),
        "evaluated_against": ports.registry.champion(candidate.dataset),
        "policy": policy.to_dict(),
    }
    _set(ports, ids, REJECTED, status, verdict.reason, record)
    return {**ids, "action": "rejected", "reason": verdict.reason, "gates": record}


def _rebuilds_champion(ports: EvaluatorPorts, candidate: Candidate) -> dict[str, Any] | None:
    """The champion, if the candidate has its fingerprint: the same data snapshot and training
    settings (a retrain after a revocation that the fallback champion already answers, for one)."""
    fingerprint = candidate.manifest.get("fingerprint")
    champion = ports.registry.champion(candidate.dataset)
    doc = (
        ports.registry.version(candidate.dataset, champion) if champion is not None and fingerprint else None
    )
    if not doc or doc.get("fingerprint") != fingerprint:
        return None
    return {
        "version": champion,
        "fingerprint": fingerprint,
        "sentence": (
            f"the same data snapshot and training settings built the champion v{champion}: this rebuild "
            "is the same model, so there is nothing to promote"
        ),
    }


def _set(
    ports: EvaluatorPorts,
    ids: dict[str, Any],
    status: str,
    expected: str,
    reason: str,
    record: dict[str, Any],
) -> None:
    try:
        ports.registry.set_status(
            ids["model"], ids["version"], status, EVALUATOR, reason, expected=expected, gates=record
        )
    except StatusConflict:
        raise _AlreadyJudged() from None


def _judge(
    ports: EvaluatorPorts,
    candidate: Candidate,
    scored: Scored,
    policy: PromotionPolicy,
    champion: int | None,
) -> tuple[dict[str, Any], Verdict]:
    """The gates' verdict on the candidate against ``champion``, and the record the version keeps:
    both models' figures on the same rows, in slices, and the uploads those rows came from."""
    mine = candidate_figures(candidate, scored)
    record: dict[str, Any] = {"holdout_rows": len(scored.rows), "evaluated_on": scored.uploads()}
    champion_doc = (ports.registry.version(candidate.dataset, champion) or {}) if champion is not None else {}
    tainted = tainted_reason(champion_doc)
    if champion is None or tainted:
        # A champion built on a revoked upload is no baseline: the candidate meets the floors alone
        # (and, promoted, replaces it).
        verdict = evaluate(policy, mine)
        record["metrics"] = {"candidate": finite(scored.metrics), "champion": None}
        if tainted:
            record["tainted_champion"] = (
                f"the champion v{champion} is {tainted}: not compared with, floors only"
            )
    else:
        model = load_version(ports.registry, ports.artifacts, candidate.dataset, champion)
        comparison = compare(model, champion, scored, trained_on(champion_doc))
        mine, theirs = comparison.figures(mine, scored)
        verdict = evaluate(policy, mine, theirs)
        record["metrics"] = {
            "candidate": finite(comparison.candidate_metrics),
            "champion": finite(comparison.champion_metrics),
        }
        record["comparison"] = comparison.summary()
        record["slices"] = comparison.slices
    record = {
        **verdict.to_dict(),
        "evaluated_at": ports.clock().isoformat(timespec="seconds"),
        "evaluated_against": champion,
        **record,
        "latency_ms": scored.latency,
        "model_bytes": scored.model_bytes,
        "policy": policy.to_dict(),
    }
    return record, verdict


def _announce(notifier: notify.Notifier, outcome: dict[str, Any], created: bool) -> None:
    """Log, count and notify what was decided (after it committed)."""
    ids = {k: outcome[k] for k in ("model", "version", "run_id")}
    action = outcome["action"]
    if action == "duplicate":
        logger.info("manifest already evaluated", extra={**outcome, "newly_registered": created})
    elif action == "rejected":
        if "gates" in outcome:
            logger.info("candidate rejected", extra={**ids, "reason": outcome["reason"]})
        else:
            logger.warning("candidate rejected: integrity", extra={**ids, "reason": outcome["reason"]})
        metrics.add_metric(name="CandidateRejected", unit="Count", value=1)
        notifier.publish(notify.VERSION_REJECTED, {**ids, "reason": outcome["reason"]})
    elif action == "pending_approval":
        champion = outcome["gates"]["evaluated_against"]
        logger.info("candidate awaits approval", extra={**ids, "reason": outcome["reason"]})
        notifier.publish(notify.APPROVAL_NEEDED, {**ids, "reason": outcome["reason"], "champion": champion})
    elif action == "rollout_started":
        logger.info("candidate rollout started", extra={**ids, "rollout": outcome["rollout"]["id"]})
        metrics.add_metric(name="RolloutStarted", unit="Count", value=1)
        rollouts.announce_started(notifier, outcome["rollout"])
    elif action == "promoted":
        logger.info("candidate promoted", extra={**ids, "from_version": outcome["from_version"]})
        metrics.add_metric(name="ModelPromoted", unit="Count", value=1)
        detail = {
            "from_version": outcome["from_version"],
            "to_version": outcome["version"],
            "by": EVALUATOR,
            "reason": outcome["gates"]["reason"],
        }
        notifier.publish(notify.MODEL_PROMOTED, {**ids, **detail})
