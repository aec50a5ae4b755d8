"""Which endpoint the AWS CLI plugin of `mlops env` gives a service (mlops/awscli_local.py)."""

from __future__ import annotations

from types import SimpleNamespace

from mlops.awscli_local import configured_endpoint, use_configured_endpoint

LOCAL = "http://127.0.0.1:4566"


def test_a_service_takes_its_own_variable_before_the_general_one():
    environ = {"AWS_ENDPOINT_URL": LOCAL, "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9324"}
    assert configured_endpoint("sqs", environ) == "http://127.0.0.1:9324"
    assert configured_endpoint("s3", environ) == LOCAL


def test_a_dashed_service_name_reads_its_variable_with_underscores():
    assert configured_endpoint("resource-groups", {"AWS_ENDPOINT_URL_RESOURCE_GROUPS": LOCAL}) == LOCAL


def test_no_variable_or_ignoring_them_leaves_the_cli_alone():
    assert configured_endpoint("sqs", {}) is None
    assert configured_endpoint("sqs", {"AWS_ENDPOINT_URL": ""}) is None
    ignoring = {"AWS_ENDPOINT_URL": LOCAL, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert configured_endpoint("sqs", ignoring) is None


def test_an_endpoint_typed_on_the_command_line_wins(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", LOCAL)
    typed = SimpleNamespace(command="sqs", endpoint_url="http://elsewhere:1")
    untyped = SimpleNamespace(command="sqs", endpoint_url=None)

    use_configured_endpoint(parsed_globals=typed)
    use_configured_endpoint(parsed_globals=untyped)

    assert typed.endpoint_url == "http://elsewhere:1"
    assert untyped.endpoint_url == LOCAL
