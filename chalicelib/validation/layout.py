"""Where the validation stage's objects live in the data bucket, and what they are tagged with.

Every key is derived from the dataset and the upload id, so a retried invocation rewrites the same
objects instead of adding new ones. Both the services and the adapters use these names.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

CONTRACTS_PREFIX = "contracts/"
CONTRACT_SUFFIX = ".json"
QUARANTINE_REPORT = "report.json"
MAX_KEY_BYTES = 1024  # S3: an object key, UTF-8
MAX_METADATA_BYTES = 2048  # S3: user-defined metadata, every key and value (UTF-8) together


def contract_key(dataset: str) -> str:
    return f"{CONTRACTS_PREFIX}{dataset}{CONTRACT_SUFFIX}"


def dataset_of_contract_key(key: str) -> str | None:
    """``contracts/<dataset>.json`` -> the dataset (None for any other key)."""
    if not (key.startswith(CONTRACTS_PREFIX) and key.endswith(CONTRACT_SUFFIX)):
        return None
    return key[len(CONTRACTS_PREFIX) : -len(CONTRACT_SUFFIX)]


def report_key(dataset: str, upload_id: str) -> str:
    return f"reports/{dataset}/{upload_id}.json"


def shard_result_key(dataset: str, upload_id: str, piece: int) -> str:
    """``shards/<dataset>/<upload-id>/<piece>.part``: one piece's partial result of a split upload
    (``chalicelib.validation.partial``), written create-only."""
    return f"shards/{dataset}/{upload_id}/{piece:05d}.part"


def reference_key(dataset: str) -> str:
    return f"profiles/{dataset}/reference.json"


def validated_key(dataset: str, upload_id: str, gzip: bool) -> str:
    return f"validated/{dataset}/{upload_id}{'.csv.gz' if gzip else '.csv'}"


def validated_upload(dataset: str, key: str) -> str | None:
    """The upload id in a validated copy's key (``validated_key``), or None for any other key."""
    folder = f"validated/{dataset}/"
    if not key.startswith(folder):
        return None
    name = key[len(folder) :]
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix) and len(name) > len(suffix) and "/" not in name:
            return name[: -len(suffix)]
    return None


# --- row digests: what each valid upload leaves for later ones to compare with (``rowkeys``) ---------

ORDER_WIDTH = len("20261130T120000.000000Z")
_NO_ORDER = "00000000T000000.000000Z"


def upload_order(uploaded_at: str) -> str:
    """When an upload arrived (its S3 event time), as fixed-width UTC text that sorts
    chronologically: ``20261130T120000.000000Z``. A time that is not ISO 8601 sorts first."""
    try:
        moment = datetime.fromisoformat(uploaded_at)
    except ValueError:
        return _NO_ORDER
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def row_digests_prefix(dataset: str) -> str:
    return f"profiles/{dataset}/rows/"


def row_digest_key(dataset: str, uploaded_at: str, upload_id: str) -> str:
    """``profiles/<dataset>/rows/<upload order>-<upload-id>.rows``: listing the prefix lists the
    uploads oldest first (ties by upload id), without reading them."""
    return f"{row_digests_prefix(dataset)}{upload_order(uploaded_at)}-{upload_id}.rows"


def row_digest_upload(key: str) -> tuple[str, str] | None:
    """``(upload order, upload id)`` of a row digest's key (None for any other key)."""
    name = posixpath.basename(key)
    if not name.endswith(".rows") or len(name) <= ORDER_WIDTH + 6 or name[ORDER_WIDTH] != "-":
        return None
    return name[:ORDER_WIDTH], name[ORDER_WIDTH + 1 : -len(".rows")]


def quarantine_folder(dataset: str, upload_id: str) -> str:
    return f"quarantine/{dataset}/{upload_id}"


