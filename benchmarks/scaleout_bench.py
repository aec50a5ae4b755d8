"""Large uploads in parallel (issue 19): one pass against shards merged, and the Lambda-scale estimate.

    .venv/bin/python benchmarks/scaleout_bench.py            # 2 GiB upload, 128 MiB shards
    .venv/bin/python benchmarks/scaleout_bench.py --quick    # 8 MiB, 1 MiB shards, under a minute

On the validation benchmark's synthetic customer file and contract (benchmarks/validation_bench.py,
cached in build/bench/), it measures:

* one pass: ``validate_stream`` over the whole file, as the ingest function validates a small upload;
* the shards: each row-aligned range (``chalicelib.rowranges``) validated on its own
  (``validation.partial.validate_shard``), one after the other, each one's time and MiB/s;
* the merge (``partial.merge``) and a check that its report equals the one pass's (every field but
  the time, the split, and mean/std to 1e-9);
* the same upload on the local cloud (moto server, IAM enforced, the event runtime running the
  ingest function up to its reserved concurrency as threads of one process): wall time from the
  PUT to the ledger entry, split and unsplit. The local cloud's functions share one process and
  its GIL, so this shows the pieces' overhead, not Lambda's parallelism.

Then the Lambda-scale estimate for the documented limit (5 GiB): 128 MiB shards, one vCPU each (as a
1,769 MB function has) at one pass's throughput on an unloaded vCPU (--vcpu-mib-s) times the shard
to one-pass ratio measured here, ``ceil(shards / reserved concurrency)`` waves, the hash piece
reading the whole upload at the S3 rate given (--s3-mib-s) meanwhile, then the merge (its time to one
pass's, measured here). Ratios within one run, because the machine is shared.

The table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "scripts", ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from machine import machine  # noqa: E402
from validation_bench import CONTRACT_DOC, bench_contract, generate  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
LIMIT_BYTES = 5 * GIB  # the documented upload limit (the contract format's default max_bytes)
GOAL_SECONDS = 300.0  # any upload up to the limit validated in under 5 minutes
LAMBDA_TIMEOUT_S = 900.0


def one_pass(data: bytes) -> tuple[Any, float]:
    from chalicelib.validation import validate_stream

    started = time.perf_counter()
    result = validate_stream(io.BytesIO(data), bench_contract(), size=len(data))
    return result, time.perf_counter() - started


def shards(data: bytes, shard_bytes: int) -> tuple[list[Any], list[float], list[int], float, float]:
    from chalicelib.rowranges import next_row_start_in, row_ranges
    from chalicelib.validation.partial import Partial, validate_shard

    started = time.perf_counter()
    header_end = data.index(b"\n") + 1
    ranges = row_ranges(len(data), header_end, shard_bytes, lambda p: next_row_start_in(data, p))
    plan_s = time.perf_counter() - started
    header = data[:header_end]
    partials, seconds, sizes, stored = [], [], [], 0
    contract = bench_contract()
    for index, (start, end) in enumerate(ranges):
        began = time.perf_counter()
        partial = validate_shard(io.BytesIO(header + data[start:end]), contract, index, size=end - start)
        body = partial.to_bytes()  # what the piece writes, and the merge reads back
        seconds.append(time.perf_counter() - began)
        sizes.append(end - start)
        stored += len(body)
        partials.append(Partial.from_bytes(body))
    return partials, seconds, sizes, plan_s, stored


def merge_all(partials: list[Any]) -> tuple[Any, float]:
    from chalicelib.validation.partial import merge

    started = time.perf_counter()
    merged = merge(bench_contract(), partials)
    return merged, time.perf_counter() - started


def same_report(mine: dict[str, Any], theirs: dict[str, Any]) -> bool:
    def exact(report: dict[str, Any]) -> dict[str, Any]:
        # Not compared: mean/std (below, to 1e-9) and a free-text column's lower bound ">N" (partial.py).
        stats = {
            n: {k: v for k, v in s.items() if k not in ("mean", "std") and not str(v).startswith(">")}
            for n, s in report["column_statistics"].items()
        }
        return {
            **{k: v for k, v in report.items() if k not in ("seconds", "shards")},
            "column_statistics": stats,
        }

    close = all(
        math.isclose(mine["column_statistics"][n][k], s[k], rel_tol=1e-9)
        for n, s in theirs["column_statistics"].items()
        for k in ("mean", "std")
        if s.get(k) is not None
    )
    return exact(mine) == exact(theirs) and close


def local_cloud(data: bytes, split_bytes: int, shard_bytes: int) -> dict[str, Any]:
    """Wall time PUT -> ledger entry on the local cloud, split and unsplit (two datasets)."""
    import boto3

    os.environ["MLOPS_VALIDATION_SPLIT_BYTES"] = str(split_bytes)
    os.environ["MLOPS_VALIDATION_SHARD_BYTES"] = str(shard_bytes)
    from chalicelib.adapters.aws.contracts import S3ContractStore
    from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger
    from chalicelib.ingest import upload_id_for
    from chalicelib.settings import Settings
    from chalicelib.validation import Contract
    from mlops.localcloud import LocalCloud, free_port

    figures: dict[str, Any] = {}
    with LocalCloud(
        port=free_port(), api_port=free_port(), function_log=ROOT / ".mlops" / "bench-scaleout.log"
    ):
        settings = Settings.from_env()
        s3 = boto3.client("s3")
        ledger = DynamoUploadLedger(settings.uploads_table)
        contracts = S3ContractStore(settings.data_bucket)
        for name in ("split", "one_pass"):
            contracts.put(Contract.parse({**CONTRACT_DOC, "dataset": f"bench_{name}"}))
        for name in ("split", "one_pass"):
            key = f"incoming/bench_{name}/upload.csv"
            if name == "one_pass":  # no split: the ingest function's ports are built again without it
                os.environ["MLOPS_VALIDATION_SPLIT_BYTES"] = str(10 * LIMIT_BYTES)
                from chalicelib import bootstrap

                bootstrap.ingest_ports.cache_clear()  # type: ignore[attr-defined]
                bootstrap.ingest_once.cache_clear()  # type: ignore[attr-defined]
            started = time.perf_counter()
            put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
            upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
            while (entry := ledger.get(upload_id)) is None:
                time.sleep(0.2)
            figures[f"{name}_s"] = round(time.perf_counter() - started, 2)
            figures[f"{name}_status"] = entry.status
    return figures


def estimate(
    shard_ratio: float,
    merge_ratio: float,
    vcpu_mib_s: float,
    shard_mib: int,
    concurrency: int,
    s3_mib_s: float,
) -> dict[str, Any]:
    """Wall time of a 5 GiB upload on Lambda. Ratios measured in this run (the project's rule on a
    shared machine), applied to one vCPU's one-pass throughput: ``shard_ratio`` a shard's MiB/s to one
    pass's, ``merge_ratio`` the merge's time to one pass's."""
    count = math.ceil(LIMIT_BYTES / (shard_mib * MIB))
    waves = math.ceil(count / concurrency)
    shard_s = shard_mib / (vcpu_mib_s * shard_ratio)
    hash_s = LIMIT_BYTES / MIB / s3_mib_s
    merge_s = merge_ratio * LIMIT_BYTES / MIB / vcpu_mib_s
    total = max(waves * shard_s, hash_s) + merge_s
    return {
        "upload_gib": 5,
        "vcpu_one_pass_mib_s": vcpu_mib_s,
        "one_pass_s": round(LIMIT_BYTES / MIB / vcpu_mib_s, 1),
        "shards": count,
        "reserved_concurrency": concurrency,
        "waves": waves,
        "shard_s": round(shard_s, 1),
        "hash_piece_s": round(hash_s, 1),
        "merge_s": round(merge_s, 1),
        "total_s": round(total, 1),
        "goal_s": GOAL_SECONDS,
        "met": total < GOAL_SECONDS and shard_s < LAMBDA_TIMEOUT_S,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 MiB, 1 MiB shards: under a minute")
    parser.add_argument("--size-mib", type=int, help="the upload's size (default 2048; quick 8)")
    parser.add_argument("--shard-mib", type=int, help="the shards' size (default 128; quick 1)")
    parser.add_argument("--no-cloud", action="store_true", help="skip the local cloud runs")
    parser.add_argument("--s3-mib-s", type=float, default=90.0, help="one S3 GET stream's MiB/s on Lambda")
    parser.add_argument(
        "--vcpu-mib-s",
        type=float,
        default=11.8,
        help="one pass's MiB/s on one unloaded vCPU (docs/BENCHMARKS.md, validation vs pandera)",
    )
    args = parser.parse_args()
    size_mib = args.size_mib or (8 if args.quick else 2048)
    shard_mib = args.shard_mib or (1 if args.quick else 128)
    path, _ = generate(ROOT / "build" / "bench", size_mib)
    data = path.read_bytes()
    print(f"upload: {len(data) / MIB:.0f} MiB, shards of {shard_mib} MiB; load {os.getloadavg()[0]:.2f}")

    whole, whole_s = one_pass(data)
    print(
        f"one pass:   {whole_s:7.1f} s  {len(data) / MIB / whole_s:6.1f} MiB/s  ({whole.status}, {whole.report['rows']:,} rows)"
    )
    partials, seconds, sizes, plan_s, stored = shards(data, shard_mib * MIB)
    rates = [size / MIB / s for size, s in zip(sizes, seconds, strict=True)]
    print(
        f"shards:     {len(partials)} x ~{shard_mib} MiB, {min(seconds):.1f}-{max(seconds):.1f} s each, "
        f"{min(rates):.1f}-{max(rates):.1f} MiB/s; partial results {stored / MIB:.1f} MiB in all"
    )
    merged, merge_s = merge_all(partials)
    equal = merged.result is not None and same_report(merged.result.report, whole.report)
    print(f"merge:      {merge_s:7.2f} s  equal to one pass: {equal}  ({merged.one_pass or 'merged'})")
    per_shard = sum(sizes) / MIB / sum(seconds)
    shard_ratio = per_shard / (len(data) / MIB / whole_s)
    merge_ratio = merge_s / whole_s
    figures: dict[str, Any] = {
        "benchmark": "scaleout",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "quick": args.quick,
        "upload_mib": round(len(data) / MIB, 1),
        "shard_mib": shard_mib,
        "shards": len(partials),
        "one_pass_s": round(whole_s, 2),
        "one_pass_mib_s": round(len(data) / MIB / whole_s, 1),
        "plan_s": round(plan_s, 3),
        "shard_s_min": round(min(seconds), 2),
        "shard_s_max": round(max(seconds), 2),
        "per_shard_mib_s": round(per_shard, 1),
        "merge_s": round(merge_s, 3),
        "shard_to_one_pass_throughput": round(shard_ratio, 3),
        "merge_to_one_pass_time": round(merge_ratio, 4),
        "partials_mib": round(stored / MIB, 2),
        "merged_equals_one_pass": equal,
        "loadavg": os.getloadavg()[0],
    }
    if not args.no_cloud:
        cloud = local_cloud(data, shard_mib * MIB * 2, shard_mib * MIB)
        print(
            f"local cloud: split {cloud['split_s']} s ({cloud['split_status']}), one pass {cloud['one_pass_s']} s"
        )
        figures["local_cloud"] = cloud
    for concurrency in (10, 20):  # dev and prod reserved concurrency of ingest_upload
        est = estimate(shard_ratio, merge_ratio, args.vcpu_mib_s, 128, concurrency, args.s3_mib_s)
        figures[f"lambda_estimate_c{concurrency}"] = est
        print(
            f"Lambda, 5 GiB, concurrency {concurrency}: {est['shards']} shards in {est['waves']} waves of "
            f"{est['shard_s']} s, hash {est['hash_piece_s']} s, merge {est['merge_s']} s -> {est['total_s']} s "
            f"({'met' if est['met'] else 'missed'}: goal < {GOAL_SECONDS:.0f} s)"
        )
    figures["machine"] = machine("numpy")
    print(json.dumps(figures))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
