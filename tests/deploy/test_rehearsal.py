"""A rehearsal of the packaged deployment in moto: `make package`, then the commands it prints.

The stage's data-plane stack is created first (the app stack imports its exports). The printed
`aws cloudformation package` runs as printed (the AWS CLI itself, in process): it uploads
deployment.zip to an artifact bucket and points each function's CodeUri there. The packaged
template is translated by aws-sam-translator (the library behind CloudFormation's
AWS::Serverless transform and SAM; moto has no transforms) and created as the stack the printed
`aws cloudformation deploy` names, from the artifact bucket (TemplateURL: the template is far above
what CloudFormation accepts inline).

The checks then read what moto created: every function a policy, the dashboard, an event mapping,
the API or the schedule names exists with that name; every log group a role's policy names is its
own function's; everything else a policy names (buckets, queues, tables, topics, Batch queues and job
definitions, the stage key) exists in the data plane; every SQS mapping is on a data-plane queue and
reports batch item failures; the API function's SnapStart alias points at a published version and
every API integration and its invoke permission name it; the templates and what they create fit
AWS's limits.

moto's CloudFormation cannot create CloudWatch alarms, the API's stage or a log group's subscription
filter (it logs "No Moto CloudFormation support for AWS::CloudWatch::Alarm", "... AWS::ApiGateway::Stage"
and "... AWS::Logs::SubscriptionFilter"): for those types the names are read from the translated
template and checked against what moto created for the rest. The other gaps of moto 5.2.5 are bridged below, each with AWS's behaviour.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.settings import Settings
from mlops import PROJECT_DIR
from mlops.appinfo import functions
from mlops.cfn import INLINE_LIMIT, deploy_stage, load_template, stack_name
from mlops.package import deploy_command, package
from tests.deploy.rehearse_tool import openapi3

STAGE = "dev"
# Not the tests' default region: an ARN written for one region would name nothing here.
REGION = "eu-west-1"
ARTIFACTS = "serverless-mlops-rehearsal-artifacts"  # the printed command's <artifact bucket>
# What moto 5.2.5's CloudFormation cannot create: checked in the translated template instead.
MOTO_CANNOT_CREATE = {"AWS::CloudWatch::Alarm", "AWS::ApiGateway::Stage", "AWS::Logs::SubscriptionFilter"}

# AWS's limits for this way of deploying.
TEMPLATE_FROM_S3_LIMIT = 1_000_000  # CloudFormation: a template in S3, 1 MB
STACK_RESOURCE_LIMIT = 500  # CloudFormation: resources in a stack (after transforms)
ROLE_INLINE_POLICY_LIMIT = 10_240  # IAM: all inline policies of a role, characters without whitespace
ENVIRONMENT_LIMIT = 4_096  # Lambda: all of a function's environment variables, 4 KB


# --- moto's gaps, bridged while the stacks are created -----------------------------------------------


def _moto_puts_role_policies_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto keeps a CloudFormation role's inline policy as Python's repr of the document (GetRolePolicy
    then returns text that is not JSON) and skips PutRolePolicy's validation. CloudFormation puts each
    with PutRolePolicy: a JSON document, refused (the stack fails) when it is not a valid policy."""
    from moto.iam.models import Role
    from moto.iam.policy_validation import IAMPolicyDocumentValidator

    original = Role.create_from_cloudformation_json

    def create(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        properties = dict(cloudformation_json["Properties"])
        policies = []
        for policy in properties.get("Policies", []):
            document = json.dumps(policy["PolicyDocument"])
            IAMPolicyDocumentValidator(document).validate()
            policies.append({**policy, "PolicyDocument": document})
        properties["Policies"] = policies
        return original(resource_name, {**cloudformation_json, "Properties": properties}, *args, **kwargs)

    monkeypatch.setattr(Role, "create_from_cloudformation_json", classmethod(create))


def _moto_encrypts_log_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto reads a log group's key as ``kmsKeyId`` (the API's spelling), so CloudFormation's
    ``KmsKeyId`` is dropped; AWS creates the group encrypted with that key."""
    from moto.logs.models import LogGroup

    original = LogGroup.create_from_cloudformation_json

    def create(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        properties = dict(cloudformation_json["Properties"])
        if "KmsKeyId" in properties:
            properties["kmsKeyId"] = properties.pop("KmsKeyId")
        return original(resource_name, {**cloudformation_json, "Properties": properties}, *args, **kwargs)

    monkeypatch.setattr(LogGroup, "create_from_cloudformation_json", classmethod(create))


def _moto_imports_rest_api_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto creates an AWS::ApiGateway::RestApi from its Name only (a KeyError without one) and ignores
    its Body. AWS imports the Body as ImportRestApi does: named by its ``info.title``, with a method and
    integration per path, and an authorizer per ``x-amazon-apigateway-authorizer`` security scheme.
    Here the Body goes through moto's ImportRestApi (converted to the OpenAPI 3 moto reads, as the
    resume rehearsal does) and its authorizers are created."""
    from moto.apigateway.models import RestAPI, apigateway_backends

    original = RestAPI.create_from_cloudformation_json

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        body = cloudformation_json["Properties"].get("Body")
        if body is None:
            return original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = apigateway_backends[account_id][region_name]
        document = openapi3(body)
        api = backend.import_rest_api(document, fail_on_warnings=False)
        for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
            authorizer = scheme.get("x-amazon-apigateway-authorizer")
            if authorizer:
                backend.create_authorizer(
                    api.id,
                    name,
                    authorizer["type"].upper(),
                    authorizer_uri=authorizer["authorizerUri"],
                    identity_source=f"method.request.header.{scheme['name']}",
                    authorizer_result_ttl=authorizer.get("authorizerResultTtlInSeconds"),
                )
        return api

    monkeypatch.setattr(RestAPI, "create_from_cloudformation_json", classmethod(create))


