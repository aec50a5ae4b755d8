"""What ``chalice deploy``/``chalice package`` would create for a stage, read from Chalice itself.

Chalice's own application graph (``chalice.deploy.appgraph``) is built from ``app.py`` and
``.chalice/config.json``, so the function list, their SQS queues and their settings come from the
same place the deployers read them: a function added to ``app.py`` shows up here without anyone
editing a list. Importing ``app.py`` for a stage sets that stage's environment variables, so the
graph is built in a child process (``python -m mlops.appinfo STAGE``) and returned as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from mlops import CHALICE_CONFIG, PROJECT_DIR


@dataclass(frozen=True)
class Function:
    """One Lambda function of the app, as Chalice deploys it."""

    name: str  # the config name: ingest_upload, api_handler, token_authorizer...
    logical_id: str  # its resource in `chalice package` output: IngestUpload, APIHandler...
    function_name: str  # in AWS: serverless-mlops-dev-ingest_upload, serverless-mlops-dev...
    kind: str  # api, authorizer, sqs, schedule, other
    timeout: int
    memory: int
    reserved_concurrency: int | None
    log_retention_days: int | None
    policy_file: str | None
    queue: str | None = None  # the SQS queue name of an `sqs` function
    batch_size: int | None = None
    ephemeral_storage: int | None = None  # /tmp in MB (lambda_ephemeral_storage); None: Lambda's 512

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function_name}"


def ephemeral_storage(config: dict[str, Any], stage: str, name: str) -> int | None:
    """A function's ``lambda_ephemeral_storage`` (MB of /tmp) in ``.chalice/config.json``.

    Looked up as Chalice looks up its own settings: the function's, else the stage's, else the top
    level's. Chalice 1.34 has no such setting (aws/chalice#1962) and ignores the key, so
    ``mlops package`` puts it into the template (``EphemeralStorage``) and ``mlops postdeploy`` sets
    it after ``chalice deploy``.
    """
    stage_config = config.get("stages", {}).get(stage, {})
    for scope in (stage_config.get("lambda_functions", {}).get(name, {}), stage_config, config):
        if "lambda_ephemeral_storage" in scope:
            return int(scope["lambda_ephemeral_storage"])
    return None


def functions(stage: str) -> list[Function]:
    """Every Lambda function of ``stage`` (built in a child process; ~2 s)."""
    out = subprocess.run(
        [sys.executable, "-m", "mlops.appinfo", stage],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not read the app's functions for {stage}: {out.stderr[-2000:]}")
    return [Function(**f) for f in json.loads(out.stdout.splitlines()[-1])]


def _describe(stage: str) -> list[dict[str, Any]]:
    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.utils import to_cfn_resource_name

    # Chalice's CLI hands it os.environ, so that importing app.py sees the stage's variables.
    factory = CLIFactory(project_dir=str(PROJECT_DIR), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    application = ApplicationGraphBuilder().build(config, stage)
    resources = DependencyBuilder().build_dependencies(application)
    described: dict[str, dict[str, Any]] = {}
    raw_config = json.loads(CHALICE_CONFIG.read_text())

    def add(fn: models.LambdaFunction, kind: str, **extra: Any) -> None:
        name = fn.resource_name
        logical = "APIHandler" if name == "api_handler" else to_cfn_resource_name(name)
        settings = config.scope(stage, name)
        role = fn.role
        policy = role.policy if isinstance(role, models.ManagedIAMRole) else None
        if not isinstance(policy, models.FileBasedIAMPolicy):
            policy = None
        described[name] = {
            "name": name,
            "logical_id": logical,
            "function_name": fn.function_name,
            "kind": kind,
            "timeout": fn.timeout,
            "memory": fn.memory_size,
            "reserved_concurrency": fn.reserved_concurrency,
            "log_retention_days": settings.log_retention_in_days,
            "policy_file": os.path.basename(policy.filename) if policy is not None else None,
            "ephemeral_storage": ephemeral_storage(raw_config, stage, name),
            **extra,
        }

    for resource in resources:
        if isinstance(resource, models.SQSEventSource):
            queue = resource.queue if isinstance(resource.queue, str) else resource.queue.arn
            add(resource.lambda_function, "sqs", queue=queue, batch_size=resource.batch_size)
        elif isinstance(resource, models.ScheduledEvent):
            add(resource.lambda_function, "schedule")
        elif isinstance(resource, models.RestAPI):
            add(resource.lambda_function, "api")
            for authorizer in resource.authorizers:
                add(authorizer, "authorizer")
    for resource in resources:
        if isinstance(resource, models.LambdaFunction) and resource.resource_name not in described:
            add(resource, "other")
    return sorted(described.values(), key=lambda f: f["name"])


if __name__ == "__main__":
    print(json.dumps(_describe(sys.argv[1])))
