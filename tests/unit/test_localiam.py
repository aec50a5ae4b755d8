"""The local cloud's IAM check: policy evaluation as IAM does it, and the authorisations AWS performs
for each call (mlops/localiam.py). Pure: no moto."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.localiam import (
    Account,
    Principal,
    Request,
    UnmodelledCall,
    describe,
    evaluate,
    statement_needs,
)

ACCOUNT = Account(
    region="us-east-1",
    account="123456789012",
    key_arn="arn:aws:kms:us-east-1:123456789012:key/k-1",
    key_tags=(("mlops-key", "app-dev"),),
    encrypted_buckets=frozenset({"data"}),
    encrypted_queues=frozenset({"q"}),
    encrypted_topics=frozenset({"t"}),
    encrypted_parameter_paths=("/app/dev/tokens/",),
)


def _allow(actions, resources, **condition):
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _policy(*statements):
    return {"p": {"Version": "2012-10-17", "Statement": list(statements)}}


def test_an_allow_on_a_matching_action_and_resource_allows_and_names_the_statement():
    policy = _policy({**_allow(["s3:GetObject"], "arn:aws:s3:::data/validated/*"), "Sid": "Read"})
    decision = evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::data/validated/iris/a.csv"))
    assert decision.allowed and decision.allowed_by == ("p/Read",)


def test_nothing_matching_is_an_implicit_deny():
    policy = _policy(_allow(["s3:GetObject"], "arn:aws:s3:::data/validated/*"))
    assert not evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::data/incoming/a.csv")).allowed
    assert not evaluate(policy, Request("s3:PutObject", "arn:aws:s3:::data/validated/a.csv")).allowed


def test_an_explicit_deny_wins_over_any_allow():
    policy = _policy(
        _allow("dynamodb:*", "*"),
        {"Effect": "Deny", "Action": ["dynamodb:UpdateItem", "dynamodb:DeleteItem"], "Resource": "*"},
    )
    assert evaluate(policy, Request("dynamodb:PutItem", "arn:aws:dynamodb:r:a:table/audit")).allowed
    decision = evaluate(policy, Request("dynamodb:UpdateItem", "arn:aws:dynamodb:r:a:table/audit"))
    assert not decision.allowed and decision.denied_by


def test_actions_match_without_case_and_resources_with_case():
    policy = _policy(_allow("S3:getobject", "arn:aws:s3:::Data/*"))
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::Data/x")).allowed
    assert not evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::data/x")).allowed


def test_a_versioned_read_needs_get_object_version():
    """The batch role's finding: every shard read passes a version id."""
    policy = _policy(_allow(["s3:GetObject"], "arn:aws:s3:::other/*"))
    requests = describe("s3", "GetObject", {"Bucket": "other", "Key": "k", "VersionId": "v1"}, ACCOUNT)
    assert [r.action for r in requests] == ["s3:GetObjectVersion"]
    assert not evaluate(policy, requests[0]).allowed


def test_reading_an_object_encrypted_with_the_stage_key_needs_decrypt_on_that_key():
    requests = describe("s3", "GetObject", {"Bucket": "data", "Key": "k"}, ACCOUNT)
    assert [r.action for r in requests] == ["s3:GetObject", "kms:Decrypt"]
    key = requests[1]
    with_tag = _policy(
        _allow("kms:Decrypt", "arn:aws:kms:*:*:key/*", StringEquals={"aws:ResourceTag/mlops-key": "app-dev"})
    )
    other_tag = _policy(
        _allow("kms:Decrypt", "arn:aws:kms:*:*:key/*", StringEquals={"aws:ResourceTag/mlops-key": "app-prod"})
    )
    assert evaluate(with_tag, key).allowed
    assert not evaluate(other_tag, key).allowed


def test_listing_carries_the_prefix_condition_key_and_no_prefix_means_no_key():
    policy = _policy(_allow("s3:ListBucket", "arn:aws:s3:::data", StringLike={"s3:prefix": ["validated/*"]}))
    scoped = describe("s3", "ListObjectsV2", {"Bucket": "data", "Prefix": "validated/iris/"}, ACCOUNT)[0]
    other = describe("s3", "ListObjectsV2", {"Bucket": "data", "Prefix": "incoming/"}, ACCOUNT)[0]
    everything = describe("s3", "ListObjectsV2", {"Bucket": "data"}, ACCOUNT)[0]
    assert evaluate(policy, scoped).allowed
    assert not evaluate(policy, other).allowed
    assert not evaluate(policy, everything).allowed


