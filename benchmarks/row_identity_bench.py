"""Row identity across uploads: what it costs the validating function and the training job.

    .venv/bin/python benchmarks/row_identity_bench.py           # full: a few minutes
    .venv/bin/python benchmarks/row_identity_bench.py --quick   # under a minute

Three parts, each on one core (``os.sched_setaffinity``: a 1,769 MB Lambda function has one vCPU):

1. **Row keys while validating.** The validation benchmark's customer table (generated, cached in
   build/bench/) validated in one process with the row keys computed and without
   (``validator._RowIdentity.add`` replaced by a no-op), CPU seconds, best of ``--repeat``; and,
   within the run with keys, the CPU seconds spent making them and the digest (steadier on a
   shared machine than the difference of two runs).
2. **Comparing with earlier uploads.** A dataset of U earlier uploads (their digests, 16 bytes a
   distinct row, in the in-memory store the service tests use), and a new upload of N rows of
   which half repeat earlier ones: the time to list, read and compare every earlier digest
   (``validation.service.row_identity``, the function the pipeline runs), the bytes read, and the
   process's peak RSS growth. S3 transfer time is not measured here (in memory): it is the bytes
   read divided by the function's S3 throughput.
3. **The training job's dedup.** ``load_table`` over two files where the second repeats half of the
   first's rows: the time with the newest-copy rule against the plain read, and within the run
   with it, the CPU seconds the rule itself took.

The table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, vm

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "jobs"):
    if str(path) not in sys.path:  # run as a script: chalicelib and the job importable without installing
        sys.path.insert(0, str(path))

from validation_bench import bench_contract, generate  # noqa: E402

from chalicelib.adapters.memory.validation_outputs import MemoryValidationStore  # noqa: E402
from chalicelib.validation import validator  # noqa: E402
from chalicelib.validation.layout import row_digest_key  # noqa: E402
from chalicelib.validation.rowkeys import BY_ROW_ID, RowDigest  # noqa: E402
from chalicelib.validation.service import Outcome, row_identity  # noqa: E402

MIB = 1024 * 1024
BUILD = ROOT / "build" / "bench"


def validate_cpu(path: Path, with_keys: bool, repeat: int) -> dict[str, Any]:
    """Best CPU and wall seconds of validating ``path``, with or without the row keys; with them,
    also the CPU seconds spent making the keys and the digest within that run (``keys_cpu_s``):
    on a shared machine the in-run share is steadier than the difference of two runs."""
    contract = bench_contract()
    add, digest = validator._RowIdentity.add, validator._RowIdentity.digest
    spent = [0.0]

    def timed(method: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args)
            finally:
                spent[0] += time.process_time() - started

        return wrapper

    if with_keys:
        validator._RowIdentity.add = timed(add)  # type: ignore[method-assign]
        validator._RowIdentity.digest = timed(digest)  # type: ignore[method-assign]
    else:
        validator._RowIdentity.add = lambda self, columns, order, checkers: None  # type: ignore[method-assign]
    try:
        best: dict[str, Any] = {}
        for _ in range(repeat):
            spent[0] = 0.0
            cpu, wall = time.process_time(), time.perf_counter()
            with open(path, "rb") as stream:
                result = validator.validate_stream(stream, contract, size=path.stat().st_size)
            figures = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
            if with_keys:
                figures["keys_cpu_s"] = spent[0]
                figures["keys_share"] = spent[0] / figures["cpu_s"]
            assert result.status == "valid", result.report["issues"]
            if not best or figures["cpu_s"] < best["cpu_s"]:
                best = figures
        best["rows"] = result.report["rows"]
        best["digest"] = result.row_digest is not None
        return best
    finally:
        validator._RowIdentity.add, validator._RowIdentity.digest = add, digest  # type: ignore[method-assign]


def compare_with_earlier(uploads: int, rows_each: int, new_rows: int, repeat: int) -> dict[str, Any]:
    """The pipeline's comparison of one upload with ``uploads`` earlier digests of ``rows_each`` rows."""
    rng = np.random.default_rng(20261130)
    outputs = MemoryValidationStore()
    contract = bench_contract()
    total = uploads * rows_each
    ids = rng.integers(0, 2**63, total, dtype=np.uint64)  # distinct with overwhelming probability
    for u in range(uploads):
        chunk = ids[u * rows_each : (u + 1) * rows_each]
        digest = RowDigest.of(BY_ROW_ID, chunk, chunk ^ np.uint64(7))
        at = f"2026-11-{1 + u // 1440 % 28:02d}T{u // 60 % 24:02d}:{u % 60:02d}:00Z"
        outputs.put_bytes(row_digest_key("bench", at, f"u{u:06d}"), digest.to_bytes({}), _tags())
    half = new_rows // 2
    current_ids = np.concatenate(
        [rng.choice(ids, half, replace=False), rng.integers(0, 2**63, new_rows - half, dtype=np.uint64)]
    )
    digest = RowDigest.of(BY_ROW_ID, current_ids, current_ids ^ np.uint64(7))
    result = validator.ValidationResult("valid", {}, None, digest)
    outcome = Outcome("valid", new_rows, [], {}, result, contract)
    best: dict[str, Any] = {}
    for attempt in range(repeat):
        before = vm("VmHWM")
        wall = time.perf_counter()
        section = row_identity(outcome, "bench", f"new{attempt}", "2026-12-31T00:00:00Z", "internal", outputs)
        seconds = time.perf_counter() - wall
        assert section["repeated_rows"] == half and section["earlier_uploads"] == uploads, section
        if not best or seconds < best["seconds"]:
            best = {"seconds": seconds, "peak_rss_growth_mib": round(vm("VmHWM") - before, 1)}
        # Leave the store as it was: the next attempt compares with the same earlier uploads.
        outputs.objects.delete("data", row_digest_key("bench", "2026-12-31T00:00:00Z", f"new{attempt}"))
    return {
        "earlier_uploads": uploads,
        "earlier_rows": total,
        "new_upload_rows": new_rows,
        "bytes_read": total * 16 + uploads * 120,  # keys + a JSON header line each (about 120 bytes)
        **best,
        "ns_per_earlier_row": round(best["seconds"] / total * 1e9, 1),
    }


