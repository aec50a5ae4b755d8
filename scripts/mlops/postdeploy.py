"""What ``chalice deploy`` leaves undone, done from ``.chalice/deployed/<stage>.json``.

Chalice never sets ``FunctionResponseTypes`` on an SQS event source mapping. Without
``ReportBatchItemFailures`` Lambda ignores the ``batchItemFailures`` a handler returns: one bad
record makes the whole batch return to the queue (and, five receives later, the DLQ). This step
turns it on for every ``sqs_event`` resource Chalice recorded, and checks it took. It is
idempotent, and a later ``chalice deploy`` keeps the setting (Chalice updates only batch size and
window).

Chalice has no setting for a function's ephemeral storage either (/tmp, 512 MB unless set): this
step sets ``EphemeralStorage`` on each function whose ``lambda_ephemeral_storage`` is in
``.chalice/config.json`` (``ingest_upload`` spills its duplicate checks there). A later
``chalice deploy`` keeps it too: Chalice's configuration update does not name it.

What the packaged path (``make package``, its merge template) sets and ``chalice deploy`` does not,
this step sets too, from the same values (``mlops.package``): the stage key on every function's log
group; on the API stage, throttling, method metrics and JSON access logs into a log group encrypted
with the key and kept as long as the functions' logs. Access logs need API Gateway's account-wide
CloudWatch role: set only if the account has none (an existing one is never replaced).

Capture (issue 16): the API function prints one line per captured request to stdout; this step
makes its log group (Lambda would make it only at the first line, too late for a subscription),
kept and keyed like the others, and subscribes it, for the lines ``{ $.mlops_capture = 1 }`` only,
to the stage's Firehose stream (the data plane's ``CaptureStream``, written to with its
``CaptureLogsRole``). The local cloud runs the same ``subscribe_capture``.

``mlops postdeploy --stage dev`` (``make postdeploy STAGE=dev``); ``mlops deploy`` runs it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR
from mlops.appinfo import ephemeral_storage

RESPONSE_TYPES = ["ReportBatchItemFailures"]
API_FUNCTION = "api_handler"  # the function whose printed capture lines are subscribed
CAPTURE_FILTER = "mlops-capture"  # the subscription filter's name
CAPTURE_PATTERN = "{ $.mlops_capture = 1 }"  # the capture line's marker (docs: the capture line)
DEFAULT_EPHEMERAL_MB = 512  # Lambda's /tmp when nothing is set


def deployed_path(stage: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def sqs_event_sources(deployed: dict[str, Any]) -> list[dict[str, Any]]:
    """The SQS event source mappings Chalice recorded (name, queue, event_uuid, lambda_arn)."""
    return [r for r in deployed.get("resources", []) if r.get("resource_type") == "sqs_event"]


def enable_partial_batch_failures(lambda_client: Any, deployed: dict[str, Any]) -> list[dict[str, str]]:
    """Set ``ReportBatchItemFailures`` on every SQS mapping; returns what changed and what was already set."""
    done = []
    for source in sqs_event_sources(deployed):
        uuid = source["event_uuid"]
        current = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        setting = "ReportBatchItemFailures"
        if "ReportBatchItemFailures" in current:
            done.append({"name": source["name"], "queue": source.get("queue", ""), "setting": setting, "change": "already set"})  # fmt: skip
            continue
        lambda_client.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=RESPONSE_TYPES)
        after = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        if "ReportBatchItemFailures" not in after:
            raise RuntimeError(f"{source['name']}: FunctionResponseTypes is still {after} after the update")
        done.append({"name": source["name"], "queue": source.get("queue", ""), "setting": setting, "change": "enabled"})  # fmt: skip
    return done


def set_ephemeral_storage(
    lambda_client: Any, deployed: dict[str, Any], config: dict[str, Any], stage: str
) -> list[dict[str, str]]:
    """Give each deployed function the /tmp size its configuration names; returns what changed."""
    done = []
    for function in deployed.get("resources", []):
        if function.get("resource_type") != "lambda_function":
            continue
        wanted = ephemeral_storage(config, stage, function["name"])
        if wanted is None:
            continue
        arn = function["lambda_arn"]
        setting = f"EphemeralStorage {wanted} MB"
        current = lambda_client.get_function_configuration(FunctionName=arn)
        if current.get("EphemeralStorage", {}).get("Size", DEFAULT_EPHEMERAL_MB) == wanted:
            done.append({"name": function["name"], "setting": setting, "change": "already set"})
            continue
        # chalice deploy may still be updating the function: a second update would be refused.
        lambda_client.get_waiter("function_updated").wait(FunctionName=arn)
        after = lambda_client.update_function_configuration(
            FunctionName=arn, EphemeralStorage={"Size": wanted}
        )
        if after.get("EphemeralStorage", {}).get("Size") != wanted:
            raise RuntimeError(
                f"{function['name']}: EphemeralStorage is {after.get('EphemeralStorage')} after the update"
            )
        done.append({"name": function["name"], "setting": setting, "change": "set"})
    return done


def lambda_functions(deployed: dict[str, Any]) -> list[str]:
    """The names of the functions Chalice deployed."""
    return [
        str(r["lambda_arn"]).rsplit(":", 1)[-1]
        for r in deployed.get("resources", [])
        if r.get("resource_type") == "lambda_function" and r.get("lambda_arn")
    ]


def _ensure_log_group(logs: Any, name: str, key_arn: str, retention_days: int | None) -> str:
    """The group exists, encrypted with the key, kept ``retention_days`` (if given); idempotent."""
    found = [
        g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name
    ]
    changes = []
    if not found:
        logs.create_log_group(logGroupName=name, kmsKeyId=key_arn)
        changes.append("created, encrypted")
    elif found[0].get("kmsKeyId") != key_arn:
        logs.associate_kms_key(logGroupName=name, kmsKeyId=key_arn)
        changes.append("encrypted")
    if retention_days and (not found or found[0].get("retentionInDays") != retention_days):
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        changes.append(f"kept {retention_days} days")
    return ", ".join(changes) or "already set"


def encrypt_function_logs(
    logs: Any, deployed: dict[str, Any], key_arn: str, retention_days: int | None
) -> list[dict[str, str]]:
    """Every function's log group under the stage key (Chalice sets the retention, not the key)."""
    return [
        {
            "name": name,
            "setting": "log group",
            "change": _ensure_log_group(logs, f"/aws/lambda/{name}", key_arn, retention_days),
        }
        for name in lambda_functions(deployed)
    ]