def test_a_transaction_needs_each_of_its_items_actions():
    params = {
        "TransactItems": [
            {"Put": {"TableName": "audit", "Item": {}}},
            {"Update": {"TableName": "registry", "Key": {}}},
            {"ConditionCheck": {"TableName": "registry", "Key": {}}},
        ]
    }
    actions = [
        (r.action, r.resource.rsplit("/", 1)[-1])
        for r in describe("dynamodb", "TransactWriteItems", params, ACCOUNT)
    ]
    assert actions == [
        ("dynamodb:PutItem", "audit"),
        ("dynamodb:UpdateItem", "registry"),
        ("dynamodb:ConditionCheckItem", "registry"),
    ]


def test_a_query_on_an_index_is_authorised_on_the_index():
    request = describe("dynamodb", "Query", {"TableName": "registry", "IndexName": "by-model"}, ACCOUNT)[0]
    assert request.resource == "arn:aws:dynamodb:us-east-1:123456789012:table/registry/index/by-model"
    assert not evaluate(
        _policy(_allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/registry")), request
    ).allowed


def test_describing_alarms_by_prefix_is_authorised_on_the_prefix_s_alarms():
    (request,) = describe("monitoring", "DescribeAlarms", {"AlarmNamePrefix": "app-dev-"}, ACCOUNT)
    assert request == Request(
        "cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:app-dev-*"
    )
    stage_alarms = _allow("cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:*:*:alarm:app-dev-*")
    assert evaluate(_policy(stage_alarms), request).allowed
    (everything,) = describe("monitoring", "DescribeAlarms", {}, ACCOUNT)
    assert not evaluate(_policy(stage_alarms), everything).allowed  # all alarms: more than the stage's


def test_sending_to_an_encrypted_queue_needs_the_key_and_reading_needs_decrypt():
    url = "http://127.0.0.1:1/123456789012/q"
    assert [r.action for r in describe("sqs", "SendMessageBatch", {"QueueUrl": url}, ACCOUNT)] == [
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ]
    assert [r.action for r in describe("sqs", "ReceiveMessage", {"QueueUrl": url}, ACCOUNT)] == [
        "sqs:ReceiveMessage",
        "kms:Decrypt",
    ]


def test_a_decrypted_token_lookup_needs_decrypt_only():
    requests = describe(
        "ssm", "GetParameter", {"Name": "/app/dev/tokens/abc", "WithDecryption": True}, ACCOUNT
    )
    assert [r.action for r in requests] == ["ssm:GetParameter", "kms:Decrypt"]
    assert requests[0].resource == "arn:aws:ssm:us-east-1:123456789012:parameter/app/dev/tokens/abc"


def test_a_call_the_module_cannot_describe_is_refused_loudly():
    with pytest.raises(UnmodelledCall):
        describe("s3", "PutBucketPolicy", {"Bucket": "data"}, ACCOUNT)
    with pytest.raises(UnmodelledCall):
        describe("lambda", "Invoke", {}, ACCOUNT)


@given(st.text(alphabet="abc/-", max_size=12), st.text(alphabet="abc/-", max_size=12))
def test_a_trailing_star_matches_exactly_the_keys_under_its_prefix(prefix, rest):
    policy = _policy(_allow("s3:GetObject", f"arn:aws:s3:::b/{prefix}*"))
    key = "x" + rest
    assert evaluate(policy, Request("s3:GetObject", f"arn:aws:s3:::b/{prefix}{rest}")).allowed
    assert evaluate(policy, Request("s3:GetObject", f"arn:aws:s3:::b/{key}")).allowed == key.startswith(
        prefix
    )


def _call(action, resource):
    return {"principal": "fn", "action": action, "resource": resource, "context": [], "allowed": True}


def test_statement_needs_names_the_calls_each_statement_alone_allows():
    principal = Principal(
        "fn",
        _policy(
            {**_allow("s3:GetObject", "arn:aws:s3:::data/a/*"), "Sid": "ReadA"},
            {**_allow("s3:GetObject", "arn:aws:s3:::data/*"), "Sid": "ReadAll"},
            {**_allow("s3:PutObject", "arn:aws:s3:::data/b/*"), "Sid": "WriteB"},
            {**_allow(["logs:CreateLogStream", "logs:PutLogEvents"], "*"), "Sid": "Logs"},
        ),
    )
    calls = [_call("s3:GetObject", "arn:aws:s3:::data/c/1"), _call("s3:GetObject", "arn:aws:s3:::data/a/1")]
    uses = {u.sid: u for u in statement_needs({"fn": principal}, calls)}
    assert uses["ReadAll"].needed_by == ("s3:GetObject arn:aws:s3:::data/c/1",)
    assert uses["ReadA"].needed_by == ()  # the broader statement allows its call too: redundant
    assert uses["WriteB"].needed_by == () and not uses["WriteB"].runtime_only
    assert uses["Logs"].runtime_only


def test_an_action_no_call_needs_is_named_within_a_needed_statement():
    """The token authorizer's finding: kms:GenerateDataKey beside the kms:Decrypt it uses."""
    principal = Principal(
        "fn", _policy({**_allow(["kms:Decrypt", "kms:GenerateDataKey"], "*"), "Sid": "Key"})
    )
    uses = statement_needs({"fn": principal}, [_call("kms:Decrypt", "arn:aws:kms:r:a:key/k")])
    assert uses[0].needed_by and uses[0].unused_actions == ("kms:GenerateDataKey",)


def test_a_child_is_its_principal_on_every_thread_it_starts(tmp_path, monkeypatch):
    """A scoring worker reads its shards on a thread of its own: that read is checked too."""
    import json
    import threading

    from chalicelib.adapters import aws
    from mlops import localiam

    spec = {
        "principal": "batch_scoring_job",
        "role_arn": "arn:aws:iam::123456789012:role/scoring",
        "policies": _policy(_allow("s3:GetObject", "arn:aws:s3:::data/validated/*")),
        "account": ACCOUNT.to_json(),
        "credentials": None,
    }
    (tmp_path / "batch_scoring_job.json").write_text(json.dumps(spec))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing is sent: refused first
    iam = localiam.install_as("batch_scoring_job", tmp_path)
    errors: list[Exception] = []

    def read() -> None:
        try:
            aws.client("s3").get_object(Bucket="data", Key="validated/x.csv", VersionId="v1")
        except Exception as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    finally:
        localiam.uninstall(iam)
    assert "AccessDenied" in str(errors[0]) and "s3:GetObjectVersion" in str(errors[0])
    recorded = localiam.child_calls(tmp_path)
    assert [(c["principal"], c["action"], c["allowed"]) for c in recorded] == [
        ("batch_scoring_job", "s3:GetObjectVersion", False)
    ]


# --- the account and the region a call reaches (issue 15: ARNs scoped to them) -------------------


def test_a_queue_is_the_one_in_the_account_its_url_names_and_the_region_the_client_calls():
    url = "http://127.0.0.1:1/999999999999/q"
    (request, *_) = describe("sqs", "SendMessage", {"QueueUrl": url}, ACCOUNT, region="eu-west-1")
    assert request.resource == "arn:aws:sqs:eu-west-1:999999999999:q"
    (named,) = describe("sqs", "GetQueueUrl", {"QueueName": "q2"}, ACCOUNT, region="eu-west-1")
    assert named.resource == "arn:aws:sqs:eu-west-1:123456789012:q2"
    (owned,) = describe(
        "sqs", "GetQueueUrl", {"QueueName": "q2", "QueueOwnerAWSAccountId": "999999999999"}, ACCOUNT
    )
    assert owned.resource == "arn:aws:sqs:us-east-1:999999999999:q2"


def test_a_table_or_parameter_named_by_name_is_the_callers_in_the_clients_region_by_arn_that_one():
    (table,) = describe("dynamodb", "GetItem", {"TableName": "t"}, ACCOUNT, region="eu-west-1")
    assert table.resource == "arn:aws:dynamodb:eu-west-1:123456789012:table/t"
    other = "arn:aws:dynamodb:us-west-2:999999999999:table/t"
    assert describe("dynamodb", "GetItem", {"TableName": other}, ACCOUNT)[0].resource == other
    (parameter,) = describe("ssm", "GetParameter", {"Name": "/x/y"}, ACCOUNT, region="eu-west-1")
    assert parameter.resource == "arn:aws:ssm:eu-west-1:123456789012:parameter/x/y"
    shared = "arn:aws:ssm:us-west-2:999999999999:parameter/x/y"
    assert describe("ssm", "GetParameter", {"Name": shared}, ACCOUNT)[0].resource == shared


def test_a_policy_scoped_to_an_account_and_region_refuses_the_same_name_elsewhere():
    policy = _policy(_allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q"))
    for url, region, allowed in (
        ("http://h/123456789012/q", "us-east-1", True),
        ("http://h/123456789012/q", "us-west-2", False),
        ("http://h/999999999999/q", "us-east-1", False),
    ):
        (request, *_) = describe("sqs", "SendMessage", {"QueueUrl": url}, ACCOUNT, region=region)
        assert evaluate(policy, request).allowed is allowed, (url, region)