def quarantine_key(dataset: str, upload_id: str, source_key: str) -> str:
    """The quarantined copy keeps the upload's file name, so whoever fixes it sees what they sent.

    Any key works: a name that would collide with the report beside it (``report.json``) or that is
    a path step (``.``, ``..``) gets an ``upload-`` prefix, and a name that would take the key past
    S3's 1,024 bytes is shortened (whole characters, the extension kept). The ledger entry and the
    report keep the original key exactly.
    """
    folder = f"{quarantine_folder(dataset, upload_id)}/"
    name = posixpath.basename(source_key) or "upload"
    if name in (QUARANTINE_REPORT, ".", ".."):
        name = f"upload-{name}"
    return folder + _shortened(name, MAX_KEY_BYTES - len(folder.encode()))


def quarantine_report_key(dataset: str, upload_id: str) -> str:
    """The report beside a quarantined copy."""
    return f"{quarantine_folder(dataset, upload_id)}/{QUARANTINE_REPORT}"


def _shortened(name: str, budget: int) -> str:
    """``name`` cut to at most ``budget`` UTF-8 bytes on a character boundary, its extension kept."""
    if len(name.encode()) <= budget:
        return name
    stem, ext = posixpath.splitext(name)
    if len(ext.encode()) > budget // 4:
        stem, ext = name, ""
    room = budget - len(ext.encode())
    return stem.encode()[:room].decode(errors="ignore") + ext


# --- what S3 accepts (the in-memory adapters refuse the same, so service tests meet the same rules) --


def s3_write_problem(key: str, metadata: dict[str, str] | None = None) -> str | None:
    """Why S3 would refuse to write an object with this key and metadata (None if it would not).

    Metadata travels as HTTP headers: printable ASCII only (botocore refuses anything else before
    sending, S3 answers 400 beyond 2 KB).
    """
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"key of {len(key.encode())} bytes: S3 keys are at most {MAX_KEY_BYTES} bytes (UTF-8)"
    metadata = metadata or {}
    for name, value in metadata.items():
        if not (_printable_ascii(name) and _printable_ascii(value)):
            return f"metadata {name!r} is not printable ASCII: S3 metadata travels as HTTP headers"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        return f"metadata of {size} bytes: S3 takes at most 2 KB ({MAX_METADATA_BYTES} bytes)"
    return None


def _printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


# --- the lineage metadata of validated and quarantined copies --------------------------------------


def lineage_metadata(
    upload_id: str, source: SourceObject, sha256: str | None, uploaded_at: str = ""
) -> dict[str, str]:
    """The copy's metadata: which upload, which object version and which bytes it was made from,
    and when it arrived (``uploaded-at``, as ``upload_order`` writes it: the snapshot's order).

    S3 metadata must be ASCII, keys need not be: ``source-key`` is the key percent-encoded (RFC 3986,
    UTF-8; letters, digits, ``-._~`` and ``/`` as they are), so ``urllib.parse.unquote`` gives back the
    exact key (``source_key_of``). A key too long to fit S3's 2 KB of metadata once encoded (some 600
    bytes of non-ASCII characters) is left out: the upload's report and ledger entry, found by
    ``upload-id``, hold it.
    """
    metadata = {
        "upload-id": upload_id,
        "source-version": source.version_id or "",
        "sha256": sha256 or "",
    }
    if uploaded_at:
        metadata["uploaded-at"] = upload_order(uploaded_at)
    with_key = {**metadata, "source-key": quote(source.key, safe="/")}
    return with_key if s3_write_problem("", with_key) is None else metadata


def source_key_of(metadata: dict[str, str]) -> str | None:
    """The upload's key from a copy's lineage metadata (None if it was too long to be kept there)."""
    encoded = metadata.get("source-key")
    return None if encoded is None else unquote(encoded, errors="strict")


@dataclass(frozen=True)
class ObjectTags:
    """The tags every object the pipeline writes carries (lifecycle rules and access policies use them)."""

    dataset: str
    classification: str
    stage: str  # "contract", "report", "validated", "quarantine", "profile"...

    def as_dict(self) -> dict[str, str]:
        return {"dataset": self.dataset, "classification": self.classification, "stage": self.stage}


@dataclass(frozen=True)
class SourceObject:
    """One version of an uploaded object: what a validated or quarantined copy is made from."""

    bucket: str
    key: str
    version_id: str | None