def capture_destination(session: Any, prefix: str, stage: str) -> tuple[str, str]:
    """The capture stream's ARN and the role CloudWatch Logs puts to it with: data-plane outputs."""
    outputs = _stack_outputs(session, prefix, stage)
    return outputs["CaptureStreamArn"], outputs["CaptureLogsRoleArn"]


def subscribe_capture(
    logs: Any,
    function_name: str,
    stream_arn: str,
    role_arn: str,
    key_arn: str,
    retention_days: int | None,
    *,
    attempts: int = 10,
    pause: Callable[[float], None] = time.sleep,
) -> list[dict[str, str]]:
    """The function's log group exists (keyed, kept ``retention_days``) and sends its capture lines to
    the stream; idempotent. CloudWatch Logs checks the destination with a test message as the role:
    a role made moments ago may not be usable yet (IAM is eventually consistent), so a refusal is
    tried again, ``attempts`` times in all."""
    group = f"/aws/lambda/{function_name}"
    changes = [{"name": group, "setting": "log group", "change": _ensure_log_group(logs, group, key_arn, retention_days)}]  # fmt: skip
    wanted = {"filterPattern": CAPTURE_PATTERN, "destinationArn": stream_arn, "roleArn": role_arn}
    current = [
        f
        for f in logs.describe_subscription_filters(logGroupName=group, filterNamePrefix=CAPTURE_FILTER)[
            "subscriptionFilters"
        ]
        if f["filterName"] == CAPTURE_FILTER
    ]
    if current and all(current[0].get(k) == v for k, v in wanted.items()):
        change = "already set"
    else:
        for attempt in range(1, attempts + 1):
            try:
                logs.put_subscription_filter(logGroupName=group, filterName=CAPTURE_FILTER, **wanted)
                break
            except logs.exceptions.InvalidParameterException:
                if attempt == attempts:
                    raise
                pause(3.0)
        change = f"sends {CAPTURE_PATTERN} to {stream_arn.rsplit('/', 1)[-1]}"
    changes.append({"name": group, "setting": "capture subscription", "change": change})
    return changes


def unsubscribe_capture(logs: Any, function_name: str) -> str:
    """Remove the capture subscription of the function's log group, if there is one; says what it did.
    The group itself is Chalice's (``chalice delete`` removes it with the function) and is kept."""
    try:
        logs.delete_subscription_filter(
            logGroupName=f"/aws/lambda/{function_name}", filterName=CAPTURE_FILTER
        )
    except logs.exceptions.ResourceNotFoundException:
        return "not there"
    return "removed"


def api_function_name(deployed: dict[str, Any]) -> str | None:
    """The deployed name of the API function, if Chalice recorded it."""
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "lambda_function" and resource.get("name") == API_FUNCTION:
            return str(resource["lambda_arn"]).rsplit(":", 1)[-1]
    return None


