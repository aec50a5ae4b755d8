"""API token records in SSM Parameter Store (``chalicelib.auth.TokenRecords``).

Each record is a SecureString parameter ``<path>/<sha256 of the token>`` holding the record's JSON,
encrypted with the stage's KMS key (``for_settings``); ``chalicelib.auth`` says why.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.auth import TokenLookupUnavailable
from chalicelib.settings import Settings

NOT_FOUND = "ParameterNotFound"
# SSM answers these when it is overloaded (after botocore's own retries): the lookup is refused, not failed.
UNAVAILABLE = frozenset({"ThrottlingException", "TooManyRequestsException", "InternalServerError"})


class SsmTokenRecords:
    """``key_id``: the KMS key of the SecureString parameters (None: the account's ``alias/aws/ssm``)."""

    def __init__(self, path: str, *, key_id: str | None = None) -> None:
        self.path = path.rstrip("/")
        self.key_id = key_id

    @classmethod
    def for_settings(cls, settings: Settings) -> SsmTokenRecords:
        """The stage's records: ``settings.tokens_path``, encrypted with the stage's KMS key."""
        return cls(settings.tokens_path, key_id=f"alias/{settings.prefix}-{settings.stage}")

    def _parameter(self, digest: str) -> str:
        return f"{self.path}/{digest}"

    def put(self, digest: str, record: dict[str, Any]) -> bool:
        put = {
            "Name": self._parameter(digest),
            "Value": json.dumps(record),
            "Type": "SecureString",
            "Overwrite": False,
            "Description": f"serverless-mlops API token of {record.get('name')} ({record.get('role')})",
            **({"KeyId": self.key_id} if self.key_id else {}),
        }
        try:
            aws.client("ssm").put_parameter(**put)
        except ClientError as exc:
            if aws.error_code(exc) == "ParameterAlreadyExists":
                return False
            raise
        return True

    def get(self, digest: str) -> str | None:
        try:
            parameter = aws.client("ssm").get_parameter(Name=self._parameter(digest), WithDecryption=True)
        except ClientError as exc:
            if aws.error_code(exc) == NOT_FOUND:
                return None
            if aws.error_code(exc) in UNAVAILABLE:
                raise TokenLookupUnavailable(
                    f"the token store is unavailable: {aws.error_code(exc)}"
                ) from None
            raise
        return str(parameter["Parameter"]["Value"])

    def items(self) -> list[tuple[str, str]]:
        pages = aws.client("ssm").get_paginator("get_parameters_by_path")
        return [
            (parameter["Name"].rsplit("/", 1)[-1], str(parameter["Value"]))
            for page in pages.paginate(Path=self.path, Recursive=False, WithDecryption=True)
            for parameter in page.get("Parameters", [])
        ]

    def delete(self, digest: str) -> bool:
        try:
            aws.client("ssm").delete_parameter(Name=self._parameter(digest))
        except ClientError as exc:
            if aws.error_code(exc) == NOT_FOUND:
                return False
            raise
        return True
