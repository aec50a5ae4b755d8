"""Ingesting one upload: read it once, validate it, publish the outputs, record it in the ledger.

    notification ──> open the notified version ──(gone)──> ledger: missing
                        │ already in the ledger ──> answered "recorded" (a late duplicate)
                        │ not under incoming/<dataset>/ ──> ledger: unroutable
                        │ validate while hashing ──> claim the bytes ──> an earlier upload's? ──> ledger: duplicate
                        └──> publish (copy, reference, report, announcement) ──> ledger: valid / invalid

Order of the writes, so that a crash after any of them leaves the upload re-processable:

1. the content claim (create-only, keyed by dataset and sha256; it keeps the upload's notification);
2. the outputs: copy, reference (create-only), report(s), retrain announcement. Every key derives
   from the upload id, so a retry rewrites the same objects; the reference names the upload that
   made it, so a retry after writing it still reads as the reference;
3. the ledger entry, last and create-only: a crash before it leaves nothing recorded, so the
   redelivery does the work again; a redelivery after it is absorbed.

A claim can outlive a crash, held by an upload that never completed. Nobody is called the
duplicate of such an upload: an upload of the same bytes first finishes the holder (from the
notification kept in the claim, exactly as the holder's own redelivery would), then is recorded
as its duplicate; if the holder can no longer complete (its object was deleted), the claim passes,
conditionally, to the upload at hand. Counts and codes are logged, never values of the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.ingest.exceptions import ContentInProgress, ObjectGone
from chalicelib.ingest.ports import Body, OpenedUpload, ShardTally, UploadLedger, UploadSource
from chalicelib.ingest.uploads import Upload, dataset_of, upload_id_for
from chalicelib.observability import logger, metrics
from chalicelib.s3events import ObjectCreated
from chalicelib.timeutil import now_iso
from chalicelib.validation.layout import SourceObject
from chalicelib.validation.partial import ScaleOut
from chalicelib.validation.ports import Queue
from chalicelib.validation.service import HashingReader, Outcome, ValidationPorts, publish, validate_upload


@dataclass(frozen=True)
class ShardPorts:
    """What validating a large upload in parallel needs (``chalicelib.ingest.scaleout``)."""

    queue: Queue  # the ingest queue itself: one message per piece, to this same function
    tally: ShardTally
    scale_out: ScaleOut


@dataclass(frozen=True)
class IngestPorts:
    ledger: UploadLedger
    source: UploadSource
    validation: ValidationPorts
    shards: ShardPorts | None = None  # None: every upload is validated in one pass


# Statuses of an upload whose outputs were published: the only ones a duplicate may point to.
PUBLISHED = frozenset({"valid", "invalid"})
# Passing a claim can lose a race to another upload of the same bytes; it is re-read this often.
CLAIM_ATTEMPTS = 3


def ingest(notification: dict[str, Any], ports: IngestPorts, *, finish_holder: bool = True) -> dict[str, Any]:
    """Validate one upload and record it in the ledger (create-only, written last).

    Returns the upload id, whether this call created the ledger entry, and the status. With
    ``finish_holder`` (the default), an unfinished upload that holds the claim on the same bytes is
    finished first; the nested call that finishes it does not go further. The upload is validated
    in one pass here (``chalicelib.ingest.scaleout.ingest_upload`` splits large ones first).
    """
    event = ObjectCreated(
        **{k: v for k, v in notification.items() if k in ObjectCreated.__dataclass_fields__}
    )
    try:
        opened = ports.source.open(event.bucket, event.key, event.version_id, event.etag)
    except ObjectGone as exc:
        gone = _entry(event, event.version_id, event.size)
        return _record(
            ports.ledger,
            replace(gone, status="missing", problem=f"object was gone before it could be read: {exc}"),
        )
    entry = _entry(event, opened.version_id, opened.size)
    # What the content claim keeps: this notification, pinned to the version that was read.
    pinned = {**asdict(event), "version_id": opened.version_id}
    logger.thread_safe_append_keys(upload_id=entry.upload_id)
    try:
        return _record(ports.ledger, _process(entry, opened, pinned, ports, finish_holder))
    finally:
        logger.thread_safe_remove_keys(["upload_id"])


def _process(
    entry: Upload, opened: OpenedUpload, pinned: dict[str, Any], ports: IngestPorts, finish_holder: bool
) -> Upload:
    """The ledger entry this upload gets (the bytes are read here, once)."""
    if ports.ledger.get(entry.upload_id) is not None:  # done before: a late duplicate of a finished upload
        opened.body.close()
        return replace(entry, status="recorded")
    dataset = entry.dataset
    if dataset is None:
        _, problem = dataset_of(entry.key)
        return replace(entry, sha256=_hash_all(opened.body), status="unroutable", problem=problem)
    outcome, sha256 = _validate(opened, dataset, entry.upload_id, ports.validation)
    return conclude(replace(entry, sha256=sha256), outcome, pinned, ports, finish_holder)


def conclude(
    entry: Upload, outcome: Outcome, pinned: dict[str, Any], ports: IngestPorts, finish_holder: bool
) -> Upload:
    """After validation (one pass or merged shards): a duplicate of earlier bytes, or published."""
    dataset, sha256 = entry.dataset, entry.sha256
    assert dataset is not None
    if sha256 is not None:
        first = _first_upload_of(dataset, sha256, entry.upload_id, pinned, ports, finish_holder)
        logger.thread_safe_append_keys(upload_id=entry.upload_id)  # a finished holder logged its own
        if first is not None:
            problem = f"identical bytes to upload {first}"
            if first in ports.ledger.revoked(dataset):
                problem += ", which was revoked: these rows stay out of training"
            return replace(entry, status="duplicate", duplicate_of=first, problem=problem)
    # Rows of revoked uploads are not "seen before": a corrected re-upload of them is new data.
    return _publish(entry, outcome, ports.validation, ports.ledger.revoked(dataset))


def _first_upload_of(
    dataset: str, sha256: str, upload_id: str, pinned: dict[str, Any], ports: IngestPorts, finish_holder: bool
) -> str | None:
    """The completed upload these bytes are a duplicate of, or None once this upload holds their claim.

    Raises ContentInProgress (transient: the message is retried) when the holder is unfinished and
    this call may not finish it, or when the claim keeps moving under concurrent uploads.
    """
    for _ in range(CLAIM_ATTEMPTS):
        claim = ports.ledger.claim_content(dataset, sha256, upload_id, pinned)
        if claim.upload_id == upload_id:
            return None
        holder = ports.ledger.get(claim.upload_id)
        if holder is None and claim.notification is not None:
            if not finish_holder:
                raise ContentInProgress(
                    f"identical bytes are being ingested as upload {claim.upload_id}, not finished yet"
                )
            # Crashed, or still running: finish it as its own redelivery would (same keys, same
            # outputs; its ledger entry is create-only, so finishing it twice records it once).
            ingest(claim.notification, ports, finish_holder=False)
            holder = ports.ledger.get(claim.upload_id)
        if holder is not None and holder.status in PUBLISHED:
            return holder.upload_id
        if holder is None and claim.notification is not None:
            raise ContentInProgress(f"upload {claim.upload_id} holds these bytes and is not recorded yet")
        # The holder never published and never will (its object was gone when it was finished),
        # or the claim is older than kept notifications: the bytes pass to this upload.
        if ports.ledger.pass_claim(dataset, sha256, claim.upload_id, upload_id, pinned):
            return None
    raise ContentInProgress(f"the claim on these bytes kept moving ({CLAIM_ATTEMPTS} attempts)")


def _publish(entry: Upload, outcome: Outcome, ports: ValidationPorts, revoked: frozenset[str]) -> Upload:
    """Write the outputs of a first upload of these bytes; its entry says where they went."""
    assert entry.dataset is not None
    source = SourceObject(entry.bucket, entry.key, entry.version_id)
    published = publish(
        outcome,
        dataset=entry.dataset,
        upload_id=entry.upload_id,
        source=source,
        sha256=entry.sha256,
        ports=ports,
        uploaded_at=entry.event_time,
        revoked=revoked,
    )
    _count(outcome)
    return replace(
        entry,
        status=outcome.status,
        rows=outcome.rows,
        report_key=published.report_key,
        output_key=published.output_key,
        issue_codes=sorted({i["code"] for i in outcome.issues}),
        drift=outcome.drift,
        new_rows=published.new_rows,
        repeated_rows=published.repeated_rows,
    )


def _entry(event: ObjectCreated, version_id: str | None, size: int) -> Upload:
    """The ledger entry's identity: the status and what was found are filled in by the steps."""
    dataset, _ = dataset_of(event.key)
    return Upload(
        upload_id=upload_id_for(event.bucket, event.key, version_id or event.etag),
        bucket=event.bucket,
        key=event.key,
        dataset=dataset,
        version_id=version_id,
        etag=event.etag,
        size=size,
        sha256=None,
        event_time=event.event_time,
        recorded_at="",  # stamped when recorded
        status="received",
    )


