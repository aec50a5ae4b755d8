"""The promotion stage: a candidate's manifest arrives; verify, register, score, gate, decide.

Triggered by the models bucket's notification of ``models/<dataset>/candidates/<run-id>/manifest.json``
(through the promotion queue). For each manifest:

1. **Verify.** Every artifact the manifest lists is read and checked against its SHA-256 and size;
   the artifacts the evaluation needs must all be there, under the candidate's own prefix. The S3
   version id of each is recorded, so what is served later is exactly what was checked.
2. **Register** the candidate as the model's next version (the model is named after the dataset). A
   duplicate notification finds the version already registered and, once it has been judged, does
   nothing: one manifest, one version, one decision.
3. **Score** the candidate and the champion with onnxruntime on the same rows: the candidate's
   ``holdout.csv`` (rows neither model trained on, by the stable hash split). Every metric of the task
   is computed for both, plus the candidate's single-row latency (``LATENCY_ROWS`` distinct rows).
4. **Gate** with the dataset's promotion policy (``chalicelib.registry.gates.evaluate``) and store every
   gate's figure on the version, with the policy and the champion it was compared with.
5. **Decide**: ``reject`` -> ``rejected``; ``pending_approval`` -> ``pending_approval`` (a person
   approves through the API); ``promote`` -> ``approved`` then the champion change (one transaction,
   conditional on the champion scored in step 3, with its audit entry). If another promotion won
   meanwhile, the candidate is scored again against the new champion (up to ``ATTEMPTS`` times).
6. **Notify** (``chalicelib.notify``) after the change committed.

A tampered or incomplete candidate (checksum mismatch, missing artifact, unreadable manifest) is
registered and rejected with an ``integrity`` gate naming the artifact: it is on record, and it never
serves. Any other failure (the registry or S3 unreachable) raises, and the message is retried and
finally lands in the promotion DLQ.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from chalicelib import notify
from chalicelib.adapters import aws
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.observability import logger, metrics
from chalicelib.registry.gates import PENDING_APPROVAL, PROMOTE, REJECT, GateResult, Verdict, evaluate
from chalicelib.registry.metrics import class_indices, compute
from chalicelib.registry.policy import PromotionPolicy
from chalicelib.registry.store import (
    APPROVED,
    CANDIDATE,
    PromotionConflict,
    Registry,
    RegistryError,
    StatusConflict,
)
from chalicelib.registry.store import (
    PENDING_APPROVAL as STATUS_PENDING,
)
from chalicelib.registry.store import (
    REJECTED as STATUS_REJECTED,
)
from chalicelib.s3events import object_created_events
from chalicelib.serving import InputSchema, IntegrityError, InvalidInput, OnnxModel, verify
from chalicelib.serving.model import load_registered
from chalicelib.settings import Settings
from chalicelib.training.settings import METRICS

EVALUATOR = "evaluator"
ATTEMPTS = 3
LATENCY_ROWS = 200
MANIFEST_KEY = re.compile(
    r"^models/(?P<dataset>[a-z0-9][a-z0-9_-]{0,62})/candidates/(?P<run>[^/]+)/manifest\.json$"
)
# What the evaluation reads; a manifest without one of these is incomplete.
REQUIRED = ("model.onnx", "input_schema.json", "metrics.json", "parity.json", "holdout.csv", "lineage.json")

_processor = BatchProcessor(event_type=EventType.SQS)


@dataclass
class Candidate:
    """A verified candidate: its manifest, artifact bytes and their locations."""

    dataset: str
    run_id: str
    manifest_key: str
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def json(self, name: str) -> Any:
        return json.loads(self.files[name])


def handle_promotion_batch(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Promotion-queue batch: each S3 notification's manifests are evaluated; a failure returns alone."""

    def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
        outcomes = []
        for event in object_created_events(record.body):
            if MANIFEST_KEY.match(event.key):
                outcomes.append(evaluate_manifest(event.bucket, event.key, event.version_id))
        return outcomes

    return dict(
        process_partial_response(
            event=raw_event, record_handler=record_handler, processor=_processor, context=context
        )
    )


