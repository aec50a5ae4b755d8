"""`make destroy`, rehearsed on the data-plane stack in moto: the stack goes, its data stays, and
what stayed is listed."""

from __future__ import annotations

import boto3
from moto import mock_aws

from chalicelib.settings import Settings
from mlops.cfn import deploy_stage, stack_name
from mlops.destroy import destroy


def test_destroy_removes_the_stack_and_keeps_and_lists_the_key_buckets_and_tables():
    with mock_aws():
        settings = Settings.for_stage("dev")
        deploy_stage(settings)
        session = boto3.session.Session()
        kept = destroy(session, "dev", settings.prefix, chalice=False)
        cfn = session.client("cloudformation")
        stacks = [
            s
            for s in cfn.list_stacks()["StackSummaries"]
            if s["StackName"] == stack_name(settings.prefix, "dev")
        ]
        assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)
        by_type = {}
        for resource in kept:
            by_type.setdefault(resource["type"], set()).add(resource["id"])
        assert {settings.data_bucket, settings.models_bucket} <= by_type["AWS::S3::Bucket"]
        assert {settings.registry_table, settings.audit_table, settings.uploads_table} <= by_type[
            "AWS::DynamoDB::Table"
        ]
        assert len(by_type["AWS::KMS::Key"]) == 1
        s3, ddb = session.client("s3"), session.client("dynamodb")
        for bucket in by_type["AWS::S3::Bucket"]:
            s3.head_bucket(Bucket=bucket)  # still there
        for table in by_type["AWS::DynamoDB::Table"]:
            assert ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
        keys = {k["KeyId"] for k in session.client("kms").list_keys()["Keys"]}
        assert by_type["AWS::KMS::Key"] <= keys
        # A second destroy finds nothing left to delete and fails on nothing.
        assert destroy(session, "dev", settings.prefix, chalice=False) == []
