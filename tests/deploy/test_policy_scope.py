"""Every ARN of a deployed policy names the account and the region it is deployed to.

Issue 15, item 5: "every ARN has * for account and region". IAM policy variables cannot fill them
(the IAM User Guide, "Where you can use policy variables": only in the resource part of an ARN,
after the fifth colon, never the account), so they are filled in where they are known: `make
deploy` renders the stage's files for the caller's account and region while `chalice deploy` reads
them (the committed files, with `*`, stay deployable by a plain `chalice deploy`), and the packaged
template names `${AWS::AccountId}` and `${AWS::Region}` of the stack it is deployed in.
"""

from __future__ import annotations

import json

import pytest

from mlops import policies
from mlops.appinfo import functions
from mlops.package import merge_template, role_logical_id
from tests.support import NO_ACCOUNT, resource_arns, unscoped

ACCOUNT, REGION = "111122223333", "eu-west-1"


def test_every_arn_of_a_policy_rendered_for_an_account_names_that_account_and_region():
    problems = [
        f"{stage}/{function}: {problem}"
        for stage in policies.DEPLOYED_STAGES
        for function in policies.FUNCTIONS
        for arn in resource_arns(policies.render(stage, function, account=ACCOUNT, region=REGION))
        if (problem := unscoped(arn, ACCOUNT, REGION))
    ]
    assert problems == []


def test_an_account_or_region_that_is_no_value_is_refused():
    for account, region in (("*", REGION), (ACCOUNT, "*"), ("", REGION), (ACCOUNT, ""), ("12345", REGION)):
        with pytest.raises(ValueError):
            policies.render("dev", "api_handler", account=account, region=region)


def test_make_deploy_scopes_the_stage_s_files_while_chalice_reads_them_then_puts_the_committed_ones_back():
    committed = {path: path.read_text() for path in policies.rendered()}
    with policies.scoped_files("dev", ACCOUNT, REGION) as written:
        assert sorted(written) == sorted(p for p in committed if p.name.startswith("policy-dev-"))
        for path in committed:
            document = json.loads(path.read_text())
            if path in written:
                arns = resource_arns(document)
                assert arns and [unscoped(a, ACCOUNT, REGION) for a in arns] == [None] * len(arns), path.name
            else:
                assert path.read_text() == committed[path], path.name  # another stage's: untouched
    assert {path: path.read_text() for path in committed} == committed
    with pytest.raises(RuntimeError), policies.scoped_files("prod", ACCOUNT, REGION):
        raise RuntimeError("chalice deploy failed")
    assert {path: path.read_text() for path in committed} == committed


def test_the_committed_files_stay_deployable_by_a_plain_chalice_deploy():
    """They are what `chalice deploy` reads when run by hand: valid for any account (`*`)."""
    for path, text in policies.rendered().items():
        assert path.read_text() == text
        for arn in resource_arns(json.loads(text)):
            service = arn.split(":")[2]
            if service not in NO_ACCOUNT:
                assert arn.split(":")[4] == "*", arn


def test_the_packaged_roles_name_the_stack_s_account_and_region():
    fns = functions("dev")
    resources = merge_template("dev", policies.config_prefix("dev"), fns)["Resources"]
    for fn in fns:
        (policy,) = resources[role_logical_id(fn)]["Properties"]["Policies"]
        arns = resource_arns(policy["PolicyDocument"])
        assert arns, fn.name
        problems = [p for arn in arns if (p := unscoped(arn, "${AWS::AccountId}", "${AWS::Region}"))]
        assert problems == [], fn.name
        expected = policies.render("dev", fn.name, account="${AWS::AccountId}", region="${AWS::Region}")
        assert policy["PolicyDocument"] == policies.for_cloudformation(expected)


def test_the_packaged_template_carries_the_scoped_roles():
    """The merge replaces Chalice's policy of each function's role (its roles are named
    ``<function>_role``, in CamelCase): in the packaged template every ARN names the stack's
    account and region."""
    from mlops.package import package

    template = json.loads((package("dev") / "sam.json").read_text())
    for fn in functions("dev"):
        role = template["Resources"][role_logical_id(fn)]
        assert role["Type"] == "AWS::IAM::Role"
        (policy,) = role["Properties"]["Policies"]
        arns = resource_arns(policy["PolicyDocument"])
        assert arns and all(unscoped(a, "${AWS::AccountId}", "${AWS::Region}") is None for a in arns), fn.name


def test_the_api_gateway_logging_role_the_post_deploy_step_creates_names_its_account():
    """Set only where an account has none (mlops.postdeploy). The role is named per prefix, not per
    region, and the account setting of every region may name it: any region, this account."""
    import boto3
    from moto import mock_aws

    from mlops.postdeploy import _account_role

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        iam = session.client("iam")
        _account_role(session.client("apigateway"), iam, "acme")
        document = iam.get_role_policy(RoleName="acme-apigateway-cloudwatch", PolicyName="push-api-logs")
        arns = resource_arns(document["PolicyDocument"])
        assert arns and all(arn.split(":")[4] == "123456789012" for arn in arns), arns
