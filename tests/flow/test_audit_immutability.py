"""The audit trail nobody can rewrite, proven under the local cloud's enforced IAM: every role of the
system (each function, the training job, the scoring workers) tries to change or delete a committed
entry's copy and is refused; a rewrite of the DynamoDB ledger (which IAM cannot prevent: the roles
that append may PutItem) is found by `mlops audit-verify`."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.aws.audit_copies import S3AuditCopies, compare, copy_key
from mlops import localiam
from tests.adapters.test_registry_contract import candidate

MODEL = "audited"


@pytest.fixture(scope="module")
def entry(local_cloud):
    registry = bootstrap.registry()
    version, _ = registry.register_version(MODEL, candidate("run-1"))
    registry.set_status(MODEL, version, "approved", by="gates", reason="every gate passed")
    return registry.promote(MODEL, version, by="alice", reason="first release", expected_champion=None)


def _attempts(bucket: str, key: str, version_id: str) -> dict[str, dict[str, object]]:
    body = b'{"to_version": 99, "who": "mallory"}'
    return {
        "overwrite": {"op": "put_object", "Bucket": bucket, "Key": key, "Body": body},
        "overwrite if it matches": {
            "op": "put_object",
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "IfMatch": "*",
        },
        "create again": {"op": "put_object", "Bucket": bucket, "Key": key, "Body": body, "IfNoneMatch": "*"},
        "delete": {"op": "delete_object", "Bucket": bucket, "Key": key},
        "delete the version": {"op": "delete_object", "Bucket": bucket, "Key": key, "VersionId": version_id},
        "retag": {"op": "put_object_tagging", "Bucket": bucket, "Key": key, "Tagging": {"TagSet": []}},
    }


def test_a_promotion_keeps_a_create_only_copy_of_its_audit_entry(local_cloud, entry):
    settings = bootstrap.settings()
    stored = aws.client("s3").get_object(Bucket=settings.data_bucket, Key=copy_key(MODEL, entry["seq"]))
    copy = json.loads(stored["Body"].read())
    assert copy["to_version"] == entry["to_version"] and copy["who"] == "alice" and copy["id"] == entry["id"]
    assert compare(bootstrap.registry().audit(MODEL), S3AuditCopies(settings.data_bucket).all(MODEL)) == []


def test_no_role_of_the_system_can_change_or_delete_an_audit_copy(local_cloud, entry):
    settings = bootstrap.settings()
    key = copy_key(MODEL, entry["seq"])
    s3 = aws.client("s3")
    before = s3.get_object(Bucket=settings.data_bucket, Key=key)
    original, version_id = before["Body"].read(), before["VersionId"]
    principals = sorted(local_cloud.iam.principals)
    assert {"api_handler", "evaluate_candidate", "training_job", "batch_scoring_job"} <= set(principals)
    for principal in principals:
        for what, call in _attempts(settings.data_bucket, key, version_id).items():
            args = dict(call)
            op = str(args.pop("op"))
            with (
                localiam.acting_as(principal),
                localiam.expect_refusal(),
                pytest.raises(ClientError) as refused,
            ):
                getattr(aws.client("s3"), op)(**args)
            code = refused.value.response["Error"]["Code"]
            # Refused by IAM, or (a create-only write, which the two writers may make) by S3 itself.
            assert code in {"AccessDenied", "PreconditionFailed"}, (principal, what, code)
    versions = s3.list_object_versions(Bucket=settings.data_bucket, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == [version_id]
    assert s3.get_object(Bucket=settings.data_bucket, Key=key)["Body"].read() == original


def test_a_rewritten_ledger_entry_is_found_by_comparing_it_with_its_copy(local_cloud, entry):
    """The API role may PutItem on the audit table (to append), so it could overwrite an entry: IAM
    has no condition for a create-only PutItem. The copy it cannot touch shows the rewrite."""
    settings = bootstrap.settings()
    ddb = aws.client("dynamodb")
    item = ddb.get_item(
        TableName=settings.audit_table, Key={"pk": {"S": f"model#{MODEL}"}, "sk": {"S": entry["id"]}}
    )["Item"]
    item["who"] = {"S": "mallory"}
    with localiam.acting_as("api_handler"):
        ddb.put_item(TableName=settings.audit_table, Item=item)
    findings = compare(bootstrap.registry().audit(MODEL), S3AuditCopies(settings.data_bucket).all(MODEL))
    assert findings == [
        {"seq": entry["seq"], "id": entry["id"], "finding": "rewritten: the ledger differs from its copy"}
    ]
