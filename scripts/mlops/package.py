"""``chalice package`` with what Chalice leaves out, for one stage: ``mlops package --stage dev``.

Chalice's SAM output lacks what ``scripts/mlops/postdeploy.py`` adds after ``chalice deploy`` and
what a security review asks for. The merge template (``build/package/<stage>/merge-template.json``,
passed to ``chalice package --merge-template``, a deep merge) is generated here from the app's
functions (``mlops.appinfo``), so a new function gets it all without anyone editing a list:

* ``FunctionResponseTypes: [ReportBatchItemFailures]`` on every SQS event source (without it Lambda
  ignores ``batchItemFailures`` and deletes or retries the whole batch);
* ``EphemeralStorage`` of each function that sets ``lambda_ephemeral_storage`` in
  ``.chalice/config.json`` (a key Chalice 1.34 ignores);
* every function's log group encrypted with the stage key (retention comes from
  ``log_retention_in_days`` in ``.chalice/config.json``); the API handler's log group name fixed
  (Chalice writes ``${ApiHandler}`` where the resource is ``APIHandler``), and subscribed to the
  data plane's capture stream for its capture lines (``{ $.mlops_capture = 1 }``);
* the REST API with X-Ray tracing, per-method throttling and JSON access logs in an encrypted group
  (written with the account's API Gateway CloudWatch role, which this stack never sets: an account
  without one deploys ``apigateway-account.json`` once, as ``make package`` prints);
* alarms on each function's errors and throttles and a CloudWatch dashboard of the pipeline (the
  same resources ``mlops deploy`` deploys as the ``<prefix>-<stage>-monitoring`` stack);
* each function's policy with every ARN in the stack's account and region (``${AWS::AccountId}``,
  ``${AWS::Region}``), in place of the committed file's ``*`` (``mlops.policies``);
* checkov skips, each on its resource, with the reason;
* Lambda SnapStart on the API function: ``APIHandler`` publishes a version on every change of its
  properties (``AutoPublishAlias: live``, ``AutoPublishAliasAllProperties``) with SnapStart on
  published versions, and the REST API's integrations and invoke permission name the alias (Chalice
  writes ``${APIHandler.Arn}``, i.e. ``$LATEST``, where SnapStart never applies: ``alias_api``
  rewrites the integration URIs in the generated ``sam.json``). The authorizer stays on ``$LATEST``.

References to the data plane are ``Fn::ImportValue`` of its exports
(``<prefix>-<stage>-data-plane-DataKeyArn``, ``...-AlarmsTopicArn``), so the app stack cannot be
created without it, and the data plane cannot drop what the app uses.

``deployment.zip`` holds the dependencies without what the functions never load (``mlops.lambdazip``,
which ``chalice deploy`` goes through too; ``pruned.json`` lists what each rule removed). The output
(``build/package/<stage>/``: ``sam.json``, ``deployment.zip``) is reused while its inputs are
unchanged (``inputs.sha256``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.observability import METRICS_NAMESPACE, SERVICE
from chalicelib.settings import Settings, dlq_name
from mlops import PROJECT_DIR, lambdazip
from mlops.appinfo import Function, functions
from mlops.cfn import stack_name

BUILD = PROJECT_DIR / "build" / "package"
# API Gateway throttling per stage (steady requests/s, burst).
THROTTLING = {"dev": (20, 40), "prod": (100, 200)}
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.authorizer.principalId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
    },
    separators=(",", ":"),
)

# checkov findings that do not apply, with the reason; each is attached to the resources it concerns.
FUNCTION_SKIPS = [
    {
        "id": "CKV_AWS_116",
        "comment": "No async invocation DLQ: SQS-triggered functions fail back to their queue, whose "
        "redrive policy moves poison messages to a DLQ (alarmed); API and authorizer calls are "
        "synchronous; the hourly check is repeated an hour later and its errors are alarmed.",
    },
    {
        "id": "CKV_AWS_117",
        "comment": "Not in a VPC: the functions reach only AWS APIs (S3, SQS, DynamoDB, SSM, SNS, "
        "Batch) over TLS with IAM auth; a VPC would need a NAT or seven interface endpoints and "
        "would add cold-start latency for no private resource to reach.",
    },
    {
        "id": "CKV_AWS_173",
        "comment": "Environment variables carry resource names and flags only, never secrets (tokens "
        "are hashes in SSM SecureString); Lambda encrypts them at rest with its service key.",
    },
]
API_SKIPS = [
    {
        "id": "CKV_AWS_120",
        "comment": "No API cache: responses depend on the caller's token and on registry state that "
        "changes with every approval; a cache would serve stale or another caller's answers.",
    }
]

# Lambda SnapStart (the API function only): the alias API Gateway invokes; SnapStart applies only to
# published versions, never $LATEST (chalicelib.bootstrap has the restore hooks).
SNAPSTART_ALIAS = "live"
SNAPSTART = {"ApplyOn": "PublishedVersions"}
# What SnapStart does not allow (AWS's documentation): more ephemeral storage than this, in MB.
SNAPSTART_MAX_EPHEMERAL_STORAGE = 512

# What API Gateway's account-wide CloudWatch role may do, on API Gateway's own log groups only
# (instead of AWS's managed AmazonAPIGatewayPushToCloudWatchLogs, on every group): both deploy paths.
API_GATEWAY_LOG_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
)


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _import(stage_stack: str, name: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"{stage_stack}-{name}"}


def monitoring_resources(stage: str, prefix: str, fns: list[Function]) -> dict[str, Any]:
    """Alarms on each function's errors and throttles, and the pipeline's dashboard."""
    data_plane = stack_name(prefix, stage)
    alarms_topic = _import(data_plane, "AlarmsTopicArn")
    resources: dict[str, Any] = {}
    for fn in fns:
        for metric, why in (
            ("Errors", "raised an error (for SQS functions: a whole batch failed)"),
            ("Throttles", "was throttled (reserved concurrency reached)"),
        ):
            resources[f"{fn.logical_id}{metric}Alarm"] = {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": f"{fn.function_name}-{metric.lower()}",
                    "AlarmDescription": f"{fn.name} {why} in the last 5 minutes.",
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": fn.function_name}],
                    "Statistic": "Sum",
                    "Period": 300,
                    "EvaluationPeriods": 1,
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [alarms_topic],
                },
            }
    # Models in production: the monitor counts the sustained breaches it records (drift, input quality,
    # performance below its floor; chalicelib.monitoring) per stage. Any is worth a look: the
    # notification names the model, the window and the figures; the retrain it asks for may start.
    resources["ModelMonitorBreachAlarm"] = _stage_metric_alarm(
        f"{prefix}-{stage}-model-monitor-breach",
        "The monitor recorded a sustained breach of a model's monitoring policy "
        "(GET /models/{name}/monitoring, `mlops monitor MODEL`).",
        "MonitorBreaches",
        stage,
        alarms_topic,
        period=3600,
    )
    # Rollouts: the evaluator counts the rollouts its guards aborted (chalicelib.rollout). Each is a
    # release that misbehaved on live traffic: the notification names the guard and its figures.
    resources["RolloutAbortAlarm"] = _stage_metric_alarm(
        f"{prefix}-{stage}-rollout-aborted",
        "A rollout's guard aborted it: the candidate answered worse than the "
        "champion on live traffic (`mlops models show MODEL`, the rollout's events).",
        "RolloutAborts",
        stage,
        alarms_topic,
        period=300,
    )
    # The data plane's work queues and their DLQs (not the queues functions consume: one of those,
    # batch-work-dlq, is itself a DLQ, and batch-work is consumed by Batch jobs, not a function).
    queues = sorted(Settings.for_stage(stage, prefix).queues.values())

    def lambda_widget(metric: str, stat: str, y: int, x: int) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": f"Lambda {metric} ({stat})",
                "region": "${AWS::Region}",
                "stat": stat,
                "period": 300,
                "metrics": [["AWS/Lambda", metric, "FunctionName", fn.function_name] for fn in fns],
            },
        }

    widgets = [
        lambda_widget("Invocations", "Sum", 0, 0),
        lambda_widget("Errors", "Sum", 0, 12),
        lambda_widget("Duration", "p95", 6, 0),
        lambda_widget("Throttles", "Sum", 6, 12),
        {
            "type": "metric",
            "x": 0,
            "y": 12,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Queue backlog (visible messages)",
                "region": "${AWS::Region}",
                "stat": "Maximum",
                "period": 300,
                "metrics": [
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in queues
                ],
            },
        },
        {
            "type": "metric",
            "x": 12,
            "y": 12,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Dead-letter queues (visible messages)",
                "region": "${AWS::Region}",
                "stat": "Maximum",
                "period": 300,
                "metrics": [
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq_name(q)]
                    for q in sorted(Settings.for_stage(stage, prefix).consumed_queues.values())
                ],
            },
        },
    ]
    resources["PipelineDashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": f"{prefix}-{stage}-pipeline",
            "DashboardBody": _sub(json.dumps({"widgets": widgets})),
        },
    }
    return resources


def monitoring_template(stage: str, prefix: str, fns: list[Function]) -> dict[str, Any]:
    """The monitoring stack ``mlops deploy`` deploys next to a ``chalice deploy``."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{prefix}-{stage} monitoring: function alarms and the pipeline dashboard "
        "(generated by scripts/mlops/package.py from app.py).",
        "Resources": monitoring_resources(stage, prefix, fns),
    }


