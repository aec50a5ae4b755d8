"""Adversarial-input benchmark: peak memory and /tmp of the validator for hostile uploads.

    .venv/bin/python benchmarks/adversarial_bench.py           # full: 1x = 64 MiB of CSV per kind
    .venv/bin/python benchmarks/adversarial_bench.py --quick   # 1x = 4 MiB, under a minute

Each kind of upload is generated (seeded, streamed to disk under build/bench/adversarial/) at 1x and
4x size, and validated by ``validate_stream`` with the dataset's contract at its default limits, as
the ingest function would. Every case runs in a fresh child process, pinned to one core (a Lambda
function of 1,769 MB has one vCPU), with ``TMPDIR`` pointing at a fresh empty directory, so that:

* peak RSS is the child's own ``VmHWM`` (interpreter and imports included: what the function's
  memory must hold); ``ru_maxrss`` is not used, Linux carries it over ``exec``;
* /tmp is everything the validator wrote under that directory, sampled every 5 ms by a thread
  (``tmp_peak_mb``), and the duplicate finder's own count where it keeps one (``spill_peak_mb``);
* a runaway case cannot take the shared machine down: the child's address space is capped
  (``--max-memory-mb``, 6 GiB), so a case that needs more fails with MemoryError and is reported.

Kinds: ``normal`` (a mixed customer table: the baseline), ``repeated`` (one row repeated: every
value and every row id a repeat), ``huge_column`` (one text column of 256 KiB values),
``wide`` (5,000 float columns, declared by the contract), ``long_lines`` (two 1,000,000-character
fields a line, just under the line limit), ``gzip_bomb`` (one row repeated, gzip at level 9: about
1:500; its size is the decompressed size).

The goals (issue 13): peak RSS flat (the 4x case within 20% + 16 MiB of the 1x case's); /tmp within
the documented 14 bytes a row and duplicate check (it grows with distinct rows by design); both
within the ingest function's memory (1,769 MB) and ephemeral storage (``.chalice/config.json``).
A table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, vm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make chalicelib importable without installing it
    sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
MB = 1000 * 1000
SEED = 20261130
GENERATOR_VERSION = 1  # bump when the generated data changes, so cached files are rebuilt
KINDS = ("normal", "repeated", "huge_column", "wide", "long_lines", "gzip_bomb")
CHILD_TIMEOUT_S = 3600
SAMPLE_S = 0.005
# Goals: 4x within 20% (+16 MiB of slack for small figures) of 1x; within the function's settings.
GOAL_GROWTH = 1.2
GOAL_SLACK_MB = 16.0
WIDE_COLUMNS = 5000
SPILL_BYTES_PER_VALUE = 14
BLOCK_SLACK_MB = 2.0  # the sampler counts whole 4 KiB blocks of up to 256 spill files
HUGE_VALUE_CHARS = 256 * 1024
LONG_FIELD_CHARS = 1_000_000
COUNTRIES = ["AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "NL", "PL", "SE"]


# --- contracts -----------------------------------------------------------------------------------


def _col(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "classification": "internal", **extra}


CUSTOMERS = {
    "dataset": "adv_customers",
    "target": "churned",
    "task": "classification",
    "row_id": "customer_id",
    "columns": [
        _col("customer_id", "string", pattern=r"c[0-9]{10}"),
        _col("amount", "float", min=0),
        _col("score", "float", min=0, max=1),
        _col("visits", "integer", min=0),
        _col("country", "category", allowed=COUNTRIES),
        _col("note", "string", nullable=True),
        _col("churned", "boolean"),
    ],
}


def contract_doc(kind: str) -> dict[str, Any]:
    if kind == "huge_column":
        return {
            "dataset": "adv_documents",
            "target": "label",
            "task": "classification",
            "row_id": "doc_id",
            "columns": [_col("doc_id", "integer"), _col("body", "string"), _col("label", "boolean")],
        }
    if kind == "wide":
        columns = [_col(f"f{i:04d}", "float") for i in range(WIDE_COLUMNS)]
        return {
            "dataset": "adv_wide",
            "target": "y",
            "task": "regression",
            "columns": [*columns, _col("y", "float")],
        }
    if kind == "long_lines":
        return {
            "dataset": "adv_long",
            "target": "label",
            "task": "classification",
            "columns": [_col("a", "string"), _col("b", "string"), _col("label", "boolean")],
        }
    return CUSTOMERS


# --- data ----------------------------------------------------------------------------------------


def _customers(rng: np.random.Generator, first: int, rows: int) -> str:
    ids = [f"c{i:010d}" for i in range(first, first + rows)]
    amount = np.round(rng.lognormal(4, 1, rows), 2)
    score = np.round(rng.random(rows), 4)
    visits = rng.integers(0, 500, rows)
    country = rng.choice(COUNTRIES, rows)
    note = np.where(rng.random(rows) < 0.7, "", rng.choice(["call back", "vip", "moved", "complaint"], rows))
    churned = rng.choice(["true", "false"], rows)
    lines = map(
        ",".join,
        zip(
            ids,
            amount.astype(str),
            score.astype(str),
            visits.astype(str),
            country,
            note,
            churned,
            strict=True,
        ),
    )
    return "\n".join(lines) + "\n"


def _header(kind: str) -> str:
    return ",".join(c["name"] for c in contract_doc(kind)["columns"]) + "\n"


def _chunks(kind: str, target_bytes: int) -> Iterator[bytes]:
    """The file's bytes (uncompressed), about ``target_bytes`` of them, in pieces."""
    rng = np.random.default_rng(SEED)
    yield _header(kind).encode()
    written = 0
    if kind in ("normal",):
        first = 0
        while written < target_bytes:
            piece = _customers(rng, first, 20_000).encode()
            first += 20_000
            written += len(piece)
            yield piece
    elif kind in ("repeated", "gzip_bomb"):
        row = b"c0000000001,12.5,0.5,3,DE,,true\n"
        block = row * 32_768
        while written < target_bytes:
            written += len(block)
            yield block
    elif kind == "huge_column":
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
        i = 0
        while written < target_bytes:
            body = letters[rng.integers(0, 26, HUGE_VALUE_CHARS)].tobytes()
            piece = b"%d,%s,true\n" % (i, body)
            i += 1
            written += len(piece)
            yield piece
    elif kind == "wide":
        while written < target_bytes:
            values = np.round(rng.random((64, WIDE_COLUMNS + 1)), 3).astype(str)
            piece = ("\n".join(",".join(r) for r in values) + "\n").encode()
            written += len(piece)
            yield piece
    elif kind == "long_lines":
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
        while written < target_bytes:
            a = letters[rng.integers(0, 26, LONG_FIELD_CHARS)].tobytes()
            b = letters[rng.integers(0, 26, LONG_FIELD_CHARS)].tobytes()
            piece = a + b"," + b + b",false\n"
            written += len(piece)
            yield piece
    else:
        raise ValueError(kind)