def _moto_creates_lambda_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's CloudFormation has no AWS::Lambda::Alias (its Lambda API has aliases), so what names the
    API function's alias (the API's integrations, its invoke permission) would name nothing, and its
    AWS::Lambda::Version has no attributes. AWS creates the alias as CreateAlias does, on the version
    given (``Fn::GetAtt [Version, Version]``: the number PublishVersion gave); its Ref is its ARN."""
    from moto.awslambda.models import LambdaVersion, lambda_backends
    from moto.cloudformation import parsing

    def version_attribute(self: Any, attribute: str) -> str:
        if attribute != "Version":
            raise NotImplementedError(f"AWS::Lambda::Version.{attribute}")
        return str(self.version)

    monkeypatch.setattr(LambdaVersion, "get_cfn_attribute", version_attribute, raising=False)

    class Alias:
        def __init__(self, arn: str) -> None:
            self.physical_resource_id = arn

        def is_created(self) -> bool:
            return True

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Alias:
            properties = cloudformation_json["Properties"]
            alias = lambda_backends[account_id][region_name].create_alias(
                name=properties["Name"],
                function_name=properties["FunctionName"],
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=properties.get("RoutingConfig"),
            )
            return cls(alias.arn)

    monkeypatch.setitem(parsing.get_model_map(), "AWS::Lambda::Alias", Alias)


# --- the rehearsal --------------------------------------------------------------------------------------


class _NoManagedPolicies:
    """The translator asks IAM for the ARNs of managed policies named by a function's Policies; the
    packaged functions name none (each has its own role)."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass(repr=False)  # an assertion message shows the fields it names, not the whole rehearsal
class Rehearsal:
    session: Any
    settings: Settings
    stack: str  # the app stack
    packaged: Path  # the template `aws cloudformation package` wrote (and `deploy` uploads)
    template: dict[str, Any]  # as translated (what CloudFormation creates)
    created: dict[str, dict[str, str]]  # the app stack's resources: logical id -> summary
    queues: set[str]  # the ARNs of the data plane's queues
    exports: dict[str, str]
    code: tuple[str, int]  # deployment.zip: its SHA-256 (base64, as Lambda reports it) and size
    unsupported: set[str]  # the resource types moto said it cannot create

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def physical(self, kind: str) -> set[str]:
        """Physical ids of the app stack's resources of this type, as moto created them."""
        return {r["PhysicalResourceId"] for r in self.created.values() if r["ResourceType"] == kind}

    def functions(self) -> set[str]:
        """The functions that exist (in all of moto, not only this stack)."""
        return {f["FunctionName"] for f in self.client("lambda").list_functions()["Functions"]}


def _aws(args: list[str]) -> str:
    """The AWS CLI, in this process (so in moto); its output."""
    from awscli.clidriver import create_clidriver

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = create_clidriver().main(args)
    assert code == 0, out.getvalue()
    return out.getvalue()


