"""A stack left by an interrupted deploy is brought to a state `aws cloudformation deploy` can change.
moto cannot leave a stack in these states (its CloudFormation neither rolls back nor waits), so a
fake CloudFormation plays each status AWS documents, and the test checks what the deploy does."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops.deploy import ready_stack


class FakeCloudFormation:
    """Answers describe_stacks from a script of statuses; records what was asked of it."""

    class exceptions:  # boto3 spelling
        ClientError = ClientError

    def __init__(self, statuses: list[str | None]) -> None:
        self.statuses = list(statuses)
        self.calls: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            raise ClientError(
                {"Error": {"Code": "ValidationError", "Message": "does not exist"}}, "DescribeStacks"
            )
        return {"Stacks": [{"StackStatus": status}]}

    def delete_stack(self, StackName: str) -> None:
        self.calls.append("delete_stack")
        self.statuses = ["DELETE_COMPLETE"]

    def continue_update_rollback(self, StackName: str) -> None:
        self.calls.append("continue_update_rollback")
        self.statuses = ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]


@pytest.mark.parametrize(
    ("statuses", "calls", "found"),
    [
        ([None], [], "absent"),
        (["CREATE_COMPLETE"], [], "CREATE_COMPLETE"),
        (["UPDATE_ROLLBACK_COMPLETE"], [], "UPDATE_ROLLBACK_COMPLETE"),
        # A first creation that failed and rolled back can only be deleted and created again.
        (["ROLLBACK_COMPLETE"], ["delete_stack"], "ROLLBACK_COMPLETE"),
        # A first change set never executed: the stack holds no resources.
        (["REVIEW_IN_PROGRESS"], ["delete_stack"], "REVIEW_IN_PROGRESS"),
        # An operation still running (the last run's terminal closed while it waited): wait it out.
        (["UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"], [], "UPDATE_COMPLETE"),
        (
            ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"],
            ["delete_stack"],
            "ROLLBACK_COMPLETE",
        ),
        # A rollback that failed is continued before anything else.
        (["UPDATE_ROLLBACK_FAILED"], ["continue_update_rollback"], "UPDATE_ROLLBACK_COMPLETE"),
    ],
)
def test_an_interrupted_stack_is_made_deployable(statuses, calls, found):
    cfn = FakeCloudFormation(statuses)
    assert ready_stack(cfn, "s", poll_s=0) == found
    assert cfn.calls == calls


def test_an_operation_that_never_ends_is_reported_not_waited_for_ever():
    cfn = FakeCloudFormation(["UPDATE_IN_PROGRESS"])
    with pytest.raises(RuntimeError, match="still UPDATE_IN_PROGRESS"):
        ready_stack(cfn, "s", wait_s=0, poll_s=0)