def configure_api_stage(
    apigateway: Any,
    logs: Any,
    iam: Any,
    deployed: dict[str, Any],
    stage: str,
    prefix: str,
    key_arn: str,
    api_stage: str,
    retention_days: int,
) -> list[dict[str, str]]:
    """Throttling, method metrics and access logs on the API's stage, as the packaged path sets them."""
    from mlops.package import ACCESS_LOG_FORMAT, THROTTLING, access_log_group

    api = next((r for r in deployed.get("resources", []) if r.get("resource_type") == "rest_api"), None)
    if api is None:
        return []
    rate, burst = THROTTLING.get(stage, THROTTLING["dev"])
    group = access_log_group(prefix, stage)
    changes = [
        {
            "name": group,
            "setting": "access log group",
            "change": _ensure_log_group(logs, group, key_arn, retention_days),
        }
    ]
    if not apigateway.get_account().get("cloudwatchRoleArn"):
        changes.append(
            {
                "name": "API Gateway account",
                "setting": "CloudWatch role",
                "change": _account_role(apigateway, iam, prefix),
            }
        )
    group_arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"].removesuffix(":*")
    apigateway.update_stage(
        restApiId=api["rest_api_id"],
        stageName=api_stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
            {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
            {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": group_arn},
            {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
        ],
    )
    changes.append(
        {
            "name": f"{prefix}-{stage} API",
            "setting": "stage",
            "change": f"throttled {rate}/s (burst {burst}), metrics, access logs",
        }
    )
    return changes


def _account_role(apigateway: Any, iam: Any, prefix: str) -> str:
    """API Gateway's account-wide CloudWatch role, for an account that has none yet."""
    name = f"{prefix}-apigateway-cloudwatch"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    # AWS's managed AmazonAPIGatewayPushToCloudWatchLogs allows these on every log group; here only
    # on API Gateway's own (access logs under /aws/apigateway/, execution logs), in this account.
    # Any region: the role is named per prefix, and the account setting of each region may name it.
    from mlops.package import API_GATEWAY_LOG_ACTIONS

    account = arn.split(":")[4]
    groups = [
        f"arn:aws:logs:*:{account}:log-group:/aws/apigateway/*",
        f"arn:aws:logs:*:{account}:log-group:API-Gateway-Execution-Logs_*",
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(API_GATEWAY_LOG_ACTIONS),
                "Resource": [*groups, *(g + ":*" for g in groups)],
            }
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="push-api-logs", PolicyDocument=json.dumps(policy))
    apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}])
    return f"set to {name} (the account had none)"


def rest_api_url(deployed: dict[str, Any]) -> str | None:
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_url"])
    return None


def run(stage: str, session: Any = None, project_dir: Path = PROJECT_DIR) -> list[dict[str, str]]:
    path = deployed_path(stage, project_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `chalice deploy --stage {stage}` first")
    import boto3

    session = session or boto3.session.Session()
    client = session.client("lambda")
    deployed = json.loads(path.read_text())
    config_path = project_dir / ".chalice" / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    changes = enable_partial_batch_failures(client, deployed) + set_ephemeral_storage(
        client, deployed, config, stage
    )
    stage_config = config.get("stages", {}).get(stage, {})
    prefix = stage_config.get("environment_variables", {}).get("MLOPS_PREFIX", "serverless-mlops")
    key_arn = data_key_arn(session, prefix, stage)
    retention = (
        max(
            [
                int(f.get("log_retention_in_days", 0))
                for f in stage_config.get("lambda_functions", {}).values()
            ]
            or [30]
        )
        or 30
    )
    logs = session.client("logs")
    changes += encrypt_function_logs(logs, deployed, key_arn, None)
    api_function = api_function_name(deployed)
    if api_function is not None:
        api_retention = (
            stage_config.get("lambda_functions", {}).get(API_FUNCTION, {}).get("log_retention_in_days")
        )
        changes += subscribe_capture(
            logs, api_function, *capture_destination(session, prefix, stage), key_arn, api_retention
        )
    changes += configure_api_stage(
        session.client("apigateway"),
        logs,
        session.client("iam"),
        deployed,
        stage,
        prefix,
        key_arn,
        str(stage_config.get("api_gateway_stage", "api")),
        retention,
    )
    return changes


def data_key_arn(session: Any, prefix: str, stage: str) -> str:
    """The stage key's ARN, an output of the data-plane stack."""
    return _stack_outputs(session, prefix, stage)["DataKeyArn"]


def _stack_outputs(session: Any, prefix: str, stage: str) -> dict[str, str]:
    from mlops.cfn import stack_name

    stack = session.client("cloudformation").describe_stacks(StackName=stack_name(prefix, stage))["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops postdeploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    for item in run(args.stage):
        print(f"{item['name']}: {item['setting']} {item['change']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