def generate(directory: Path, kind: str, size_mib: int) -> Path:
    """The case's file, cached by kind, size and generator version."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if kind == "gzip_bomb" else ".csv"
    path = directory / f"{kind}-{size_mib}mib-v{GENERATOR_VERSION}{suffix}"
    if path.exists():
        return path
    partial = path.with_suffix(path.suffix + ".partial")
    with open(partial, "wb") as raw:
        out: Any = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) if kind == "gzip_bomb" else raw
        )
        for piece in _chunks(kind, size_mib * MIB):
            out.write(piece)
        if out is not raw:
            out.close()
    partial.rename(path)
    return path


def csv_bytes(path: Path) -> int:
    """The CSV's size: the file's, or for gzip the size its trailer records (modulo 4 GiB)."""
    if path.suffix != ".gz":
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


# --- the child -----------------------------------------------------------------------------------


def _tree_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed between listing and stat
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


class TmpSampler:
    """The peak of the bytes under a directory, sampled by a thread."""

    def __init__(self, path: str, every_s: float = SAMPLE_S) -> None:
        self.path = path
        self.peak = 0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_bytes(self.path))
            self._stop.wait(self._every)

    def __enter__(self) -> TmpSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_bytes(self.path))


def child(kind: str, path: Path, core: int, max_memory_mb: int) -> None:
    """Runs in a fresh process: one case; prints one JSON line."""
    os.sched_setaffinity(0, {core})
    limit = max_memory_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from chalicelib.validation.contract import Contract
    from chalicelib.validation.validator import validate_stream

    contract = Contract.parse(contract_doc(kind))
    checks = 1 + sum(c.unique or c.name == contract.row_id for c in contract.columns)
    tmp = tempfile.gettempdir()  # TMPDIR, set by the parent to a fresh directory
    spill: dict[str, int] = {}
    _instrument_spill(spill)
    rss_before = vm("VmRSS")
    started = time.perf_counter()
    error = None
    with TmpSampler(tmp) as sampler, open(path, "rb") as stream:
        try:
            result = validate_stream(stream, contract, size=path.stat().st_size)
        except MemoryError:
            result, error = None, "MemoryError"
    wall = time.perf_counter() - started
    peak_rss = vm("VmHWM")  # before the report and profile are measured below
    figures: dict[str, Any] = {
        "kind": kind,
        "file_mb": round(path.stat().st_size / MIB, 2),
        "csv_mb": round(csv_bytes(path) / MIB, 1),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_after_imports_mb": round(rss_before, 1),
        "tmp_peak_mb": round(sampler.peak / MIB, 1),
        "spill_peak_mb": round(spill["peak"] / MIB, 1) if "peak" in spill else None,
        "tmp_left_mb": round(_tree_bytes(tmp) / MIB, 1),
    }
    if result is None:
        figures.update(status="crashed", error=error)
    else:
        report = result.report
        figures.update(
            status=result.status,
            rows=report.get("rows"),
            # docs/contracts.md (Capacity): at most 14 bytes a value and check.
            tmp_bound_mb=round((report.get("rows") or 0) * checks * SPILL_BYTES_PER_VALUE / MIB, 1),
            codes=sorted({i["code"] for i in report.get("issues", [])}),
            report_kb=round(len(json.dumps(report)) / 1024, 1),
            profile_kb=round(len(json.dumps(result.profile)) / 1024, 1) if result.profile else 0,
        )
    print(json.dumps(figures))


def _instrument_spill(spill: dict[str, int]) -> None:
    """Record the duplicate checks' own count of their disk peak, where the validator keeps one
    (``SpillStore.peak``, read as the store closes)."""
    try:
        from chalicelib.validation.dupes import SpillStore
    except ImportError:
        return  # a validator without one: the sampled figure stands alone
    original: Callable[..., Any] = SpillStore.close

    def close(self: Any) -> None:
        spill["peak"] = max(spill.get("peak", 0), self.peak)
        original(self)

    SpillStore.close = close  # type: ignore[method-assign]


def measure(kind: str, path: Path, core: int, max_memory_mb: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{kind}-", dir=work))  # this case's own, even beside another run
    env = {**os.environ, "TMPDIR": str(tmp), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--file",
        str(path),
        "--core",
        str(core),
        "--max-memory-mb",
        str(max_memory_mb),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False, env=env
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"kind": kind, "status": "crashed", "error": " | ".join(tail)[-400:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- summary -------------------------------------------------------------------------------------


def function_settings() -> dict[str, Any]:
    """The ingest function's memory and ephemeral storage in the dev stage (.chalice/config.json)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    fn = config["stages"]["dev"]["lambda_functions"]["ingest_upload"]
    return {
        "memory_mb": fn.get("lambda_memory_size"),
        "ephemeral_storage_mb": fn.get("lambda_ephemeral_storage", 512),  # Lambda's default
    }


