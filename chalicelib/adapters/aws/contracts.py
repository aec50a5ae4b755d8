"""The contracts store on S3: ``contracts/<dataset>.json`` in the (versioned) data bucket."""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.adapters.aws.tagging import tags
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import NoContract
from chalicelib.validation.layout import CONTRACTS_PREFIX, contract_key, dataset_of_contract_key


class S3ContractStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def get(self, dataset: str) -> Contract:
        from botocore.exceptions import ClientError

        key = contract_key(dataset)
        try:
            body = aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if aws.error_code(exc) in aws.MISSING_OBJECT:
                raise NoContract(f"no contract for dataset {dataset!r} at s3://{self.bucket}/{key}") from exc
            raise
        return Contract.from_json(body)

    def put(self, contract: Contract) -> str:
        # The bucket is versioned: the earlier versions of the contract stay.
        key = contract_key(contract.dataset)
        aws.client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=contract.to_json().encode(),
            ContentType="application/json",
            Tagging=tags(contract.dataset, "internal", "contract"),
        )
        return key

    def datasets(self) -> list[str]:
        pages = (
            aws.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=CONTRACTS_PREFIX)
        )
        names = (
            dataset_of_contract_key(entry["Key"]) for page in pages for entry in page.get("Contents", [])
        )
        return sorted(name for name in names if name)
