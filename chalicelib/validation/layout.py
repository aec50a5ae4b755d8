"""Where the validation stage's objects live in the data bucket, and what they are tagged with.

Every key is derived from the dataset and the upload id, so a retried invocation rewrites the same
objects instead of adding new ones. Both the services and the adapters use these names.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

CONTRACTS_PREFIX = "contracts/"
CONTRACT_SUFFIX = ".json"


def contract_key(dataset: str) -> str:
    return f"{CONTRACTS_PREFIX}{dataset}{CONTRACT_SUFFIX}"


def dataset_of_contract_key(key: str) -> str | None:
    """``contracts/<dataset>.json`` -> the dataset (None for any other key)."""
    if not (key.startswith(CONTRACTS_PREFIX) and key.endswith(CONTRACT_SUFFIX)):
        return None
    return key[len(CONTRACTS_PREFIX) : -len(CONTRACT_SUFFIX)]


def report_key(dataset: str, upload_id: str) -> str:
    return f"reports/{dataset}/{upload_id}.json"


def reference_key(dataset: str) -> str:
    return f"profiles/{dataset}/reference.json"


def validated_key(dataset: str, upload_id: str, gzip: bool) -> str:
    return f"validated/{dataset}/{upload_id}{'.csv.gz' if gzip else '.csv'}"


def quarantine_folder(dataset: str, upload_id: str) -> str:
    return f"quarantine/{dataset}/{upload_id}"


def quarantine_key(dataset: str, upload_id: str, source_key: str) -> str:
    """The quarantined copy keeps the upload's file name, so whoever fixes it sees what they sent."""
    return f"{quarantine_folder(dataset, upload_id)}/{posixpath.basename(source_key) or 'upload'}"


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
