"""Loose ends of the Batch and queue wiring found at 21cd3ef (issue 15, "Loose ends"): the batch work
queue's DLQ, consumed by a function, had no DLQ of its own (a poison message there failed 50 times in
90 s, for ever, and `mlops status` did not show it); the Batch instances' EBS volumes were not
encrypted; the jobs' logs went to Batch's default group, kept for ever."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.appinfo import functions
from mlops.cfn import load_template

STAGE = "dev"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def _queue_names(resources: dict[str, Any]) -> dict[str, str]:
    """Logical id -> the queue's name with the stage's prefix left as `${...}`."""
    return {
        logical: r["Properties"]["QueueName"]["Fn::Sub"]
        for logical, r in resources.items()
        if r["Type"] == "AWS::SQS::Queue"
    }


def _redrive_target(resource: dict[str, Any]) -> str | None:
    policy = resource["Properties"].get("RedrivePolicy")
    if not policy:
        return None
    target = policy["deadLetterTargetArn"]
    return str(target["Fn::GetAtt"][0] if isinstance(target, dict) else target)


def test_every_queue_a_function_consumes_sets_a_failing_message_aside_after_a_few_receives(resources):
    """A message its consumer cannot handle must leave the queue after at most 5 receives, into a
    queue no function consumes (else it cycles for ever), and that queue has an alarm."""
    names = _queue_names(resources)
    suffix = {
        logical: name.split("}-", 2)[-1] for logical, name in names.items()
    }  # ingest, batch-work-dlq...
    consumed = {f.queue.split(f"-{STAGE}-", 1)[1] for f in functions(STAGE) if f.kind == "sqs" and f.queue}
    assert "batch-work-dlq" in consumed  # batch_shard_failed
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"].get("Dimensions", [])
        if isinstance(d.get("Value"), dict) and "Fn::GetAtt" in d["Value"]
    }
    for logical in names:
        if suffix[logical] not in consumed:
            continue
        target = _redrive_target(resources[logical])
        assert target is not None, f"{suffix[logical]} is consumed and has no DLQ"
        receives = int(resources[logical]["Properties"]["RedrivePolicy"]["maxReceiveCount"])
        # A DLQ that is consumed: its messages arrive with the receives they had (moto keeps the
        # count), so its own limit leaves its consumer at least 3 attempts beyond its source's.
        sources = [
            int(r["Properties"]["RedrivePolicy"]["maxReceiveCount"])
            for r in resources.values()
            if r["Type"] == "AWS::SQS::Queue" and _redrive_target(r) == logical
        ]
        assert receives <= 5 + max(sources, default=0), suffix[logical]
        assert receives >= 3 + max(sources, default=0), suffix[logical]
        assert suffix[target] not in consumed, f"{suffix[logical]}'s DLQ {suffix[target]} is consumed too"
        assert target in alarmed, f"{suffix[target]} has no alarm"


def test_batch_instances_volumes_are_encrypted(resources):
    data = resources["BatchLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    mappings = data.get("BlockDeviceMappings", [])
    assert mappings, "no block device mapping: the root volume follows the account's default (unencrypted)"
    for mapping in mappings:
        assert mapping["Ebs"]["Encrypted"] is True, mapping


def test_batch_job_logs_expire_and_are_encrypted_with_the_stage_key(resources):
    definitions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Batch::JobDefinition"}
    assert len(definitions) == 2
    for logical, definition in definitions.items():
        config = definition["Properties"]["ContainerProperties"].get("LogConfiguration")
        assert config and config["LogDriver"] == "awslogs", logical
        group = config["Options"]["awslogs-group"]
        assert isinstance(group, dict) and "Ref" in group, (logical, group)
        group_props = resources[group["Ref"]]["Properties"]
        assert group_props["RetentionInDays"] == {"Fn::FindInMap": ["Retention", {"Ref": "Stage"}, "LogDays"]}
        assert group_props["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def test_status_shows_what_the_batch_work_dlq_set_aside():
    """`mlops status` (and the demo, and the deploy's smoke check) list every queue a function
    consumes with its DLQ's depth: the batch work DLQ's own DLQ included."""
    import boto3
    from moto import mock_aws

    from chalicelib.settings import Settings, dlq_name
    from mlops.cfn import deploy_stage
    from mlops.status import queue_depths

    with mock_aws():
        settings = Settings.for_stage("local")
        deploy_stage(settings)
        sqs = boto3.client("sqs")
        set_aside = dlq_name(dlq_name(settings.batch_work_queue))
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=set_aside)["QueueUrl"], MessageBody="{}")
        rows = {name: dlq for name, _, _, dlq in queue_depths(sqs, settings.consumed_queues)}
    assert rows[dlq_name(settings.batch_work_queue)] == 1
