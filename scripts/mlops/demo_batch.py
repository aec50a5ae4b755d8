"""The batch inference part of the demo: a million rows scored by several local workers.

Called from ``mlops demo`` (``run_batch_demo``) once a champion exists for ``breast_cancer``:
uploads one CSV of 1,000,000 patients, submits a job through ``POST /batch-jobs`` with an approver
token, follows its progress (``GET /batch-jobs/{id}``: shards and rows done, rate, workers,
interruptions, failures) and prints the final record: rows, duration, worker-seconds and the
estimated cost at spot and on-demand prices. Then it checks the manifest against the parts.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

DEMO_ROWS = 1_000_000
INPUT_PREFIX = "batch/input/demo/"


def run_batch_demo(demo: Any, api: str, settings: Any, token: dict[str, str]) -> None:
    import boto3

    from mlops.batch import FINAL, final_record, progress_line
    from mlops.datasets import breast_cancer_batch
    from mlops.models import ApiError, call

    demo.step(f"Batch inference: {DEMO_ROWS:,} rows on local spot workers")
    started = time.monotonic()
    data = breast_cancer_batch(DEMO_ROWS)
    s3 = boto3.client("s3")
    key = f"{INPUT_PREFIX}patients-{DEMO_ROWS}.csv"
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
    print(
        f"   uploaded s3://{settings.data_bucket}/{key}: {len(data) / 2**20:,.0f} MiB in {time.monotonic() - started:.1f} s"
    )
    try:
        job = call(
            "POST", "/batch-jobs",
            {"model": "breast_cancer", "input_prefix": INPUT_PREFIX, "output_prefix": "batch/output/", "shard_mb": 16, "workers": 4},
            token=token["approver"], base=api,
        )  # fmt: skip
    except ApiError as exc:
        demo.check(False, f"POST /batch-jobs refused: {exc}")
        return
    demo.check(
        True,
        f"job {job['job_id']} submitted: {job['model']} v{job['version']} pinned (the champion), engine {job['engine']}",
    )
    last = ""
    deadline = time.monotonic() + 600  # only stops a hang: the loop ends when the job's record is final
    while time.monotonic() < deadline:
        job = call("GET", f"/batch-jobs/{job['job_id']}", token=token["approver"], base=api)
        line = progress_line(job)
        if line != last:
            print("   " + line, flush=True)
            last = line
        if job.get("status") in FINAL:
            break
        time.sleep(1.0)
    print("   " + final_record(job).replace("\n", "\n   "), flush=True)
    if not demo.check(job.get("status") == "SUCCEEDED", f"the job succeeded ({job.get('status')})"):
        return
    demo.check(
        int(job["rows"]) == DEMO_ROWS,
        f"every row scored once: {int(job['rows']):,} rows out of {DEMO_ROWS:,}",
    )
    manifest = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=job["manifest_key"])["Body"].read())
    part = manifest["parts"][0]
    body = s3.get_object(Bucket=settings.data_bucket, Key=part["key"])["Body"].read()
    demo.check(
        manifest["complete"]
        and len(manifest["parts"]) == job["total_shards"]
        and hashlib.sha256(body).hexdigest() == part["sha256"],
        f"manifest complete: {len(manifest['parts'])} parts with rows and sha256 (checked part 0: {body.splitlines()[1].decode()[:60]}...)",
    )
    cost = job["cost"]
    demo.check(
        0 < cost["spot_usd"] < cost["on_demand_usd"],
        f"estimated cost {cost['spot']} on spot vs {cost['on_demand']} on demand ({cost['saving_percent']}% saved) "
        f"for {job['worker_seconds']} worker-seconds over {job['attempts']} attempts"
        + ("" if cost["complete"] else " so far (workers are still exiting)"),
    )
    print(f"   batch demo took {time.monotonic() - started:.1f} s", file=sys.stdout, flush=True)
