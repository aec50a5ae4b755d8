"""Upload burst benchmark (issue 18, item 3): how fast do many small uploads reach the uploads ledger?

    .venv/bin/python benchmarks/upload_bench.py           # 200 uploads
    .venv/bin/python benchmarks/upload_bench.py --quick   # 30 uploads: under a minute unless the cores are busy

As a user meets it: ``mlops up`` is started as its own process, with its defaults (enforced local
IAM, whatever state mode ``mlops up`` uses by default; the banner line naming it is reported), its
function logs written where a terminal would show them (here a file). This process is the client: it
creates an admin token, stores a small contract through the API (``PUT /datasets/<name>/contract``;
retraining off, so no training job competes), then puts ``--uploads`` small CSVs (``--rows`` rows
each) under ``incoming/<dataset>/`` with ``--clients`` threads, as fast as they go, and watches the
uploads ledger until every upload is recorded.

Measured: the wall time from the first put to the last ledger write (``recorded_at`` of the last
entry), and per upload the event-to-ledger latency: ``recorded_at`` minus the S3 notification's
``eventTime`` (both stamped by the local cloud, to the millisecond), median and p95; with the time
the puts took. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from machine import machine  # noqa: E402

from mlops import localstate  # noqa: E402
from mlops.datasets import sales_contract, sales_rows, to_csv  # noqa: E402
from mlops.localcloud import client_environment, free_port, stage_config  # noqa: E402

HANG_S = 900.0  # the bound: after it the figures are of the uploads in the ledger by then


def start_cloud(log: Path) -> tuple[subprocess.Popen[bytes], int, int, list[str]]:
    """``mlops up`` on free ports, as its own process; its banner once it is up."""
    port, api_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'scripts'}", "PYTHONUNBUFFERED": "1"}
    # As `mlops up` keeps its state by default, but in a directory of the run's own: the benchmark
    # neither resumes nor adds to the state of the user's local cloud.
    env[localstate.STATE_ENV] = str(log.parent / "state")
    command = [sys.executable, "-c", "import sys; from mlops.cli import main; sys.exit(main())"]
    out = log.open("wb")
    process = subprocess.Popen(
        [*command, "up", "--port", str(port), "--api-port", str(api_port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + HANG_S
    while "is up." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"mlops up did not come up:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    text = log.read_text(errors="replace")
    banner = text[text.index("serverless-mlops local cloud") :].split("\nUpload from")[0]
    return process, port, api_port, banner.splitlines()


def state_mode(banner: list[str]) -> str:
    """What the banner says about state (durable or not); in-memory when it says nothing."""
    said = [line.strip() for line in banner if "state" in line.lower()]
    return "; ".join(said) or "in-memory (the banner names no state directory)"


def http(method: str, url: str, body: Any, token: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(uploads: int, rows: int, clients: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    log = workdir / "mlops-up.log"
    process, port, api_port, banner = start_cloud(log)
    try:
        os.environ.update(client_environment(port))
        os.environ.update(stage_config("local")["environment_variables"])
        import boto3

        from chalicelib.adapters.aws.tokens import SsmTokenRecords
        from chalicelib.auth import TokenStore
        from chalicelib.settings import Settings

        settings = Settings.from_env()
        token = TokenStore(SsmTokenRecords.for_settings(settings)).create(
            "bench", "admin", created_by="bench"
        )[0]
        dataset = f"bench_{int(time.time())}"
        contract = {
            **sales_contract(),
            "dataset": dataset,
            "promotion": {"mode": "manual"},
        }
        contract["training"]["retrain"] = {"min_new_rows": 10**9, "on_drift": False, "cooldown_minutes": 0}
        status, body = http(
            "PUT", f"http://127.0.0.1:{api_port}/datasets/{dataset}/contract", contract, token
        )
        if status != 200:
            raise SystemExit(f"the contract was refused: {status} {body}")
        files = {}
        for i in range(uploads):
            header, table = sales_rows(rows, start=i * rows, seed=i)
            files[f"incoming/{dataset}/part-{i:05d}.csv"] = to_csv(header, table)
        s3 = boto3.client("s3")
        dynamodb = boto3.client("dynamodb")
        s3.list_buckets()  # the client's own set-up, outside the timing

        put_done: list[float] = []
        lock = threading.Lock()

        def put(item: tuple[str, bytes]) -> None:
            s3.put_object(Bucket=settings.data_bucket, Key=item[0], Body=item[1])
            with lock:
                put_done.append(time.time())

        load_before = os.getloadavg()[0]
        started = time.time()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(put, files.items()))
        puts_s = max(put_done) - started

        recorded: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + HANG_S
        while len(recorded) < uploads and time.monotonic() < deadline:
            time.sleep(2.0)  # a scan of the table is work for the cloud too; the figures are its timestamps
            for page in dynamodb.get_paginator("scan").paginate(TableName=settings.uploads_table):
                for item in page["Items"]:
                    if item.get("dataset", {}).get("S") == dataset:
                        recorded[item["key"]["S"]] = {k: next(iter(v.values())) for k, v in item.items()}
        if not recorded:
            raise SystemExit(f"no upload reached the ledger in {HANG_S:.0f}s")
        latencies = [iso(e["recorded_at"]) - iso(e["event_time"]) for e in recorded.values()]
        statuses: dict[str, int] = {}
        for entry in recorded.values():
            statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
        last = max(iso(e["recorded_at"]) for e in recorded.values())
        return {
            "uploads": uploads,
            "in_ledger": len(recorded),  # fewer than uploads: the run hit HANG_S, the figures are of these
            "rows_per_upload": rows,
            "clients": clients,
            "statuses": statuses,
            "puts_s": round(puts_s, 2),
            "all_in_ledger_s": round(last - started, 2),
            "event_to_ledger_median_s": round(statistics.median(latencies), 2),
            "event_to_ledger_p95_s": round(percentile(latencies, 0.95), 2),
            "event_to_ledger_max_s": round(max(latencies), 2),
            "uploads_per_s": round(uploads / (last - started), 1),
            # Others' work on a shared machine slows every figure: the 1-minute load average around the run.
            "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "state_mode": state_mode(banner),
            "local_iam": os.environ.get("MLOPS_LOCAL_IAM", "on"),
            "handlers": next((line.strip() for line in banner if line.strip().startswith("handlers")), ""),
        }
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 uploads: under a minute")
    parser.add_argument("--uploads", type=int, default=None, help="how many uploads (default 200)")
    parser.add_argument("--rows", type=int, default=5, help="rows per upload")
    parser.add_argument("--clients", type=int, default=8, help="client threads putting objects")
    args = parser.parse_args()
    uploads = args.uploads or (30 if args.quick else 200)
    figures = run(uploads, args.rows, args.clients)
    print(
        f"{figures['in_ledger']} of {figures['uploads']} uploads of {figures['rows_per_upload']} rows in the ledger "
        f"({figures['clients']} client threads): "
        f"puts done in {figures['puts_s']} s; all in the ledger after {figures['all_in_ledger_s']} s; "
        f"event -> ledger median {figures['event_to_ledger_median_s']} s, p95 {figures['event_to_ledger_p95_s']} s, "
        f"max {figures['event_to_ledger_max_s']} s; statuses {figures['statuses']}; state: {figures['state_mode']}; "
        f"load average {figures['load_average_1m']} on {os.cpu_count()} cores"
    )
    print(json.dumps({"benchmark": "uploads", **figures, "machine": machine("moto", "chalice")}))


if __name__ == "__main__":
    main()
