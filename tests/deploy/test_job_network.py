"""What the jobs' network and hosts allow, read from the data-plane template as deployed.

moto runs the jobs on no network at all, so a job that cannot reach a service, or a container that
can reach the host's credentials, looks fine locally. These read the template instead."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.cfn import COST_PROFILES, for_parameters, load_template

# A call to these needs a route out of the jobs' subnets: an endpoint, a NAT gateway or an internet
# gateway (with public IPs). sts: botocore's GetCallerIdentity (a notifier building its topic's ARN).
JOB_DEFINITIONS = {
    "TrainingJobDefinition": "TrainingJobRole",
    "BatchScoringJobDefinition": "BatchScoringJobRole",
}
EVERYTHING = {"*"}
# What the container instances call themselves: ECS to join the cluster (ecs, ecs-agent,
# ecs-telemetry), ECR to pull the image (ecr.api, ecr.dkr; layers from S3), CloudWatch Logs (awslogs).
INSTANCE_SERVICES = {"ecs", "ecs-agent", "ecs-telemetry", "ecr.api", "ecr.dkr", "s3", "logs"}


def _resources(profile: str = "standard") -> dict[str, Any]:
    """The data plane as CloudFormation creates it with this cost profile."""
    return dict(for_parameters(load_template(), {"Stage": "dev", "CostProfile": profile})["Resources"])


def _ref(value: Any) -> str:
    return value["Ref"] if isinstance(value, dict) and "Ref" in value else value["Fn::GetAtt"][0]


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r.get("Properties", {}) for k, r in resources.items() if r["Type"] == kind}


def _reachable_services(resources: dict[str, Any]) -> set[str]:
    """The services the Batch instances' subnets can reach ({"*"}: any), from their routes."""
    environments = _of_type(resources, "AWS::Batch::ComputeEnvironment").values()
    subnets = {_ref(s) for env in environments for s in env["ComputeResources"]["Subnets"]}
    assert subnets
    tables = {
        _ref(a["RouteTableId"])
        for a in _of_type(resources, "AWS::EC2::SubnetRouteTableAssociation").values()
        if _ref(a["SubnetId"]) in subnets
    }
    attached = {
        _ref(a["InternetGatewayId"]) for a in _of_type(resources, "AWS::EC2::VPCGatewayAttachment").values()
    }
    default_routes = [
        r
        for r in _of_type(resources, "AWS::EC2::Route").values()
        if r.get("DestinationCidrBlock") == "0.0.0.0/0" and _ref(r["RouteTableId"]) in tables
    ]
    public_ips = all(
        _of_type(resources, "AWS::EC2::Subnet")[s].get("MapPublicIpOnLaunch") is True for s in subnets
    )
    if any("NatGatewayId" in r for r in default_routes) or (
        public_ips and any("GatewayId" in r and _ref(r["GatewayId"]) in attached for r in default_routes)
    ):
        return EVERYTHING
    services = set()
    for endpoint in _of_type(resources, "AWS::EC2::VPCEndpoint").values():
        if endpoint["VpcEndpointType"] == "Interface":
            routed = subnets <= {_ref(s) for s in endpoint.get("SubnetIds", [])}
        else:
            routed = tables <= {_ref(t) for t in endpoint.get("RouteTableIds", [])}
        if routed:
            services.add(_service(endpoint))
    return services


def _service(endpoint: dict[str, Any]) -> str:
    """com.amazonaws.${AWS::Region}.ecr.api -> ecr.api"""
    name = endpoint["ServiceName"]
    return (name["Fn::Sub"] if isinstance(name, dict) else name).split("${AWS::Region}.", 1)[-1]


def _role_services(resources: dict[str, Any], role: str) -> set[str]:
    services = set()
    for policy in resources[role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            services |= {a.split(":", 1)[0] for a in actions}
    return services


def _environment(resources: dict[str, Any], definition: str) -> dict[str, Any]:
    container = resources[definition]["Properties"]["ContainerProperties"]
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


@pytest.mark.parametrize("profile", COST_PROFILES)
def test_every_service_a_job_may_call_is_reachable_from_the_private_subnets(profile):
    """Found at 21cd3ef: the scoring worker publishes job-end notifications to SNS, and builds the
    topic's ARN with STS, but the subnets had neither endpoint nor NAT: the notifications were lost.
    Each cost profile must route them: the standard one through endpoints, dev through the internet."""
    resources = _resources(profile)
    reachable = _reachable_services(resources)
    for definition, role in JOB_DEFINITIONS.items():
        # kms: used by S3, SQS and SNS on the job's behalf, never called by the job itself.
        needed = (_role_services(resources, role) - {"kms"}) | INSTANCE_SERVICES
        if "sns" in needed and "NOTIFICATIONS_TOPIC_ARN" not in _environment(resources, definition):
            needed.add("sts")  # the notifier asks STS for the account to build the topic's ARN
        if reachable != EVERYTHING:
            assert needed <= reachable, f"{definition} calls {sorted(needed - reachable)} with no route out"


def test_s3_and_dynamodb_stay_on_gateway_endpoints_in_every_profile():
    """The internet route of the dev profile carries the other services only: S3 and DynamoDB (the
    data) keep the free gateway endpoints, the S3 one limited to the account's buckets."""
    for profile in COST_PROFILES:
        resources = _resources(profile)
        gateways = {
            _service(e): e
            for e in _of_type(resources, "AWS::EC2::VPCEndpoint").values()
            if e["VpcEndpointType"] == "Gateway"
        }
        assert set(gateways) == {"s3", "dynamodb"}, profile
        assert "PolicyDocument" in gateways["s3"], profile


def test_job_containers_cannot_reach_the_instance_metadata_service():
    """Found at 21cd3ef: a hop limit of 2 let every job container take the instance role's
    credentials from IMDS (one hop further than the host). With 1, only the host reaches it."""
    resources = _resources()
    templates = [r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    assert templates
    for template in templates:
        options = template["Properties"]["LaunchTemplateData"]["MetadataOptions"]
        assert options["HttpTokens"] == "required"
        assert options.get("HttpPutResponseHopLimit", 1) == 1


def test_data_resources_outlive_their_stack():
    """Found at 21cd3ef: no DeletionPolicy anywhere, so deleting (or replacing) the data-plane stack
    deleted the tables (the registry and its audit ledger included) and scheduled the key, without
    which no encrypted object can be read again, for deletion."""
    kinds = {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key"}
    resources = _resources()
    data = {name: r for name, r in resources.items() if r["Type"] in kinds}
    assert {"DataBucket", "ModelsBucket", "RegistryTable", "AuditTable", "DataKey"} <= set(data)
    for name, resource in data.items():
        # Retained on deletion, except after a failed first creation (nothing to keep, and a retry
        # would meet their names): test_rehearsal_resume.py fails that step and re-runs it.
        assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name
