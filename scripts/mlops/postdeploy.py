"""What ``chalice deploy`` leaves undone, done from ``.chalice/deployed/<stage>.json``.

Chalice never sets ``FunctionResponseTypes`` on an SQS event source mapping. Without
``ReportBatchItemFailures`` Lambda ignores the ``batchItemFailures`` a handler returns: one bad
record makes the whole batch return to the queue (and, five receives later, the DLQ). This step
turns it on for every ``sqs_event`` resource Chalice recorded, and checks it took. It is
idempotent, and a later ``chalice deploy`` keeps the setting (Chalice updates only batch size and
window).

``mlops postdeploy --stage dev`` (``make postdeploy STAGE=dev``); ``mlops deploy`` runs it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops import PROJECT_DIR

RESPONSE_TYPES = ["ReportBatchItemFailures"]


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
        if "ReportBatchItemFailures" in current:
            done.append({"name": source["name"], "queue": source.get("queue", ""), "change": "already set"})
            continue
        lambda_client.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=RESPONSE_TYPES)
        after = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        if "ReportBatchItemFailures" not in after:
            raise RuntimeError(f"{source['name']}: FunctionResponseTypes is still {after} after the update")
        done.append({"name": source["name"], "queue": source.get("queue", ""), "change": "enabled"})
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
    return enable_partial_batch_failures(session.client("lambda"), json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops postdeploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    for item in run(args.stage):
        print(f"{item['name']} ({item['queue']}): ReportBatchItemFailures {item['change']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