def _validate(
    opened: OpenedUpload, dataset: str, upload_id: str, ports: ValidationPorts
) -> tuple[Outcome, str | None]:
    """Validate while hashing. The hash covers every byte, even when validation stopped early; an
    upload refused as too large is not read to its end, so it has no hash."""
    reader = HashingReader(opened.body)
    try:
        outcome = validate_upload(reader, dataset, opened.size, ports, upload_id=upload_id)
        if any(i["code"] == "FILE_TOO_LARGE" for i in outcome.issues):
            return outcome, None
        reader.drain()
        return outcome, reader.hexdigest()
    finally:
        opened.body.close()


def _hash_all(body: Body) -> str:
    reader = HashingReader(body)
    try:
        reader.drain()
    finally:
        body.close()
    return reader.hexdigest()


def _count(outcome: Outcome) -> None:
    valid = outcome.status == "valid"
    metrics.add_metric(name="UploadsValid" if valid else "UploadsQuarantined", unit=MetricUnit.Count, value=1)
    if outcome.drift == "drifted":
        metrics.add_metric(name="UploadsDrifted", unit=MetricUnit.Count, value=1)


def _record(ledger: UploadLedger, upload: Upload) -> dict[str, Any]:
    """Write the ledger entry (create-only), count and log it; the answer ``ingest`` returns."""
    upload = replace(upload, recorded_at=now_iso())
    created = ledger.record(upload)
    if created:
        metrics.add_metric(name="UploadsRecorded", unit=MetricUnit.Count, value=1)
        # Keys, counts and codes only: values of the data never reach the logs.
        logger.info(
            "upload recorded",
            extra={
                "upload_id": upload.upload_id,
                "dataset": upload.dataset,
                "key": upload.key,
                "size": upload.size,
                "status": upload.status,
                "rows": upload.rows,
                "issue_codes": upload.issue_codes,
                "drift": upload.drift,
                "new_rows": upload.new_rows,
                "repeated_rows": upload.repeated_rows,
                "problem": upload.problem,
            },
        )
    else:
        metrics.add_metric(name="DuplicateUploadEvents", unit=MetricUnit.Count, value=1)
        logger.info(
            "duplicate upload event absorbed", extra={"upload_id": upload.upload_id, "key": upload.key}
        )
    return {
        "upload_id": upload.upload_id,
        "created": created,
        "status": upload.status if created else "recorded",
    }