def _tags() -> Any:
    from chalicelib.validation.layout import ObjectTags

    return ObjectTags("bench", "internal", "profile")


def dedup_in_job(path: Path, repeat: int) -> dict[str, Any]:
    """load_table over [the file, its second half again]: with the newest-copy rule and without."""
    from training import table as job_table

    contract = bench_contract()
    data = path.read_bytes()
    lines = data.split(b"\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    again = b"\n".join([header, *body[len(body) // 2 :]]) + b"\n"
    original = job_table._newest_copies
    in_rule = [0.0]

    def timed_rule(*args: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args)
        finally:
            in_rule[0] += time.process_time() - started

    figures: dict[str, Any] = {}
    for label, rule in (("with_rule", timed_rule), ("without_rule", lambda *args: None)):
        job_table._newest_copies = rule  # type: ignore[assignment]
        try:
            best: dict[str, Any] = {}
            for _ in range(repeat):
                in_rule[0] = 0.0
                cpu = time.process_time()
                table = job_table.load_table([io.BytesIO(data), io.BytesIO(again)], contract)
                spent = time.process_time() - cpu
                if not best or spent < best["cpu_s"]:
                    best = {"cpu_s": spent, "rule_cpu_s": in_rule[0]}
            figures[label] = {**best, "rows_read": table.read, "rows_kept": table.n_rows}
        finally:
            job_table._newest_copies = original
    figures["overhead"] = figures["with_rule"]["cpu_s"] / figures["without_rule"]["cpu_s"] - 1
    figures["rule_share"] = figures["with_rule"]["rule_cpu_s"] / figures["with_rule"]["cpu_s"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (best kept)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    repeat = args.repeat or (1 if args.quick else 3)
    size_mib = 20 if args.quick else 100
    one, _ = generate(BUILD, size_mib)

    figures: dict[str, Any] = {
        "benchmark": "row_identity",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine("numpy"),
        "file_mib": round(one.stat().st_size / MIB, 1),
    }
    keys = validate_cpu(one, True, repeat)
    plain = validate_cpu(one, False, repeat)
    figures["validation"] = {
        "rows": keys["rows"],
        "with_keys": keys,
        "without_keys": plain,
        "overhead": keys["cpu_s"] / plain["cpu_s"] - 1,
        "mib_per_cpu_s_with_keys": figures["file_mib"] / keys["cpu_s"],
    }
    print(
        f"validation of {figures['file_mib']} MiB ({keys['rows']:,} rows): {keys['cpu_s']:.2f} CPU s with row keys "
        f"(of which {keys['keys_cpu_s']:.2f} s making them: {keys['keys_share']:.0%}), {plain['cpu_s']:.2f} without "
        f"({figures['validation']['overhead']:+.0%})"
    )

    sizes = [(50, 20_000, 10_000), (100, 10_000, 50_000)] if args.quick else [
        (100, 10_000, 50_000),
        (200, 25_000, 100_000),
        (400, 25_000, 100_000),
        (200, 50_000, 1_000_000),
    ]  # fmt: skip
    figures["comparison"] = []
    print(
        f"\n{'earlier uploads':>16}{'earlier rows':>14}{'new rows':>10}{'MiB read':>10}{'seconds':>9}{'ns/row':>8}{'RSS +MiB':>10}"
    )
    for uploads, rows_each, new_rows in sizes:
        c = compare_with_earlier(uploads, rows_each, new_rows, repeat)
        figures["comparison"].append(c)
        print(
            f"{uploads:>16,}{c['earlier_rows']:>14,}{new_rows:>10,}{c['bytes_read'] / MIB:>10.1f}"
            f"{c['seconds']:>9.3f}{c['ns_per_earlier_row']:>8}{c['peak_rss_growth_mib']:>10}"
        )

    job = dedup_in_job(one, repeat)
    figures["job_dedup"] = job
    print(
        f"\ntraining job, {job['with_rule']['rows_read']:,} rows read, {job['with_rule']['rows_kept']:,} kept: "
        f"{job['with_rule']['cpu_s']:.2f} CPU s with the newest-copy rule (of which {job['with_rule']['rule_cpu_s']:.2f} s "
        f"applying it: {job['rule_share']:.0%}), {job['without_rule']['cpu_s']:.2f} without ({job['overhead']:+.0%})"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
