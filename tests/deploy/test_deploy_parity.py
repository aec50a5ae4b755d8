"""Parity of the two deploy paths: what the packaged template sets on the API stage and the log
groups, the `chalice deploy` path's post-deploy step sets too, with the same values. Rehearsed in
moto: the post-deploy step runs against a REST API and a data-plane stack there, and what it left
is compared with the merge template."""

from __future__ import annotations

import boto3
from moto import mock_aws

from chalicelib.settings import Settings
from mlops.appinfo import functions
from mlops.cfn import deploy_stage
from mlops.package import merge_template
from mlops.postdeploy import configure_api_stage, data_key_arn, encrypt_function_logs

STAGE, PREFIX = "dev", "serverless-mlops"


def _deployed(api_id: str) -> dict:
    names = [f"{PREFIX}-{STAGE}", f"{PREFIX}-{STAGE}-ingest_upload"]
    return {
        "resources": [
            {"resource_type": "rest_api", "rest_api_id": api_id, "rest_api_url": "https://x/api/"},
            *(
                {"resource_type": "lambda_function", "lambda_arn": f"arn:aws:lambda:eu-west-1:1:function:{n}"}
                for n in names
            ),
        ]
    }


def test_the_post_deploy_step_sets_what_the_packaged_template_sets():
    """Found at 21cd3ef: the `chalice deploy` path had no API throttling, no access logs and no
    customer key on the logs; those existed only in the packaged template."""
    merged = merge_template(STAGE, PREFIX, functions(STAGE))["Resources"]
    wanted = merged["RestAPI"]["Properties"]
    method = wanted["MethodSettings"][0]
    group = merged["ApiAccessLogGroup"]["Properties"]
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        deploy_stage(Settings.for_stage(STAGE, PREFIX), session)
        key = data_key_arn(session, PREFIX, STAGE)
        apigw, logs = session.client("apigateway"), session.client("logs")
        api = apigw.create_rest_api(name=f"{PREFIX}-{STAGE}")["id"]
        root = apigw.get_resources(restApiId=api)["items"][0]["id"]
        apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
        apigw.create_deployment(restApiId=api, stageName="api")
        deployed = _deployed(api)
        encrypt_function_logs(logs, deployed, key, None)
        configure_api_stage(
            apigw, logs, session.client("iam"), deployed, STAGE, PREFIX, key, "api", group["RetentionInDays"]
        )
        stage = apigw.get_stage(restApiId=api, stageName="api")
        settings = stage["methodSettings"]["*/*"]
        assert settings["throttlingRateLimit"] == method["ThrottlingRateLimit"]
        assert settings["throttlingBurstLimit"] == method["ThrottlingBurstLimit"]
        assert settings["metricsEnabled"] is True
        assert stage["accessLogSettings"]["format"] == wanted["AccessLogSetting"]["Format"]
        assert stage["accessLogSettings"]["destinationArn"].endswith(f":log-group:{group['LogGroupName']}")
        found = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
        assert found[group["LogGroupName"]]["retentionInDays"] == group["RetentionInDays"]
        assert found[group["LogGroupName"]]["kmsKeyId"] == key
        for name in (f"/aws/lambda/{PREFIX}-{STAGE}", f"/aws/lambda/{PREFIX}-{STAGE}-ingest_upload"):
            assert found[name]["kmsKeyId"] == key  # as the merge template's KmsKeyId on each log group
        role = apigw.get_account()["cloudwatchRoleArn"]
        assert role.endswith(f"role/{PREFIX}-apigateway-cloudwatch")


def test_an_account_s_existing_api_gateway_logging_role_is_left_as_it_is():
    """Found at 21cd3ef: the packaged path replaced the account-wide role. The post-deploy step
    sets one only where there is none."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        deploy_stage(Settings.for_stage(STAGE, PREFIX), session)
        apigw = session.client("apigateway")
        theirs = "arn:aws:iam::123456789012:role/their-logging-role"
        apigw.update_account(
            patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": theirs}]
        )
        api = apigw.create_rest_api(name="x")["id"]
        root = apigw.get_resources(restApiId=api)["items"][0]["id"]
        apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
        apigw.create_deployment(restApiId=api, stageName="api")
        key = data_key_arn(session, PREFIX, STAGE)
        configure_api_stage(
            apigw,
            session.client("logs"),
            session.client("iam"),
            _deployed(api),
            STAGE,
            PREFIX,
            key,
            "api",
            30,
        )
        assert apigw.get_account()["cloudwatchRoleArn"] == theirs


def test_the_post_deploy_step_subscribes_the_api_log_group_as_the_packaged_template_does():
    """Both paths send the API function's capture lines to the stage's capture stream, with the same
    filter, role and pattern (the data plane's exports name them for the packaged path)."""
    from mlops.postdeploy import capture_destination, subscribe_capture

    merged = merge_template(STAGE, PREFIX, functions(STAGE))["Resources"]
    wanted = merged["ApiHandlerCaptureSubscription"]["Properties"]
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        deploy_stage(Settings.for_stage(STAGE, PREFIX), session)
        exports = {e["Name"]: e["Value"] for e in session.client("cloudformation").list_exports()["Exports"]}
        logs = session.client("logs")
        stream, role = capture_destination(session, PREFIX, STAGE)
        subscribe_capture(logs, f"{PREFIX}-{STAGE}", stream, role, data_key_arn(session, PREFIX, STAGE), 30)
        (made,) = logs.describe_subscription_filters(logGroupName=f"/aws/lambda/{PREFIX}-{STAGE}")[
            "subscriptionFilters"
        ]
        assert made["filterName"] == wanted["FilterName"]
        assert made["filterPattern"] == wanted["FilterPattern"]
        assert made["destinationArn"] == exports[wanted["DestinationArn"]["Fn::ImportValue"]]
        assert made["roleArn"] == exports[wanted["RoleArn"]["Fn::ImportValue"]]
        assert wanted["LogGroupName"] == {"Ref": "ApiHandlerLogGroup"}
        assert merged["ApiHandlerLogGroup"]["Properties"]["LogGroupName"] == {
            "Fn::Sub": "/aws/lambda/${APIHandler}"
        }
