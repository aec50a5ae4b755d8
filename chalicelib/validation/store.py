"""S3 adapters of the validation stage: contracts, reports, validated and quarantined copies,
reference profiles. Every object written carries dataset, classification and stage tags."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import NoContract


def contract_key(dataset: str) -> str:
    return f"contracts/{dataset}.json"


def report_key(dataset: str, upload_id: str) -> str:
    return f"reports/{dataset}/{upload_id}.json"


def reference_key(dataset: str) -> str:
    return f"profiles/{dataset}/reference.json"


def tags(dataset: str, classification: str, stage: str) -> str:
    """The URL-encoded tag set S3 takes on put and copy."""
    return urlencode({"dataset": dataset, "classification": classification, "stage": stage})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ContractStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def get(self, dataset: str) -> Contract:
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=contract_key(dataset))["Body"].read()
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                raise NoContract(
                    f"no contract for dataset {dataset!r} at s3://{self.bucket}/{contract_key(dataset)}"
                ) from exc
            raise
        return Contract.from_json(body)

    def datasets(self) -> list[str]:
        """The names of every dataset with a stored contract."""
        names = []
        pages = (
            aws.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix="contracts/")
        )
        for page in pages:
            for entry in page.get("Contents", []):
                key = entry["Key"]
                if key.endswith(".json"):
                    names.append(key[len("contracts/") : -len(".json")])
        return names

    def put(self, contract: Contract) -> str:
        """Check the later stages' sections, then store the contract (the bucket is versioned:
        earlier versions stay). Returns the key. Raises ContractError naming the field."""
        from chalicelib.registry.policy import PromotionPolicy
        from chalicelib.training.settings import TrainingSettings

        # A typo in the training or promotion section is refused now, not hours later on a spot
        # instance or at promotion time.
        TrainingSettings.from_contract(contract)
        PromotionPolicy.from_contract(contract)
        key = contract_key(contract.dataset)
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=contract.to_json().encode(),
            ContentType="application/json",
            Tagging=tags(contract.dataset, "internal", "contract"),
        )
        return key


class ValidationStore:
    """Where a validated upload's outputs go, in the data bucket."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put_json(self, key: str, document: Any, dataset: str, classification: str, stage: str) -> None:
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(document, indent=2, allow_nan=False).encode(),
            ContentType="application/json",
            Tagging=tags(dataset, classification, stage),
        )

    def copy(
        self,
        source_bucket: str,
        source_key: str,
        version_id: str | None,
        key: str,
        metadata: dict[str, str],
        tagging: str,
    ) -> None:
        """Copy an upload, never move it: the original is not modified or deleted."""
        source: dict[str, str] = {"Bucket": source_bucket, "Key": source_key}
        if version_id:
            source["VersionId"] = version_id
        aws.client("s3").copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource=source,
            Metadata=metadata,
            MetadataDirective="REPLACE",
            Tagging=tagging,
            TaggingDirective="REPLACE",
        )

    def reference(self, dataset: str) -> dict[str, Any] | None:
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=reference_key(dataset))["Body"].read()
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return None
            raise
        return dict(json.loads(body))

    def create_reference(self, dataset: str, profile: dict[str, Any], classification: str) -> bool:
        """Make this profile the reference unless one exists (create-only). True if it did."""
        return aws.put_if_absent(
            self.bucket,
            reference_key(dataset),
            json.dumps(profile, allow_nan=False).encode(),
            ContentType="application/json",
            Tagging=tags(dataset, classification, "profile"),
        )
