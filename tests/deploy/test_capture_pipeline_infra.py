"""The capture pipeline's infrastructure, rehearsed in moto: the data plane's Firehose stream, its
roles and the capture/ retention; the post-deploy step's subscription of the API function's log
group (idempotent) and its removal by `make destroy`; and the API function's policy, which needs
nothing for capture (it only prints)."""

from __future__ import annotations

import ast
import fnmatch
import gzip
import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.settings import Settings
from mlops import policies
from mlops.cfn import deploy_stage, load_template
from mlops.destroy import destroy
from mlops.postdeploy import (
    CAPTURE_FILTER,
    CAPTURE_PATTERN,
    api_function_name,
    capture_destination,
    data_key_arn,
    subscribe_capture,
    unsubscribe_capture,
)

STAGE, PREFIX, REGION = "dev", "serverless-mlops", "us-east-1"


@pytest.fixture
def stage() -> Any:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        resources = deploy_stage(Settings.for_stage(STAGE, PREFIX), session)
        yield session, resources


def _role_policy(session: Any, role: str) -> dict[str, Any]:
    iam = session.client("iam")
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    # moto's CloudFormation keeps a role's inline policy as Python's repr of it (test_rehearsal.py).
    return dict(document if isinstance(document, dict) else ast.literal_eval(document))