def _printed_commands(out: Path, packaged: Path) -> tuple[list[str], list[str]]:
    """The `package` and `deploy` commands `make package` prints, the bucket filled in, the package
    step writing to ``packaged``."""
    package_step, deploy_step = (
        shlex.split(c.replace("<artifact bucket>", ARTIFACTS)) for c in deploy_command(STAGE, out).split("&&")
    )
    assert package_step[:3] == ["aws", "cloudformation", "package"], package_step
    at = package_step.index("--template-file") + 1
    package_step[at] = str(PROJECT_DIR / package_step[at])
    package_step[package_step.index("--output-template-file") + 1] = str(packaged)
    return package_step[1:], deploy_step[1:]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    from samtranslator.translator.transform import transform

    out = package(STAGE)
    packaged = tmp_path_factory.mktemp("rehearsal") / "packaged.yaml"
    package_step, deploy_step = _printed_commands(out, packaged)
    settings = Settings.for_stage(STAGE)
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        _moto_puts_role_policies_as_json(monkeypatch)
        _moto_encrypts_log_groups(monkeypatch)
        _moto_imports_rest_api_bodies(monkeypatch)
        _moto_creates_lambda_aliases(monkeypatch)
        session = boto3.session.Session(region_name=REGION)
        data_plane = deploy_stage(settings, session)
        sqs = session.client("sqs")
        queues = {
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in data_plane.values()
            if url.startswith("https://sqs.")
        }
        s3, cfn = session.client("s3"), session.client("cloudformation")
        s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        _aws([*package_step, "--region", REGION])
        template = dict(transform(load_template(packaged), {"AWS::Region": REGION}, _NoManagedPolicies()))
        # `aws cloudformation deploy --s3-bucket` uploads the template and hands CloudFormation its
        # URL (uploaded here translated: moto runs no transforms).
        body = json.dumps(template).encode()
        key = hashlib.md5(body).hexdigest() + ".template"
        s3.put_object(Bucket=ARTIFACTS, Key=key, Body=body)
        stack = deploy_step[deploy_step.index("--stack-name") + 1]
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            cfn.create_stack(
                StackName=stack,
                TemplateURL=f"https://{ARTIFACTS}.s3.{REGION}.amazonaws.com/{key}",
                Capabilities=[deploy_step[deploy_step.index("--capabilities") + 1]],
            )
            summaries = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        unsupported = {
            found.group(1)
            for w in warned
            if (found := re.search(r"parse (\S+) but it's not supported by moto", str(w.message)))
        }
        zipped = (out / "deployment.zip").read_bytes()
        yield Rehearsal(
            session=session,
            settings=settings,
            stack=stack,
            packaged=packaged,
            template=template,
            # moto lists what it could not create without a logical id
            created={r["LogicalResourceId"]: r for r in summaries if r["LogicalResourceId"]},
            queues=queues,
            exports={e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]},
            code=(base64.b64encode(hashlib.sha256(zipped).digest()).decode(), len(zipped)),
            unsupported=unsupported,
        )


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _qualifier_of_arn(arn: str) -> str | None:
    """The version or alias an ARN (or an API Gateway integration URI) names; None for $LATEST."""
    found = re.search(r"arn:aws:lambda:[^:]+:\d+:function:[^:/]+:([^:/]+)", arn)
    return found.group(1) if found else None


def _function_of_arn(arn: str) -> str:
    """The function an ARN (or an API Gateway integration URI) names."""
    found = re.search(r"arn:aws:lambda:[^:]+:\d+:function:([^:/]+)", arn)
    assert found, arn
    return found.group(1)


