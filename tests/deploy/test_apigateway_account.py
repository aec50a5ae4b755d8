"""The packaged deployment never replaces an account's API Gateway logging role.

API Gateway writes access logs with one CloudWatch role per account and region (its account
settings), shared by every API there. Found at 21cd3ef (issue 15, item 1): the packaged app stack
declared an ``AWS::ApiGateway::Account``, so deploying it replaced whatever role the account already
had. Now the app stack leaves the setting alone, and an account that has none yet gets one from a
stack of its own, deployed once and only there (`make package` prints how to tell); the
`chalice deploy` path sets one only where none is (``mlops.postdeploy``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR
from mlops.appinfo import functions
from mlops.package import (
    account_setup_instructions,
    apigateway_account_stack,
    apigateway_account_template,
    merge_template,
    package,
)
from mlops.policies import config_prefix
from tests.support import resource_arns, unscoped

STAGE = "dev"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _touches_the_account_setting(resources: dict[str, Any]) -> list[str]:
    found = []
    for name, resource in resources.items():
        if resource.get("Type") == "AWS::ApiGateway::Account":
            found.append(f"{name}: sets the account's CloudWatch role")
        if "ApiGatewayAccount" in _as_list(resource.get("DependsOn", [])):
            found.append(f"{name}: depends on the account setting")
        trust = json.dumps(resource.get("Properties", {}).get("AssumeRolePolicyDocument", {}))
        if resource.get("Type") == "AWS::IAM::Role" and "apigateway.amazonaws.com" in trust:
            found.append(f"{name}: a role for API Gateway's account setting")
    return found


def test_the_packaged_app_stack_leaves_the_account_s_api_gateway_logging_role_alone():
    merged = merge_template(STAGE, config_prefix(STAGE), functions(STAGE))["Resources"]
    assert _touches_the_account_setting(merged) == []
    packaged = json.loads((package(STAGE) / "sam.json").read_text())["Resources"]
    assert _touches_the_account_setting(packaged) == []


def test_an_account_without_a_logging_role_gets_one_from_a_stack_of_its_own():
    template = apigateway_account_template()
    resources = template["Resources"]
    assert sorted(r["Type"] for r in resources.values()) == ["AWS::ApiGateway::Account", "AWS::IAM::Role"]
    (role,) = (r for r in resources.values() if r["Type"] == "AWS::IAM::Role")
    # Deleting the stack must not leave the account setting naming a role that is gone.
    assert role["DeletionPolicy"] == role["UpdateReplacePolicy"] == "Retain"
    (policy,) = role["Properties"]["Policies"]
    arns = resource_arns(policy["PolicyDocument"])
    assert arns and [unscoped(a, "${AWS::AccountId}", "${AWS::Region}") for a in arns] == [None] * len(arns)
    assert "ManagedPolicyArns" not in role["Properties"]  # not every log group of the account


def test_make_package_writes_the_account_stack_and_says_when_to_deploy_it():
    out = package(STAGE)
    written = json.loads((out / "apigateway-account.json").read_text())
    assert written == apigateway_account_template()
    text = account_setup_instructions(STAGE, out)
    assert "aws apigateway get-account --query cloudwatchRoleArn" in text
    relative = str(Path(out / "apigateway-account.json").relative_to(PROJECT_DIR))
    assert f"--template-file {relative}" in text
    assert f"--stack-name {apigateway_account_stack(config_prefix(STAGE))}" in text
    assert "only" in text and "None" in text  # deployed only where the account has none
