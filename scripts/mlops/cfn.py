"""Reading the CloudFormation template, and applying what moto's CloudFormation skips.

moto creates the stack's buckets, queues, tables and key but silently ignores S3 versioning,
lifecycle rules and notifications, DynamoDB TTL and a subnet's public IP setting. Those settings are
read from the same template and applied through the API, so the local cloud cannot drift from what
AWS gets.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from mlops import TEMPLATE


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: 10x faster
    """YAML loader that keeps short-form intrinsics (!Ref, !GetAtt, !Sub...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


# CloudFormation takes a template inline (TemplateBody, or `aws cloudformation deploy` without
# --s3-bucket) up to 51,200 bytes; larger ones must come from S3 (up to 1 MB).
INLINE_LIMIT = 51_200


def deploy_body(path: Path = TEMPLATE) -> str:
    """The data-plane template as `make deploy` sends it: compact JSON. Comments and YAML layout are
    half of infra/template.yaml and none of CloudFormation's business; sent as is, the commented
    template would pass the inline limit within a few more resources."""
    return json.dumps(load_template(path), separators=(",", ":"))


# The data plane's cost profile (the template's CostProfile parameter; README, "What it costs idle"):
# standard reaches AWS from the Batch subnets through VPC endpoints only; dev drops the interface
# endpoints, most of the idle cost, for an internet route. Each stage's profile; COST_PROFILE in the
# environment (`make deploy STAGE=prod COST_PROFILE=dev`) overrides it.
COST_PROFILES = ("standard", "dev")
STAGE_COST_PROFILES = {"local": "standard", "dev": "dev", "prod": "standard"}


def cost_profile(stage: str) -> str:
    chosen = os.environ.get("COST_PROFILE") or STAGE_COST_PROFILES.get(stage, "standard")
    if chosen not in COST_PROFILES:
        raise SystemExit(
            f"COST_PROFILE={chosen!r} is not a cost profile: choose one of {', '.join(COST_PROFILES)}"
        )
    return chosen


def deploy_parameters(stage: str, prefix: str, image: str | None = None) -> dict[str, str]:
    """The data-plane parameters a stage deploys with, to AWS (`make deploy`) and to the local cloud."""
    parameters = {"Stage": stage, "NamePrefix": prefix, "CostProfile": cost_profile(stage)}
    return parameters | ({"JobImage": image} if image else {})


def for_parameters(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation creates it with these parameters: its conditions evaluated (and
    gone), the resources and outputs whose condition is false left out, each ``Fn::If`` replaced by
    the branch it takes (``AWS::NoValue`` drops the property)."""
    conditions: dict[str, bool] = {}

    def holds(expr: Any) -> bool:
        ((name, arg),) = expr.items()
        if name == "Condition":
            if arg not in conditions:
                conditions[arg] = holds(template["Conditions"][arg])
            return conditions[arg]
        if name == "Fn::Equals":
            left, right = (resolve(a, template, parameters) for a in arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not holds(arg[0])
        if name == "Fn::And":
            return all(holds(a) for a in arg)
        if name == "Fn::Or":
            return any(holds(a) for a in arg)
        raise ValueError(f"condition function {name} is not understood")

    def choose(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return choose(if_true if holds({"Condition": name}) else if_false)
        if isinstance(value, dict):
            kept = {k: choose(v) for k, v in value.items()}
            return {k: v for k, v in kept.items() if v != {"Ref": "AWS::NoValue"}}
        if isinstance(value, list):
            return [v for v in map(choose, value) if v != {"Ref": "AWS::NoValue"}]
        return value

    resolved = {k: v for k, v in template.items() if k != "Conditions"}
    for section in ("Resources", "Outputs"):
        if section in template:
            resolved[section] = {
                name: choose({k: v for k, v in item.items() if k != "Condition"})
                for name, item in template[section].items()
                if "Condition" not in item or holds({"Condition": item["Condition"]})
            }
    return resolved


def stack_name(prefix: str, stage: str) -> str:
    return f"{prefix}-{stage}-data-plane"


def deploy_stage(settings: Any, session: Any = None) -> dict[str, str]:
    """The stage's data-plane stack (``settings``: a ``chalicelib.settings.Settings``), deployed as the
    local cloud, the tests and the benchmarks deploy it; moto's warnings about the resource types its
    CloudFormation skips are silenced."""
    import warnings

    import boto3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return deploy_stack(
            session or boto3.session.Session(),
            stack_name(settings.prefix, settings.stage),
            deploy_parameters(settings.stage, settings.prefix),
        )


def deploy_stack(
    session: Any, name: str, parameters: dict[str, str], path: Path = TEMPLATE
) -> dict[str, str]:
    """Create the stack (if absent), wait for it, apply moto's gaps. Returns logical -> physical id."""
    cfn = session.client("cloudformation")
    existing = {
        s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
    }
    if name not in existing:
        cfn.create_stack(
            StackName=name,
            TemplateBody=_moto_body(path),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    _wait_complete(cfn, name)
    resources = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    apply_moto_gaps(session, load_template(path), resources, parameters)
    return resources


# Resource types moto's CloudFormation cannot create (its stack then fails on any attribute of
# them): left out of the body moto gets and created by ``apply_moto_gaps`` through the API. Each
# with the ARN its ``Fn::GetAtt <resource>.Arn`` stands for, as an ``Fn::Sub`` of its name.
MOTO_API_ONLY = {
    "AWS::KinesisFirehose::DeliveryStream": (
        "DeliveryStreamName",
        "arn:${AWS::Partition}:firehose:${AWS::Region}:${AWS::AccountId}:deliverystream/",
    ),
}


def _moto_body(path: Path) -> str:
    """The template as moto's CloudFormation can create it: moto fails on a KMS key's ``Tags``
    (CloudFormation's Key/Value form), so they are left out here and tagged by ``apply_moto_gaps``;
    the resources of ``MOTO_API_ONLY`` are left out too, and their ARNs spelled out where used."""
    template = load_template(path)
    arns: dict[str, dict[str, str]] = {}
    for logical, resource in list(template["Resources"].items()):
        if resource["Type"] == "AWS::KMS::Key":
            resource.get("Properties", {}).pop("Tags", None)
        if resource["Type"] in MOTO_API_ONLY:
            name_property, arn_prefix = MOTO_API_ONLY[resource["Type"]]
            name = resource["Properties"][name_property]
            arns[logical] = {"Fn::Sub": arn_prefix + (name["Fn::Sub"] if isinstance(name, dict) else name)}
            del template["Resources"][logical]

    def spelled(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in arns:
            assert value["Fn::GetAtt"][1] == "Arn", value
            return arns[value["Fn::GetAtt"][0]]
        if isinstance(value, dict):
            return {k: spelled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [spelled(v) for v in value]
        return value

    return json.dumps(spelled(template))


def _wait_complete(cfn: Any, name: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if "FAILED" in status or "ROLLBACK" in status or time.monotonic() > deadline:
            raise RuntimeError(f"stack {name} is {status}: {stack.get('StackStatusReason', '')}")
        time.sleep(0.2)


def resolve(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """Resolve the intrinsics the gap-filled properties use: Ref to a parameter, Fn::FindInMap."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref" and arg in template.get("Parameters", {}):
            return parameters.get(arg, template["Parameters"][arg].get("Default"))
        if name == "Fn::FindInMap":
            mapping, top, second = (resolve(a, template, parameters) for a in arg)
            return template["Mappings"][mapping][top][second]
    if isinstance(value, dict):
        return {k: resolve(v, template, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, template, parameters) for v in value]
    return value


def apply_moto_gaps(
    session: Any, template: dict[str, Any], physical: dict[str, str], parameters: dict[str, str]
) -> None:
    """Apply the bucket, table and subnet settings that moto's CloudFormation ignores."""
    template = for_parameters(template, parameters)
    s3 = session.client("s3")
    sqs = session.client("sqs")
    dynamodb = session.client("dynamodb")

    def queue_arn(logical: str) -> str:
        url = physical[logical]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    for logical, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::Bucket":
            bucket = physical[logical]
            if "VersioningConfiguration" in props:
                s3.put_bucket_versioning(
                    Bucket=bucket,
                    VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
                )
            lifecycle = resolve(props.get("LifecycleConfiguration"), template, parameters)
            if lifecycle:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket,
                    LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle["Rules"]]},
                )
            notifications = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
            if notifications:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={
                        "QueueConfigurations": [
                            {
                                "QueueArn": queue_arn(n["Queue"]["Fn::GetAtt"][0]),
                                "Events": [n["Event"]],
                                "Filter": {
                                    "Key": {
                                        # moto matches filter rule names in lowercase only.
                                        "FilterRules": [
                                            {"Name": r["Name"].lower(), "Value": r["Value"]}
                                            for r in n["Filter"]["S3Key"]["Rules"]
                                        ]
                                    }
                                },
                            }
                            for n in notifications
                        ]
                    },
                )
        elif resource["Type"] == "AWS::KMS::Key" and props.get("Tags"):
            tags = resolve(props["Tags"], template, parameters)
            session.client("kms").tag_resource(
                KeyId=physical[logical],
                Tags=[{"TagKey": t["Key"], "TagValue": _sub(t["Value"], parameters)} for t in tags],
            )
        elif resource["Type"] == "AWS::EC2::Subnet" and "MapPublicIpOnLaunch" in props:
            session.client("ec2").modify_subnet_attribute(
                SubnetId=physical[logical], MapPublicIpOnLaunch={"Value": props["MapPublicIpOnLaunch"]}
            )
        elif resource["Type"] == "AWS::KinesisFirehose::DeliveryStream":
            physical[logical] = _create_delivery_stream(session, template, props, physical, parameters)
        elif resource["Type"] == "AWS::DynamoDB::Table":
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(
                    TableName=physical[logical],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )


def _create_delivery_stream(
    session: Any,
    template: dict[str, Any],
    props: dict[str, Any],
    physical: dict[str, str],
    parameters: dict[str, str],
) -> str:
    """The Firehose stream moto's CloudFormation skips, created through the API with the template's
    properties (their CloudFormation names are the API's). moto evaluates no ``!{...}`` expression
    of a dynamic-partitioning prefix and writes every object under the literal prefix: it gets the
    prefix up to the first expression (``capture/live/``), so its keys carry no partition that is
    not one (``capture/live/YYYY/MM/DD/HH/<stream>-1-<time>-<uuid>``). Idempotent."""
    kms, iam = session.client("kms"), session.client("iam")
    types = {name: r["Type"] for name, r in template["Resources"].items()}

    def arn(logical: str) -> str:
        kind, ident = types[logical], physical[logical]
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{ident}"
        if kind == "AWS::IAM::Role":
            return str(iam.get_role(RoleName=ident)["Role"]["Arn"])
        if kind == "AWS::KMS::Key":  # (moto's DescribeKey fails on a key CloudFormation made)
            return next(str(k["KeyArn"]) for k in kms.list_keys()["Keys"] if k["KeyId"] == ident)
        raise ValueError(f"no ARN for {kind} ({logical})")

    def concrete(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            return arn(value["Fn::GetAtt"][0])
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in physical:
            return physical[value["Ref"]]
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            return _sub(value, parameters)
        if isinstance(value, dict):
            return {k: concrete(v) for k, v in value.items()}
        if isinstance(value, list):
            return [concrete(v) for v in value]
        return value

    config = concrete(resolve(props, template, parameters))
    name = config.pop("DeliveryStreamName")
    destination = config["ExtendedS3DestinationConfiguration"]
    static = destination["Prefix"].split("!{", 1)[0]
    destination["Prefix"] = static[: static.rfind("/") + 1]
    firehose = session.client("firehose")
    if name not in firehose.list_delivery_streams(Limit=100)["DeliveryStreamNames"]:
        firehose.create_delivery_stream(DeliveryStreamName=name, **config)
    return str(name)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix", "")
    if tags and (prefix or len(tags) > 1):
        where: dict[str, Any] = {"And": {"Prefix": prefix, "Tags": tags}}
    elif tags:
        where = {"Tag": tags[0]}
    else:
        where = {"Prefix": prefix}
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": where}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api


def _sub(value: Any, parameters: dict[str, str]) -> str:
    """A plain string, or an ``Fn::Sub`` over parameters only (``${NamePrefix}-${Stage}``)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = str(value["Fn::Sub"])
        for name, given in {"NamePrefix": "serverless-mlops", **parameters}.items():
            text = text.replace("${" + name + "}", given)
        return text
    return str(value)