def _role_policies(iam: Any, role: str) -> dict[str, dict[str, Any]]:
    return {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


def _statements(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    for statement in document["Statement"]:
        resources = statement["Resource"]
        for arn in resources if isinstance(resources, list) else [resources]:
            yield statement, arn


def _function_roles(rehearsal: Rehearsal) -> dict[str, str]:
    """Each function the app stack created -> the name of the role it runs as."""
    lam = rehearsal.client("lambda")
    return {
        name: lam.get_function(FunctionName=name)["Configuration"]["Role"].rsplit("/", 1)[1]
        for name in rehearsal.physical("AWS::Lambda::Function")
    }


# --- the checks -------------------------------------------------------------------------------------------


def test_the_packaged_stack_is_created_after_the_data_plane_with_the_uploaded_code(rehearsal):
    cfn = rehearsal.client("cloudformation")
    assert cfn.describe_stacks(StackName=rehearsal.stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # What moto says it cannot create is what the checks below read from the template instead.
    assert rehearsal.unsupported == MOTO_CANNOT_CREATE
    skipped = {n for n, r in rehearsal.template["Resources"].items() if r["Type"] in MOTO_CANNOT_CREATE}
    # Everything else moto created; a new type it cannot create needs its names checked below too.
    assert set(rehearsal.template["Resources"]) - set(rehearsal.created) == skipped
    assert {rehearsal.template["Resources"][n]["Type"] for n in skipped} == MOTO_CANNOT_CREATE
    # Each function runs the deployment.zip `aws cloudformation package` uploaded.
    lam = rehearsal.client("lambda")
    for name in rehearsal.physical("AWS::Lambda::Function"):
        config = lam.get_function(FunctionName=name)["Configuration"]
        assert (config["CodeSha256"], config["CodeSize"]) == rehearsal.code, name


def test_every_function_has_the_name_its_policies_alarms_and_dashboard_use(rehearsal):
    """Found at 21cd3ef: the packaged functions got names generated by CloudFormation, while their
    log permissions and all 16 alarms named serverless-mlops-<stage>-<fn>: no logs, blind alarms.
    Also at 21cd3ef: the dashboard's dead-letter widget showed serverless-mlops-<stage>-batch-work-dlq-dlq
    (the DLQ of a DLQ, which does not exist)."""
    assert rehearsal.physical("AWS::Lambda::Function") == {fn.function_name for fn in functions(STAGE)}
    existing = rehearsal.functions()
    # Alarms (moto cannot create them): as the translated template has them.
    alarms = _of_type(rehearsal.template, "AWS::CloudWatch::Alarm")
    # Errors and throttles per function, the model monitor's breaches and the rollouts' aborts (one
    # each per stage).
    assert len(alarms) == 2 * len(functions(STAGE)) + 2
    for alarm, metric in (
        ("ModelMonitorBreachAlarm", "MonitorBreaches"),
        ("RolloutAbortAlarm", "RolloutAborts"),
    ):
        stage_wide = alarms.pop(alarm)["Properties"]
        assert (stage_wide["MetricName"], stage_wide["Namespace"]) == (metric, "ServerlessMLOps")
        assert {"Name": "stage", "Value": STAGE} in stage_wide["Dimensions"]
    topics = {t["TopicArn"] for t in rehearsal.client("sns").list_topics()["Topics"]}
    for name, alarm in alarms.items():
        watched = {d["Value"] for d in alarm["Properties"]["Dimensions"] if d["Name"] == "FunctionName"}
        assert watched and watched <= existing, (name, watched - existing)
        for action in alarm["Properties"]["AlarmActions"]:
            assert rehearsal.exports[action["Fn::ImportValue"]] in topics, (name, action)
    # The dashboard, as moto created it.
    cloudwatch = rehearsal.client("cloudwatch")
    (dashboard,) = rehearsal.physical("AWS::CloudWatch::Dashboard")
    widgets = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard)["DashboardBody"])["widgets"]
    metrics = [m for w in widgets for m in w["properties"]["metrics"]]
    assert {w["properties"]["region"] for w in widgets} == {REGION}
    shown = {m[3] for m in metrics if m[2] == "FunctionName"}
    assert shown and shown <= existing, shown - existing
    queues = {arn.rsplit(":", 1)[1] for arn in rehearsal.queues}  # the data plane's
    shown_queues = {m[3] for m in metrics if m[2] == "QueueName"}
    assert shown_queues and shown_queues <= queues, shown_queues - queues


def test_every_log_permission_names_its_own_functions_log_group_made_with_the_stage_key(rehearsal):
    iam, logs = rehearsal.client("iam"), rehearsal.client("logs")
    key = rehearsal.exports[f"{stack_name(rehearsal.settings.prefix, STAGE)}-DataKeyArn"]
    made = rehearsal.physical("AWS::Logs::LogGroup")
    for function, role in _function_roles(rehearsal).items():
        own = f"/aws/lambda/{function}"
        named = {
            found.group(1)
            for document in _role_policies(iam, role).values()
            for _, arn in _statements(document)
            if (found := re.search(r":log-group:([^:*]+)", arn))
        }
        assert named == {own}, (function, role, named)  # its own log group: no more, no less
        assert own in made, (function, made)
        (group,) = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=own)["logGroups"]
            if g["logGroupName"] == own
        ]
        assert group.get("kmsKeyId") == key, group