def test_the_stream_writes_encrypted_under_capture_live_with_roles_scoped_to_it(stage):
    session, resources = stage
    settings = Settings.for_stage(STAGE, PREFIX)
    stream_arn, logs_role_arn = capture_destination(session, PREFIX, STAGE)
    key = data_key_arn(session, PREFIX, STAGE)
    described = session.client("firehose").describe_delivery_stream(
        DeliveryStreamName=f"{PREFIX}-{STAGE}-capture"
    )["DeliveryStreamDescription"]
    assert described["DeliveryStreamARN"] == stream_arn
    assert described["DeliveryStreamEncryptionConfiguration"]["KeyARN"] == key
    (destination,) = described["Destinations"]
    s3 = destination["ExtendedS3DestinationDescription"]
    assert s3["BucketARN"] == f"arn:aws:s3:::{settings.data_bucket}"
    assert s3["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"] == key
    assert s3["Prefix"] == "capture/live/"  # moto's: the template's up to its first partition key
    # The template's: partitioned by model, date and hour, errors apart, under capture/ both.
    template = load_template()["Resources"]["CaptureStream"]["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    assert template["Prefix"].startswith("capture/live/model=!{partitionKeyFromQuery:model}/date=")
    assert template["ErrorOutputPrefix"].startswith("capture/errors/")
    # Firehose's role writes under capture/ only, with the stage key.
    writer = _role_policy(session, resources["CaptureStreamRole"])
    granted = {(a, r) for s in writer["Statement"] for a in _list(s["Action"]) for r in _list(s["Resource"])}
    assert ("s3:PutObject", f"arn:aws:s3:::{settings.data_bucket}/capture/*") in granted
    assert {a for a, _ in granted if a.startswith("s3:")} == {"s3:PutObject"}
    assert {r for a, r in granted if a.startswith("kms:")} == {key}
    # CloudWatch Logs' role: puts to this stream only, assumed for the stage's function log groups only.
    iam = session.client("iam")
    role = iam.get_role(RoleName=logs_role_arn.rsplit("/", 1)[1])["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    pattern = trust["Condition"]["ArnLike"]["aws:SourceArn"]
    group_arn = "arn:aws:logs:{}:123456789012:log-group:/aws/lambda/{}:*"
    api = policies.function_name(settings, "api_handler")
    assert fnmatch.fnmatchcase(group_arn.format(REGION, api), pattern)
    assert not fnmatch.fnmatchcase(group_arn.format(REGION, f"{PREFIX}-prod"), pattern)
    assert not fnmatch.fnmatchcase(group_arn.format(REGION, "someone-else"), pattern)
    putter = _role_policy(session, resources["CaptureLogsRole"])
    assert [(sorted(_list(s["Action"])), s["Resource"]) for s in putter["Statement"]] == [
        (["firehose:PutRecord", "firehose:PutRecordBatch"], stream_arn)
    ]


def test_captured_records_expire_after_a_year_and_their_old_versions_a_day_later(stage):
    session, _ = stage
    rules = session.client("s3").get_bucket_lifecycle_configuration(
        Bucket=Settings.for_stage(STAGE, PREFIX).data_bucket
    )["Rules"]
    (rule,) = [r for r in rules if r["ID"] == "expire-capture"]
    assert rule["Filter"] == {"Prefix": "capture/"} and rule["Status"] == "Enabled"
    assert rule["Expiration"] == {"Days": 365}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


def test_the_post_deploy_step_subscribes_the_api_log_group_once_and_destroy_removes_it(stage):
    session, _ = stage
    settings = Settings.for_stage(STAGE, PREFIX)
    api = policies.function_name(settings, "api_handler")
    deployed = {
        "resources": [
            {"resource_type": "lambda_function", "name": "ingest_upload", "lambda_arn": f"arn:aws:lambda:{REGION}:1:function:{api}-ingest_upload"},
            {"resource_type": "lambda_function", "name": "api_handler", "lambda_arn": f"arn:aws:lambda:{REGION}:1:function:{api}"},
        ]
    }  # fmt: skip
    assert api_function_name(deployed) == api
    logs = session.client("logs")
    key = data_key_arn(session, PREFIX, STAGE)
    stream_arn, role_arn = capture_destination(session, PREFIX, STAGE)
    first = subscribe_capture(logs, api, stream_arn, role_arn, key, 30)
    assert [c["change"] for c in first] == [
        "created, encrypted, kept 30 days",
        f"sends {CAPTURE_PATTERN} to {PREFIX}-{STAGE}-capture",
    ]
    again = subscribe_capture(logs, api, stream_arn, role_arn, key, 30)
    assert [c["change"] for c in again] == ["already set", "already set"]
    group = f"/aws/lambda/{api}"
    (made,) = [
        g
        for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if g["logGroupName"] == group
    ]
    assert (made["kmsKeyId"], made["retentionInDays"]) == (key, 30)
    (subscription,) = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert (subscription["filterName"], subscription["filterPattern"]) == (CAPTURE_FILTER, CAPTURE_PATTERN)
    assert (subscription["destinationArn"], subscription["roleArn"]) == (stream_arn, role_arn)
    # What the subscription sends lands under capture/live/ (moto: the gzip envelope), encrypted.
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    line = json.dumps({"mlops_capture": 1, "records": []})
    now = int(time.time() * 1000)  # (CloudWatch Logs refuses events older than 14 days)
    logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": now, "message": line}]
    )
    s3 = session.client("s3")
    (item,) = s3.list_objects_v2(Bucket=settings.data_bucket, Prefix="capture/live/")["Contents"]
    got = s3.get_object(Bucket=settings.data_bucket, Key=item["Key"])
    assert (got["ServerSideEncryption"], got["SSEKMSKeyId"]) == ("aws:kms", key)
    envelope = json.loads(gzip.decompress(got["Body"].read()))
    assert [e["message"] for e in envelope["logEvents"]] == [line] and envelope["logGroup"] == group

    destroy(session, STAGE, PREFIX, chalice=False)
    assert logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"] == []
    assert unsubscribe_capture(logs, api) == "not there"


def test_the_api_functions_policy_grants_nothing_for_capture():
    """The function only prints its capture lines; Lambda delivers them with the logs permissions
    every function has, on its own log group (which no capture change widened). It reads (and
    creates once) the stage's hash key, nothing else of capture."""
    for stage_name in policies.DEPLOYED_STAGES:
        document = policies.render(stage_name, "api_handler", tracing=policies.tracing(stage_name))
        actions = {a for s in document["Statement"] for a in _list(s["Action"])}
        assert not {a for a in actions if a.startswith(("firehose:", "kinesis:"))}, actions
        logs = {a for a in actions if a.startswith("logs:")}
        assert logs <= {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, logs
        groups = {r for s in document["Statement"] if any(a.startswith("logs:") for a in _list(s["Action"])) for r in _list(s["Resource"])}  # fmt: skip
        name = policies.function_name(Settings.for_stage(stage_name, PREFIX), "api_handler")
        assert all(f"log-group:/aws/lambda/{name}" in g for g in groups), groups
        # No S3 prefix, stream or role of capture: only the keyed hash's key (an object of its own),
        # which masking confidential inputs as hashes needs.
        text = json.dumps(document).replace("keys/capture-hash.key", "")
        assert "capture" not in text


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
