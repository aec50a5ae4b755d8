"""Validation benchmark: our streaming validator against pandera, on the same contract and file.

    .venv/bin/pip install -r benchmarks/requirements.txt   # pandas + pandera: benchmark-only
    .venv/bin/python benchmarks/validation_bench.py           # full: 200 MiB and 400 MiB files
    .venv/bin/python benchmarks/validation_bench.py --quick   # 20 MiB and 40 MiB, under a minute

It generates (seeded, streamed to disk, cached in build/bench/) a CSV that is valid against the
contract below, then runs each validator in a fresh subprocess pinned to one core, because a Lambda
function of 1,769 MB has one vCPU. Each child reports wall and CPU time around the validation only
(imports excluded) and its peak RSS (imports included: that is what the function's memory must hold).
Our validator also runs on a file twice as large, to show its memory stays flat.

The table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
Sizes are in MiB (2**20 bytes) throughout, throughput in MiB/s of CSV on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, vm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make chalicelib importable without installing it
    sys.path.insert(0, str(ROOT))

from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, Contract  # noqa: E402

MIB = 1024 * 1024
SEED = 20261123
GENERATOR_VERSION = 3  # bump when the generated data changes, so cached files are rebuilt
CHUNK_ROWS = 50_000
CHILD_TIMEOUT_S = 3600

# Goals (issue 3): at least pandera's throughput, at most a quarter of its memory, flat memory.
GOAL_THROUGHPUT_RATIO = 1.0
GOAL_RSS_RATIO = 0.25
GOAL_RSS_GROWTH = 1.2

COUNTRIES = ["AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "NL", "PL", "SE"]
CHANNELS = ["web", "store", "phone", "partner"]
SEGMENTS = ["consumer", "small_business", "enterprise", "public_sector", "education", "nonprofit"]
LABELS = ["churn", "stay"]
POSTCODE_PATTERN = r"[A-Z]{2}-[0-9]{4}"

# Mixed columns as real uploads have them: an id, measurements (some with gaps), bounded counts,
# categories, a flag, a patterned code and the target.
CONTRACT_DOC: dict[str, Any] = {
    "dataset": "bench_customers",
    "description": "Synthetic customer snapshot for the validation benchmark.",
    "target": "label",
    "task": "classification",
    "row_id": "customer_id",
    "columns": [
        {"name": "customer_id", "type": "string", "classification": "internal", "pattern": r"c[0-9]{10}", "unique": True},
        {"name": "amount", "type": "float", "classification": "internal", "min": 0, "max": 1e7},
        {"name": "balance", "type": "float", "classification": "confidential", "nullable": True},
        {"name": "score", "type": "float", "classification": "internal", "min": 0, "max": 1},
        {"name": "latitude", "type": "float", "classification": "internal", "min": -90, "max": 90},
        {"name": "longitude", "type": "float", "classification": "internal", "min": -180, "max": 180},
        {"name": "temperature", "type": "float", "classification": "public", "nullable": True, "min": -60, "max": 60},
        {"name": "duration_s", "type": "float", "classification": "internal", "min": 0, "max": 86400},
        {"name": "discount", "type": "float", "classification": "internal", "nullable": True, "min": 0, "max": 1},
        {"name": "age", "type": "integer", "classification": "confidential", "min": 18, "max": 99},
        {"name": "quantity", "type": "integer", "classification": "internal", "nullable": True, "min": 0, "max": 500},
        {"name": "visits", "type": "integer", "classification": "internal", "min": 0, "max": 10000},
        {"name": "country", "type": "category", "classification": "internal", "allowed": COUNTRIES},
        {"name": "channel", "type": "category", "classification": "internal", "allowed": CHANNELS},
        {"name": "segment", "type": "category", "classification": "internal", "allowed": SEGMENTS},
        {"name": "is_member", "type": "boolean", "classification": "internal"},
        {"name": "postcode", "type": "string", "classification": "confidential", "pattern": POSTCODE_PATTERN, "max_length": 7},
        {"name": "label", "type": "category", "classification": "internal", "allowed": LABELS},
    ],
    "limits": {"min_rows": 1000, "max_rows": 50_000_000, "max_null_fraction": 0.05, "max_duplicate_row_fraction": 0.001},
}  # fmt: skip


def bench_contract() -> Contract:
    return Contract.parse(CONTRACT_DOC)


# --- data ----------------------------------------------------------------------------------------


def _chunk(index: int, first_row: int, rows: int, postcodes: list[str]) -> str:
    """CSV text of one chunk of rows; each chunk has its own seed, so files are reproducible."""
    rng = np.random.default_rng([SEED, 1, index])

    def fmt(values: np.ndarray, spec: str, null_rate: float = 0.0) -> list[str]:
        out = [format(v, spec) for v in values.tolist()]
        if null_rate:
            for i in np.flatnonzero(rng.random(rows) < null_rate).tolist():
                out[i] = ""  # the contract's null value
        return out

    columns = [
        [f"c{i:010d}" for i in range(first_row, first_row + rows)],
        fmt(np.minimum(rng.lognormal(5.0, 1.5, rows), 1e7), ".2f"),
        fmt(rng.normal(2500.0, 4000.0, rows), ".2f", null_rate=0.02),
        fmt(rng.random(rows), ".4f"),
        fmt(rng.uniform(-90, 90, rows), ".5f"),
        fmt(rng.uniform(-180, 180, rows), ".5f"),
        fmt(np.clip(rng.normal(12.0, 9.0, rows), -60, 60), ".1f", null_rate=0.03),
        fmt(rng.exponential(600.0, rows).clip(0, 86400), ".1f"),
        fmt(rng.beta(1.0, 8.0, rows), ".3f", null_rate=0.10),
        fmt(rng.integers(18, 100, rows), "d"),
        fmt(rng.poisson(3.0, rows).clip(0, 500), "d", null_rate=0.01),
        fmt(rng.geometric(0.02, rows).clip(0, 10000), "d"),
        [COUNTRIES[i] for i in rng.integers(0, len(COUNTRIES), rows).tolist()],
        [CHANNELS[i] for i in rng.choice(len(CHANNELS), rows, p=[0.5, 0.3, 0.15, 0.05]).tolist()],
        [SEGMENTS[i] for i in rng.integers(0, len(SEGMENTS), rows).tolist()],
        ["true" if b else "false" for b in (rng.random(rows) < 0.35).tolist()],
        [postcodes[i] for i in rng.integers(0, len(postcodes), rows).tolist()],
        [LABELS[i] for i in (rng.random(rows) < 0.8).astype(int).tolist()],
    ]
    return "".join(",".join(row) + "\n" for row in zip(*columns, strict=True))


def _postcodes() -> list[str]:
    rng = np.random.default_rng([SEED, 0])
    letters = rng.integers(0, 26, (2000, 2)).tolist()
    digits = rng.integers(0, 10000, 2000).tolist()
    return [f"{chr(65 + a)}{chr(65 + b)}-{d:04d}" for (a, b), d in zip(letters, digits, strict=True)]


def generate(directory: Path, size_mib: int) -> tuple[Path, Path]:
    """The 1x file (>= size_mib) and the 2x file: the same rows, then as many again (new ids).

    Both are written in one pass, a chunk at a time, and kept: a later run with the same size,
    seed and generator version reuses them (generation is not what we measure).
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"customers-s{SEED}-v{GENERATOR_VERSION}-{size_mib}mib"
    one, two = directory / f"{stem}-1x.csv", directory / f"{stem}-2x.csv"
    if one.exists() and two.exists():
        return one, two
    header = ",".join(c["name"] for c in CONTRACT_DOC["columns"]) + "\n"
    postcodes = _postcodes()
    target = size_mib * MIB
    tmp_one, tmp_two = one.with_suffix(".tmp"), two.with_suffix(".tmp")
    started = time.perf_counter()
    with (
        open(tmp_one, "w", encoding="utf-8", newline="") as f1,
        open(tmp_two, "w", encoding="utf-8", newline="") as f2,
    ):
        f1.write(header)
        f2.write(header)
        written, chunks_one, index = len(header), 0, 0
        # The 1x file takes chunks until it reaches the size; the 2x file takes twice as many chunks.
        while chunks_one == 0 or index < 2 * chunks_one:
            text = _chunk(index, index * CHUNK_ROWS, CHUNK_ROWS, postcodes)
            if chunks_one == 0:
                f1.write(text)
                written += len(text)  # ASCII only: characters are bytes
                if written >= target:
                    chunks_one = index + 1
            f2.write(text)
            index += 1
    tmp_one.rename(one)
    tmp_two.rename(two)
    print(f"generated {one.name} and {two.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return one, two


# --- pandera: the same contract, as most users would write it -------------------------------------


def pandas_dtypes(contract: Contract) -> dict[str, Any]:
    """read_csv dtypes: numpy ones where the column has no nulls, the nullable pandas ones otherwise."""
    dtypes: dict[str, Any] = {}
    for c in contract.columns:
        if c.type == "integer":
            dtypes[c.name] = "Int64" if c.nullable else "int64"
        elif c.type == "float":
            dtypes[c.name] = "float64"
        elif c.type == "boolean":
            dtypes[c.name] = "boolean" if c.nullable else "bool"
        elif c.type == "category":
            # Plain "category", not CategoricalDtype(allowed): that would turn unknown values into NaN
            # silently instead of failing the isin check.
            dtypes[c.name] = "category"
        else:  # string, and timestamp (parsed after reading)
            dtypes[c.name] = "str"
    return dtypes


def pandera_schema(contract: Contract) -> Any:
    """A pandera DataFrameSchema enforcing the contract's column and dataset-level rules."""
    import pandera.pandas as pa

    columns = {}
    for c in contract.columns:
        checks = []
        if c.min is not None or c.max is not None:
            lo = c.min if c.min is not None else -np.inf
            hi = c.max if c.max is not None else np.inf
            checks.append(pa.Check.in_range(lo, hi))
        if c.type == "float":
            # Our validator rejects "nan"/"inf" in a float column; the C parser would accept them.
            checks.append(pa.Check(lambda s: np.isfinite(s), name="finite"))
        if c.allowed is not None:
            checks.append(pa.Check.isin(list(c.allowed)))
        if c.pattern is not None:
            # The contract means a full match; str_matches anchors only at the start.
            checks.append(pa.Check.str_matches(rf"(?:{c.pattern})\Z"))
        if c.max_length is not None:
            checks.append(pa.Check.str_length(max_value=c.max_length))
        dtype = "datetime64[ns, UTC]" if c.type == "timestamp" else pandas_dtypes(contract)[c.name]
        columns[c.name] = pa.Column(
            dtype,
            checks=checks,
            nullable=c.nullable,
            unique=c.unique or c.name == contract.row_id,
            required=True,
        )
    limits = contract.limits
    dataset_checks = [pa.Check(lambda df: len(df) >= limits.min_rows, name="min_rows")]
    if (max_rows := limits.max_rows) is not None:
        dataset_checks.append(pa.Check(lambda df: len(df) <= max_rows, name="max_rows"))
    if limits.max_null_fraction < 1.0:
        # Same measure as our validator: empty cells over all cells.
        dataset_checks.append(
            pa.Check(
                lambda df: df.isna().to_numpy().sum() <= limits.max_null_fraction * df.size,
                name="max_null_fraction",
            )
        )
    if limits.max_duplicate_row_fraction < 1.0:
        dataset_checks.append(
            pa.Check(
                lambda df: df.duplicated().sum() <= limits.max_duplicate_row_fraction * len(df),
                name="max_duplicate_row_fraction",
            )
        )
    # strict: a column the contract does not declare fails; order is free, as in our validator.
    return pa.DataFrameSchema(columns, checks=dataset_checks, strict=True, ordered=False)


def run_pandera(path: Path, contract: Contract) -> dict[str, Any]:
    import pandas as pd
    import pandera.errors

    schema = pandera_schema(contract)
    fmt = contract.format
    started = time.perf_counter()
    try:
        df = pd.read_csv(
            path,
            engine="c",
            sep=fmt.delimiter,
            quotechar=fmt.quotechar,
            dtype=pandas_dtypes(contract),
            keep_default_na=False,  # only the contract's null values are nulls, not "NA", "null"...
            na_values=list(fmt.null_values),
            true_values=sorted(BOOLEAN_TRUE),
            false_values=sorted(BOOLEAN_FALSE),
        )
        for c in contract.columns:
            if c.type == "timestamp":
                df[c.name] = pd.to_datetime(df[c.name], utc=True, format="ISO8601")
    except (ValueError, pd.errors.ParserError) as exc:  # a value the dtype cannot hold, bad quoting...
        return {"status": "invalid", "rows": None, "issues": 1, "first_issue": str(exc)[:200]}
    rows = len(df)
    read_s = round(time.perf_counter() - started, 3)  # where pandera's time goes: parsing or checking
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return {
            "status": "invalid",
            "rows": rows,
            "issues": len(exc.failure_cases),
            "first_issue": str(exc)[:200],
        }
    return {"status": "valid", "rows": rows, "issues": 0, "read_csv_s": read_s}


# --- ours ----------------------------------------------------------------------------------------


def run_ours(path: Path, contract: Contract) -> dict[str, Any]:
    try:
        from chalicelib.validation.validator import validate_stream
    except ImportError as exc:
        raise SystemExit(
            f"our validator is not importable yet (chalicelib/validation/validator.py: {exc}); "
            "run with --only pandera until it exists"
        ) from exc
    with open(path, "rb") as stream:
        result = validate_stream(stream, contract)
    issues = result.report.get("issues", [])
    return {
        "status": result.status,
        "rows": result.report.get("rows"),
        "issues": len(issues),
        **({"first_issue": issues[0].get("message")} if issues else {}),
    }


# --- measurement ---------------------------------------------------------------------------------


def child(which: str, path: Path, core: int) -> None:
    """Runs in a fresh process: one validator, one file, one core; prints one JSON line."""
    os.sched_setaffinity(0, {core})
    contract = bench_contract()
    runner = run_ours if which == "ours" else run_pandera
    # Import before timing: start-up is paid once per Lambda container, not per file.
    if which == "ours":
        import chalicelib.validation.validator  # noqa: F401
    else:
        import pandas  # noqa: F401
        import pandera.pandas  # noqa: F401
    rss_before = vm("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    outcome = runner(path, contract)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    size = path.stat().st_size
    figures = {
        "validator": which,
        "file_mb": round(size / MIB, 1),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "mb_per_s": round(size / MIB / wall, 2),
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child started with vfork
        # (as subprocess does) reports at least the parent's RSS, here the data generator's.
        "peak_rss_mb": round(vm("VmHWM"), 1),
        "ru_maxrss_mb": round(after.ru_maxrss / 1024, 1),  # KiB on Linux
        "rss_after_imports_mb": round(rss_before, 1),
        "core": core,
        **outcome,
    }
    print(json.dumps(figures))


def measure(which: str, path: Path, core: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        which,
        "--file",
        str(path),
        "--core",
        str(core),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"validator": which, "status": "error", "error": " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Times of the fastest run (the least disturbed by a noisy machine), memory of the largest.

    Noise only ever slows a run down, so the fastest is the truest time; memory is what a function
    must be sized for, so the highest peak counts.
    """
    ok = [r for r in runs if r.get("status") != "error"]
    if not ok:
        return runs[-1]
    best = dict(min(ok, key=lambda r: r["wall_s"]))
    if len(runs) > 1:
        best["wall_s_all"] = [r.get("wall_s") for r in runs]
        best["peak_rss_mb_all"] = [r.get("peak_rss_mb") for r in runs]
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
        statuses = sorted({r.get("status", "error") for r in runs})
        best["status"] = "/".join(statuses)  # "valid" only when every run said so
    return best


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("numpy", "pandas", "pandera"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _goal(value: float | None, ok: bool) -> str:
    return "not measured" if value is None else ("met" if ok else "not met")


def summarise(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    def fig(name: str, key: str) -> float | None:
        r = results.get(name, {})
        return r.get(key) if r.get("status") == "valid" else None

    ratios = {
        "throughput_ours_over_pandera": _ratio(fig("ours", "mb_per_s"), fig("pandera", "mb_per_s")),
        "peak_rss_ours_over_pandera": _ratio(fig("ours", "peak_rss_mb"), fig("pandera", "peak_rss_mb")),
        "peak_rss_ours_2x_over_1x": _ratio(fig("ours_2x", "peak_rss_mb"), fig("ours", "peak_rss_mb")),
    }
    t, m, g = ratios.values()
    goals = {
        f"throughput >= {GOAL_THROUGHPUT_RATIO:g}x pandera": _goal(
            t, t is not None and t >= GOAL_THROUGHPUT_RATIO
        ),
        f"peak RSS <= {GOAL_RSS_RATIO:g}x pandera": _goal(m, m is not None and m <= GOAL_RSS_RATIO),
        f"peak RSS 2x file <= {GOAL_RSS_GROWTH:g}x 1x file": _goal(g, g is not None and g <= GOAL_RSS_GROWTH),
    }
    return ratios, goals


def table(results: dict[str, dict[str, Any]], ratios: dict[str, Any], goals: dict[str, Any]) -> str:
    head = (
        f"{'validator':<12}{'file MiB':>10}{'wall s':>9}{'CPU s':>9}{'MiB/s':>9}{'peak RSS MiB':>14}  status"
    )
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        if r.get("status") == "error":
            lines.append(f"{name:<12}  error: {r.get('error')}")
            continue
        lines.append(
            f"{name:<12}{r['file_mb']:>10.1f}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{r['mb_per_s']:>9.2f}"
            f"{r['peak_rss_mb']:>14.1f}  {r['status']}"
            + (f" ({r['issues']} issues)" if r.get("issues") else "")
        )
    lines.append("")
    lines += [f"{k:<34}{'-' if v is None else v}" for k, v in ratios.items()]
    lines.append("")
    lines += [f"goal: {k:<34}{v}" for k, v in goals.items()]
    return "\n".join(lines)


def _data_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1  # one line per row in the generated files, minus the header


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MiB and 40 MiB files (under a minute)")
    parser.add_argument(
        "--size-mb", type=int, help="size of the 1x file in MiB (default 200, or 20 with --quick)"
    )
    parser.add_argument(
        "--dir", type=Path, default=ROOT / "build" / "bench", help="where the CSV files are cached"
    )
    parser.add_argument(
        "--core", type=int, help="the core the validators are pinned to (default: the last one)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per validator; the fastest is reported")
    parser.add_argument("--only", choices=("pandera", "ours"), help="run one validator only")
    parser.add_argument("--child", choices=("pandera", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.file, args.core)
        return 0

    size_mib = args.size_mb or (20 if args.quick else 200)
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    one, two = generate(args.dir, size_mib)
    rows_one, rows_two = _data_rows(one), _data_rows(two)

    plan = [("pandera", "pandera", one), ("ours", "ours", one), ("ours_2x", "ours", two)]
    if args.only:
        plan = [p for p in plan if p[1] == args.only]
    results: dict[str, dict[str, Any]] = {}
    for name, which, path in plan:
        print(f"running {name} on {path.name} (core {core}) ...", file=sys.stderr, flush=True)
        results[name] = best_of([measure(which, path, core) for _ in range(args.repeat)])

    ratios, goals = summarise(results)
    print(table(results, ratios, goals))
    document = {
        "benchmark": "validation",
        "mode": "quick" if args.quick else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "python": platform.python_version(),
        "packages": _versions(),
        "pinned_core": core,
        "repeat": args.repeat,
        "files": {
            "1x": {"name": one.name, "mb": round(one.stat().st_size / MIB, 1), "rows": rows_one},
            "2x": {"name": two.name, "mb": round(two.stat().st_size / MIB, 1), "rows": rows_two},
        },
        "validators": results,
        "ratios": ratios,
        "goals": goals,
        "goals_met": all(v == "met" for v in goals.values()),
    }
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
