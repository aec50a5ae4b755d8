"""``mlops status``: what the running local cloud holds, what needs a look first.

In this order: DLQs holding messages and alarms firing (or one line saying nothing needs
attention), the latest uploads with their ids, verdicts and drift, the training runs in flight and
the latest finished, the models (champions, versions waiting for approval, rollouts), the queues with
work; the stack's resources only with ``--resources``."""

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


RECENT_UPLOADS = 10
RECENT_RUNS = 5
FINISHED_RUNS = ("succeeded", "failed")


def print_status(stage: str = "local", resources: bool = False) -> int:
    """What a person acts on first (a DLQ or alarm that needs a look), then the recent uploads, the
    runs, the models and the queues; the stack's resources only with ``resources``."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.settings import Settings
    from mlops.cfn import stack_name

    endpoint = connect(stage)
    settings = Settings.from_env()
    session = boto3.session.Session()
    try:
        stack = stack_name(settings.prefix, settings.stage)
        listed = session.client("cloudformation").list_stack_resources(StackName=stack)
    except (BotoCoreError, ClientError) as exc:
        print(
            f"no local cloud answers at {endpoint} ({type(exc).__name__}). Start one with `mlops up`.",
            file=sys.stderr,
        )
        return 1

    print(f"local cloud {endpoint}, stage {settings.stage}")
    report(session, settings, listed["StackResourceSummaries"], resources)
    return 0


def report(
    session: Any, settings: Any, summaries: list[dict[str, Any]], resources: bool, out: Any = None
) -> None:
    """The sections of ``mlops status`` after its first line, in their order."""
    from chalicelib import bootstrap
    from mlops.cfn import stack_name

    out = out or sys.stdout
    queues = queue_depths(session.client("sqs"), settings.consumed_queues)
    print_attention(queues, firing_alarms(session.client("cloudwatch")), out)
    print_uploads(bootstrap.uploads().scan(), out)
    print_runs(bootstrap.runs_store().list_runs(), out)
    print_models(bootstrap.registry(), out)
    print_queues(queues, out)
    if resources:
        print_resources(summaries, out)
    else:
        stack = stack_name(settings.prefix, settings.stage)
        print(
            f"\n{len(summaries)} resources in stack {stack}: `mlops status --resources` lists them", file=out
        )


def firing_alarms(cloudwatch: Any) -> list[tuple[str, str]]:
    """(alarm, reason) for every CloudWatch alarm in the ALARM state."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(StateValue="ALARM")
    return [(a["AlarmName"], a.get("StateReason", "")) for page in pages for a in page["MetricAlarms"]]


def print_attention(
    queues: list[tuple[str, int, int, int]], alarms: list[tuple[str, str]], out: Any = None
) -> None:
    """First, what needs a person: messages in a DLQ (events a function failed on, over and over)
    and alarms firing; one line saying so when nothing does."""
    from chalicelib.settings import dlq_name

    out = out or sys.stdout
    warnings = [
        f"!! DLQ {dlq} holds {depth} message(s) set aside from {name} after failing: read them with\n"
        f"   aws sqs receive-message --queue-url $(aws sqs get-queue-url --queue-name {dlq} "
        f"--query QueueUrl --output text)"
        for name, _, _, depth in queues
        if depth and (dlq := dlq_name(name))
    ]
    warnings += [f"!! alarm {name} is firing: {reason}" for name, reason in alarms]
    if warnings:
        print("", *warnings, sep="\n", file=out)
    else:
        print("\nnothing needs attention: every DLQ is empty, no alarm is firing", file=out)


def print_uploads(uploads: list[Any], out: Any = None, limit: int = RECENT_UPLOADS) -> None:
    """The latest uploads, newest first: id, when, dataset, verdict, rows, drift, codes, object."""
    out = out or sys.stdout
    recent = sorted(uploads, key=lambda u: str(u.recorded_at), reverse=True)[:limit]
    print(
        f"\nuploads: {len(uploads)} recorded" + (f", the latest {len(recent)}:" if recent else ""), file=out
    )
    for u in recent:
        codes = ",".join(u.issue_codes or []) or "-"
        # Rows an earlier upload already holds (unchanged) are not new data for retraining.
        repeat = f"{u.repeated_rows} repeat" if u.repeated_rows is not None else ""
        status = "revoked" if u.revoked else u.status  # a revoked upload was valid; the entry says who, why
        rows = u.rows if u.rows is not None else "-"
        print(
            f"  {u.upload_id}  {str(u.recorded_at)[:19]}  {u.dataset or '-':<14} {status:<10} {rows:>7} rows "
            f"{repeat:>11}  drift {u.drift or '-':<17} issues {codes:<20} s3://{u.bucket}/{u.key}",
            file=out,
        )


def print_runs(runs: list[dict[str, Any]], out: Any = None, limit: int = RECENT_RUNS) -> None:
    """Training runs in flight, then the latest finished ones (newest first)."""
    out = out or sys.stdout
    newest = sorted(runs, key=lambda r: str(r.get("created_at", "")), reverse=True)
    in_flight = [r for r in newest if r.get("status") not in FINISHED_RUNS]
    finished = [r for r in newest if r.get("status") in FINISHED_RUNS][:limit]
    print(f"\nruns: {len(in_flight)} in flight, {len(runs) - len(in_flight)} finished", file=out)
    for run in [*in_flight, *finished]:
        metric = (
            f"{run.get('primary_metric', '')} {run['primary_value']:.4f}"
            if run.get("primary_value") is not None
            else ""
        )
        why = run.get("error") or "; ".join(run.get("reasons", []))
        print(
            f"  {run['run_id']:<44} {run.get('status', '-'):<10} {str(run.get('created_at', ''))[:19]}  "
            f"{metric:<22} {why[:60]}".rstrip(),
            file=out,
        )


def print_queues(queues: list[tuple[str, int, int, int]], out: Any = None) -> None:
    """Work waiting or in progress, per queue; one line when there is none."""
    out = out or sys.stdout
    busy = [q for q in queues if q[1] or q[2]]
    if not busy:
        print(f"\nqueues: {len(queues)} work queues, all empty", file=out)
        return
    print(f"\n{'queue':<42}{'visible':>8}{'in flight':>10}{'DLQ':>6}", file=out)
    for name, visible, in_flight, dlq in busy:
        print(f"{name:<42}{visible:>8}{in_flight:>10}{dlq:>6}", file=out)


def print_resources(summaries: list[dict[str, Any]], out: Any = None) -> None:
    out = out or sys.stdout
    print(f"\n{'resource':<28}{'type':<28}physical id", file=out)
    for r in sorted(summaries, key=lambda r: r["ResourceType"]):
        physical = r.get("PhysicalResourceId", "").rsplit("/", 1)[-1]
        print(f"{r['LogicalResourceId']:<28}{r['ResourceType']:<28}{physical}", file=out)


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