def access_log_group(prefix: str, stage: str) -> str:
    """The API's access log group (both deploy paths)."""
    return f"/aws/apigateway/{prefix}-{stage}-access"


def role_logical_id(fn: Function) -> str:
    """The function's role in ``chalice package`` output: Chalice names it ``<function>_role``
    (``autogen_policy: false``), in CamelCase."""
    from chalice.utils import to_cfn_resource_name

    return str(to_cfn_resource_name(f"{fn.name}_role"))


def scoped_role(stage: str, prefix: str, fn: Function) -> dict[str, Any]:
    """The function's role with its policy in the stack's account and region (a list in a merge
    template replaces Chalice's: its policy document, with ``*`` for both, goes)."""
    from mlops import policies

    document = policies.render(
        stage,
        fn.name,
        prefix=prefix,
        tracing=policies.tracing(stage),
        account=policies.STACK_ACCOUNT,
        region=policies.STACK_REGION,
    )
    return {
        "Properties": {
            "Policies": [
                {
                    "PolicyName": f"{role_logical_id(fn)}Policy",
                    "PolicyDocument": policies.for_cloudformation(document),
                }
            ]
        }
    }


def capture_subscription(data_plane: str, log_group: str) -> dict[str, Any]:
    """The API function's capture lines to the data plane's capture stream (``mlops.postdeploy``)."""
    from mlops.postdeploy import CAPTURE_FILTER, CAPTURE_PATTERN

    return {
        "Type": "AWS::Logs::SubscriptionFilter",
        "Properties": {
            "LogGroupName": {"Ref": log_group},
            "FilterName": CAPTURE_FILTER,
            "FilterPattern": CAPTURE_PATTERN,
            "DestinationArn": _import(data_plane, "CaptureStreamArn"),
            "RoleArn": _import(data_plane, "CaptureLogsRoleArn"),
        },
    }


