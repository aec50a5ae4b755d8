"""The data plane's cost profiles: dev goes without the interface endpoints (most of the idle cost)
and keeps what protects dev data; each stage deploys with its documented profile."""

from __future__ import annotations

import warnings

import boto3
import pytest
from moto import mock_aws

from mlops.cfn import (
    COST_PROFILES,
    cost_profile,
    deploy_parameters,
    deploy_stack,
    for_parameters,
    load_template,
)

# What the dev profile may change: the jobs' network, nothing else.
NETWORK = {
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Subnet",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Route",
}


def _resources(profile: str) -> dict:
    return for_parameters(load_template(), {"Stage": "dev", "CostProfile": profile})["Resources"]


def _of_type(resources: dict, kind: str) -> dict:
    return {k: r.get("Properties", {}) for k, r in resources.items() if r["Type"] == kind}


def test_the_dev_profile_creates_no_interface_endpoints_and_the_standard_one_creates_them():
    def interface(profile: str) -> list[str]:
        endpoints = _of_type(_resources(profile), "AWS::EC2::VPCEndpoint")
        return [k for k, e in endpoints.items() if e["VpcEndpointType"] == "Interface"]

    assert interface("dev") == []
    assert len(interface("standard")) >= 8


def test_the_dev_profile_changes_the_jobs_network_and_nothing_else():
    """Encryption, bucket policies, queues, tables, roles, alarms, the launch template: identical."""
    standard, dev = _resources("standard"), _resources("dev")
    changed = {k for k in standard.keys() | dev.keys() if standard.get(k) != dev.get(k)}
    assert changed
    for logical in changed:
        assert (standard.get(logical) or dev[logical])["Type"] in NETWORK, logical


@pytest.mark.parametrize("profile", COST_PROFILES)
def test_the_job_instances_accept_no_inbound_traffic_and_keep_imdsv2_with_one_hop(profile):
    resources = _resources(profile)
    groups = _of_type(resources, "AWS::EC2::SecurityGroup")
    for env in _of_type(resources, "AWS::Batch::ComputeEnvironment").values():
        compute = env["ComputeResources"]
        for ref in compute["SecurityGroupIds"]:
            group = groups[ref["Ref"]]
            assert "SecurityGroupIngress" not in group
            assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupEgress"]} == {
                ("tcp", 443, 443)
            }
        launch = resources[compute["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]["Properties"]
        options = launch["LaunchTemplateData"]["MetadataOptions"]
        assert options["HttpTokens"] == "required" and options["HttpPutResponseHopLimit"] == 1
    assert not _of_type(resources, "AWS::EC2::SecurityGroupIngress")


def test_only_the_dev_profile_gives_the_job_instances_public_ips_and_an_internet_route():
    for profile, public in (("standard", False), ("dev", True)):
        resources = _resources(profile)
        assert {s["MapPublicIpOnLaunch"] for s in _of_type(resources, "AWS::EC2::Subnet").values()} == {
            public
        }
        assert bool(_of_type(resources, "AWS::EC2::InternetGateway")) is public
        assert not _of_type(resources, "AWS::EC2::NatGateway")


def test_each_stage_deploys_with_its_documented_profile(monkeypatch):
    monkeypatch.delenv("COST_PROFILE", raising=False)
    assert (cost_profile("local"), cost_profile("dev"), cost_profile("prod")) == (
        "standard",
        "dev",
        "standard",
    )
    parameters = deploy_parameters("dev", "acme-mlops", image="123.dkr.ecr/x:1")
    assert parameters == {
        "Stage": "dev", "NamePrefix": "acme-mlops", "CostProfile": "dev", "JobImage": "123.dkr.ecr/x:1"
    }  # fmt: skip
    assert set(parameters) <= set(load_template()["Parameters"])
    assert "JobImage" not in deploy_parameters("prod", "acme-mlops")
    monkeypatch.setenv("COST_PROFILE", "dev")
    assert deploy_parameters("prod", "acme-mlops")["CostProfile"] == "dev"


def test_an_unknown_cost_profile_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("COST_PROFILE", "cheap")
    with pytest.raises(SystemExit, match=r"COST_PROFILE='cheap'.*standard, dev"):
        cost_profile("dev")


@pytest.mark.parametrize("profile", COST_PROFILES)
def test_each_profile_deploys_into_the_local_cloud_with_its_network(profile):
    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deploy_stack(boto3.session.Session(), "data-plane", {"Stage": "dev", "CostProfile": profile})
        ec2 = boto3.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.42.0.0/16"]}])["Vpcs"][0]["VpcId"]
        where = [{"Name": "vpc-id", "Values": [vpc]}]
        endpoints = ec2.describe_vpc_endpoints(Filters=where)["VpcEndpoints"]
        kinds = sorted(e["VpcEndpointType"] for e in endpoints)
        subnets = ec2.describe_subnets(Filters=where)["Subnets"]
        gateways = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
        routes = [r for t in ec2.describe_route_tables(Filters=where)["RouteTables"] for r in t["Routes"]]
        to_internet = [r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if profile == "dev":
            assert kinds == ["Gateway", "Gateway"]
            assert {s["MapPublicIpOnLaunch"] for s in subnets} == {True}
            (gateway,) = gateways["InternetGateways"]
            assert [r["GatewayId"] for r in to_internet] == [gateway["InternetGatewayId"]]
        else:
            assert kinds.count("Interface") >= 8 and kinds.count("Gateway") == 2
            assert {s["MapPublicIpOnLaunch"] for s in subnets} == {False}
            assert not gateways["InternetGateways"] and not to_internet
