"""`make deploy` checks what would stop it midway before it changes anything (mlops/preflight.py)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from mlops.preflight import UNRESERVED_MINIMUM, check, concurrency_problem, reserved_concurrency


def test_a_quota_below_the_stage_s_reservations_is_refused_with_the_figure_to_ask_for():
    """At 21cd3ef a new account's quota (10 concurrent executions) stopped `chalice deploy` after some
    functions, leaving live queue triggers without partial-batch responses. Now: found first."""
    needed = reserved_concurrency("dev")
    assert needed > 0
    problem = concurrency_problem(account_limit=10, already_reserved_elsewhere=0, needed=needed)
    assert problem is not None and f"at least {needed + UNRESERVED_MINIMUM}" in problem
    assert concurrency_problem(1000, 0, needed) is None
    assert (
        concurrency_problem(needed + UNRESERVED_MINIMUM, 1, needed) is not None
    )  # others' reservations count


def test_preflight_passes_an_account_that_can_take_the_stage_and_names_a_low_quota_and_a_missing_image():
    with mock_aws():
        session = boto3.session.Session(region_name="eu-west-1")
        assert check(session, "dev", "serverless-mlops", account_limit=1000) == []
        assert "Service Quotas" in check(session, "dev", "serverless-mlops", account_limit=10)[0]
        image = "1.dkr.ecr.eu-west-1.amazonaws.com/x-dev-jobs:t1"
        problems = check(session, "dev", "serverless-mlops", image=image, account_limit=1000)
        assert len(problems) == 1 and "not in ECR" in problems[0]


def test_preflight_without_a_region_says_how_to_set_one():
    from types import SimpleNamespace

    problems = check(SimpleNamespace(region_name=None), "dev", "serverless-mlops")
    assert len(problems) == 1 and "AWS_DEFAULT_REGION" in problems[0]