def _exists(rehearsal: Rehearsal, statement: dict[str, Any], arn: str) -> bool:
    """Whether what a policy's resource ARN names exists (wildcards: what they are scoped by)."""
    _, _, service, _, _, resource = arn.split(":", 5)
    if service == "s3":
        bucket = resource.split("/", 1)[0]
        return bucket in {b["Name"] for b in rehearsal.client("s3").list_buckets()["Buckets"]}
    if service == "sqs":
        return arn in rehearsal.queues
    if service == "dynamodb":
        kind, table = resource.split("/")[:2]
        return kind == "table" and table in rehearsal.client("dynamodb").list_tables()["TableNames"]
    if service == "sns":
        return arn in {t["TopicArn"] for t in rehearsal.client("sns").list_topics()["Topics"]}
    if service == "logs":
        group = resource.removeprefix("log-group:").removesuffix(":*")
        return group in {
            g["logGroupName"] for g in rehearsal.client("logs").describe_log_groups()["logGroups"]
        }
    if service == "batch":
        kind, name = resource.split("/", 1)
        batch = rehearsal.client("batch")
        if kind == "job-queue":
            return bool(batch.describe_job_queues(jobQueues=[name])["jobQueues"])
        if kind == "job-definition":
            name = name.removesuffix(":*")
            return bool(batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"])
        return resource == "job/*"  # jobs: made when submitted
    if service == "kms":  # any key, scoped by its tag to the stage's key
        tags = statement["Condition"]["StringEquals"]
        kms = rehearsal.client("kms")
        keys = [kms.list_resource_tags(KeyId=k["KeyId"])["Tags"] for k in kms.list_keys()["Keys"]]
        wanted = {(k.removeprefix("aws:ResourceTag/"), v) for k, v in tags.items()}
        return resource == "key/*" and any(
            wanted <= {(t["TagKey"], t["TagValue"]) for t in ts} for ts in keys
        )
    if service == "cloudwatch":  # the stage's alarms by name prefix; moto cannot make them: the template's
        kind, name = resource.split(":", 1)
        prefix = name.removesuffix("*")
        alarms = _of_type(rehearsal.template, "AWS::CloudWatch::Alarm").values()
        names = [a["Properties"].get("AlarmName") for a in alarms]
        return kind == "alarm" and any(isinstance(n, str) and n.startswith(prefix) for n in names)
    if service == "ssm":  # the API tokens: made by `mlops token create`, under the stage's path
        return resource == f"parameter{rehearsal.settings.tokens_path}/*"
    raise AssertionError(f"no existence check for {service} ARNs ({arn}): add one")


def test_everything_a_functions_policy_names_exists_in_this_account_and_region(rehearsal):
    iam = rehearsal.client("iam")
    account = rehearsal.client("sts").get_caller_identity()["Account"]
    checked = set()
    for function, role in _function_roles(rehearsal).items():
        for document in _role_policies(iam, role).values():
            for statement, arn in _statements(document):
                if arn == "*":  # X-Ray only: its actions take no resource
                    assert all(a.startswith("xray:") for a in statement["Action"]), (function, statement)
                    continue
                _, _, service, region, in_account, _ = arn.split(":", 5)
                assert region in {REGION, ""} and in_account in {account, ""}, (function, arn)
                assert _exists(rehearsal, statement, arn), (function, arn)
                checked.add(service)
    assert {"s3", "sqs", "dynamodb", "logs", "kms"} <= checked


def test_every_sqs_mapping_is_on_a_data_plane_queue_and_reports_batch_item_failures(rehearsal):
    lam = rehearsal.client("lambda")
    queues = rehearsal.queues
    mappings = [
        lam.get_event_source_mapping(UUID=u) for u in rehearsal.physical("AWS::Lambda::EventSourceMapping")
    ]
    sqs = [m for m in mappings if m["EventSourceArn"].startswith("arn:aws:sqs:")]
    assert {_function_of_arn(m["FunctionArn"]) for m in sqs} == {
        fn.function_name for fn in functions(STAGE) if fn.kind == "sqs"
    }
    assert len(sqs) == len(mappings) == sum(1 for fn in functions(STAGE) if fn.kind == "sqs")
    for mapping in sqs:
        assert mapping["EventSourceArn"] in queues, mapping["EventSourceArn"]
        assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], mapping["UUID"]


