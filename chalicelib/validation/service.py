"""The validation stage's use cases, over its ports: storing a contract, validating one upload.

    upload ──> contract? ──> validate (streaming) ──> report  reports/<dataset>/<upload-id>.json
                                   │ valid   ──> validated/<dataset>/<upload-id>.csv + announce on the retrain queue
                                   │ invalid ──> quarantine/<dataset>/<upload-id>/<file> + report.json beside it

The original upload is only ever read. Every key is derived from the upload id, so a retried
invocation rewrites the same objects with the same bytes instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.validation import privacy, rowkeys
from chalicelib.validation.capacity import Capacity
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
    row_digest_key,
    row_digest_upload,
    row_digests_prefix,
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
    new_rows: int | None = None  # a valid upload's rows not in earlier uploads, or changed
    repeated_rows: int | None = None  # a valid upload's rows that earlier uploads hold


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
    reference = reference_for(contract, upload_id, ports.outputs)
    return outcome_of(validate_stream(reader, contract, size=size, reference=reference), contract, reference)


def reference_for(
    contract: Contract, upload_id: str | None, outputs: ValidationStore
) -> dict[str, Any] | None:
    """The drift reference an upload is compared with (masked), None when there is none yet or
    this very upload made it."""
    reference = outputs.reference(contract.dataset)
    if reference is not None and upload_id is not None and reference.get(REFERENCE_UPLOAD) == upload_id:
        reference = None
    # A reference stored before profiles were masked is masked now: like is compared with like.
    return privacy.mask_profile(reference, contract)


def outcome_of(result: ValidationResult, contract: Contract, reference: dict[str, Any] | None) -> Outcome:
    """The outcome of a validation (one pass, or the merge of a split upload's shards)."""
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
    uploaded_at: str = "",
    revoked: Collection[str] = (),
) -> Published:
    """Write the copy and the report, make the reference, announce valid data.

    A valid upload's rows are compared with earlier uploads' (``row_identity`` in the report), and
    its own row digest is written for later ones. ``uploaded_at`` (the upload's S3 event time)
    orders the uploads: it says which are earlier, and which copy of a row a snapshot keeps. The rows
    of ``revoked`` uploads are not compared with: they left the data, so a row they held is new."""
    classification = outcome.contract.classification if outcome.contract else "confidential"
    report = _report(outcome, upload_id, source, sha256)
    lineage = lineage_metadata(upload_id, source, sha256, uploaded_at)  # ASCII, as S3 metadata must be
    became_reference = False
    repeats = None
    if outcome.status == "valid":
        output = validated_key(dataset, upload_id, gzip=outcome.report.get("compression") == "gzip")
        ports.outputs.copy(source, output, lineage, ObjectTags(dataset, classification, "validated"))
        report["validated_key"] = output
        report["row_identity"] = repeats = row_identity(
            outcome, dataset, upload_id, uploaded_at, classification, ports.outputs, revoked
        )
        became_reference = _make_reference(outcome, dataset, upload_id, classification, ports.outputs)
        if not became_reference and outcome.drift == "reference":
            # Another upload validated at the same time made the reference first: compare with it.
            _compare_with_reference(outcome, dataset, upload_id, ports.outputs)
            report["drift"] = outcome.report["drift"]
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
    if repeats is None:  # invalid: quarantined, not announced
        return Published(key, output)
    ports.retrain_queue.send(_announcement(outcome, dataset, upload_id, output, sha256, repeats))
    return Published(key, output, became_reference, True, repeats["new_rows"], repeats["repeated_rows"])


def row_identity(
    outcome: Outcome,
    dataset: str,
    upload_id: str,
    uploaded_at: str,
    classification: str,
    outputs: ValidationStore,
    revoked: Collection[str] = (),
) -> dict[str, Any]:
    """Compare the upload's rows with those of earlier uploads (by their row digests, oldest first;
    never their rows; revoked uploads left out), then leave this upload's digest for later ones. The
    report's section."""
    assert outcome.contract is not None and outcome.result is not None
    contract = outcome.contract
    section: dict[str, Any] = {
        "by": rowkeys.BY_ROW_ID if contract.row_id else rowkeys.BY_CONTENT,
        "column": contract.row_id,
    }
    digest = outcome.result.row_digest
    if digest is None:
        limit = Capacity().identity_rows
        return {
            **section,
            "earlier_uploads": 0,
            "repeated_rows": 0,
            "changed_rows": 0,
            "new_rows": outcome.rows,
            "note": f"more than {limit:,} rows: not compared with earlier uploads, every row counts as new",
        }
    own = row_digest_key(dataset, uploaded_at, upload_id)
    mine = row_digest_upload(own)
    assert mine is not None
    # Earlier in upload order only: a retry never compares with its own digest, and of two uploads
    # validated at once, at most the later counts the other's rows as repeats.
    earlier = [
        key
        for key in outputs.keys(row_digests_prefix(dataset))
        if (theirs := row_digest_upload(key)) is not None and theirs < mine and theirs[1] not in revoked
    ]
    repeats = rowkeys.compare(digest, _digests(outputs, earlier))
    header = {"dataset": dataset, "upload_id": upload_id, "uploaded_at": uploaded_at}
    outputs.put_bytes(own, digest.to_bytes(header), ObjectTags(dataset, classification, "profile"))
    return {**section, **asdict(repeats)}


