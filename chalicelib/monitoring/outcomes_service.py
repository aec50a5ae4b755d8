"""Receiving outcomes: from the API (``accept``) and from uploads under ``outcomes/<dataset>/`` (``ingest_upload``).

API: a request is accepted whole or refused whole. Every item is checked against the model's
contract (``outcomes.OutcomeParser``); one bad item refuses the request with every problem named
(``InvalidOutcomes``, a 400) and nothing is stored; otherwise the outcomes are stored as one
create-only object and the answer names it.

Uploads (the ingest queue routes their notifications here):

    notification ──> open the notified version ──(gone)──> nothing to do
                        │ not outcomes/<dataset>/<file>.csv, or no contract ──> quarantine report
                        └──> check every row ──> good rows: one create-only object (source upload:<key>@<version>)
                                             └─> bad rows: quarantine/outcomes/<dataset>/<upload-id>/rows.csv + report.json

The upload itself is never modified or deleted. Every key derives from the upload's key and
version, so a retried event rewrites the same report and finds its outcomes stored already (the
create-only write stores them once). Counts and codes are logged, never values of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.errors import NotFound
from chalicelib.ingest.exceptions import ObjectGone
from chalicelib.ingest.ports import UploadSource
from chalicelib.ingest.uploads import upload_id_for
from chalicelib.monitoring.outcomes import (
    MAX_UPLOAD_BYTES,
    UNROUTABLE,
    CsvOutcomes,
    InvalidOutcomes,
    OutcomeParser,
    OutcomeProblem,
    classification_of,
    dataset_of_upload,
    iso,
    quarantine_prefix,
)
from chalicelib.monitoring.ports import OutcomeStore
from chalicelib.observability import logger, metrics
from chalicelib.registry.ports import Registry
from chalicelib.s3events import ObjectCreated
from chalicelib.timeutil import clock_offset, utc_now
from chalicelib.validation.exceptions import NoContract
from chalicelib.validation.layout import QUARANTINE_REPORT, ObjectTags
from chalicelib.validation.ports import ContractStore, ValidationStore

QUARANTINED_ROWS = "rows.csv"
UNCLASSIFIED = "confidential"  # the tag of what no contract classifies (docs/contracts.md, Tags)


class UnknownModel(NotFound):
    """Outcomes for a model the registry does not know."""


@dataclass(frozen=True)
class OutcomePorts:
    """What ``accept`` (the API) needs."""

    contracts: ContractStore
    outcomes: OutcomeStore
    registry: Registry


@dataclass(frozen=True)
class OutcomeUploadPorts:
    """What ``ingest_upload`` (the ingest queue) needs."""

    contracts: ContractStore
    outcomes: OutcomeStore
    source: UploadSource
    quarantine: ValidationStore


def received_now() -> datetime:
    """Now, in UTC, to the millisecond (the precision outcomes and their keys keep)."""
    return to_millis(utc_now())


def to_millis(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- the API -----------------------------------------------------------------------------------------------


def accept(
    ports: OutcomePorts, model: str, items: Sequence[Any], *, source: str, received_at: datetime | None = None
) -> dict[str, Any]:
    """Store a request's outcomes, all or none: ``{"accepted": n, "key": ...}``.

    Raises UnknownModel (404) for a model without versions, NoContract (404) without a contract,
    InvalidOutcomes (400, every problem named) if any item is bad."""
    if not ports.registry.versions(model):
        raise UnknownModel(f"no model named {model!r}: outcomes are for a registered model")
    contract = ports.contracts.get(model)
    received = to_millis(received_at) if received_at else received_now()
    outcomes, problems = OutcomeParser(model, contract).parse_items(items, received, source)
    if problems:
        metrics.add_metric(name="OutcomeRequestsRefused", unit=MetricUnit.Count, value=1)
        logger.info(
            "outcomes refused",
            extra={
                "model": model,
                "items": len(items),
                "problems": len(problems),
                "fields": _fields(problems),
            },
        )
        raise InvalidOutcomes(problems)
    key = ports.outcomes.add(model, outcomes, source, classification=classification_of(contract))
    metrics.add_metric(name="OutcomesAccepted", unit=MetricUnit.Count, value=len(outcomes))
    logger.info("outcomes stored", extra={"model": model, "accepted": len(outcomes), "key": key})
    return {"accepted": len(outcomes), "key": key}


def _fields(problems: Sequence[OutcomeProblem]) -> list[str]:
    return sorted({p.field or "-" for p in problems})


# --- uploads -----------------------------------------------------------------------------------------------


def ingest_upload(notification: dict[str, Any], ports: OutcomeUploadPorts) -> dict[str, Any]:
    """Check one outcomes upload: good rows stored, bad rows quarantined with a report.

    Returns ``{"upload_id", "status": stored|partial|rejected|missing, "accepted", "rejected",
    "key", "report_key"}``."""
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    try:
        opened = ports.source.open(event.bucket, event.key, event.version_id, event.etag)
    except ObjectGone:
        logger.warning("outcomes upload gone before it was read", extra={"key": event.key})
        return {
            "upload_id": None,
            "status": "missing",
            "accepted": 0,
            "rejected": 0,
            "key": None,
            "report_key": None,
        }
    try:
        body = opened.body.read(MAX_UPLOAD_BYTES + 1)
    finally:
        opened.body.close()
    version = opened.version_id or event.etag
    upload_id = upload_id_for(event.bucket, event.key, version)
    source = f"upload:{event.key}@{version}"
    received = _received_at(event, opened.last_modified)
    dataset, problem = dataset_of_upload(event.key)
    upload = {
        "bucket": event.bucket,
        "key": event.key,
        "version_id": opened.version_id,
        "upload_id": upload_id,
    }
    if dataset is None:
        return _reject(ports, None, upload, received, problem or "unroutable", UNCLASSIFIED)
    try:
        contract = ports.contracts.get(dataset)
    except NoContract:
        return _reject(
            ports, dataset, upload, received, f"no contract is stored for {dataset!r}", UNCLASSIFIED
        )
    classification = classification_of(contract)
    found = OutcomeParser(dataset, contract).parse_csv(body, received, source)
    if found.fatal:
        return _reject(ports, dataset, upload, received, found.fatal[0].problem, classification)
    key = (
        ports.outcomes.add(dataset, found.outcomes, source, classification=classification)
        if found.outcomes
        else None
    )
    report_key = None
    if found.problems:
        report_key = _quarantine(ports, dataset, upload, received, found, key, classification)
    status = "stored" if not found.problems else "partial" if found.outcomes else "rejected"
    rejected = len(found.bad_rows)
    metrics.add_metric(name="OutcomesAccepted", unit=MetricUnit.Count, value=len(found.outcomes))
    if rejected:
        metrics.add_metric(name="OutcomeRowsQuarantined", unit=MetricUnit.Count, value=rejected)
    logger.info(
        "outcomes upload checked",
        extra={
            "upload_id": upload_id,
            "dataset": dataset,
            "status": status,
            "accepted": len(found.outcomes),
            "rejected": rejected,
            "fields": _fields(found.problems),
        },
    )
    return {
        "upload_id": upload_id,
        "status": status,
        "accepted": len(found.outcomes),
        "rejected": rejected,
        "key": key,
        "report_key": report_key,
    }


def _received_at(event: ObjectCreated, last_modified: datetime | None) -> datetime:
    """When S3 received the upload: the version's Last-Modified, the same for every delivery of its
    event (a redelivered or re-sent notification names the same object), else the event's time."""
    # S3 keeps its own time; the local cloud's simulated clock (chalicelib.timeutil) runs ahead of it.
    if last_modified is not None:
        moment = last_modified if last_modified.tzinfo else last_modified.replace(tzinfo=UTC)
        return to_millis(moment + clock_offset())
    try:
        moment = datetime.fromisoformat(event.event_time.replace("Z", "+00:00"))
    except ValueError:
        return received_now()  # an event without a time (never from S3): now
    return to_millis((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) + clock_offset())