def _may_invoke(lam: Any, function: str, service: str, source: str, qualifier: str | None = None) -> bool:
    policy = json.loads(
        lam.get_policy(FunctionName=function, **({"Qualifier": qualifier} if qualifier else {}))["Policy"]
    )
    return any(
        s["Principal"] == {"Service": service}
        and s["Action"] == "lambda:InvokeFunction"
        and s["Condition"]["ArnLike"]["AWS:SourceArn"] == source
        for s in policy["Statement"]
    )


def test_the_api_and_the_schedule_invoke_functions_that_exist_and_let_them(rehearsal):
    lam, apigw, events = (
        rehearsal.client("lambda"),
        rehearsal.client("apigateway"),
        rehearsal.client("events"),
    )
    account = rehearsal.client("sts").get_caller_identity()["Account"]
    existing = rehearsal.functions()
    (api,) = rehearsal.physical("AWS::ApiGateway::RestApi")
    invoked = set()  # (function, alias or version; None for $LATEST)
    for resource in apigw.get_resources(restApiId=api)["items"]:
        for method in resource.get("resourceMethods", {}):
            uri = apigw.get_integration(restApiId=api, resourceId=resource["id"], httpMethod=method)["uri"]
            invoked.add((_function_of_arn(uri), _qualifier_of_arn(uri)))
    authorizers = apigw.get_authorizers(restApiId=api)["items"]
    assert authorizers
    invoked |= {
        (_function_of_arn(a["authorizerUri"]), _qualifier_of_arn(a["authorizerUri"])) for a in authorizers
    }
    names = {function for function, _ in invoked}
    assert names and names <= existing, names - existing
    for function, qualifier in invoked:
        source = f"arn:aws:execute-api:{REGION}:{account}:{api}/*"
        assert _may_invoke(lam, function, "apigateway.amazonaws.com", source, qualifier), (
            function,
            qualifier,
        )
    rules = rehearsal.physical("AWS::Events::Rule")
    assert len(rules) == sum(1 for fn in functions(STAGE) if fn.kind == "schedule")
    for rule in rules:
        arn = events.describe_rule(Name=rule)["Arn"]
        for target in events.list_targets_by_rule(Rule=rule)["Targets"]:
            function = _function_of_arn(target["Arn"])
            assert function in existing and _may_invoke(lam, function, "events.amazonaws.com", arn), target
    # The stage (moto cannot create it): the API and the access log group it names were created.
    key = rehearsal.exports[f"{stack_name(rehearsal.settings.prefix, STAGE)}-DataKeyArn"]
    logs = {g["logGroupName"]: g for g in rehearsal.client("logs").describe_log_groups()["logGroups"]}
    for name, stage in _of_type(rehearsal.template, "AWS::ApiGateway::Stage").items():
        properties = stage["Properties"]
        assert rehearsal.created[properties["RestApiId"]["Ref"]]["PhysicalResourceId"] == api, name
        group, attribute = properties["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"]
        made = rehearsal.created[group]
        assert (made["ResourceType"], attribute) == ("AWS::Logs::LogGroup", "Arn"), name
        assert logs[made["PhysicalResourceId"]].get("kmsKeyId") == key, name


