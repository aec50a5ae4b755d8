"""What keeping the local cloud's state on disk costs: a burst of uploads with and without it.

    .venv/bin/python benchmarks/local_state_bench.py            # 200 uploads per mode
    .venv/bin/python benchmarks/local_state_bench.py --quick    # 20 uploads per mode, no ledger wait

Each mode runs in a child process: a local cloud as `mlops up` runs it (moto server, data-plane
stack, enforced IAM, event runtime; no HTTP API), one contract, then ``--uploads`` small CSV
uploads from 8 client threads signed as an outside client (each PUT's answer held until a snapshot
holds it, when the state is kept). It reports the PUTs' latency (p50, p95), the burst's wall time,
the time until every upload is in the ledger, and, with the state kept, the snapshots: how many,
the last one's size, the time spent pickling (every write waits) and writing (fsyncs; nothing
waits but the clients holding answers).

The table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "scripts", ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

CONTRACT = {
    "dataset": "bench",
    "columns": [
        {"name": "x", "type": "float", "classification": "public"},
        {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
    ],
    "target": "y",
    "task": "classification",
}
THREADS = 8


def run_mode(keep_state: bool, uploads: int, ledger: bool = True) -> dict[str, Any]:
    """In this process: one local cloud, one burst. Returns the figures."""
    import boto3

    from chalicelib import bootstrap
    from chalicelib.ingest.uploads import upload_id_for
    from chalicelib.validation import Contract
    from chalicelib.validation.service import store_contract
    from mlops.localcloud import LocalCloud, free_port

    state_dir = Path(tempfile.mkdtemp(prefix="mlops-state-")) if keep_state else None
    cloud = LocalCloud(port=free_port(), api_port=None, function_log=Path(os.devnull), state_dir=state_dir)
    cloud.start()
    try:
        bootstrap.contract_sections()
        store_contract(bootstrap.contracts(), Contract.from_json(json.dumps(CONTRACT).encode()))
        bucket, table = os.environ["DATA_BUCKET"], os.environ["UPLOADS_TABLE"]
        outside = {
            "endpoint_url": cloud.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }
        s3, dynamodb = boto3.client("s3", **outside), boto3.client("dynamodb", **outside)
        latencies: list[float] = []
        ids: list[str] = []

        def put(i: int) -> None:
            key = f"incoming/bench/part-{i:04d}.csv"
            started = time.perf_counter()
            answer = s3.put_object(Bucket=bucket, Key=key, Body=f"x,y\n{i}.5,1\n{i}.25,0\n".encode())
            latencies.append(time.perf_counter() - started)
            ids.append(upload_id_for(bucket, key, answer["VersionId"]))

        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(put, range(uploads)))
        burst_s = time.perf_counter() - started
        missing = set(ids) if ledger else set()
        deadline = time.monotonic() + 600
        while missing and time.monotonic() < deadline:
            for upload_id in list(missing):
                got = dynamodb.get_item(
                    TableName=table, Key={"upload_id": {"S": upload_id}}, ConsistentRead=True
                )
                if "Item" in got:
                    missing.discard(upload_id)
            if missing:
                time.sleep(0.1)
        ledger_s = time.perf_counter() - started
        latencies.sort()
        figures: dict[str, Any] = {
            "keep_state": keep_state,
            "uploads": uploads,
            "put_p50_ms": round(1000 * statistics.median(latencies), 1),
            "put_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
            "burst_s": round(burst_s, 2),
            "all_in_ledger_s": round(ledger_s, 2) if ledger and not missing else None,
        }
        if cloud.committer is not None:
            cost = cloud.committer.store.cost
            figures.update(
                snapshots=cost.snapshots,
                last_snapshot_kib=round(cost.last_bytes / 1024, 1),
                last_pickle_ms=round(1000 * cost.last_pickle_s, 1),
                last_write_ms=round(1000 * cost.last_write_s, 1),
                mean_snapshot_ms=round(1000 * cost.total_s / max(cost.snapshots, 1), 1),
            )
        return figures
    finally:
        cloud.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 uploads per mode, no wait for the ledger")
    parser.add_argument("--no-ledger", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uploads", type=int, default=None)
    parser.add_argument("--mode", choices=("on", "off"), help=argparse.SUPPRESS)  # a child's one run
    args = parser.parse_args(argv)
    uploads = args.uploads or (20 if args.quick else 200)
    if args.mode:
        print(json.dumps(run_mode(args.mode == "on", uploads, ledger=not args.no_ledger)))
        return 0
    from machine import machine

    results = {}
    for mode in ("off", "on"):
        child = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--uploads", str(uploads)]
            + (["--no-ledger"] if args.quick else []),
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))},
            timeout=900,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return 1
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{'state kept':<12}{'PUT p50':>10}{'PUT p95':>10}{'burst':>9}{'all in ledger':>15}")
    for mode, r in results.items():
        print(
            f"{mode:<12}{r['put_p50_ms']:>8} ms{r['put_p95_ms']:>8} ms{r['burst_s']:>7} s"
            f"{r['all_in_ledger_s'] if r['all_in_ledger_s'] is not None else '-':>13} s"
        )
    on = results["on"]
    print(
        f"snapshots: {on.get('snapshots')}, the last {on.get('last_snapshot_kib')} KiB, pickled in "
        f"{on.get('last_pickle_ms')} ms, written in {on.get('last_write_ms')} ms "
        f"(mean {on.get('mean_snapshot_ms')} ms each)"
    )
    print(
        json.dumps(
            {
                "benchmark": "local_state",
                "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "uploads": uploads,
                "client_threads": THREADS,
                "off": results["off"],
                "on": results["on"],
                "machine": machine("moto"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
