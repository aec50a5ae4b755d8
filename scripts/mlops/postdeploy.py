"""What ``chalice deploy`` leaves undone, done from ``.chalice/deployed/<stage>.json``.

Chalice never sets ``FunctionResponseTypes`` on an SQS event source mapping. Without
``ReportBatchItemFailures`` Lambda ignores the ``batchItemFailures`` a handler returns: one bad
record makes the whole batch return to the queue (and, five receives later, the DLQ). This step
turns it on for every ``sqs_event`` resource Chalice recorded, and checks it took. It is
idempotent, and a later ``chalice deploy`` keeps the setting (Chalice updates only batch size and
window).

Chalice has no setting for a function's ephemeral storage either (/tmp, 512 MB unless set): this
step sets ``EphemeralStorage`` on each function whose ``lambda_ephemeral_storage`` is in
``.chalice/config.json`` (``ingest_upload`` spills its duplicate checks there). A later
``chalice deploy`` keeps it too: Chalice's configuration update does not name it.

``mlops postdeploy --stage dev`` (``make postdeploy STAGE=dev``); ``mlops deploy`` runs it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR
from mlops.appinfo import ephemeral_storage

RESPONSE_TYPES = ["ReportBatchItemFailures"]
DEFAULT_EPHEMERAL_MB = 512  # Lambda's /tmp when nothing is set


def deployed_path(stage: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def sqs_event_sources(deployed: dict[str, Any]) -> list[dict[str, Any]]:
    """The SQS event source mappings Chalice recorded (name, queue, event_uuid, lambda_arn)."""
    return [r for r in deployed.get("resources", []) if r.get("resource_type") == "sqs_event"]


def enable_partial_batch_failures(lambda_client: Any, deployed: dict[str, Any]) -> list[dict[str, str]]:
    """Set ``ReportBatchItemFailures`` on every SQS mapping; returns what changed and what was already set."""
    done = []
    for source in sqs_event_sources(deployed):
        uuid = source["event_uuid"]
        current = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        setting = "ReportBatchItemFailures"
        if "ReportBatchItemFailures" in current:
            done.append({"name": source["name"], "queue": source.get("queue", ""), "setting": setting, "change": "already set"})  # fmt: skip
            continue
        lambda_client.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=RESPONSE_TYPES)
        after = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        if "ReportBatchItemFailures" not in after:
            raise RuntimeError(f"{source['name']}: FunctionResponseTypes is still {after} after the update")
        done.append({"name": source["name"], "queue": source.get("queue", ""), "setting": setting, "change": "enabled"})  # fmt: skip
    return done


def set_ephemeral_storage(
    lambda_client: Any, deployed: dict[str, Any], config: dict[str, Any], stage: str
) -> list[dict[str, str]]:
    """Give each deployed function the /tmp size its configuration names; returns what changed."""
    done = []
    for function in deployed.get("resources", []):
        if function.get("resource_type") != "lambda_function":
            continue
        wanted = ephemeral_storage(config, stage, function["name"])
        if wanted is None:
            continue
        arn = function["lambda_arn"]
        setting = f"EphemeralStorage {wanted} MB"
        current = lambda_client.get_function_configuration(FunctionName=arn)
        if current.get("EphemeralStorage", {}).get("Size", DEFAULT_EPHEMERAL_MB) == wanted:
            done.append({"name": function["name"], "setting": setting, "change": "already set"})
            continue
        # chalice deploy may still be updating the function: a second update would be refused.
        lambda_client.get_waiter("function_updated").wait(FunctionName=arn)
        after = lambda_client.update_function_configuration(
            FunctionName=arn, EphemeralStorage={"Size": wanted}
        )
        if after.get("EphemeralStorage", {}).get("Size") != wanted:
            raise RuntimeError(
                f"{function['name']}: EphemeralStorage is {after.get('EphemeralStorage')} after the update"
            )
        done.append({"name": function["name"], "setting": setting, "change": "set"})
    return done


def rest_api_url(deployed: dict[str, Any]) -> str | None:
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_url"])
    return None


def run(stage: str, session: Any = None, project_dir: Path = PROJECT_DIR) -> list[dict[str, str]]:
    path = deployed_path(stage, project_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `chalice deploy --stage {stage}` first")
    import boto3

    session = session or boto3.session.Session()
    client = session.client("lambda")
    deployed = json.loads(path.read_text())
    config_path = project_dir / ".chalice" / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    return enable_partial_batch_failures(client, deployed) + set_ephemeral_storage(
        client, deployed, config, stage
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops postdeploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    for item in run(args.stage):
        print(f"{item['name']}: {item['setting']} {item['change']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
