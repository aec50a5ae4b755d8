"""`eval "$(mlops env)"` points every AWS CLI command at the local cloud, `aws sqs` included (issue 18).

The AWS CLI (v1) sends ``sqs`` (and ``emr``, ``rds``...) to a fixed host (``queue.amazonaws.com``)
unless ``--endpoint-url`` is on the command line: it sets that host as if the user had typed it, so
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_SQS``) never apply. ``mlops env`` now also names a
config file whose plugin (``mlops.awscli_local``) uses the configured endpoint instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import bootstrap

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]
HANG_S = 120  # a guard against a hang only


@pytest.fixture(scope="module")
def cli_env(local_cloud) -> dict[str, str]:
    """Only what a shell has after `eval "$(mlops env)"`: no AWS setting of the test process."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_", "POWERTOOLS_"))}
    exports = subprocess.run(
        [str(BIN / "mlops"), "env"],
        cwd=PROJECT,
        env={**base, "MLOPS_LOCAL_PORT": str(local_cloud.port)},
        capture_output=True,
        text=True,
        check=True,
        timeout=HANG_S,
    )
    env = dict(base)
    for line in exports.stdout.splitlines():
        key, value = line.removeprefix("export ").split("=", 1)
        env[key] = value
    return env


def _aws(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "aws"), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )


def test_mlops_env_prints_no_endpoint_flag_but_the_endpoint_variable(cli_env, local_cloud):
    assert cli_env["AWS_ENDPOINT_URL"] == local_cloud.endpoint


def test_aws_sqs_list_queues_reaches_the_local_cloud(cli_env, local_cloud):
    result = _aws(cli_env, "sqs", "list-queues")

    assert result.returncode == 0, result.stderr
    urls = json.loads(result.stdout)["QueueUrls"]
    ingest = bootstrap.settings().consumed_queues
    assert any(u.endswith("/" + next(iter(ingest.values()))) for u in urls), urls


def test_aws_sqs_get_queue_attributes_on_a_listed_url_reaches_the_local_cloud(cli_env):
    url = json.loads(_aws(cli_env, "sqs", "list-queues").stdout)["QueueUrls"][0]
    result = _aws(cli_env, "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn")

    assert result.returncode == 0, result.stderr
    arn = json.loads(result.stdout)["Attributes"]["QueueArn"]
    assert arn.startswith("arn:aws:sqs:us-east-1:123456789012:") and arn.endswith(url.rsplit("/", 1)[-1])


def test_aws_s3_ls_reaches_the_local_cloud(cli_env):
    result = _aws(cli_env, "s3", "ls")

    assert result.returncode == 0, result.stderr
    assert bootstrap.settings().data_bucket in result.stdout


def test_aws_dynamodb_list_tables_reaches_the_local_cloud(cli_env):
    result = _aws(cli_env, "dynamodb", "list-tables")

    assert result.returncode == 0, result.stderr
    assert bootstrap.settings().uploads_table in json.loads(result.stdout)["TableNames"]
