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

A failed run is resumed by running it again: every step is safe to repeat, and each run starts
where the stage is, not where this checkout thinks it is. The deploy state (Chalice's record of what
it deployed, the last attempt's progress, a lock against two concurrent deploys of one stage) lives
in the stage's models bucket under ``deploy/<stage>/`` (mlops.deploystate), so another operator or
CI continues from it. Step 4 runs Chalice's deployer through ``mlops.chalicedeploy``, which records
what a failed ``chalice deploy`` had created (Chalice itself records nothing then); after such a
failure the SQS triggers already created get ``ReportBatchItemFailures`` at once. A stack left by an
interrupted step 3 or 6 is brought back to a state CloudFormation can change (``ready_stack``).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.revision import git_revision
from mlops import PROJECT_DIR
from mlops.cfn import deploy_body, deploy_parameters, stack_name
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


def _config(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
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


def write_revision(revision: str, project_dir: Path = PROJECT_DIR) -> Path:
    """The revision the functions report (GET /health), inside the package `chalice deploy` builds."""
    from chalicelib.revision import REVISION_FILE

    path = project_dir / REVISION_FILE.relative_to(PROJECT_DIR)
    path.write_text(revision + "\n")
    return path


def smoke_check(
    session: Any,
    stage: str,
    prefix: str,
    deployed: dict[str, Any],
    health: Callable[[str], tuple[int, dict[str, Any]]] | None = None,
) -> list[str]:
    """Problems found after the deploy (empty: all is well)."""
    from chalicelib.settings import Settings, dlq_name
    from mlops.postdeploy import rest_api_url, sqs_event_sources

    problems = []
    url = rest_api_url(deployed)
    if url is None:
        problems.append("no REST API recorded in .chalice/deployed")
    else:
        try:
            status, body = (health or http_health)(url.rstrip("/") + "/health")
            if status != 200 or body.get("stage") != stage:
                problems.append(f"GET /health answered {status} {body}")
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
    for queue in Settings.for_stage(stage, prefix).consumed_queues.values():
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


Runner = Callable[..., str]
"""Runs a tool of the deploy (``"aws"`` or ``"chalice-deploy"``) with its arguments; returns stdout
if ``capture``. The rehearsal passes one that reaches moto instead of AWS."""

STEPS = ("preflight", "image", "data-plane", "functions", "post-deploy", "monitoring", "smoke")


def default_runner(project_dir: Path = PROJECT_DIR) -> Runner:
    def run(tool: str, *args: str, capture: bool = False) -> str:
        command = {
            "aws": [_tool("aws")],
            "chalice-deploy": [sys.executable, "-m", "mlops.chalicedeploy"],
        }[tool]
        print("    $ " + shlex.join([tool, *args]), flush=True)
        out = subprocess.run(
            [*command, *args], cwd=project_dir, check=True, text=True, capture_output=capture
        )
        return out.stdout if capture else ""

    return run


def http_health(url: str) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read())


# A failed first creation can only be deleted; a stack whose first change set was never executed
# (REVIEW_IN_PROGRESS) holds no resources, only change sets: deleted too, and created afresh.
STABLE_FAILED = {"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"}
NEEDS_CONTINUE = {"UPDATE_ROLLBACK_FAILED"}


def ready_stack(cfn: Any, name: str, wait_s: float = 3600, poll_s: float = 10) -> str:
    """Bring a stack left by an interrupted deploy to a state `aws cloudformation deploy` can change:
    wait out an operation still running, delete a failed first creation (ROLLBACK_COMPLETE: its data
    resources were created by that attempt and, being ``RetainExceptOnCreate``, went with the
    rollback), continue a rollback that failed. Returns what it found."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            status: str = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError:
            return "absent"
        if status in STABLE_FAILED:
            print(
                f"    {name} is {status} (a first creation that did not finish): deleting it to start again",
                flush=True,
            )
            from mlops.destroy import delete_stack

            delete_stack(cfn, name, timeout_s=wait_s)
            return status
        if status.endswith("_IN_PROGRESS"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} is still {status} after {wait_s:.0f} s")
            print(f"    {name} is {status}: waiting for it to finish", flush=True)
            time.sleep(poll_s)
            continue
        if status in NEEDS_CONTINUE:
            print(f"    {name} is {status}: continuing the rollback", flush=True)
            cfn.continue_update_rollback(StackName=name)
            continue
        return status


class Deployment:
    """One run of ``mlops deploy`` for a stage: its steps, in order, each recorded in the shared deploy
    state (mlops.deploystate) so that the next run, by anyone, knows what happened, and each safe to
    run again: a run after a failure at any step converges (tests/deploy/test_rehearsal_resume.py
    fails each step once)."""

    def __init__(
        self,
        stage: str,
        session: Any,
        runner: Runner | None = None,
        project_dir: Path = PROJECT_DIR,
        image: str | None = None,
        build_image: bool = False,
        image_tag: str | None = None,
        break_lock: bool = False,
        account_limit: int | None = None,
        health: Callable[[str], tuple[int, dict[str, Any]]] = http_health,
    ) -> None:
        from chalicelib.settings import Settings
        from mlops.deploystate import DeployState

        self.stage, self.session, self.project_dir = stage, session, project_dir
        self.config = _config(stage, project_dir)
        self.prefix = self.config["environment_variables"].get("MLOPS_PREFIX", "serverless-mlops")
        self.run = runner or default_runner(project_dir)
        self.image, self.build_image, self.image_tag = image, build_image, image_tag
        self.break_lock, self.account_limit, self.health = break_lock, account_limit, health
        self.out = project_dir / "build" / "deploy" / stage
        self.out.mkdir(parents=True, exist_ok=True)
        settings = Settings.for_stage(stage, self.prefix)
        self.state = DeployState(session.client("s3"), settings.models_bucket, stage)
        self.locked = False
        self.progress: dict[str, Any] = {}
        self.current_step = ""
        self.account = ""

    # --- bookkeeping --------------------------------------------------------------------------

    @property
    def _local_progress(self) -> Path:
        return self.out / "progress.json"

    def _previous(self) -> dict[str, Any] | None:
        if self.state.exists():
            shared = self.state.progress()
            if shared is not None:
                return shared
        if self._local_progress.exists():
            result: dict[str, Any] = json.loads(self._local_progress.read_text())
            return result
        return None

    def _save(self) -> None:
        self._local_progress.write_text(json.dumps(self.progress, indent=2, sort_keys=True) + "\n")
        if self.state.exists():
            self.state.save_progress(self.progress)

    def _take_lock(self) -> None:
        if self.locked or not self.state.exists():
            return
        if self.break_lock:
            print("    breaking the lock (--break-lock)")
            self.state.unlock()
        self.state.lock({"by": self.progress["by"], "attempt": self.progress["attempt"]})
        self.locked = True

    def _mark(self, step: str, status: str, error: str = "") -> None:
        entry = {"status": status, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if error:
            entry["error"] = error[-2000:]
        self.progress["steps"][step] = entry
        self._save()

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> int:
        import uuid

        from mlops.deploystate import DeployLocked

        previous = self._previous()
        if previous and previous.get("finished") is None:
            failed = [s for s, e in previous.get("steps", {}).items() if e.get("status") == "failed"]
            print(
                f"    the last attempt ({previous.get('attempt')}, {previous.get('by')}) did not finish"
                + (f": step {failed[0]} failed" if failed else "")
                + "; this run takes every step again (each is safe to repeat)"
            )
        if not self.image and previous and previous.get("image"):
            self.image = previous["image"]
            print(f"    job image carried over from the last attempt: {self.image}")
        self.progress = {
            "attempt": uuid.uuid4().hex[:12],
            "by": "?",
            "revision": git_revision(self.project_dir) or "unknown",
            "image": self.image,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "finished": None,
            "steps": {},
        }
        try:
            for number, step in enumerate(STEPS, start=1):
                self.current_step = step
                method = getattr(self, "step_" + step.replace("-", "_"))
                try:
                    result = method(number)
                except DeployLocked:
                    raise  # another run's progress is not this run's to overwrite
                except BaseException as exc:
                    self._mark(step, "failed", f"{type(exc).__name__}: {exc}")
                    print(f"\nstep {number} ({step}) failed: run the same command again to resume")
                    raise
                self._mark(step, "done")
                if result:
                    return result
            self.progress["finished"] = self.progress["steps"]["smoke"]["at"]
            self._save()
        finally:
            if self.locked:
                self.state.unlock()
        print(
            f"\n{self.stage} is deployed. Next: subscribe to {self.prefix}-{self.stage}-alarms, "
            "create a token (README)."
        )
        return 0

    def step_preflight(self, n: int) -> int:
        from mlops import preflight

        _step(f"{n}. preflight: credentials, region, Lambda concurrency quota, job image")
        problems = preflight.check(
            self.session, self.stage, self.prefix, image=self.image, account_limit=self.account_limit
        )
        for problem in problems:
            print(f"    PROBLEM: {problem}")
        if problems:
            raise SystemExit("preflight failed: nothing was changed")
        identity = self.session.client("sts").get_caller_identity()
        self.progress["by"] = identity["Arn"]
        self.account = str(identity["Account"])
        print(f"    account {identity['Account']} as {identity['Arn']}, region {self.session.region_name}")
        self._take_lock()
        return 0

    def step_image(self, n: int) -> int:
        if self.build_image:
            _step(f"{n}. training job image (docker build + push to ECR)")
            tag = self.image_tag or time.strftime("%Y%m%d-%H%M%S")
            self.image = build_and_push_image(self.session, self.prefix, self.stage, tag)
            self.progress["image"] = self.image
        else:
            _step(
                f"{n}. training job image: " + (self.image or "unchanged (pass --build-image or --image URI)")
            )
        return 0

    def step_data_plane(self, n: int) -> int:
        name = stack_name(self.prefix, self.stage)
        _step(f"{n}. data plane: {name}")
        ready_stack(self.session.client("cloudformation"), name)
        # CostProfile too (mlops.cfn: each stage's profile, COST_PROFILE overrides it)
        overrides = [f"{k}={v}" for k, v in deploy_parameters(self.stage, self.prefix, self.image).items()]
        data_plane = self.out / "data-plane.json"  # without comments: under the inline limit
        data_plane.write_text(deploy_body(self.project_dir / "infra" / "template.yaml"))
        self.run(
            "aws", "cloudformation", "deploy",
            "--template-file", str(data_plane),
            "--stack-name", name,
            "--capabilities", "CAPABILITY_IAM",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides", *overrides,
        )  # fmt: skip
        self._take_lock()  # a first deploy: the bucket that holds the lock exists from now on
        self._save()
        return 0

    def step_functions(self, n: int) -> int:
        from mlops import postdeploy

        _step(f"{n}. functions and API: chalice deploy --stage {self.stage}")
        local = postdeploy.deployed_path(self.stage, self.project_dir)
        if self.state.fetch_chalice(local):
            print(
                f"    chalice's record from s3://{self.state.bucket}/{self.state.prefix}chalice-deployed.json"
            )
        drop_bytecode(self.project_dir / "chalicelib")
        revision = self.progress["revision"]
        print(f"    code revision {revision} (chalicelib/REVISION, reported by GET /health)")
        write_revision(revision, self.project_dir)
        from mlops.policies import scoped_files

        try:
            # The policies name this account and region while chalice reads them (the committed files: *).
            with scoped_files(
                self.stage, self.account, str(self.session.region_name), self.project_dir / ".chalice"
            ):
                self.run("chalice-deploy", "--stage", self.stage, "--project-dir", str(self.project_dir))
        except BaseException:
            if local.exists():
                self._secure_partial(local)
            raise
        self.state.store_chalice(local)
        return 0

    def _secure_partial(self, local: Path) -> None:
        """After a failure midway: no live SQS trigger may run without partial-batch responses (Lambda
        would delete a whole batch whose handler reported some records failed), and the record of what
        exists goes where the next run looks."""
        from mlops import postdeploy

        deployed = json.loads(local.read_text())
        try:
            for item in postdeploy.enable_partial_batch_failures(self.session.client("lambda"), deployed):
                print(f"    {item['name']}: {item['setting']} {item['change']} (secured after the failure)")
        finally:
            self.state.store_chalice(local)

    def step_post_deploy(self, n: int) -> int:
        from mlops import postdeploy

        _step(f"{n}. post-deploy: ReportBatchItemFailures on every SQS mapping, storage, logs, API stage")
        for item in postdeploy.run(self.stage, self.session, self.project_dir):
            print(f"    {item['name']}: {item['setting']} {item['change']}")
        return 0

    def step_monitoring(self, n: int) -> int:
        from mlops.appinfo import functions
        from mlops.package import monitoring_template

        name = f"{self.prefix}-{self.stage}-monitoring"
        _step(f"{n}. monitoring: {name} (function alarms, dashboard)")
        ready_stack(self.session.client("cloudformation"), name)
        monitoring = self.out / "monitoring.json"
        template = monitoring_template(self.stage, self.prefix, functions(self.stage))
        monitoring.write_text(json.dumps(template, separators=(",", ":")))
        self.run(
            "aws", "cloudformation", "deploy",
            "--template-file", str(monitoring),
            "--stack-name", name,
            "--no-fail-on-empty-changeset",
        )  # fmt: skip
        return 0

    def step_smoke(self, n: int) -> int:
        from mlops import postdeploy

        _step(f"{n}. smoke check")
        deployed = json.loads(postdeploy.deployed_path(self.stage, self.project_dir).read_text())
        problems = smoke_check(self.session, self.stage, self.prefix, deployed, self.health)
        for problem in problems:
            print(f"    PROBLEM: {problem}")
        if problems:
            raise RuntimeError("smoke check: " + "; ".join(problems))
        return 0


def deploy(args: argparse.Namespace) -> int:
    import boto3

    from mlops.deploystate import DeployLocked

    if os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit("AWS_ENDPOINT_URL is set (the local cloud?): unset it to deploy to AWS")
    deployment = Deployment(
        args.stage,
        boto3.session.Session(),
        image=args.image,
        build_image=args.build_image,
        image_tag=args.image_tag,
        break_lock=args.break_lock,
    )
    try:
        return deployment.execute()
    except DeployLocked as exc:
        raise SystemExit(str(exc)) from exc
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        raise SystemExit(f"deploy failed: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", choices=["dev", "prod"])
    parser.add_argument("--image", help="training job image URI already in this account's ECR")
    parser.add_argument("--build-image", action="store_true", help="docker build jobs/ and push it to ECR")
    parser.add_argument(
        "--image-tag", help="tag for --build-image (default: a timestamp; tags are immutable)"
    )
    parser.add_argument(
        "--break-lock", action="store_true", help="remove a dead run's lock on the stage's deploy state"
    )
    return deploy(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