# The digests read through each store (one a process in Lambda, wired once): each upload compares with
# every earlier one of its dataset, and reading them all again for each upload made a burst of uploads
# quadratic in S3 reads. Per store, not per key alone: two stores (buckets, test worlds) may hold the
# same key with other bytes.
_READ_DIGESTS: weakref.WeakKeyDictionary[Any, rowkeys.DigestCache] = weakref.WeakKeyDictionary()
_READ_DIGESTS_LOCK = threading.Lock()


def _digest_cache(outputs: ValidationStore) -> rowkeys.DigestCache | None:
    with _READ_DIGESTS_LOCK:
        try:
            return _READ_DIGESTS.setdefault(outputs, rowkeys.DigestCache())
        except TypeError:  # a store that cannot be weakly referenced or hashed: no cache
            return None


def _digests(outputs: ValidationStore, keys: list[str]) -> Iterator[tuple[Any, Any]]:
    """The (ids, contents) of each digest, read one at a time (memory holds one, plus the bounded
    cache of those read before). One that is gone or unreadable is not compared with (and not
    counted in ``earlier_uploads``): its rows count as new. Only listed keys are read, so a digest
    deleted since it was cached is not compared with either."""
    cache = _digest_cache(outputs)
    for key in keys:
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            yield cached
            continue
        body = outputs.get_bytes(key)
        if body is None:
            continue
        try:
            _, ids, contents = rowkeys.read_digest(body)
        except (ValueError, KeyError, TypeError):
            continue
        if cache is not None:
            cache.put(key, ids, contents)
        yield ids, contents


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


def _compare_with_reference(outcome: Outcome, dataset: str, upload_id: str, outputs: ValidationStore) -> None:
    """The drift section of an upload that found no reference while it was validated, but lost the
    race to make it (create-only): compared with the reference that won, as it would have been had
    it come second. In place, so the ledger, the report and the announcement all carry it. A
    reference this very upload made (an earlier attempt, which then crashed) leaves it the reference."""
    from chalicelib.validation import drift

    assert outcome.result is not None and outcome.result.profile is not None and outcome.contract
    contract = outcome.contract
    stored = outputs.reference(dataset)
    if stored is None or stored.get(REFERENCE_UPLOAD) == upload_id:
        return  # it is the reference (made by an earlier attempt of this upload)
    reference = privacy.mask_profile(stored, contract)
    assert reference is not None
    profile = outcome.result.profile
    features = [c.name for c in contract.features if c.name in profile["columns"]]
    section = drift.compare(reference, profile, contract.drift, columns=features)
    outcome.report["drift"] = privacy.mask_report({"issues": [], "drift": section}, contract)["drift"]


def _make_reference(
    outcome: Outcome, dataset: str, upload_id: str, classification: str, outputs: ValidationStore
) -> bool:
    """The first valid upload's profile becomes the drift reference; later ones never replace it."""
    assert outcome.result is not None and outcome.result.profile is not None
    profile = {**outcome.result.profile, REFERENCE_UPLOAD: upload_id}
    return outputs.create_reference(dataset, profile, classification)


def _announcement(
    outcome: Outcome,
    dataset: str,
    upload_id: str,
    validated: str,
    sha256: str | None,
    repeats: dict[str, Any],
) -> dict[str, Any]:
    """The retrain queue's ``data.validated`` message (counts and verdicts, never data values)."""
    drift = outcome.report.get("drift", {})
    return {
        "event": "data.validated",
        "dataset": dataset,
        "upload_id": upload_id,
        "validated_key": validated,
        "rows": outcome.rows,
        # What the retrain policy counts: rows no earlier upload holds, and changed ones.
        "new_rows": repeats["new_rows"],
        "repeated_rows": repeats["repeated_rows"],
        "sha256": sha256,
        "drift": drift.get("verdict"),
        "drifted_features": drift.get("drifted_features", []),
    }
