"""Validating one upload: the orchestration between the S3 object, the validator and the outputs.

    upload ──> contract? ──> validate (streaming) ──> report  reports/<dataset>/<upload-id>.json
                                   │ valid   ──> validated/<dataset>/<upload-id>.csv + announce on the retrain queue
                                   │ invalid ──> quarantine/<dataset>/<upload-id>/<file> + report.json beside it

The original upload is only ever read. Every key is derived from the upload id, so a retried
invocation rewrites the same objects with the same bytes instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters import aws
from chalicelib.validation.contract import SENSITIVE, Contract
from chalicelib.validation.exceptions import ContractError, NoContract
from chalicelib.validation.issues import CODES
from chalicelib.validation.store import ContractStore, ValidationStore, report_key, tags
from chalicelib.validation.validator import ValidationResult, validate_stream

READ = 1024 * 1024


class HashingReader:
    """Passes a stream through while computing its sha256 and size."""

    def __init__(self, body: Any) -> None:
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


def validate_upload(reader: HashingReader, dataset: str, data_bucket: str, size: int | None) -> Outcome:
    """Validate an upload's bytes against its dataset's contract (or report that it has none)."""
    store = ValidationStore(data_bucket)
    try:
        contract = ContractStore(data_bucket).get(dataset)
    except (NoContract, ContractError) as exc:
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
    reference = store.reference(dataset)
    result = validate_stream(reader, contract, size=size, reference=reference)
    report = dict(result.report)
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
    bucket: str,
    key: str,
    version_id: str | None,
    sha256: str | None,
    data_bucket: str,
    retrain_queue_url: str | None,
) -> dict[str, Any]:
    """Write the report and the copy, make the reference, announce valid data. Returns what was written."""
    store = ValidationStore(data_bucket)
    classification = outcome.contract.classification if outcome.contract else "confidential"
    # Reports hold statistics, never values of sensitive columns; they are at most confidential.
    report_class = "confidential" if classification in SENSITIVE else classification
    report = {
        **outcome.report,
        "upload_id": upload_id,
        "source": {"bucket": bucket, "key": key, "version_id": version_id, "sha256": sha256},
    }
    written: dict[str, Any] = {"report_key": report_key(dataset, upload_id)}
    lineage = {
        "upload-id": upload_id,
        "source-key": key,
        "source-version": version_id or "",
        "sha256": sha256 or "",
    }
    suffix = ".csv.gz" if outcome.report.get("compression") == "gzip" else ".csv"
    if outcome.status == "valid":
        output = f"validated/{dataset}/{upload_id}{suffix}"
        store.copy(bucket, key, version_id, output, lineage, tags(dataset, classification, "validated"))
        report["validated_key"] = output
        written["output_key"] = output
        assert outcome.result is not None and outcome.result.profile is not None
        if store.create_reference(dataset, outcome.result.profile, classification):
            written["became_reference"] = True
    else:
        folder = f"quarantine/{dataset}/{upload_id}"
        output = f"{folder}/{posixpath.basename(key) or 'upload'}"
        store.copy(bucket, key, version_id, output, lineage, tags(dataset, classification, "quarantine"))
        store.put_json(f"{folder}/report.json", report, dataset, report_class, "quarantine")
        report["quarantine_key"] = output
        written["output_key"] = output
    store.put_json(written["report_key"], report, dataset, report_class, "report")
    if outcome.status == "valid" and retrain_queue_url:
        drift = outcome.report.get("drift", {})
        aws.client("sqs").send_message(
            QueueUrl=retrain_queue_url,
            MessageBody=json.dumps(
                {
                    "event": "data.validated",
                    "dataset": dataset,
                    "upload_id": upload_id,
                    "validated_key": written["output_key"],
                    "rows": outcome.rows,
                    "sha256": sha256,
                    "drift": drift.get("verdict"),
                    "drifted_features": drift.get("drifted_features", []),
                }
            ),
        )
        written["announced"] = True
    return written
