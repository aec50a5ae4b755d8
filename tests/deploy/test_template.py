"""The data-plane template: lint, conventions, and the local cloud filling moto's gaps."""

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from chalicelib.settings import Settings, dlq_name
from mlops import TEMPLATE
from mlops.cfn import load_template


def test_template_passes_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _resources(kind):
    return {k: v for k, v in load_template()["Resources"].items() if v["Type"] == kind}


SQS_MAX_RETENTION = 1_209_600  # 14 days


def test_every_queue_has_a_dlq_that_keeps_messages_longer():
    queues = _resources("AWS::SQS::Queue")
    work = {k: v for k, v in queues.items() if "RedrivePolicy" in v["Properties"]}
    # ingest, retrain, promotion, batch work, batch requests, and the batch work DLQ (a function
    # consumes it: what that function cannot handle is set aside too)
    assert len(work) == 6
    for logical, queue in work.items():
        dlq = queues[queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        kept, source = (
            dlq["Properties"]["MessageRetentionPeriod"],
            queue["Properties"]["MessageRetentionPeriod"],
        )
        # A DLQ keeps a message's first enqueue time: it must keep messages longer (or SQS's maximum).
        assert kept > source or kept == SQS_MAX_RETENTION, logical


def test_buckets_queues_and_tables_are_encrypted_with_the_customer_key():
    for logical, bucket in _resources("AWS::S3::Bucket").items():
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
        if logical == "AccessLogsBucket":  # S3 delivers access logs only to SSE-S3 buckets
            assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
            continue
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": "AccessLogsBucket"
        }
    for queue in _resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}
    for table in _resources("AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}


@pytest.mark.parametrize("stage", ["local", "dev"])
def test_deployed_resources_are_named_by_the_settings_convention(stage):
    import warnings

    from moto import mock_aws

    from mlops.cfn import deploy_stack

    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deploy_stack(boto3.session.Session(), f"stack-{stage}", {"Stage": stage})
        settings = Settings.for_stage(stage)
        buckets = {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
        assert {settings.data_bucket, settings.models_bucket} <= buckets
        queues = {url.rsplit("/", 1)[1] for url in boto3.client("sqs").list_queues()["QueueUrls"]}
        assert set(settings.queues.values()) | {dlq_name(q) for q in settings.queues.values()} <= queues
        tables = set(boto3.client("dynamodb").list_tables()["TableNames"])
        assert {settings.uploads_table, settings.idempotency_table} <= tables


def test_local_cloud_applies_what_moto_cloudformation_ignores(aws):
    s3 = boto3.client("s3")
    assert s3.get_bucket_versioning(Bucket=aws.data_bucket)["Status"] == "Enabled"
    notification = s3.get_bucket_notification_configuration(Bucket=aws.data_bucket)["QueueConfigurations"][0]
    assert notification["QueueArn"].endswith(f":{aws.ingest_queue}")
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=aws.idempotency_table)
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}


def test_upload_under_incoming_notifies_the_ingest_queue_and_others_do_not(aws):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.ingest_queue)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)  # the s3:TestEvent
    s3.put_object(Bucket=aws.data_bucket, Key="reports/x.json", Body=b"{}")
    s3.put_object(Bucket=aws.data_bucket, Key="incoming/iris/day 1.csv", Body=b"a,b\n1,2\n")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    keys = [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in messages]
    assert keys == ["incoming%2Firis%2Fday+1.csv"]


# --- the packaged app template: Lambda SnapStart on the API function (issue 19) ---------------------


def _packaged(stage="dev"):
    from mlops.package import package

    return json.loads((package(stage) / "sam.json").read_text())["Resources"]


def _integration_uris(body):
    """Every ``x-amazon-apigateway-integration`` URI of a swagger body, as written."""
    return [
        operation["x-amazon-apigateway-integration"]["uri"]
        for path in body["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "x-amazon-apigateway-integration" in operation
    ]


def test_only_the_packaged_api_function_publishes_snapstart_versions_and_it_qualifies():
    from mlops.appinfo import functions
    from mlops.package import SNAPSTART_ALIAS

    resources = _packaged()
    (api,) = [fn for fn in functions("dev") if fn.kind == "api"]
    handler = resources[api.logical_id]["Properties"]
    assert handler["AutoPublishAlias"] == SNAPSTART_ALIAS
    # A new version on any change of the function (not only code, environment or memory).
    assert handler["AutoPublishAliasAllProperties"] is True
    assert handler["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    # What SnapStart needs of the function: a Python 3.12+ managed runtime, no provisioned
    # concurrency, no EFS, at most 512 MB of ephemeral storage.
    assert handler["Runtime"] in {"python3.12", "python3.13"}
    assert "ProvisionedConcurrencyConfig" not in handler and "FileSystemConfigs" not in handler
    assert handler.get("EphemeralStorage", {"Size": 512})["Size"] <= 512
    others = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function" and name != api.logical_id
    }
    assert len(others) == len(functions("dev")) - 1
    for name, properties in others.items():  # the authorizer and the workers stay on $LATEST
        assert not {"AutoPublishAlias", "SnapStart"} & set(properties), name


def test_the_packaged_api_invokes_the_api_function_through_its_alias_never_latest():
    resources = _packaged()
    uris = _integration_uris(resources["RestAPI"]["Properties"]["DefinitionBody"])
    assert len(uris) > 10
    for uri in uris:
        text, variables = uri["Fn::Sub"]
        assert "/functions/${APIHandlerAliasArn}/invocations" in text, uri
        assert variables == {"APIHandlerAliasArn": {"Ref": "APIHandler.Alias"}}, uri
    assert "${APIHandler.Arn}" not in json.dumps(resources["RestAPI"])
    permissions = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert permissions["APIHandlerInvokePermission"]["FunctionName"] == {"Ref": "APIHandler.Alias"}
    # The authorizer is invoked as Chalice wrote it (its function, unqualified).
    authorizer = json.dumps(resources["RestAPI"]["Properties"]["DefinitionBody"]["securityDefinitions"])
    assert "${TokenAuthorizer.Arn}" in authorizer


def test_snapstart_is_refused_for_a_function_with_more_than_512_mb_of_ephemeral_storage():
    import dataclasses

    from mlops.appinfo import functions
    from mlops.package import snapstart

    (api,) = [fn for fn in functions("dev") if fn.kind == "api"]
    assert snapstart(dataclasses.replace(api, ephemeral_storage=512))["SnapStart"]
    with pytest.raises(ValueError, match="at most 512 MB"):
        snapstart(dataclasses.replace(api, ephemeral_storage=10240))


def test_alias_api_refuses_a_chalice_output_whose_integrations_it_cannot_find():
    """Should Chalice write the integration URI another way, the package fails, rather than ship an
    API that invokes $LATEST (where SnapStart never applies)."""
    from mlops.appinfo import functions
    from mlops.package import alias_api

    template: dict = {"Resources": {"RestAPI": {"Properties": {"DefinitionBody": {"paths": {}}}}}}
    with pytest.raises(ValueError, match=r"APIHandler\.Arn"):
        alias_api(template, functions("dev"))