def snapstart(fn: Function) -> dict[str, Any]:
    """SAM properties that turn SnapStart on for ``fn``: a version published whenever any of its
    properties changes (by default SAM publishes only on a change of code, environment or memory,
    and the alias would keep serving a version with, say, the old timeout), with SnapStart."""
    if fn.ephemeral_storage is not None and fn.ephemeral_storage > SNAPSTART_MAX_EPHEMERAL_STORAGE:
        raise ValueError(f"{fn.name}: SnapStart allows at most {SNAPSTART_MAX_EPHEMERAL_STORAGE} MB of /tmp")
    return {
        "AutoPublishAlias": SNAPSTART_ALIAS,
        "AutoPublishAliasAllProperties": True,
        "SnapStart": SNAPSTART,
    }


def alias_api(template: dict[str, Any], fns: list[Function]) -> dict[str, Any]:
    """The REST API's integrations with the API function through its alias. Chalice writes each
    integration URI with ``${APIHandler.Arn}`` (the unqualified ARN: ``$LATEST``) inside the swagger
    body, which a merge template cannot reach without copying the whole body. Each becomes
    ``Fn::Sub [..${APIHandlerAliasArn}.., {APIHandlerAliasArn: !Ref APIHandler.Alias}]``: SAM
    resolves ``!Ref APIHandler.Alias`` to its alias (cfn-lint does not know ``${APIHandler.Alias}``
    inside a Sub's text). The authorizer's URI is left as it is."""
    api = [fn.logical_id for fn in fns if fn.kind == "api"]
    if not api:
        return template
    (logical_id,) = api
    unqualified, variable = f"${{{logical_id}.Arn}}", f"{logical_id}AliasArn"
    found = 0

    def rewrite(node: Any) -> Any:
        nonlocal found
        if isinstance(node, dict):
            text = node.get("Fn::Sub")
            if isinstance(text, str) and unqualified in text:
                found += 1
                alias = {"Ref": f"{logical_id}.Alias"}
                return {"Fn::Sub": [text.replace(unqualified, f"${{{variable}}}"), {variable: alias}]}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    rest_api = template["Resources"]["RestAPI"]
    rest_api["Properties"]["DefinitionBody"] = rewrite(rest_api["Properties"]["DefinitionBody"])
    if not found or unqualified in json.dumps(rest_api):
        raise ValueError(
            f"RestAPI: integrations naming {unqualified} not all found (Chalice's output changed?)"
        )
    return template


