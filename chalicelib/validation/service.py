"""The validation stage's use cases, over its ports: storing a contract, validating one upload.

    upload ──> contract? ──> validate (streaming) ──> report  reports/<dataset>/<upload-id>.json
                                   │ valid   ──> validated/<dataset>/<upload-id>.csv + announce on the retrain queue
                                   │ invalid ──> quarantine/<dataset>/<upload-id>/<file> + report.json beside it

The original upload is only ever read. Every key is derived from the upload id, so a retried
invocation rewrites the same objects with the same bytes instead of adding new ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from chalicelib.validation import privacy
from chalicelib.validation.contract import SENSITIVE, Contract
from chalicelib.validation.exceptions import ContractError, NoContract
from chalicelib.validation.issues import CODES
from chalicelib.validation.layout import (
    ObjectTags,
    SourceObject,
    lineage_metadata,
    quarantine_key,
    quarantine_report_key,
    report_key,
    validated_key,
)
from chalicelib.validation.ports import ContractStore, Queue, ValidationStore
from chalicelib.validation.sections import check_sections
from chalicelib.validation.validator import Readable, ValidationResult, validate_stream

READ = 1024 * 1024
# The reference profile names the upload it was made from (not a column statistic: drift ignores it).
REFERENCE_UPLOAD = "upload_id"


@dataclass(frozen=True)
class ValidationPorts:
    """What validating an upload reads and writes."""

    contracts: ContractStore
    outputs: ValidationStore
    retrain_queue: Queue


def store_contract(contracts: ContractStore, contract: Contract) -> str:
    """Check the sections later stages own, then store the contract. Returns its key.

    Raises ContractError naming the field. The checks are the ones registered in
    ``chalicelib.validation.sections`` (the caller's wiring imports the stages that own them).
    """
    check_sections(contract)
    return contracts.put(contract)


class HashingReader:
    """Passes a stream through while computing its sha256 and size."""

    def __init__(self, body: Readable) -> None:
        self._body = body
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._body.read(n) if n is not None and n >= 0 else self._body.read()
        self._sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ):
            pass

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class Outcome:
    status: str  # "valid" or "invalid"
    rows: int
    issues: list[dict[str, Any]]
    report: dict[str, Any]
    result: ValidationResult | None
    contract: Contract | None

    @property
    def drift(self) -> str | None:
        """The drift verdict: "reference", "stable", "drifted" or "insufficient_data" (None when not
        compared)."""
        verdict = self.report.get("drift", {}).get("verdict")
        return str(verdict) if verdict is not None else None


@dataclass(frozen=True)
class Published:
    """What ``publish`` wrote."""

    report_key: str
    output_key: str  # the validated or the quarantined copy
    became_reference: bool = False
    announced: bool = False


def validate_upload(
    reader: Readable, dataset: str, size: int | None, ports: ValidationPorts, upload_id: str | None = None
) -> Outcome:
    """Validate an upload's bytes against its dataset's contract (or report that it has none).

    A reference made from this very upload (``upload_id``: an earlier attempt wrote it, then
    crashed) is not compared with: the upload is still the reference, as it was the first time.
    """
    try:
        contract = ports.contracts.get(dataset)
    except (NoContract, ContractError) as exc:
        return _no_contract(dataset, exc)
    reference = ports.outputs.reference(dataset)
    if reference is not None and upload_id is not None and reference.get(REFERENCE_UPLOAD) == upload_id:
        reference = None
    # A reference stored before profiles were masked is masked now: like is compared with like.
    reference = privacy.mask_profile(reference, contract)
    result = validate_stream(reader, contract, size=size, reference=reference)
    report = privacy.mask_report(result.report, contract)
    if result.status == "valid" and reference is None:
        report["drift"] = {
            "verdict": "reference",
            "note": "first valid upload: it becomes the drift reference",
        }
    return Outcome(result.status, int(report.get("rows", 0)), report["issues"], report, result, contract)


def publish(
    outcome: Outcome,
    *,
    dataset: str,
    upload_id: str,
    source: SourceObject,
    sha256: str | None,
    ports: ValidationPorts,
) -> Published:
    """Write the copy and the report, make the reference, announce valid data."""
    classification = outcome.contract.classification if outcome.contract else "confidential"
    report = _report(outcome, upload_id, source, sha256)
    lineage = lineage_metadata(upload_id, source, sha256)  # ASCII, as S3 metadata must be
    became_reference = False
    if outcome.status == "valid":
        output = validated_key(dataset, upload_id, gzip=outcome.report.get("compression") == "gzip")
        ports.outputs.copy(source, output, lineage, ObjectTags(dataset, classification, "validated"))
        report["validated_key"] = output
        became_reference = _make_reference(outcome, dataset, upload_id, classification, ports.outputs)
    else:
        output = quarantine_key(dataset, upload_id, source.key)
        ports.outputs.copy(source, output, lineage, ObjectTags(dataset, classification, "quarantine"))
        beside = quarantine_report_key(dataset, upload_id)
        ports.outputs.put_json(
            beside, report, ObjectTags(dataset, _report_class(classification), "quarantine")
        )
        report["quarantine_key"] = output
    key = report_key(dataset, upload_id)
    ports.outputs.put_json(key, report, ObjectTags(dataset, _report_class(classification), "report"))
    announced = outcome.status == "valid"
    if announced:
        ports.retrain_queue.send(_announcement(outcome, dataset, upload_id, output, sha256))
    return Published(key, output, became_reference, announced)


def _report(outcome: Outcome, upload_id: str, source: SourceObject, sha256: str | None) -> dict[str, Any]:
    """The validator's report with where the upload came from."""
    where = {"bucket": source.bucket, "key": source.key, "version_id": source.version_id, "sha256": sha256}
    return {**outcome.report, "upload_id": upload_id, "source": where}


def _report_class(classification: str) -> str:
    """Reports hold statistics, never values of sensitive columns: they are at most confidential."""
    return "confidential" if classification in SENSITIVE else classification


def _no_contract(dataset: str, exc: Exception) -> Outcome:
    code = "NO_CONTRACT"
    issue = {
        "code": code,
        "column": None,
        "count": 1,
        "row": None,
        "line": None,
        "message": f"{exc}",
        "fix": CODES[code][1].replace("<dataset>", dataset),
    }
    report: dict[str, Any] = {
        "status": "invalid",
        "dataset": dataset,
        "rows": 0,
        "columns": 0,
        "issues": [issue],
    }
    return Outcome("invalid", 0, [issue], report, None, None)


def _make_reference(
    outcome: Outcome, dataset: str, upload_id: str, classification: str, outputs: ValidationStore
) -> bool:
    """The first valid upload's profile becomes the drift reference; later ones never replace it."""
    assert outcome.result is not None and outcome.result.profile is not None
    profile = {**outcome.result.profile, REFERENCE_UPLOAD: upload_id}
    return outputs.create_reference(dataset, profile, classification)


def _announcement(
    outcome: Outcome, dataset: str, upload_id: str, validated: str, sha256: str | None
) -> dict[str, Any]:
    """The retrain queue's ``data.validated`` message (counts and verdicts, never data values)."""
    drift = outcome.report.get("drift", {})
    return {
        "event": "data.validated",
        "dataset": dataset,
        "upload_id": upload_id,
        "validated_key": validated,
        "rows": outcome.rows,
        "sha256": sha256,
        "drift": drift.get("verdict"),
        "drifted_features": drift.get("drifted_features", []),
    }
