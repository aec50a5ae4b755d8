"""A candidate as the training job publishes it: its manifest, read and verified file by file.

``models/<dataset>/candidates/<run-id>/manifest.json`` lists every artifact with its key, size and
SHA-256; it is written last, so its arrival announces a complete candidate. Reading it here checks
that every artifact the evaluation needs is listed, lies under the candidate's own prefix, and has
exactly the bytes the manifest recorded. The store's version id of each is kept, so what is served
later is exactly what was checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import RegistryError
from chalicelib.serving import IntegrityError, verify
from chalicelib.serving.ports import ArtifactReader
from chalicelib.training.lineage import uploads_of

MANIFEST_KEY = re.compile(
    r"^models/(?P<dataset>[a-z0-9][a-z0-9_-]{0,62})/candidates/(?P<run>[^/]+)/manifest\.json$"
)
# What the evaluation reads; a manifest without one of these is incomplete.
REQUIRED = ("model.onnx", "input_schema.json", "metrics.json", "parity.json", "holdout.csv", "lineage.json")
# What a version record keeps of the manifest, the input schema and the lineage.
_MANIFEST_FIELDS = (
    "task", "family", "primary_metric", "primary_value", "data_hash", "fingerprint", "created_at",
)  # fmt: skip
_SCHEMA_FIELDS = ("task", "target", "classes", "features")
_LINEAGE_FIELDS = (
    "run_id", "data_manifest_key", "data_hash", "data_objects", "contract_version", "code_version",
    "parameters", "libraries", "trigger", "capacity", "attempts",
)  # fmt: skip


@dataclass
class Candidate:
    """A candidate: its manifest, and the artifacts read so far (bytes and locations)."""

    dataset: str
    run_id: str
    manifest_key: str
    manifest: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def at(cls, key: str) -> Candidate:
        """The candidate whose manifest is at ``key`` (ValueError for any other key)."""
        match = MANIFEST_KEY.match(key)
        if not match:
            raise ValueError(
                f"{key} is not a candidate manifest key (models/<dataset>/candidates/<run>/manifest.json)"
            )
        return cls(match["dataset"], match["run"], key)

    @property
    def prefix(self) -> str:
        return self.manifest_key.rsplit("/", 1)[0] + "/"

    def json(self, name: str) -> Any:
        return json.loads(self.files[name])


class _Problem(Exception):
    """What makes the candidate unusable (it is registered and rejected, naming this)."""


def load(artifacts: ArtifactReader, candidate: Candidate, bucket: str, version_id: str | None) -> str | None:
    """Read the manifest and every artifact it lists; None if all is well, else the integrity problem.

    A manifest that is not there at all raises (the notification is retried): nothing to register."""
    try:
        candidate.manifest = _read_manifest(artifacts, candidate, bucket, version_id)
        for name, entry in _listed(candidate).items():
            _read_artifact(artifacts, candidate, bucket, name, entry)
    except _Problem as problem:
        return str(problem)
    return None


def _read_manifest(
    artifacts: ArtifactReader, candidate: Candidate, bucket: str, version_id: str | None
) -> dict[str, Any]:
    stored = artifacts.read(bucket, candidate.manifest_key, version_id)
    if stored is None:
        raise RegistryError(f"s3://{bucket}/{candidate.manifest_key} is missing")
    candidate.locations["manifest.json"] = {"key": candidate.manifest_key, "version_id": stored.version_id}
    try:
        manifest = json.loads(stored.data)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise _Problem(f"manifest.json is not valid JSON: {exc}") from None
    if manifest.get("run_id") != candidate.run_id or manifest.get("dataset") != candidate.dataset:
        raise _Problem(
            f"manifest.json names run {manifest.get('run_id')!r} of {manifest.get('dataset')!r} but sits "
            f"under run {candidate.run_id!r} of {candidate.dataset!r}"
        )
    return manifest


def _listed(candidate: Candidate) -> dict[str, dict[str, Any]]:
    """The manifest's artifacts by name, every required one present and under the candidate's prefix."""
    entries = candidate.manifest.get("artifacts")
    if not isinstance(entries, list):
        raise _Problem("manifest.json has no artifacts list")
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _Problem("manifest.json: an artifact entry has no name")
        listed[entry["name"]] = entry
    missing = [name for name in REQUIRED if name not in listed]
    if missing:
        raise _Problem(f"manifest.json does not list {', '.join(missing)}")
    for name, entry in listed.items():
        if entry.get("key") != candidate.prefix + name:
            raise _Problem(
                f"{name}: the manifest points at {entry.get('key')!r}, outside the candidate's prefix "
                f"{candidate.prefix}"
            )
    return listed


def _read_artifact(
    artifacts: ArtifactReader, candidate: Candidate, bucket: str, name: str, entry: dict[str, Any]
) -> None:
    stored = artifacts.read(bucket, entry["key"])
    if stored is None:
        raise _Problem(f"{name} is listed in the manifest but missing from the bucket")
    try:
        verify(name, stored.data, entry.get("sha256"), entry.get("bytes"))
    except IntegrityError as exc:
        raise _Problem(str(exc)) from None
    if not entry.get("sha256"):
        raise _Problem(f"{name}: the manifest gives no sha256")
    candidate.files[name] = stored.data
    candidate.locations[name] = {
        "key": entry["key"],
        "version_id": stored.version_id,
        "sha256": entry["sha256"],
        "bytes": stored.size,
    }


def registration(candidate: Candidate, bucket: str) -> dict[str, Any]:
    """What the version record keeps about the candidate (the rest stays in the bucket)."""
    doc: dict[str, Any] = {
        "run_id": candidate.run_id,
        "manifest_key": candidate.manifest_key,
        "dataset": candidate.dataset,
        "bucket": bucket,
        "artifacts": candidate.locations,
    }
    doc.update({k: candidate.manifest[k] for k in _MANIFEST_FIELDS if k in candidate.manifest})
    if "metrics.json" in candidate.files:
        doc["training_metrics"] = candidate.json("metrics.json")
    if "input_schema.json" in candidate.files:
        # What /predict takes, for clients (not the ONNX opsets: DynamoDB maps refuse an empty key).
        schema = candidate.json("input_schema.json")
        doc["input_schema"] = {k: schema.get(k) for k in _SCHEMA_FIELDS}
    if "lineage.json" in candidate.files:
        lineage = candidate.json("lineage.json")
        doc["lineage"] = {k: lineage.get(k) for k in _LINEAGE_FIELDS}
        # Which uploads the version was trained on, at the top of the record for lineage queries
        # (its holdout's uploads, what it was evaluated on, are in gates.evaluated_on).
        doc["trained_on"] = uploads_of(lineage.get("data_objects"))
    return doc


def trained_on(doc: dict[str, Any]) -> list[str]:
    """The uploads a registered version was trained on (from its lineage for older records)."""
    if isinstance(doc.get("trained_on"), list):
        return [str(u) for u in doc["trained_on"]]
    return uploads_of((doc.get("lineage") or {}).get("data_objects"))
