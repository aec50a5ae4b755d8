"""``make destroy STAGE=dev``: remove a deployed stage, except its data, and say what was kept.

In order: the functions and the API (``chalice delete``, from Chalice's record of the stage: the
shared one in the deploy state, ``s3://<models bucket>/deploy/<stage>/``, else this checkout's
``.chalice/deployed/<stage>.json``), the API function's capture subscription if its log group
outlived the function (the post-deploy step made it), the monitoring stack, the data-plane stack; the deploy state's
records go too (the bucket stays, with its earlier versions). The key, the buckets
and the tables are retained by their ``DeletionPolicy`` (infra/template.yaml): the stack goes, they
stay, and the last lines list them with the command that deletes each, for when that is meant.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR
from mlops.cfn import load_template, stack_name

BIN = Path(sys.executable).parent
RETAINED = ("Retain", "RetainExceptOnCreate")  # the latter retains on deletion once created
HOW_TO_DELETE = {
    "AWS::S3::Bucket": "aws s3 rb s3://{id} --force  (versioned: delete every version first)",
    "AWS::DynamoDB::Table": "aws dynamodb delete-table --table-name {id}",
    "AWS::KMS::Key": "aws kms schedule-key-deletion --key-id {id} --pending-window-in-days 30  (data encrypted with it becomes unreadable)",
}


def retained(cfn: Any, name: str) -> list[dict[str, str]]:
    """The stack's resources its template retains on deletion, with their physical ids."""
    template = load_template()["Resources"]
    kept = []
    for summary in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]:
        logical = summary["LogicalResourceId"]
        if template.get(logical, {}).get("DeletionPolicy") in RETAINED:
            kept.append(
                {
                    "logical": logical,
                    "type": summary["ResourceType"],
                    "id": summary.get("PhysicalResourceId", ""),
                }
            )
    return kept


def delete_stack(cfn: Any, name: str, timeout_s: float = 1800, attempts: int = 3) -> bool:
    """Delete a stack and wait for it to go (False if there was none). A deletion that fails on a
    dependency (AWS: DELETE_FAILED, e.g. an ENI released late; moto: DependencyViolation, raised at
    once because it deletes a VPC before its subnets) is tried again: the second pass finds less."""
    try:
        cfn.describe_stacks(StackName=name)
    except cfn.exceptions.ClientError:
        return False
    for attempt in range(1, attempts + 1):
        try:
            cfn.delete_stack(StackName=name)
        except cfn.exceptions.ClientError as exc:
            if "DependencyViolation" not in str(exc) or attempt == attempts:
                raise
            continue
        if _wait_deleted(cfn, name, timeout_s):
            return True
        if attempt == attempts:
            raise RuntimeError(f"deleting {name} failed {attempts} times: see its events in the console")
    return True


def _wait_deleted(cfn: Any, name: str, timeout_s: float) -> bool:
    """True when the stack is gone, False if its deletion failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError:
            return True  # gone
        if status == "DELETE_COMPLETE":
            return True
        if status == "DELETE_FAILED":
            return False
        time.sleep(5 if timeout_s > 60 else 0.2)
    raise RuntimeError(f"{name} is still being deleted after {timeout_s:.0f} s")


def destroy(
    session: Any,
    stage: str,
    prefix: str,
    chalice: bool = True,
    project_dir: Path = PROJECT_DIR,
    run: Any = None,
) -> list[dict[str, str]]:
    """Everything of the stage but its data; returns what was kept. ``run(*args)`` runs ``chalice``
    (the rehearsal passes one that reaches moto)."""
    cfn = session.client("cloudformation")
    deployed = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    state = _deploy_state(session, stage, prefix)
    if chalice and state is not None and state.fetch_chalice(deployed):
        print(
            f"   (chalice's record of {stage} from s3://{state.bucket}/{state.prefix}chalice-deployed.json)"
        )
    if chalice and deployed.exists():
        print(f"1. functions and API: chalice delete --stage {stage}")
        if run is None:
            subprocess.run(
                [str(BIN / "chalice"), "--project-dir", str(project_dir), "delete", "--stage", stage],
                cwd=project_dir,
                check=True,
            )
        else:
            run("--project-dir", str(project_dir), "delete", "--stage", stage)
    else:
        print(f"1. functions and API: no record of a deploy of {stage} ({deployed} absent)")
    # Before the stream goes: a subscription to a deleted stream fails every delivery.
    from chalicelib.settings import Settings
    from mlops.policies import function_name
    from mlops.postdeploy import unsubscribe_capture

    api = function_name(Settings.for_stage(stage, prefix), "api_handler")
    print(f"   capture subscription of /aws/lambda/{api}: {unsubscribe_capture(session.client('logs'), api)}")
    monitoring = f"{prefix}-{stage}-monitoring"
    print(f"2. {monitoring}: " + ("deleted" if delete_stack(cfn, monitoring) else "not there"))
    data_plane = stack_name(prefix, stage)
    try:
        kept = retained(cfn, data_plane)
    except cfn.exceptions.ClientError:
        kept = []
    if state is not None:
        state.forget()  # what it named is gone; the bucket itself is kept
    print(f"3. {data_plane}: " + ("deleted" if delete_stack(cfn, data_plane) else "not there"))
    return kept


def _deploy_state(session: Any, stage: str, prefix: str) -> Any:
    """The stage's shared deploy state (mlops.deploystate), or None when its bucket is gone."""
    from chalicelib.settings import Settings
    from mlops.deploystate import DeployState

    state = DeployState(session.client("s3"), Settings.for_stage(stage, prefix).models_bucket, stage)
    return state if state.exists() else None


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="mlops destroy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, choices=["dev", "prod"])
    args = parser.parse_args(argv)
    from mlops.policies import _config_prefix

    kept = destroy(boto3.session.Session(), args.stage, _config_prefix(args.stage))
    if kept:
        print("\nKept, with their data (delete by hand only if you mean it):")
        for resource in kept:
            how = HOW_TO_DELETE.get(resource["type"], "").format(id=resource["id"])
            print(f"  {resource['type']:<22} {resource['id']:<48} {how}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