def test_the_api_invokes_the_api_function_through_its_alias_on_a_snapstart_version(rehearsal):
    """SnapStart applies only to published versions: every integration of the REST API names the API
    function's alias, which points at a version published by the stack (never $LATEST), and the
    invoke permission is the alias's. The authorizer stays on $LATEST."""
    from mlops.package import SNAPSTART, SNAPSTART_ALIAS

    lam, apigw = rehearsal.client("lambda"), rehearsal.client("apigateway")
    (api_fn,) = [fn for fn in functions(STAGE) if fn.kind == "api"]
    # In the translated template (moto keeps no SnapStart setting): the function, its alias.
    function = rehearsal.template["Resources"][api_fn.logical_id]["Properties"]
    assert function["SnapStart"] == SNAPSTART
    aliases = _of_type(rehearsal.template, "AWS::Lambda::Alias")
    (alias_id,) = aliases
    alias = aliases[alias_id]["Properties"]
    assert (alias["Name"], alias["FunctionName"]) == (SNAPSTART_ALIAS, {"Ref": api_fn.logical_id})
    version_id, attribute = alias["FunctionVersion"]["Fn::GetAtt"]
    version = rehearsal.template["Resources"][version_id]
    assert (version["Type"], attribute) == ("AWS::Lambda::Version", "Version")
    assert version["Properties"]["FunctionName"] == {"Ref": api_fn.logical_id}
    permissions = [
        p["Properties"]
        for p in _of_type(rehearsal.template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        and p["Properties"]["FunctionName"] in ({"Ref": api_fn.logical_id}, {"Ref": alias_id})
    ]
    assert [p["FunctionName"] for p in permissions] == [{"Ref": alias_id}]
    # As created: the alias on a published version, and what API Gateway calls.
    made = lam.get_alias(FunctionName=api_fn.function_name, Name=SNAPSTART_ALIAS)
    published = {
        v["Version"] for v in lam.list_versions_by_function(FunctionName=api_fn.function_name)["Versions"]
    }
    assert made["FunctionVersion"] != "$LATEST" and made["FunctionVersion"] in published, made
    (api,) = rehearsal.physical("AWS::ApiGateway::RestApi")
    uris = [
        apigw.get_integration(restApiId=api, resourceId=r["id"], httpMethod=m)["uri"]
        for r in apigw.get_resources(restApiId=api)["items"]
        for m in r.get("resourceMethods", {})
    ]
    assert uris
    for uri in uris:
        assert _function_of_arn(uri) == api_fn.function_name, uri
        assert f"/functions/{made['AliasArn']}/invocations" in uri, uri
    authorizer_uris = [a["authorizerUri"] for a in apigw.get_authorizers(restApiId=api)["items"]]
    assert authorizer_uris and all(_qualifier_of_arn(u) is None for u in authorizer_uris)


def test_the_api_functions_log_group_sends_its_capture_lines_to_the_data_planes_stream(rehearsal):
    """The packaged path subscribes as the post-deploy step does (moto cannot create the filter: its
    group, destination and role are checked against what moto created)."""
    from mlops.postdeploy import CAPTURE_FILTER, CAPTURE_PATTERN

    (subscription,) = _of_type(rehearsal.template, "AWS::Logs::SubscriptionFilter").values()
    properties = subscription["Properties"]
    assert (properties["FilterName"], properties["FilterPattern"]) == (CAPTURE_FILTER, CAPTURE_PATTERN)
    group = rehearsal.created[properties["LogGroupName"]["Ref"]]
    assert group["ResourceType"] == "AWS::Logs::LogGroup"
    api = next(fn.function_name for fn in functions(STAGE) if fn.kind == "api")
    assert group["PhysicalResourceId"] == f"/aws/lambda/{api}"
    stream = rehearsal.exports[properties["DestinationArn"]["Fn::ImportValue"]]
    streams = rehearsal.client("firehose").list_delivery_streams()["DeliveryStreamNames"]
    assert stream.rsplit("/", 1)[1] in streams and stream.startswith(f"arn:aws:firehose:{REGION}:")
    role = rehearsal.exports[properties["RoleArn"]["Fn::ImportValue"]].rsplit("/", 1)[1]
    trust = rehearsal.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "logs.amazonaws.com"}


def test_the_templates_and_what_they_create_fit_the_limits_of_the_way_they_are_deployed(rehearsal):
    """moto takes any size: only these checks can tell before a real deploy fails."""
    # `aws cloudformation deploy --s3-bucket` uploads the packaged template: too big to go inline.
    size = rehearsal.packaged.stat().st_size
    assert INLINE_LIMIT < size < TEMPLATE_FROM_S3_LIMIT * 0.5, size  # room to grow
    assert len(rehearsal.template["Resources"]) < STACK_RESOURCE_LIMIT * 0.5
    iam = rehearsal.client("iam")
    for role in iam.list_roles()["Roles"]:  # the data plane's and the app's
        documents = _role_policies(iam, role["RoleName"]).values()
        characters = sum(len(re.sub(r"\s", "", json.dumps(d))) for d in documents)
        assert characters <= ROLE_INLINE_POLICY_LIMIT, (role["RoleName"], characters)
    lam = rehearsal.client("lambda")
    for function in rehearsal.physical("AWS::Lambda::Function"):
        variables = lam.get_function(FunctionName=function)["Configuration"]["Environment"]["Variables"]
        assert len(json.dumps(variables, separators=(",", ":"))) <= ENVIRONMENT_LIMIT, function