def evaluate_manifest(
    bucket: str, key: str, version_id: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Verify, register, score, gate and decide one candidate (see the module docstring)."""
    settings = settings or Settings.from_env()
    match = MANIFEST_KEY.match(key)
    if not match:
        raise ValueError(
            f"{key} is not a candidate manifest key (models/<dataset>/candidates/<run>/manifest.json)"
        )
    dataset, run_id = match["dataset"], match["run"]
    registry = Registry(settings.registry_table, settings.audit_table)
    candidate = Candidate(dataset, run_id, key, {})
    problem = _load(candidate, bucket, version_id)
    version, created = registry.register_version(dataset, _registration(candidate, bucket))
    doc = registry.version(dataset, version) or {}
    log = {"model": dataset, "version": version, "run_id": run_id}
    if problem is not None:
        if doc.get("status") != CANDIDATE:
            return {**log, "action": "duplicate", "status": doc.get("status")}
        gate = GateResult("integrity", False, {"problem": problem}, problem)
        reason = f"integrity: {problem}"
        record: dict[str, Any] = {"decision": REJECT, "reason": reason, "gates": [gate.to_dict()]}
        try:
            _set(registry, dataset, version, STATUS_REJECTED, CANDIDATE, reason, record)
        except _AlreadyJudged:
            return {**log, "action": "duplicate", "status": STATUS_REJECTED}
        logger.warning("candidate rejected: integrity", extra={**log, "problem": problem})
        metrics.add_metric(name="CandidateRejected", unit="Count", value=1)
        notify.publish(notify.VERSION_REJECTED, {**log, "reason": reason}, settings)
        return {**log, "action": "rejected", "reason": reason}
    status = doc.get("status")
    resumable = status == APPROVED and _decided_by_evaluator(doc)
    if status != CANDIDATE and not resumable:
        logger.info(
            "manifest already evaluated", extra={**log, "status": status, "newly_registered": created}
        )
        return {**log, "action": "duplicate", "status": status}
    contract = S3ContractStore(settings.data_bucket).get(dataset)
    policy = PromotionPolicy.from_contract(contract)
    try:
        return _decide(registry, settings, candidate, version, policy, status or CANDIDATE)
    except _AlreadyJudged:
        now = registry.version(dataset, version) or {}
        return {**log, "action": "duplicate", "status": now.get("status")}


def _decided_by_evaluator(doc: dict[str, Any]) -> bool:
    transitions = doc.get("transitions") or []
    return bool(transitions) and transitions[-1].get("by") == EVALUATOR


def _decide(
    registry: Registry,
    settings: Settings,
    candidate: Candidate,
    version: int,
    policy: PromotionPolicy,
    status: str,
) -> dict[str, Any]:
    dataset = candidate.dataset
    log = {"model": dataset, "version": version, "run_id": candidate.run_id}
    scored = _score_candidate(candidate)
    for _ in range(ATTEMPTS):
        champion = registry.champion(dataset)
        record, verdict = _judge(registry, settings, candidate, scored, policy, champion)
        reason = verdict.reason
        if verdict.decision == REJECT:
            _set(registry, dataset, version, STATUS_REJECTED, status, reason, record)
            metrics.add_metric(name="CandidateRejected", unit="Count", value=1)
            notify.publish(notify.VERSION_REJECTED, {**log, "reason": reason}, settings)
            logger.info("candidate rejected", extra={**log, "reason": reason})
            return {**log, "action": "rejected", "reason": reason, "gates": record}
        if verdict.decision == PENDING_APPROVAL:
            _set(registry, dataset, version, STATUS_PENDING, status, reason, record)
            notify.publish(notify.APPROVAL_NEEDED, {**log, "reason": reason, "champion": champion}, settings)
            logger.info("candidate awaits approval", extra={**log, "reason": reason})
            return {**log, "action": "pending_approval", "reason": reason, "gates": record}
        assert verdict.decision == PROMOTE
        if status == CANDIDATE:
            _set(registry, dataset, version, APPROVED, CANDIDATE, reason, record)
            status = APPROVED
        else:
            registry.update_gates(dataset, version, record, expected=APPROVED)
        try:
            entry = registry.promote(dataset, version, EVALUATOR, reason, expected_champion=champion)
        except PromotionConflict as exc:
            logger.info("champion changed during evaluation; judging again", extra={**log, "error": str(exc)})
            continue
        metrics.add_metric(name="ModelPromoted", unit="Count", value=1)
        notify.publish(
            notify.MODEL_PROMOTED,
            {**log, "from_version": champion, "to_version": version, "by": EVALUATOR, "reason": reason},
            settings,
        )
        logger.info("candidate promoted", extra={**log, "from_version": champion})
        return {**log, "action": "promoted", "from_version": champion, "audit": entry["id"], "gates": record}
    raise RegistryError(f"{dataset} v{version}: the champion kept changing during evaluation; retrying later")


def _set(
    registry: Registry,
    model: str,
    version: int,
    status: str,
    expected: str,
    reason: str,
    record: dict[str, Any],
) -> None:
    try:
        registry.set_status(model, version, status, EVALUATOR, reason, expected=expected, gates=record)
    except StatusConflict:
        # A concurrent delivery of the same manifest judged it first: one decision per version.
        logger.info("version judged concurrently", extra={"model": model, "version": version})
        raise _AlreadyJudged() from None


class _AlreadyJudged(Exception):
    pass


# --- loading and verifying ---------------------------------------------------------------------------


def _load(candidate: Candidate, bucket: str, version_id: str | None) -> str | None:
    """Read the manifest and every artifact; None if all is well, else the integrity problem."""
    s3 = aws.client("s3")
    prefix = candidate.manifest_key.rsplit("/", 1)[0] + "/"
    args: dict[str, Any] = {"Bucket": bucket, "Key": candidate.manifest_key}
    if version_id:
        args["VersionId"] = version_id
    response = s3.get_object(**args)
    candidate.locations["manifest.json"] = {
        "key": candidate.manifest_key,
        "version_id": response.get("VersionId"),
    }
    try:
        manifest = json.loads(response["Body"].read())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return f"manifest.json is not valid JSON: {exc}"
    candidate.manifest = manifest
    if manifest.get("run_id") != candidate.run_id or manifest.get("dataset") != candidate.dataset:
        return (
            f"manifest.json names run {manifest.get('run_id')!r} of {manifest.get('dataset')!r} but sits "
            f"under run {candidate.run_id!r} of {candidate.dataset!r}"
        )
    entries = manifest.get("artifacts")
    if not isinstance(entries, list):
        return "manifest.json has no artifacts list"
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return "manifest.json: an artifact entry has no name"
        listed[entry["name"]] = entry
    missing = [name for name in REQUIRED if name not in listed]
    if missing:
        return f"manifest.json does not list {', '.join(missing)}"
    for name, entry in listed.items():
        key = entry.get("key")
        if key != prefix + name:
            return f"{name}: the manifest points at {key!r}, outside the candidate's prefix {prefix}"
        try:
            got = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return f"{name} is listed in the manifest but missing from the bucket"
            raise
        data = got["Body"].read()
        try:
            verify(name, data, entry.get("sha256"), entry.get("bytes"))
        except IntegrityError as exc:
            return str(exc)
        if not entry.get("sha256"):
            return f"{name}: the manifest gives no sha256"
        candidate.files[name] = data
        candidate.locations[name] = {
            "key": key,
            "version_id": got.get("VersionId"),
            "sha256": entry["sha256"],
            "bytes": len(data),
        }
    return None


def _registration(candidate: Candidate, bucket: str) -> dict[str, Any]:
    """What the version record keeps about the candidate (the rest stays in the bucket)."""
    doc: dict[str, Any] = {
        "run_id": candidate.run_id,
        "manifest_key": candidate.manifest_key,
        "dataset": candidate.dataset,
        "bucket": bucket,
        "artifacts": candidate.locations,
    }
    manifest = candidate.manifest
    for name in ("task", "family", "primary_metric", "primary_value", "data_hash", "created_at"):
        if name in manifest:
            doc[name] = manifest[name]
    if "metrics.json" in candidate.files:
        doc["training_metrics"] = candidate.json("metrics.json")
    if "input_schema.json" in candidate.files:
        # What /predict takes, for clients (not the ONNX opsets: DynamoDB maps refuse an empty key).
        schema = candidate.json("input_schema.json")
        doc["input_schema"] = {k: schema.get(k) for k in ("task", "target", "classes", "features")}
    if "lineage.json" in candidate.files:
        lineage = candidate.json("lineage.json")
        doc["lineage"] = {
            k: lineage.get(k)
            for k in (
                "run_id", "data_manifest_key", "data_hash", "data_objects", "contract_version",
                "code_version", "parameters", "libraries", "trigger", "capacity", "attempts",
            )
        }  # fmt: skip
    return doc


# --- scoring and judging ---------------------------------------------------------------------------


@dataclass
class _Scored:
    schema: InputSchema
    header: list[str]
    rows: list[list[str]]
    y_raw: list[str]
    y_true: np.ndarray
    scores: np.ndarray
    metrics: dict[str, float]
    latency: dict[str, float]
    model_bytes: int


def _holdout(data: bytes, target: str) -> tuple[list[str], list[list[str]], list[str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, None)
    if not header or target not in header:
        raise ValueError(f"holdout.csv has no {target!r} column")
    rows = list(reader)
    j = header.index(target)
    return header, rows, [row[j] for row in rows]


def _targets(schema: InputSchema, y_raw: list[str]) -> np.ndarray:
    if schema.classification:
        return class_indices(y_raw, schema.classes)
    return np.asarray([float(v) for v in y_raw], dtype=np.float64)


def _metrics(task: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    out = {}
    for metric in METRICS[task]:
        value = compute(metric, y_true, scores)
        out[metric] = value
    return out


def _score_candidate(candidate: Candidate) -> _Scored:
    schema = InputSchema(candidate.json("input_schema.json"))
    model = OnnxModel(candidate.files["model.onnx"], schema)
    header, rows, y_raw = _holdout(candidate.files["holdout.csv"], schema.target_name or "")
    feed = schema.encode_text(header, rows)
    scores = model.run(feed).for_metrics
    y_true = _targets(schema, y_raw)
    return _Scored(
        schema=schema,
        header=header,
        rows=rows,
        y_raw=y_raw,
        y_true=y_true,
        scores=scores,
        metrics=_metrics(schema.task, y_true, scores),
        latency=model.latency_ms(feed, rows=LATENCY_ROWS),
        model_bytes=model.model_bytes,
    )


def load_version_model(registry: Registry, model: str, version: int) -> OnnxModel:
    """A registered version's model and schema, each verified against the checksum on record."""
    doc = registry.version(model, version)
    if doc is None:
        raise RegistryError(f"{model} v{version} is not registered")
    return load_registered(doc, f"{model} v{version}")


def _judge(
    registry: Registry,
    settings: Settings,
    candidate: Candidate,
    scored: _Scored,
    policy: PromotionPolicy,
    champion: int | None,
) -> tuple[dict[str, Any], Verdict]:
    primary = candidate.json("metrics.json").get("primary_metric") or candidate.manifest.get("primary_metric")
    candidate_doc: dict[str, Any] = {
        "task": scored.schema.task,
        "primary_metric": primary,
        "metrics": scored.metrics,
        "parity": candidate.json("parity.json"),
        "schema": scored.schema.doc,
        "latency_ms": scored.latency,
        "model_bytes": scored.model_bytes,
        "holdout": {"y_true": scored.y_raw, "predictions": scored.scores},
    }
    champion_doc: dict[str, Any] | None = None
    champion_note = None
    if champion is not None:
        champion_model = load_version_model(registry, candidate.dataset, champion)
        champion_doc = {"schema": champion_model.schema.doc, "metrics": {}}
        try:
            feed = champion_model.schema.encode_text(scored.header, scored.rows)
        except InvalidInput as exc:
            champion_note = f"the champion v{champion} cannot score the candidate's holdout: {exc}"
        else:
            champion_scores = champion_model.run(feed).for_metrics
            if scored.schema.classification and champion_model.classes != scored.schema.classes:
                champion_y = _targets(champion_model.schema, scored.y_raw)
                champion_metrics = _metrics(scored.schema.task, champion_y, champion_scores)
            else:
                champion_metrics = _metrics(scored.schema.task, scored.y_true, champion_scores)
            champion_doc.update({"metrics": champion_metrics, "holdout": {"predictions": champion_scores}})
    verdict = evaluate(policy, candidate_doc, champion_doc)
    record = {
        **verdict.to_dict(),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "evaluated_against": champion,
        "holdout_rows": len(scored.rows),
        "metrics": {
            "candidate": _finite(scored.metrics),
            "champion": _finite(champion_doc["metrics"]) if champion_doc else None,
        },
        "latency_ms": scored.latency,
        "model_bytes": scored.model_bytes,
        "policy": policy.to_dict(),
    }
    if champion_note:
        record["notes"] = [*record["notes"], champion_note]
    return record, verdict


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if np.isfinite(v) else None) for k, v in values.items()}