def _flat(one: float | None, four: float | None) -> bool | None:
    if one is None or four is None:
        return None
    return four <= one * GOAL_GROWTH + GOAL_SLACK_MB


def summarise(results: dict[str, dict[int, dict[str, Any]]], settings: dict[str, Any]) -> dict[str, Any]:
    # Read as decimal megabytes, the smaller reading of Lambda's "MB": the conservative check.
    memory_mib = settings["memory_mb"] * MB / MIB
    tmp_mib = settings["ephemeral_storage_mb"] * MB / MIB
    verdicts: dict[str, Any] = {}
    for kind, by_scale in results.items():
        one, four = by_scale.get(1, {}), by_scale.get(4, {})
        crashed = [s for s, r in by_scale.items() if r.get("status") == "crashed"]
        rss = [r.get("peak_rss_mb") for r in by_scale.values()]
        tmp = [r.get("tmp_peak_mb") for r in by_scale.values()]
        verdicts[kind] = {
            "no_crash": not crashed,
            "rss_flat": _flat(one.get("peak_rss_mb"), four.get("peak_rss_mb")),
            # /tmp grows with distinct rows by design: the goal is the documented bound per row.
            "tmp_per_row_bound": all(
                r.get("tmp_peak_mb") is not None
                and r["tmp_peak_mb"] <= r.get("tmp_bound_mb", 0) + BLOCK_SLACK_MB
                for r in by_scale.values()
            ),
            "within_memory": all(v is not None and v <= memory_mib for v in rss),
            "within_tmp": all(v is not None and v <= tmp_mib for v in tmp),
        }
    met = all(all(v is not False for v in kind.values()) for kind in verdicts.values())
    return {"per_kind": verdicts, "goals_met": met}


