"""What the jobs' network and hosts allow, read from the data-plane template as deployed.

moto runs the jobs on no network at all, so a job that cannot reach a service, or a container that
can reach the host's credentials, looks fine locally. These read the template instead."""

from __future__ import annotations

from typing import Any

from mlops.cfn import load_template

# A call to these needs a route out of the private subnets: an endpoint (or a NAT gateway).
# sts: botocore's GetCallerIdentity (a notifier building its topic's ARN needs it).
JOB_DEFINITIONS = {
    "TrainingJobDefinition": "TrainingJobRole",
    "BatchScoringJobDefinition": "BatchScoringJobRole",
}


def _resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def _endpoint_services(resources: dict[str, Any]) -> set[str]:
    services = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::EC2::VPCEndpoint":
            name = resource["Properties"]["ServiceName"]
            text = name["Fn::Sub"] if isinstance(name, dict) else name
            services.add(text.rsplit(".", 1)[-1])
    return services


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


def test_every_service_a_job_may_call_is_reachable_from_the_private_subnets():
    """Found at 21cd3ef: the scoring worker publishes job-end notifications to SNS, and builds the
    topic's ARN with STS, but the subnets had neither endpoint nor NAT: the notifications were lost."""
    resources = _resources()
    if any(r["Type"] == "AWS::EC2::NatGateway" for r in resources.values()):
        return
    reachable = _endpoint_services(resources)
    for definition, role in JOB_DEFINITIONS.items():
        # kms: used by S3, SQS and SNS on the job's behalf, never called by the job itself.
        needed = _role_services(resources, role) - {"kms"}
        if "sns" in needed and "NOTIFICATIONS_TOPIC_ARN" not in _environment(resources, definition):
            needed.add("sts")  # the notifier asks STS for the account to build the topic's ARN
        assert needed <= reachable, f"{definition} calls {sorted(needed - reachable)} with no route out"


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