def merge_template(stage: str, prefix: str, fns: list[Function]) -> dict[str, Any]:
    """What ``chalice package --merge-template`` adds to Chalice's SAM template."""
    data_plane = stack_name(prefix, stage)
    key = _import(data_plane, "DataKeyArn")
    resources: dict[str, Any] = {}
    for fn in fns:
        resources[role_logical_id(fn)] = scoped_role(stage, prefix, fn)
        # The name `chalice deploy` gives it: the policies' log groups, the alarms and the dashboard
        # name it so (without it CloudFormation would generate one, and they would name nothing).
        function: dict[str, Any] = {
            "Metadata": {"checkov": {"skip": FUNCTION_SKIPS}},
            "Properties": {"FunctionName": fn.function_name},
        }
        if fn.kind == "sqs":
            source = f"{fn.logical_id}SqsEventSource"
            function["Properties"]["Events"] = {
                source: {"Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}
            }
        if fn.ephemeral_storage is not None:  # Chalice has no setting for it (mlops.appinfo)
            function.setdefault("Properties", {})["EphemeralStorage"] = {"Size": fn.ephemeral_storage}
        if fn.kind == "api":
            function["Properties"].update(snapstart(fn))
            # Chalice's permission names the function (i.e. $LATEST): the alias is what the API invokes.
            resources[f"{fn.logical_id}InvokePermission"] = {
                "Properties": {"FunctionName": {"Ref": f"{fn.logical_id}.Alias"}}
            }
        resources[fn.logical_id] = function
        # Chalice names the log group <resource name in CamelCase>LogGroup.
        log_group = f"{fn.logical_id if fn.name != 'api_handler' else 'ApiHandler'}LogGroup"
        resources[log_group] = {
            "Properties": {"LogGroupName": _sub(f"/aws/lambda/${{{fn.logical_id}}}"), "KmsKeyId": key}
        }
        if fn.kind == "api":  # its capture lines go to the capture stream, as the post-deploy step sets
            resources["ApiHandlerCaptureSubscription"] = capture_subscription(data_plane, log_group)
    if any(fn.kind == "api" for fn in fns):
        rate, burst = THROTTLING.get(stage, THROTTLING["dev"])
        resources["RestAPI"] = {
            "Metadata": {"checkov": {"skip": API_SKIPS}},
            "Properties": {
                "TracingEnabled": True,
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": rate,
                        "ThrottlingBurstLimit": burst,
                        "MetricsEnabled": True,
                    }
                ],
                # Written with the account's CloudWatch role (API Gateway's account settings): this
                # stack never sets it (apigateway_account_template, for an account without one).
                "AccessLogSetting": {
                    "DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                    "Format": ACCESS_LOG_FORMAT,
                },
            },
        }
        resources["ApiAccessLogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": access_log_group(prefix, stage),
                "RetentionInDays": max((fn.log_retention_days or 30) for fn in fns),
                "KmsKeyId": key,
            },
        }
    resources.update(monitoring_resources(stage, prefix, fns))
    return {"Resources": resources}


