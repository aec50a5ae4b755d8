"""Training on AWS Batch: the template's spot compute, retry strategy, job role and runs table, read
back from moto (Batch without Docker: jobs run nothing). What ``BatchTrainingLauncher`` submits:
tests/adapters/test_batch_submit.py; job names: tests/unit/test_job_names.py."""

from __future__ import annotations

import ast
import json
from typing import Any

import boto3

from chalicelib.settings import Settings
from mlops.cfn import load_template


def _training_definition(settings: Settings) -> dict[str, Any]:
    definitions = boto3.client("batch").describe_job_definitions(
        jobDefinitionName=settings.training_job_definition, status="ACTIVE"
    )["jobDefinitions"]
    assert len(definitions) == 1
    return definitions[0]


def test_retry_strategy_retries_spot_reclaims_and_exits_on_anything_else(batch_stack):
    settings, _ = batch_stack
    strategy = _training_definition(settings)["retryStrategy"]
    assert strategy["attempts"] >= 2
    rules = [
        {k: (v.upper() if k == "action" else v) for k, v in r.items()} for r in strategy["evaluateOnExit"]
    ]
    # Order matters: Batch applies the first matching rule, and retries when none matches.
    assert rules == [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]


def test_every_attempt_has_a_timeout():
    # moto's CloudFormation drops Timeout (it reads a lowercase `timeout`), so read the template.
    definition = load_template()["Resources"]["TrainingJobDefinition"]["Properties"]
    assert 0 < definition["Timeout"]["AttemptDurationSeconds"] <= 4 * 3600


def test_job_definition_runs_the_training_entry_point_with_the_run_parameters(batch_stack):
    settings, resources = batch_stack
    definition = _training_definition(settings)
    container = definition["containerProperties"]
    assert container["command"] == [
        "python",
        "-m",
        "training.main",
        "--run-id",
        "Ref::run_id",
        "--dataset",
        "Ref::dataset",
    ]
    assert set(definition["parameters"]) == {"run_id", "dataset"}
    requirements = {r["type"]: r["value"] for r in container["resourceRequirements"]}
    assert requirements == {"VCPU": "2", "MEMORY": "4096"}
    assert container["jobRoleArn"].endswith(f":role/{resources['TrainingJobRole']}")
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["DATA_BUCKET"] == settings.data_bucket
    assert env["MODELS_BUCKET"] == settings.models_bucket
    assert env["RUNS_TABLE"] == settings.runs_table
    assert env["MLOPS_STAGE"] == settings.stage


def _compute_environments(arns: list[str]) -> dict[str, dict[str, Any]]:
    envs = boto3.client("batch").describe_compute_environments(computeEnvironments=arns)
    return {e["computeEnvironmentArn"]: e for e in envs["computeEnvironments"]}


def _queue_order(name: str) -> list[str]:
    (queue,) = boto3.client("batch").describe_job_queues(jobQueues=[name])["jobQueues"]
    assert queue["state"] == "ENABLED"
    return [
        o["computeEnvironment"] for o in sorted(queue["computeEnvironmentOrder"], key=lambda o: o["order"])
    ]


def test_spot_queue_tries_spot_first_then_on_demand(batch_stack):
    settings, _ = batch_stack
    order = _queue_order(settings.spot_job_queue)
    envs = _compute_environments(order)
    assert [envs[arn]["computeResources"]["type"] for arn in order] == ["SPOT", "EC2"]
    spot = envs[order[0]]["computeResources"]
    assert envs[order[0]]["type"] == "MANAGED"
    assert spot["allocationStrategy"] == "SPOT_CAPACITY_OPTIMIZED"
    assert int(spot["minvCpus"]) == 0  # nothing runs, nothing is paid, between trainings
    assert len(spot["subnets"]) == 2 and spot["securityGroupIds"]


def test_on_demand_queue_uses_only_the_on_demand_environment(batch_stack):
    settings, _ = batch_stack
    order = _queue_order(settings.ondemand_job_queue)
    envs = _compute_environments(order)
    assert [envs[arn]["computeResources"]["type"] for arn in order] == ["EC2"]
    assert order[0] == _queue_order(settings.spot_job_queue)[1]


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:  # moto's CloudFormation stores an inline policy as the dict's repr
            document = ast.literal_eval(document)
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_training_job_role_is_least_privilege(batch_stack):
    settings, resources = batch_stack
    iam = boto3.client("iam")
    role = resources["TrainingJobRole"]
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert names
    statements = [
        s
        for name in names
        for s in _statements(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    ]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        assert not {"*", "s3:*", "dynamodb:*", "kms:*", "sqs:*"} & set(actions), statement
        assert not any(a.startswith(("s3:Delete", "dynamodb:Delete", "iam:")) for a in actions), statement
        if any(a.startswith(("s3:", "dynamodb:", "kms:", "sqs:")) for a in actions):
            assert "*" not in _as_list(statement["Resource"]), statement
    # Objects are readable under the three input prefixes and writable under models/ only.
    objects = {
        resource
        for s in statements
        for resource in _as_list(s["Resource"])
        if "s3:GetObject" in _as_list(s["Action"]) or "s3:PutObject" in _as_list(s["Action"])
    }
    assert {r.rsplit(":::", 1)[1] for r in objects} == {
        "serverless-mlops-local-data/validated/*",
        "serverless-mlops-local-data/manifests/*",
        "serverless-mlops-local-data/contracts/*",
        "serverless-mlops-local-models/models/*",
    }
    writable = {
        r for s in statements if "s3:PutObject" in _as_list(s["Action"]) for r in _as_list(s["Resource"])
    }
    assert writable == {"arn:aws:s3:::serverless-mlops-local-models/models/*"}
    # The only queue it may write to: the retrain queue (a run's end, for coalesced triggers).
    queues = {
        r
        for s in statements
        if any(a.startswith("sqs:") for a in _as_list(s["Action"]))
        for r in _as_list(s["Resource"])
    }
    assert [q.rsplit(":", 1)[1] for q in queues] == [settings.retrain_queue]


def test_training_job_role_has_no_managed_policies():
    # moto's CloudFormation does not attach ManagedPolicyArns, so this is checked on the template.
    resources = load_template()["Resources"]
    assert "ManagedPolicyArns" not in resources["TrainingJobRole"]["Properties"]
    attached = [
        r
        for r in resources.values()
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and {"Ref": "TrainingJobRole"} in r["Properties"].get("Roles", [])
    ]
    assert attached == []


def test_runs_table_has_the_run_and_event_keys(batch_stack):
    settings, _ = batch_stack
    table = boto3.client("dynamodb").describe_table(TableName=settings.runs_table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
