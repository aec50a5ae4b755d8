"""Deploy a stage into your AWS account: ``make deploy STAGE=dev`` (``python -m mlops.deploy``).

Steps, each printed before it runs (README, "Deploy"):

1. check the credentials and the region (``sts get-caller-identity``);
2. the training job image, if asked: ``--build-image`` builds ``jobs/Dockerfile`` and pushes it to
   a private ECR repository ``<prefix>-<stage>-jobs`` (Docker is needed for this step only), or
   ``--image URI`` names one already pushed;
3. the data plane: ``aws cloudformation deploy`` of ``infra/template.yaml`` as
   ``<prefix>-<stage>-data-plane``;
4. the functions and the API: ``chalice deploy --stage <stage>``, their policies rendered for the
   account and region deployed to while it runs (``mlops.policies.scoped_files``);
5. the post-deploy step Chalice lacks (``mlops.postdeploy``: ReportBatchItemFailures on every SQS
   event source mapping, each function's ephemeral storage);
6. monitoring: alarms on each function's errors and throttles and the pipeline dashboard,
   generated from app.py, as the ``<prefix>-<stage>-monitoring`` stack;
7. a smoke check: ``GET /health`` answers 200 for the stage, every SQS mapping reports batch
   item failures, and every dead-letter queue is empty.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from chalicelib.revision import git_revision
from mlops import PROJECT_DIR, TEMPLATE
from mlops.cfn import deploy_body, stack_name
from mlops.package import drop_bytecode

BIN = Path(sys.executable).parent


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run(*args: str, capture: bool = False) -> str:
    print("    $ " + shlex.join(args), flush=True)
    out = subprocess.run(args, cwd=PROJECT_DIR, check=True, text=True, capture_output=capture)
    return out.stdout if capture else ""


def _tool(name: str) -> str:
    """The venv's aws/chalice when present (make venv installs them), else the PATH's."""
    local = BIN / name
    return str(local) if local.exists() else name


def _config(stage: str) -> dict[str, Any]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    if stage not in config["stages"] or stage == "local":
        raise SystemExit(f"stage {stage!r} is not a deployable stage of .chalice/config.json (dev, prod)")
    return dict(config["stages"][stage])


def build_and_push_image(session: Any, prefix: str, stage: str, tag: str) -> str:
    """Build jobs/Dockerfile and push it to <prefix>-<stage>-jobs in this account's ECR."""
    ecr = session.client("ecr")
    repository = f"{prefix}-{stage}-jobs"
    try:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException:
        uri = ecr.create_repository(
            repositoryName=repository,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS"},
        )["repository"]["repositoryUri"]
    registry = uri.split("/", 1)[0]
    password = _run(_tool("aws"), "ecr", "get-login-password", capture=True).strip()
    subprocess.run(
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
        input=password,
        text=True,
        check=True,
    )
    image = f"{uri}:{tag}"
    _run(*docker_build(image, git_revision(PROJECT_DIR) or "unknown"))
    _run("docker", "push", image)
    return image


def docker_build(image: str, revision: str) -> list[str]:
    """The job image's build, with the code revision it is built from (lineage records it)."""
    return [
        "docker",
        "build",
        "-f",
        "jobs/Dockerfile",
        "--build-arg",
        f"CODE_VERSION={revision}",
        "-t",
        image,
        ".",
    ]


def write_revision(revision: str) -> Path:
    """The revision the functions report (GET /health), inside the package `chalice deploy` builds."""
    from chalicelib.revision import REVISION_FILE

    REVISION_FILE.write_text(revision + "\n")
    return REVISION_FILE


def smoke_check(session: Any, stage: str, prefix: str, deployed: dict[str, Any]) -> list[str]:
    """Problems found after the deploy (empty: all is well)."""
    from chalicelib.settings import Settings, dlq_name
    from mlops.postdeploy import rest_api_url, sqs_event_sources

    problems = []
    url = rest_api_url(deployed)
    if url is None:
        problems.append("no REST API recorded in .chalice/deployed")
    else:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=30) as response:
                body = json.loads(response.read())
                if response.status != 200 or body.get("stage") != stage:
                    problems.append(f"GET /health answered {response.status} {body}")
                else:
                    print(f"    GET {url.rstrip('/')}/health: 200 {body}")
        except Exception as exc:
            problems.append(f"GET /health failed: {exc}")
    lambda_client = session.client("lambda")
    for source in sqs_event_sources(deployed):
        mapping = lambda_client.get_event_source_mapping(UUID=source["event_uuid"])
        if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
            problems.append(f"{source['name']}: ReportBatchItemFailures is off")
        else:
            print(f"    {source['name']}: {mapping['State']}, ReportBatchItemFailures on")
    sqs = session.client("sqs")
    for queue in Settings.for_stage(stage, prefix).queues.values():
        dlq = dlq_name(queue)
        try:
            dlq_url = sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
        except Exception as exc:
            problems.append(f"{dlq}: {exc}")
            continue
        depth = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        if int(depth["Attributes"]["ApproximateNumberOfMessages"]):
            problems.append(f"{dlq} holds {depth['Attributes']['ApproximateNumberOfMessages']} messages")
    return problems


