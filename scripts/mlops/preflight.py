"""Before `make deploy` changes anything: what would make it fail midway, each with its fix.

A deploy that fails halfway leaves functions and live queue triggers behind (issue: a new account's
Lambda concurrency quota, below what the stage reserves, stopped `chalice deploy` after some
functions). So the deploy checks first, and stops before its first change if any check fails:
credentials and region; the account's concurrent-executions quota against the stage's reserved
concurrency plus the 100 that Lambda keeps unreserved; the job image, when one is named, exists.
"""

from __future__ import annotations

import json
from typing import Any

from mlops import CHALICE_CONFIG

UNRESERVED_MINIMUM = 100  # Lambda refuses to reserve below this many unreserved executions


def reserved_concurrency(stage: str) -> int:
    """What the stage's functions reserve (``.chalice/config.json``)."""
    config = json.loads(CHALICE_CONFIG.read_text())["stages"][stage]
    return sum(int(f.get("reserved_concurrency", 0)) for f in config.get("lambda_functions", {}).values())


def concurrency_problem(account_limit: int, already_reserved_elsewhere: int, needed: int) -> str | None:
    """None if the stage's reservations fit the account's quota, else what is wrong and the fix."""
    available = account_limit - already_reserved_elsewhere - UNRESERVED_MINIMUM
    if needed <= available:
        return None
    return (
        f"the stage reserves {needed} concurrent executions, but the account allows {account_limit} "
        f"({already_reserved_elsewhere} reserved by other functions, {UNRESERVED_MINIMUM} must stay unreserved): "
        f"ask for at least {needed + already_reserved_elsewhere + UNRESERVED_MINIMUM} in Service Quotas "
        "(Lambda, Concurrent executions), or lower reserved_concurrency in .chalice/config.json"
    )


def check(
    session: Any, stage: str, prefix: str, image: str | None = None, account_limit: int | None = None
) -> list[str]:
    """Every problem found, each with its fix (empty: go). ``account_limit``: the concurrency quota
    if known (moto does not implement GetAccountSettings), else asked of Lambda."""
    problems: list[str] = []
    if not session.region_name:
        problems.append("no region: export AWS_DEFAULT_REGION (or AWS_REGION), e.g. eu-west-1")
        return problems
    try:
        session.client("sts").get_caller_identity()
    except Exception as exc:
        problems.append(
            f"no usable credentials ({type(exc).__name__}): configure them (aws configure, or SSO login)"
        )
        return problems
    lam = session.client("lambda")
    if account_limit is None:
        account_limit = int(lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    ours = f"{prefix}-{stage}"
    elsewhere = 0
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            if function["FunctionName"] == ours or function["FunctionName"].startswith(ours + "-"):
                continue  # a redeploy replaces the stage's own reservations
            reserved = lam.get_function_concurrency(FunctionName=function["FunctionName"])
            elsewhere += int(reserved.get("ReservedConcurrentExecutions", 0) or 0)
    problem = concurrency_problem(account_limit, elsewhere, reserved_concurrency(stage))
    if problem:
        problems.append(problem)
    if image:
        repository, _, tag = image.split("/", 1)[-1].partition(":")
        try:
            session.client("ecr").describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag or "latest"}]
            )
        except Exception:
            problems.append(f"the job image {image} is not in ECR: push it, or deploy with --build-image")
    return problems