# --- API Gateway's account setting: its own stack, only for an account without one -------------------


def apigateway_account_stack(prefix: str) -> str:
    """The stack that sets API Gateway's CloudWatch role, one per account and region (all stages)."""
    return f"{prefix}-apigateway-account"


def apigateway_account_template() -> dict[str, Any]:
    """API Gateway's account-wide CloudWatch role (the access logs of every API of the account and
    region are written with it), for an account that has none yet: deploying it replaces the one an
    account has, so the app stack never does, and `make package` says when to deploy this. The
    role's permissions are the post-deploy step's (``mlops.postdeploy``): API Gateway's own log
    groups only, not AWS's managed policy on every log group. Retained: deleting the stack leaves
    the account setting naming a role that still exists."""
    groups = [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/apigateway/*",
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:API-Gateway-Execution-Logs_*",
    ]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "API Gateway's CloudWatch role for this account and region (access logs of every "
        "API): deploy only where `aws apigateway get-account` shows none (generated by "
        "scripts/mlops/package.py).",
        "Resources": {
            "ApiGatewayCloudWatchRole": {
                "Type": "AWS::IAM::Role",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "apigateway.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                                },
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "push-api-logs",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": list(API_GATEWAY_LOG_ACTIONS),
                                        "Resource": [_sub(g) for g in (*groups, *(g + ":*" for g in groups))],
                                    }
                                ],
                            },
                        }
                    ],
                },
            },
            "ApiGatewayAccount": {
                "Type": "AWS::ApiGateway::Account",
                "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}},
            },
        },
    }


def account_setup_instructions(stage: str, out: Path) -> str:
    """When and how to give the account API Gateway's CloudWatch role (printed by `make package`)."""
    template = (out / "apigateway-account.json").relative_to(PROJECT_DIR)
    return (
        "Before the first deploy in an account and region: API Gateway writes the access logs with "
        "the account's CloudWatch role (one per account and region, shared by all its APIs), which "
        "the app stack never sets. Check:\n"
        "    aws apigateway get-account --query cloudwatchRoleArn --output text\n"
        "and only if it prints None (none yet: the app stack could not enable access logs), deploy "
        "this first, once:\n"
        f"    aws cloudformation deploy --template-file {template} "
        f"--stack-name {apigateway_account_stack(_prefix(stage))} --capabilities CAPABILITY_IAM\n"
        "An account that has one keeps it (deploying this would replace it for every API there)."
    )


# --- building -------------------------------------------------------------------------------------


def _inputs_digest(stage: str) -> str:
    digest = hashlib.sha256(stage.encode())
    paths = [
        PROJECT_DIR / "app.py",
        PROJECT_DIR / "requirements.txt",
        Path(__file__),
        Path(lambdazip.__file__),
    ]
    paths += sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))
    paths += sorted((PROJECT_DIR / ".chalice").glob("*.json"))
    for path in paths:
        digest.update(str(path.relative_to(PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def package(stage: str, out: Path | None = None, force: bool = False) -> Path:
    """Build ``sam.json`` + ``deployment.zip`` for ``stage`` into ``out``; reuse a fresh build."""
    out = out or BUILD / stage
    stamp = out / "inputs.sha256"
    digest = _inputs_digest(stage)
    if not force and stamp.exists() and stamp.read_text() == digest and (out / "sam.json").exists():
        return out
    fns = functions(stage)
    prefix = _prefix(stage)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(merge_template(stage, prefix, fns), indent=2) + "\n")
    (out / "monitoring.json").write_text(json.dumps(monitoring_template(stage, prefix, fns), indent=2) + "\n")
    (out / "apigateway-account.json").write_text(json.dumps(apigateway_account_template(), indent=2) + "\n")
    chalice = Path(sys.executable).parent / "chalice"
    # chalice package needs a region to resolve; none of the output depends on it (ARNs use
    # ${AWS::Region}).
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.pop("AWS_ENDPOINT_URL", None)
    # Chalice names its cached zip by a hash of chalicelib's files, bytecode included: none is
    # written from here on (chalice imports app.py before it packages), so it finds the pruned one.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    drop_bytecode()
    cached = lambdazip.prepare(PROJECT_DIR, stage)
    shutil.copyfile(lambdazip.report_path(cached), out / "pruned.json")
    subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", str(merge), str(out / "chalice")],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    (out / "chalice" / "deployment.zip").rename(out / "deployment.zip")
    sam = alias_api(json.loads((out / "chalice" / "sam.json").read_text()), fns)
    (out / "sam.json").write_text(json.dumps(sam, indent=2) + "\n")
    # Pruned either way. Chalice builds a zip of its own only if chalicelib changed in between (a
    # process importing from it wrote bytecode there, say): said, since `chalice deploy` would too.
    if left := lambdazip.prune_zip(out / "deployment.zip"):
        print(
            f"chalice package built its own zip (chalicelib changed?); pruned: {sorted(left)}",
            file=sys.stderr,
        )
    shutil.rmtree(out / "chalice")
    stamp.write_text(digest)
    return out


def drop_bytecode(root: Path = PROJECT_DIR / "chalicelib") -> None:
    """Remove ``__pycache__`` under chalicelib: Chalice zips the folder as it is, so the package would
    otherwise hold whatever bytecode earlier runs left (its size and contents depending on them)."""
    for cache in sorted(root.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _prefix(stage: str) -> str:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return str(config["stages"][stage]["environment_variables"].get("MLOPS_PREFIX", "serverless-mlops"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    args = parser.parse_args(argv)
    out = package(args.stage, force=args.force)
    zipped = (out / "deployment.zip").stat().st_size
    print(f"{out.relative_to(PROJECT_DIR)}/sam.json and deployment.zip ({zipped / 2**20:.1f} MiB)")
    print("deploy it with: " + deploy_command(args.stage, out))
    print(account_setup_instructions(args.stage, out))
    return 0


def deploy_command(stage: str, out: Path) -> str:
    """How to deploy the packaged template. It is far above the 51,200 bytes CloudFormation accepts
    inline, so ``deploy`` uploads it to the artifact bucket too (``--s3-bucket``), not only the code."""
    return (
        f"aws cloudformation package --template-file {out.relative_to(PROJECT_DIR)}/sam.json "
        "--s3-bucket <artifact bucket> --output-template-file packaged.yaml && "
        "aws cloudformation deploy --template-file packaged.yaml --s3-bucket <artifact bucket> "
        f"--stack-name {_prefix(stage)}-{stage}-app --capabilities CAPABILITY_IAM"
    )


def _stage_metric_alarm(
    name: str, description: str, metric: str, stage: str, topic: Any, period: int
) -> dict[str, Any]:
    """An alarm on one of the service's own metrics (EMF, dimensions service and stage): any count in
    a period is worth a look (the notification that came with it names the model and the figures)."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            "Namespace": METRICS_NAMESPACE,
            "MetricName": metric,
            "Dimensions": [{"Name": "service", "Value": SERVICE}, {"Name": "stage", "Value": stage}],
            "Statistic": "Sum",
            "Period": period,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