def deploy(args: argparse.Namespace) -> int:
    import boto3

    from mlops import postdeploy
    from mlops.appinfo import functions
    from mlops.package import monitoring_template

    stage = args.stage
    config = _config(stage)
    prefix = config["environment_variables"].get("MLOPS_PREFIX", "serverless-mlops")
    session = boto3.session.Session()
    if os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit("AWS_ENDPOINT_URL is set (the local cloud?): unset it to deploy to AWS")

    _step("1. preflight: credentials, region, Lambda concurrency quota, job image")
    from mlops import preflight

    problems = preflight.check(session, stage, prefix, image=args.image)
    for problem in problems:
        print(f"    PROBLEM: {problem}")
    if problems:
        raise SystemExit("preflight failed: nothing was changed")
    identity = session.client("sts").get_caller_identity()
    print(f"    account {identity['Account']} as {identity['Arn']}, region {session.region_name}")

    image = args.image
    if args.build_image:
        _step("2. training job image (docker build + push to ECR)")
        image = build_and_push_image(session, prefix, stage, args.image_tag or time.strftime("%Y%m%d-%H%M%S"))
    else:
        _step("2. training job image: " + (image or "unchanged (pass --build-image or --image URI)"))

    _step(f"3. data plane: {stack_name(prefix, stage)}")
    overrides = [f"Stage={stage}", f"NamePrefix={prefix}"] + ([f"JobImage={image}"] if image else [])
    out = PROJECT_DIR / "build" / "deploy" / stage
    out.mkdir(parents=True, exist_ok=True)
    data_plane = out / "data-plane.json"  # infra/template.yaml without comments: under the inline limit
    data_plane.write_text(deploy_body(TEMPLATE))
    _run(
        _tool("aws"), "cloudformation", "deploy",
        "--template-file", str(data_plane.relative_to(PROJECT_DIR)),
        "--stack-name", stack_name(prefix, stage),
        "--capabilities", "CAPABILITY_IAM",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides", *overrides,
    )  # fmt: skip

    _step(f"4. functions and API: chalice deploy --stage {stage}")
    drop_bytecode()
    revision = git_revision(PROJECT_DIR) or "unknown"
    print(f"    code revision {revision} (chalicelib/REVISION, reported by GET /health)")
    write_revision(revision)
    # The policies name this account and region while chalice reads them (the committed files: *).
    from mlops.policies import scoped_files

    with scoped_files(stage, identity["Account"], str(session.region_name)):
        _run(_tool("chalice"), "deploy", "--stage", stage)

    _step("5. post-deploy: ReportBatchItemFailures on every SQS event source mapping, ephemeral storage")
    for item in postdeploy.run(stage, session):
        print(f"    {item['name']}: {item['setting']} {item['change']}")

    _step(f"6. monitoring: {prefix}-{stage}-monitoring (function alarms, dashboard)")
    monitoring = out / "monitoring.json"
    monitoring.write_text(
        json.dumps(monitoring_template(stage, prefix, functions(stage)), separators=(",", ":"))
    )
    _run(
        _tool("aws"), "cloudformation", "deploy",
        "--template-file", str(monitoring.relative_to(PROJECT_DIR)),
        "--stack-name", f"{prefix}-{stage}-monitoring",
        "--no-fail-on-empty-changeset",
    )  # fmt: skip

    _step("7. smoke check")
    deployed = json.loads(postdeploy.deployed_path(stage).read_text())
    problems = smoke_check(session, stage, prefix, deployed)
    for problem in problems:
        print(f"    PROBLEM: {problem}")
    if problems:
        return 1
    print(f"\n{stage} is deployed. Next: subscribe to {prefix}-{stage}-alarms, create a token (README).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    parser.add_argument("--image", help="training job image URI already in this account's ECR")
    parser.add_argument("--build-image", action="store_true", help="docker build jobs/ and push it to ECR")
    parser.add_argument(
        "--image-tag", help="tag for --build-image (default: a timestamp; tags are immutable)"
    )
    return deploy(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
