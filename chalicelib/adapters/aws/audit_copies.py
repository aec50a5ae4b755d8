"""The audit trail nobody can rewrite: every audit entry, also as a create-only object.

The registry's audit ledger is a DynamoDB table written inside the promotion transaction, and IAM
cannot make a ``PutItem`` create-only (no condition key sees a condition expression): a role that
appends entries could also overwrite one. S3 can: the functions' policies allow ``s3:PutObject``
under ``audit/`` only with ``s3:if-none-match = *`` (a create-only write), and no role of the system
may delete or retag there. So each entry, once committed, is also written to
``audit/<model>/<seq>.json`` in the data bucket, and ``verify`` (``mlops audit-verify``) compares
the ledger with these copies: an entry that differs from its copy was rewritten; an entry without a
copy (the writer stopped between the commit and the copy) gets one.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws

PREFIX = "audit/"


def copy_key(model: str, seq: int) -> str:
    return f"{PREFIX}{model}/{int(seq):08d}.json"


def canonical(entry: dict[str, Any]) -> bytes:
    """One entry as stored: its fields, sorted (the copy and the ledger compare byte for byte)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode()


class S3AuditCopies:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def keep(self, model: str, entry: dict[str, Any]) -> bool:
        """Write the entry's copy if it has none (True if this call wrote it)."""
        return aws.put_if_absent(
            self.bucket, copy_key(model, entry["seq"]), canonical(entry), ContentType="application/json"
        )

    def all(self, model: str) -> dict[int, bytes]:
        """Every copy of ``model``'s entries, by seq."""
        s3 = aws.client("s3")
        copies: dict[int, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{PREFIX}{model}/"
        ):
            for item in page.get("Contents", []):
                seq = int(item["Key"].rsplit("/", 1)[-1].removesuffix(".json"))
                copies[seq] = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return copies


def _normal(entry: dict[str, Any]) -> Any:
    """An entry as JSON sees it, with the fields the ledger fills in when absent."""
    return json.loads(canonical({"from_version": None, "undoes": None, **entry}))


def compare(ledger: list[dict[str, Any]], copies: dict[int, bytes]) -> list[dict[str, Any]]:
    """What differs between the ledger (``DynamoRegistry.audit``) and the copies: an entry rewritten
    since its copy was kept, an entry with no copy, a copy whose entry is gone from the ledger."""
    findings = []
    seen = set()
    for entry in ledger:
        seq = int(entry["seq"])
        seen.add(seq)
        if seq not in copies:
            findings.append({"seq": seq, "id": entry["id"], "finding": "no copy"})
        elif _normal(json.loads(copies[seq])) != _normal(entry):
            findings.append(
                {"seq": seq, "id": entry["id"], "finding": "rewritten: the ledger differs from its copy"}
            )
    for seq in sorted(set(copies) - seen):
        findings.append(
            {"seq": seq, "id": json.loads(copies[seq]).get("id"), "finding": "deleted from the ledger"}
        )
    return findings
