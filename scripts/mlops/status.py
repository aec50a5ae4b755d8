"""``mlops status``: what the running local cloud holds."""

from __future__ import annotations

import sys
from typing import Any

from mlops.localcloud import connect


def queue_depths(sqs: Any, queue_names: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(queue, visible, in flight, DLQ depth) for each work queue."""
    from chalicelib.settings import dlq_name

    rows = []
    for name in queue_names.values():
        rows.append((name, *_depth(sqs, name), _depth(sqs, dlq_name(name))[0]))
    return rows


def _depth(sqs: Any, name: str) -> tuple[int, int]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def print_status(stage: str = "local") -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib import bootstrap
    from chalicelib.settings import Settings
    from mlops.cfn import stack_name

    endpoint = connect(stage)
    settings = Settings.from_env()
    session = boto3.session.Session()
    try:
        stack = stack_name(settings.prefix, settings.stage)
        resources = session.client("cloudformation").list_stack_resources(StackName=stack)[
            "StackResourceSummaries"
        ]
    except (BotoCoreError, ClientError) as exc:
        print(
            f"no local cloud answers at {endpoint} ({type(exc).__name__}). Start one with `mlops up`.",
            file=sys.stderr,
        )
        return 1

    print(f"local cloud {endpoint}, stage {settings.stage}, stack {stack}")
    print(f"\n{'resource':<28}{'type':<28}physical id")
    for r in sorted(resources, key=lambda r: r["ResourceType"]):
        print(
            f"{r['LogicalResourceId']:<28}{r['ResourceType']:<28}{r.get('PhysicalResourceId', '').rsplit('/', 1)[-1]}"
        )

    print(f"\n{'queue':<42}{'visible':>8}{'in flight':>10}{'DLQ':>6}")
    for name, visible, in_flight, dlq in queue_depths(session.client("sqs"), settings.consumed_queues):
        flag = "   <- messages in the DLQ need a look" if dlq else ""
        print(f"{name:<42}{visible:>8}{in_flight:>10}{dlq:>6}{flag}")

    print_models(bootstrap.registry())

    uploads = bootstrap.uploads().scan()
    print(f"\nuploads ledger: {len(uploads)} upload(s)")
    for u in uploads[-10:]:
        sha = (u.sha256 or "-")[:12]
        codes = ",".join(u.issue_codes or []) or "-"
        # Rows an earlier upload already holds (unchanged) are not new data for retraining.
        repeat = f"{u.repeated_rows} repeat" if u.repeated_rows is not None else ""
        status = "revoked" if u.revoked else u.status  # a revoked upload was valid; the entry says who, why
        print(
            f"  {u.upload_id}  {u.recorded_at}  {status:<10} {u.rows if u.rows is not None else '-':>6} rows "
            f"{repeat:>12}  {u.size:>9} B  sha256 {sha}  issues {codes:<24} s3://{u.bucket}/{u.key}"
        )
    return 0


def print_models(registry: Any, out: Any = None) -> None:
    """Per model: its champion, the versions waiting for approval, and a running rollout's progress
    (the candidate, step k of n, its share, since when) with the last guard verdicts, or how the last
    rollout ended."""
    out = out or sys.stdout
    names = registry.models()
    print(f"\nmodels: {len(names)}", file=out)
    for name in names:
        versions = registry.versions(name)
        waiting = [f"v{v['version']}" for v in versions if v.get("status") == "pending_approval"]
        champion = registry.champion(name)
        line = f"  {name:<24} champion {'v' + str(champion) if champion else '-':<6}"
        line += f" waiting for approval: {', '.join(waiting) if waiting else '-'}"
        print(line, file=out)
        pointer = registry.rollout(name)
        if not pointer:
            continue
        steps = (pointer.get("schedule") or {}).get("steps") or []
        head = f"    rollout {pointer.get('id')} of v{pointer.get('candidate')}: {pointer.get('status')}"
        if pointer.get("status") in ("active", "paused"):
            head += (
                f", step {int(pointer.get('step') or 0) + 1} of {len(steps)}, "
                f"{pointer.get('share'):g}% of the traffic since {str(pointer.get('step_started_at'))[:19]}"
            )
        else:
            head += f" at {str(pointer.get('ended_at'))[:19]}: {pointer.get('end_reason')}"
        print(head, file=out)
        guards = ((pointer.get("evaluation") or {}).get("guards")) or {}
        if guards:
            verdicts = ", ".join(f"{k} {(v or {}).get('status', '-')}" for k, v in guards.items())
            print(f"      last guards: {verdicts}", file=out)