def table(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    lines = [
        "| kind | size | file MiB | CSV MiB | rows | wall s | peak RSS MiB | /tmp peak MiB | /tmp bound MiB | status | codes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for kind, by_scale in results.items():
        for scale, r in sorted(by_scale.items()):
            codes = ", ".join(r.get("codes", [])) or r.get("error", "")
            lines.append(
                f"| {kind} | {scale}x | {r.get('file_mb', '')} | {r.get('csv_mb', '')} | {r.get('rows', '')} | {r.get('wall_s', '')} "
                f"| {r.get('peak_rss_mb', '')} | {r.get('tmp_peak_mb', '')} | {r.get('tmp_bound_mb', '')} "
                f"| {r.get('status')} | {codes} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1x = 4 MiB per kind (under a minute)")
    parser.add_argument("--size-mb", type=int, help="the 1x size in MiB (default 64, or 4 with --quick)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of the kinds")
    parser.add_argument("--scales", default="1,4", help="comma-separated multiples of the 1x size")
    parser.add_argument(
        "--dir", type=Path, default=ROOT / "build" / "bench" / "adversarial", help="where files are cached"
    )
    parser.add_argument("--core", type=int, help="the core the children are pinned to (default: the last)")
    parser.add_argument("--max-memory-mb", type=int, default=6144, help="address-space cap of each child")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.file, args.core, args.max_memory_mb)
        return 0

    size_mib = args.size_mb or (4 if args.quick else 64)
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    kinds = [k for k in args.kinds.split(",") if k]
    scales = [int(x) for x in args.scales.split(",") if x]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)} (known: {', '.join(KINDS)})")
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for kind in kinds:
        results[kind] = {}
        for scale in scales:
            path = generate(args.dir, kind, size_mib * scale)
            print(f"running {kind} {scale}x ({path.name}) ...", file=sys.stderr, flush=True)
            results[kind][scale] = measure(kind, path, core, args.max_memory_mb, args.dir)
    settings = function_settings()
    summary = summarise(results, settings)
    print(table(results))
    document = {
        "benchmark": "adversarial",
        "mode": "quick" if args.quick else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "size_1x_mib": size_mib,
        "function": settings,
        "results": {k: {f"{s}x": r for s, r in v.items()} for k, v in results.items()},
        **summary,
    }
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