def _quarantine(
    ports: OutcomeUploadPorts,
    dataset: str,
    upload: dict[str, Any],
    received: datetime,
    found: CsvOutcomes,
    stored_key: str | None,
    classification: str,
) -> str:
    prefix = quarantine_prefix(dataset, upload["upload_id"])
    tags = ObjectTags(dataset, classification, "quarantine")
    ports.quarantine.put_bytes(prefix + QUARANTINED_ROWS, found.quarantine_csv(), tags)
    report = {
        **_report_head(dataset, upload, received),
        "status": "partial" if found.outcomes else "rejected",
        "accepted": len(found.outcomes),
        "rejected_rows": len(found.bad_rows),
        "stored_key": stored_key,
        "quarantined_rows_key": prefix + QUARANTINED_ROWS,
        "problems": [asdict(p) | {"row": p.item} for p in found.problems],
    }
    for problem in report["problems"]:
        del problem["item"]
    ports.quarantine.put_json(prefix + QUARANTINE_REPORT, report, tags)
    return prefix + QUARANTINE_REPORT


def _reject(
    ports: OutcomeUploadPorts,
    dataset: str | None,
    upload: dict[str, Any],
    received: datetime,
    problem: str,
    classification: str,
) -> dict[str, Any]:
    """A file none of whose rows can be read as outcomes: a report (the upload stays where it is)."""
    prefix = quarantine_prefix(dataset, upload["upload_id"])
    report = {
        **_report_head(dataset, upload, received),
        "status": "rejected",
        "accepted": 0,
        "stored_key": None,
        "problems": [{"row": None, "field": None, "problem": problem}],
    }
    tags = ObjectTags(dataset or UNROUTABLE, classification, "quarantine")
    ports.quarantine.put_json(prefix + QUARANTINE_REPORT, report, tags)
    metrics.add_metric(name="OutcomeUploadsRejected", unit=MetricUnit.Count, value=1)
    logger.warning(
        "outcomes upload rejected",
        extra={"upload_id": upload["upload_id"], "dataset": dataset, "problem": problem},
    )
    return {
        "upload_id": upload["upload_id"],
        "status": "rejected",
        "accepted": 0,
        "rejected": None,
        "key": None,
        "report_key": prefix + QUARANTINE_REPORT,
    }


def _report_head(dataset: str | None, upload: dict[str, Any], received: datetime) -> dict[str, Any]:
    return {"kind": "outcomes", "dataset": dataset, "upload": upload, "received_at": iso(received)}
