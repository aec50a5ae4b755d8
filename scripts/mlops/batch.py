"""``mlops batch submit|status``: batch inference jobs through the HTTP API (``MLOPS_TOKEN``).

    mlops batch submit breast_cancer batch/input/2026-11/ [--version 3] [--output batch/output/]
                       [--shard-mb 16] [--workers 4] [--engine auto] [--include-pii email] [--wait]
    mlops batch status JOB_ID [--watch]

``status --watch`` redraws a progress bar (shards and rows done, rate, workers, interruptions,
failures) until the job ends, then prints the final record.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from chalicelib.batch.costs import usd
from mlops import models  # models.call at call time: one place to stand in for the HTTP API

FINAL = ("SUCCEEDED", "PARTIAL", "FAILED")  # the job states that end it


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    batch = subparsers.add_parser("batch", help="batch inference jobs: submit, status (with a progress bar)")
    sub = batch.add_subparsers(dest="batch_action", required=True)
    submit = sub.add_parser("submit", help="score every CSV under an input prefix of the data bucket")
    submit.add_argument("model")
    submit.add_argument("input_prefix")
    submit.add_argument("--version", type=int, help="default: the champion at submission, pinned")
    submit.add_argument(
        "--output", default="batch/output/", help="output prefix (parts go to <output><job id>/)"
    )
    submit.add_argument("--shard-mb", type=float, help="shard size in MiB (default 16)")
    submit.add_argument("--workers", type=int, help="workers (default and cap: BATCH_MAX_WORKERS)")
    submit.add_argument("--engine", choices=("auto", "onnxruntime", "sklearn"), default="auto")
    submit.add_argument(
        "--include-pii",
        action="append",
        default=[],
        metavar="COLUMN",
        help="copy this pii column into the outputs (repeat for more; default: none)",
    )
    submit.add_argument("--wait", action="store_true", help="then follow it like `status --watch`")
    status = sub.add_parser("status", help="a job's progress and, when it ended, its record")
    status.add_argument("job_id")
    status.add_argument("--watch", action="store_true", help="redraw until the job ends")
    return batch


def run(args: argparse.Namespace) -> int:
    try:
        if args.batch_action == "submit":
            body: dict[str, Any] = {
                "model": args.model,
                "input_prefix": args.input_prefix,
                "output_prefix": args.output,
            }
            if args.version is not None:
                body["version"] = args.version
            if args.shard_mb is not None:
                body["shard_mb"] = args.shard_mb
            if args.workers is not None:
                body["workers"] = args.workers
            if args.engine != "auto":
                body["engine"] = args.engine
            if args.include_pii:
                body["include_pii"] = args.include_pii
            job = models.call("POST", "/batch-jobs", body)
            print(
                f"job {job['job_id']}: {job['model']} v{job['version']} ({job['engine']}) -> {job['output_prefix']}"
            )
            return watch(job["job_id"]) if args.wait else 0
        if args.watch:
            return watch(args.job_id)
        job = models.call("GET", f"/batch-jobs/{args.job_id}")
        print(progress_line(job))
        if job.get("status") in FINAL:
            print(json.dumps(job, indent=2, default=str))
        return exit_code(job)
    except models.ApiError as exc:
        print(f"mlops batch: {exc}", file=sys.stderr)
        return 1


def watch(job_id: str, interval_s: float = 0.5, out: Any = None, get: Any = None) -> int:
    out = out or sys.stdout
    get = get or (lambda: models.call("GET", f"/batch-jobs/{job_id}"))
    tty = getattr(out, "isatty", lambda: False)()
    last = ""
    while True:
        job = get()
        line = progress_line(job)
        if tty:
            out.write("\r" + line.ljust(len(last)))
        elif line != last:
            out.write(line + "\n")
        out.flush()
        last = line
        if job.get("status") in FINAL:
            out.write("\n" if tty else "")
            out.write(final_record(job) + "\n")
            return exit_code(job)
        time.sleep(interval_s)


def exit_code(job: dict[str, Any]) -> int:
    return {"SUCCEEDED": 0, "PARTIAL": 3, "FAILED": 1}.get(str(job.get("status")), 0)


def progress_line(job: dict[str, Any], width: int = 30) -> str:
    total = int(job.get("total_shards") or 0)
    done = int(job.get("shards_done", 0))
    failed = int(job.get("shards_failed", 0))
    filled = int(width * (done + failed) / total) if total else 0
    bar = "#" * filled + "." * (width - filled)
    rate = job.get("rows_per_s")
    return (
        f"{job.get('status', '?'):<9} [{bar}] {done}/{total or '?'} shards, {int(job.get('rows', 0)):,} rows"
        + (f", {float(rate):,.0f} rows/s" if rate else "")
        + f", workers {job.get('workers_running', job.get('workers', '-'))}"
        + f", interruptions {int(job.get('interruptions', 0))}, failures {int(job.get('failures', 0)) + failed}"
    )


def final_record(job: dict[str, Any]) -> str:
    cost = job.get("cost") or {}
    lines = [
        f"job {job.get('job_id')}: {job.get('status')}  {job.get('model')} v{job.get('version')} ({job.get('engine')})",
        f"  rows {int(job.get('rows', 0)):,} in {job.get('duration_s')} s ({job.get('rows_per_s')} rows/s), "
        f"{job.get('total_shards')} shards, worker-seconds {job.get('worker_seconds')} over "
        f"{job.get('attempts', '?')} attempts, interruptions {job.get('interruptions', 0)}",
    ]
    if cost:
        lines.append(
            f"  estimated cost: spot {usd(float(cost.get('spot_usd', 0)))}, "
            f"on-demand {usd(float(cost.get('on_demand_usd', 0)))}, "
            f"saving {cost.get('saving_percent')}% ({cost.get('basis')})"
            + ("" if cost.get("complete", True) else ", so far: workers are still running")
        )
    if job.get("manifest_key"):
        lines.append(f"  manifest: {job['manifest_key']}")
    for failure in job.get("failed") or []:
        lines.append(
            f"  failed shard {failure['index']} ({failure.get('input_key')}): {failure.get('reason')}"
        )
    if job.get("error"):
        lines.append(f"  error: {job['error']}")
    return "\n".join(lines)
