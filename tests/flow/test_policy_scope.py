"""Under the local cloud's enforced IAM every principal's policy names the account and region it runs
in, and a call to a same-named resource in another region or account is refused (issue 15, item 5:
"every ARN has * for account and region"). The local cloud renders the function policies for its
account (123456789012) and region (us-east-1), as `make deploy` does for yours; the job roles are
the template's (``!GetAtt`` ARNs)."""

from __future__ import annotations

import contextlib

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from mlops import localiam
from mlops.localcloud import ACCOUNT, REGION
from tests.support import resource_arns, unscoped

OTHER_REGION = "us-west-2"
OTHER_ACCOUNT = "999999999999"


def test_every_principal_of_the_local_cloud_names_its_account_and_region(local_cloud):
    principals = local_cloud.iam.principals
    assert {"api_handler", "ingest_upload", "training_job", "batch_scoring_job"} <= set(principals)
    problems = [
        f"{name}/{policy}: {problem}"
        for name, principal in principals.items()
        for policy, document in principal.policies.items()
        for arn in resource_arns(document)
        if (problem := unscoped(arn, ACCOUNT, REGION))
    ]
    assert problems == []


def _client(service: str, region: str):
    # A new session: the local IAM's check is registered into every session created after it started.
    return boto3.session.Session(region_name=region).client(service)


def _refused(call, *args, **kwargs) -> str:
    with localiam.expect_refusal(), pytest.raises(ClientError) as refused:
        call(*args, **kwargs)
    return str(refused.value.response["Error"]["Code"])


def test_a_same_named_queue_in_another_region_or_account_is_refused(local_cloud):
    settings = bootstrap.settings()
    home = _client("sqs", REGION)
    home_url = home.get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"]
    away = _client("sqs", OTHER_REGION)
    away_url = away.create_queue(QueueName=settings.retrain_queue)["QueueUrl"]  # as the operator
    with localiam.acting_as("ingest_upload"):  # it announces valid data on the retrain queue
        assert home.get_queue_url(QueueName=settings.retrain_queue)["QueueUrl"] == home_url
        assert _refused(away.get_queue_url, QueueName=settings.retrain_queue) == "AccessDenied"
        assert _refused(away.send_message, QueueUrl=away_url, MessageBody="{}") == "AccessDenied"
        foreign = home_url.replace(f"/{ACCOUNT}/", f"/{OTHER_ACCOUNT}/")
        assert foreign != home_url
        assert _refused(home.send_message, QueueUrl=foreign, MessageBody="{}") == "AccessDenied"
        owned = {"QueueName": settings.retrain_queue, "QueueOwnerAWSAccountId": OTHER_ACCOUNT}
        assert _refused(home.get_queue_url, **owned) == "AccessDenied"


def test_a_same_named_table_in_another_region_is_refused(local_cloud):
    settings = bootstrap.settings()
    away = _client("dynamodb", OTHER_REGION)
    with contextlib.suppress(away.exceptions.ResourceInUseException):  # made by an earlier run
        away.create_table(  # as the operator
            TableName=settings.uploads_table,
            KeySchema=[{"AttributeName": "upload_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "upload_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    key = {"upload_id": {"S": "nothing-here"}}
    with localiam.acting_as("api_handler"):
        assert "Item" not in _client("dynamodb", REGION).get_item(TableName=settings.uploads_table, Key=key)
        code = _refused(away.get_item, TableName=settings.uploads_table, Key=key)
    assert code == "AccessDeniedException"
