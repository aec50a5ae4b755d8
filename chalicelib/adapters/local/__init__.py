"""Local adapters: what the local cloud (``mlops up``) uses where AWS would run a job on Batch.

moto registers Batch jobs but runs nothing, so locally a job is a child process of the same entry
point the job image runs, with the local cloud's endpoint and names in its environment.
"""

from __future__ import annotations

import os

# Set by the local cloud when it enforces IAM (scripts/mlops/localiam.py): a folder with each
# principal's policy and credentials. A child then runs through that module as its role's principal,
# so a job or worker calls AWS with its own role and every call is checked against its policy.
IAM_DIR_ENV = "MLOPS_IAM_DIR"


def as_principal(principal: str, command: tuple[str, ...]) -> tuple[str, ...]:
    """The interpreter arguments that run ``command`` (``-m module ...``) as ``principal`` (a job's
    role) when the local cloud enforces IAM; else ``command`` unchanged."""
    if not os.environ.get(IAM_DIR_ENV):
        return command
    return ("-m", "mlops.localiam", "--as", principal, *command)
