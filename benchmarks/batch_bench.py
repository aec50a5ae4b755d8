"""Batch scoring benchmark: a worker end to end against its stages alone, and 2 workers against 1.

    .venv/bin/python benchmarks/batch_bench.py            # 1,000,000 rows (~200 MiB), 16 MiB shards
    .venv/bin/python benchmarks/batch_bench.py --quick    # 100,000 rows, under a minute

On one input object in a moto server (its own process, as S3 is another machine) and one model
(the breast-cancer logistic regression, trained here by the training job's code), it measures:

* each stage alone on the same shards: read (ranged GET, streamed), parse (pyarrow CSV + the
  schema's checks), score (onnxruntime), format (CSV), write (create-only PUT);
* a worker end to end (``scoring.engine.score_pieces`` over the ranged GET, then the write), in a
  child process pinned to one core, the way a 1-vCPU Batch worker runs, and again on both cores
  (a 2-vCPU worker); with the moto server pinned to the other core (``--moto-core``), so that the
  1-vCPU worker does not share its core with S3 (on AWS S3 is another machine); and each pipeline
  stage's busy seconds inside the worker (``score_pieces(busy=...)``);
* 1 worker against 2 (two pinned children splitting the shards) - wall time for the whole input;
* peak RSS of a worker on the input and on an input twice as large (same shard size): memory is
  set by the shard, not the input;
* onnxruntime against scikit-learn on the score stage, for the logistic regression and for a deep
  random forest (the engine choice of ``chalicelib/batch/requests.py::choose_engine``).

The table goes to stdout; the last line is one JSON object with every figure, for docs/BENCHMARKS.md.
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

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "jobs", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

MIB = 1024 * 1024
BUCKET = "bench-batch"
GOAL_OVERLAP = 1.3  # end to end <= 1.3x the slowest stage (issue 19)
GOAL_SCALING = 1.7  # 2 workers >= 1.7x one


def _env(port: int) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "jobs"), str(ROOT), str(ROOT / "scripts")]),
    }


def build_models(work: Path) -> None:
    """Train the logistic regression and a deep forest; write their ONNX, schema and pipeline."""
    from chalicelib.training.settings import TrainingSettings
    from chalicelib.validation import Contract
    from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
    from training.main import build_candidate
    from training.table import load_table

    header, rows = breast_cancer_rows()
    for name, family, params in (
        ("logistic", "logistic_regression", {"C": 1.0}),
        ("forest", "random_forest", {"n_estimators": 100}),
    ):
        doc = breast_cancer_contract()
        doc["training"]["model"] = {"family": family, "params": params}
        contract = Contract.parse(doc)
        training = TrainingSettings.from_contract(contract)
        lineage = {
            "run_id": name,
            "dataset": "breast_cancer",
            "data_hash": "0" * 64,
            "data_objects": [],
            "parameters": training.to_dict(),
        }
        artifacts, _ = build_candidate(
            load_table([to_csv(header, rows)], contract), contract, training, lineage
        )
        for artifact in ("model.onnx", "input_schema.json", "model.joblib"):
            (work / f"{name}-{artifact}").write_bytes(artifacts[artifact])


def load_scorer(work: Path, name: str, engine: str = "onnxruntime") -> Any:
    import io

    import joblib
    from scoring.engine import Scorer

    from chalicelib.serving.model import OnnxModel

    model = OnnxModel(
        (work / f"{name}-model.onnx").read_bytes(),
        json.loads((work / f"{name}-input_schema.json").read_text()),
    )
    pipeline = (
        joblib.load(io.BytesIO((work / f"{name}-model.joblib").read_bytes())) if engine == "sklearn" else None
    )
    return Scorer(model, engine, pipeline)


def plan(key: str, shard_bytes: int) -> tuple[list[str], list[tuple[int, int]]]:
    import boto3

    from chalicelib.batch.sharding import InputObject, plan_shards

    s3 = boto3.client("s3")
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]

    def read(obj: Any, start: int, length: int) -> bytes:
        return bytes(
            s3.get_object(Bucket=BUCKET, Key=obj.key, Range=f"bytes={start}-{start + length - 1}")[
                "Body"
            ].read()
        )

    described, shards = plan_shards([InputObject(key, size)], shard_bytes, read)
    return described[0]["header"], [(s.start, s.end) for s in shards]


# --- the child: one worker -------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Score shards ``args.shards`` (i:j of the plan) end to end, or time the stages alone."""
    import boto3
    from scoring.engine import row_pieces, s3_range_chunks, score_pieces
    from scoring.worker import write_part

    work = Path(args.work)
    scorer = load_scorer(work, "logistic")
    header, shards = plan(args.key, args.shard_bytes)
    first, last = (int(x) for x in args.shards.split(":"))
    mine = shards[first:last]
    s3 = boto3.client("s3")
    figures: dict[str, Any] = {"shards": len(mine)}
    if args.mode == "e2e-file":  # the same worker code, the shard bytes from a local file: no moto
        path = work / Path(args.key).name
        rows = 0
        file_busy: dict[str, float] = {"read": 0.0, "parse": 0.0, "score": 0.0, "format": 0.0}
        started = time.perf_counter()
        cpu = time.process_time()
        with path.open("rb") as f:
            for start, end in mine:
                f.seek(start)
                data = f.read(end - start)
                chunks = iter([data[i : i + 4 * MIB] for i in range(0, len(data), 4 * MIB)])
                shard_busy: dict[str, float] = {}
                rows += score_pieces(row_pieces(chunks), header, scorer, busy=shard_busy).rows
                for name, seconds in shard_busy.items():
                    file_busy[name] += seconds
                del data, chunks
        figures.update(
            rows=rows,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
            busy=file_busy,
        )
    elif args.mode == "e2e":
        rows = 0
        busy: dict[str, float] = {"read": 0.0, "parse": 0.0, "score": 0.0, "format": 0.0, "write": 0.0}
        started = time.perf_counter()
        cpu = time.process_time()
        for i, (start, end) in enumerate(mine):
            shard_busy = {}
            out = score_pieces(
                row_pieces(s3_range_chunks(s3, BUCKET, args.key, None, start, end)),
                header,
                scorer,
                busy=shard_busy,
            )
            t = time.perf_counter()
            write_part(BUCKET, f"out/{args.tag}/part-{first + i:05d}.csv", out, "bench")
            busy["write"] += time.perf_counter() - t
            for name, seconds in shard_busy.items():
                busy[name] += seconds
            rows += out.rows
        figures.update(
            rows=rows,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
            busy=busy,
            cpus=len(os.sched_getaffinity(0)),
        )
    else:  # stages alone, each over every shard, on the same bytes
        stage = {"read": 0.0, "parse": 0.0, "score": 0.0, "format": 0.0, "write": 0.0}
        cpu_at = time.process_time()
        stage_cpu = dict.fromkeys(stage, 0.0)  # the process's CPU seconds in each stage (load-proof)

        def lap(name: str) -> None:
            nonlocal cpu_at
            now = time.process_time()
            stage_cpu[name] += now - cpu_at
            cpu_at = now

        rows = 0
        for i, (start, end) in enumerate(mine):
            cpu_at = time.process_time()
            t = time.perf_counter()
            pieces = list(row_pieces(s3_range_chunks(s3, BUCKET, args.key, None, start, end)))
            stage["read"] += time.perf_counter() - t
            lap("read")
            t = time.perf_counter()
            encoded = []
            for piece in pieces:
                table = scorer.parse(piece, header)
                encoded.append((table, scorer.encode(table)))
            stage["parse"] += time.perf_counter() - t
            lap("parse")
            t = time.perf_counter()
            scored = [(table, scorer.score(feed)) for table, feed in encoded]
            stage["score"] += time.perf_counter() - t
            lap("score")
            t = time.perf_counter()
            data = b"".join(scorer.format(table, scores, j == 0) for j, (table, scores) in enumerate(scored))
            stage["format"] += time.perf_counter() - t
            lap("format")
            rows += sum(table.num_rows for table, _ in encoded)
            t = time.perf_counter()
            s3.put_object(
                Bucket=BUCKET, Key=f"out/{args.tag}/stage-{first + i:05d}.csv", Body=data, IfNoneMatch="*"
            )
            stage["write"] += time.perf_counter() - t
            lap("write")
            del pieces, encoded, scored, data
        figures.update(rows=rows, stages=stage, stages_cpu=stage_cpu)
    figures["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(figures))


def _no_moto(stage: dict[str, float], one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """The worker from a local file (no S3, no moto): end to end on 1 and 2 vCPUs against its CPU
    stages alone (parse, score, format): the slowest, and their sum (the floor on one vCPU)."""
    cpu_stages = {k: stage[k] for k in ("parse", "score", "format")}
    slowest = max(cpu_stages.values())
    return {
        "e2e_1vcpu_s": round(one["seconds"], 3),
        "e2e_2vcpu_s": round(two["seconds"], 3),
        "cpu_1vcpu_s": round(one["cpu_seconds"], 3),
        "cpu_2vcpu_s": round(two["cpu_seconds"], 3),
        "cpu_stages_sum_s": round(sum(cpu_stages.values()), 3),
        "e2e_1vcpu_over_slowest_stage": round(one["seconds"] / slowest, 2),
        "e2e_1vcpu_over_cpu_stages_sum": round(one["seconds"] / sum(cpu_stages.values()), 2),
        "e2e_2vcpu_over_slowest_stage": round(two["seconds"] / slowest, 2),
        "ok_2vcpu": bool(two["seconds"] / slowest <= GOAL_OVERLAP),
        "busy_2vcpu_s": {k: round(v, 3) for k, v in two["busy"].items()},
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _peak_rss_mib() -> float:
    """VmHWM: this process's peak RSS (ru_maxrss would include the parent's, kept across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_children(
    port: int,
    work: Path,
    key: str,
    shard_bytes: int,
    mode: str,
    splits: list[tuple[int, int]],
    tag: str,
    cores: list[str],
) -> tuple[float, list[dict[str, Any]]]:
    """One child per split, child n pinned to ``cores[n]`` (a ``taskset -c`` list such as "0" or "0,1")."""
    procs = []
    started = time.perf_counter()
    for n, (a, b) in enumerate(splits):
        command = [sys.executable, __file__, "--child", "--mode", mode, "--work", str(work), "--key", key,
                   "--shard-bytes", str(shard_bytes), "--shards", f"{a}:{b}", "--tag", f"{tag}-{n}"]  # fmt: skip
        if cores:
            command = ["taskset", "-c", cores[n % len(cores)], *command]
        procs.append(subprocess.Popen(command, env=_env(port), stdout=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode:
            raise SystemExit(f"a benchmark child failed ({p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return time.perf_counter() - started, results


def engines(work: Path, rows: int) -> dict[str, Any]:
    """Score stage alone: onnxruntime vs scikit-learn, per model."""
    from mlops.datasets import breast_cancer_batch

    data = breast_cancer_batch(rows, block_rows=rows)
    header, body = data.split(b"\n", 1)
    out: dict[str, Any] = {}
    for name in ("logistic", "forest"):
        ort = load_scorer(work, name, "onnxruntime")
        skl = load_scorer(work, name, "sklearn")
        table = ort.parse(body, header.decode().split(","))
        feed = ort.encode(table)
        times = {}
        for label, scorer in (("onnxruntime", ort), ("sklearn", skl)):
            scorer.score({k: v[:1000] for k, v in feed.items()})  # warm up
            t = time.perf_counter()
            scorer.score(feed)
            times[label] = time.perf_counter() - t
        out[name] = {"rows": rows, **{f"{k}_s": round(v, 3) for k, v in times.items()},
                     "ort_over_sklearn": round(times["onnxruntime"] / times["sklearn"], 2)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 2 MiB shards: under a minute")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of the stages and end to end (best kept; default 3, quick 1)",
    )
    parser.add_argument("--rows", type=int)
    parser.add_argument("--shard-mb", type=float)
    parser.add_argument(
        "--moto-core",
        default="1",
        help='the core the moto server is pinned to (default 1: the 1-vCPU worker has core 0 to itself); "none": not pinned',
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="e2e", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--shard-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shards", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    shard_bytes = int((args.shard_mb or (2 if args.quick else 16)) * MIB)
    work = ROOT / "build" / "bench" / "batch"
    work.mkdir(parents=True, exist_ok=True)
    from mlops.localcloud import free_port

    port = free_port()
    moto_command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    if args.moto_core != "none":
        moto_command = ["taskset", "-c", args.moto_core, *moto_command]
    load_before = _loadavg()
    moto = subprocess.Popen(moto_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.environ.update({k: v for k, v in _env(port).items() if k.startswith("AWS_")})
        import boto3

        from mlops.datasets import breast_cancer_batch

        for _ in range(100):
            try:
                boto3.client("s3").create_bucket(Bucket=BUCKET)
                break
            except Exception:
                time.sleep(0.1)
        t = time.perf_counter()
        build_models(work)
        data = breast_cancer_batch(rows)
        double = breast_cancer_batch(rows * 2)
        boto3.client("s3").put_object(Bucket=BUCKET, Key="in/x1.csv", Body=data)
        boto3.client("s3").put_object(Bucket=BUCKET, Key="in/x2.csv", Body=double)
        (work / "x1.csv").write_bytes(data)
        setup_s = time.perf_counter() - t
        _, shards = plan("in/x1.csv", shard_bytes)
        n = len(shards)
        # The ratios' runs, repeated and interleaved; each figure is its best run (the one the other
        # engineers' load disturbed least), stages alone per stage.
        runs: dict[str, list[dict[str, Any]]] = {"stages": [], "e2e": [], "e2e2": [], "file": [], "file2": []}
        for r in range(args.repeat):
            for name, mode, cores in (("stages", "stages", "0"), ("e2e", "e2e", "0"), ("e2e2", "e2e", "0,1"),
                                      ("file", "e2e-file", "0"), ("file2", "e2e-file", "0,1")):  # fmt: skip
                _, result = run_children(
                    port, work, "in/x1.csv", shard_bytes, mode, [(0, n)], f"{name}{r}", [cores]
                )
                runs[name].append(result[0])
        stages = [
            {
                kind: {k: min(run[kind][k] for run in runs["stages"]) for k in runs["stages"][0][kind]}
                for kind in ("stages", "stages_cpu")
            }
        ]
        e2e_1, e2e_2cpu, file_1, file_2cpu = (
            [min(runs[name], key=lambda run: run["seconds"])] for name in ("e2e", "e2e2", "file", "file2")
        )
        e2e_2_s, e2e_2 = run_children(
            port, work, "in/x1.csv", shard_bytes, "e2e", [(0, n // 2), (n // 2, n)], "two", ["0", "1"]
        )
        _, file_2 = run_children(
            port, work, "in/x1.csv", shard_bytes, "e2e-file", [(0, n // 2), (n // 2, n)], "f2", ["0", "1"]
        )
        # Scaling from the children's own clocks (start-up and imports, ~1.5 s a process, excluded).
        file_1_s = file_1[0]["seconds"]
        file_2_s = max(r["seconds"] for r in file_2)
        _, shards2 = plan("in/x2.csv", shard_bytes)
        _, big = run_children(port, work, "in/x2.csv", shard_bytes, "e2e", [(0, len(shards2))], "big", ["0"])
        engine_figures = engines(work, min(rows, 100_000))
    finally:
        moto.terminate()
        moto.wait()
    stage = stages[0]["stages"]
    slowest = max(stage, key=lambda k: stage[k])
    worker_s = e2e_1[0]["seconds"]
    worker_2cpu_s = e2e_2cpu[0]["seconds"]
    e2e_1_s = worker_s
    no_moto = _no_moto(stage, file_1[0], file_2cpu[0])
    e2e_2_s = max(r["seconds"] for r in e2e_2)
    figures = {
        "benchmark": "batch_bench",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "quick": args.quick,
        "rows": rows,
        "input_mib": round(len(data) / MIB, 1),
        "shard_mib": round(shard_bytes / MIB, 1),
        "shards": n,
        "setup_s": round(setup_s, 1),
        "stages_s": {k: round(v, 3) for k, v in stage.items()},
        "stages_sum_s": round(sum(stage.values()), 3),
        "stages_cpu_s": {k: round(v, 3) for k, v in stages[0]["stages_cpu"].items()},
        "e2e_worker_cpu_s": round(e2e_1[0]["cpu_seconds"], 3),
        "slowest_stage": slowest,
        "e2e_worker_s": round(worker_s, 3),
        "e2e_rows_per_s": round(rows / worker_s),
        "e2e_over_slowest_stage": round(worker_s / stage[slowest], 2),
        "e2e_over_stages_sum": round(worker_s / sum(stage.values()), 2),
        "e2e_busy_s": {k: round(v, 3) for k, v in e2e_1[0]["busy"].items()},
        "e2e_2vcpu_worker_s": round(worker_2cpu_s, 3),
        "e2e_2vcpu_over_slowest_stage": round(worker_2cpu_s / stage[slowest], 2),
        "e2e_2vcpu_cpu_s": round(e2e_2cpu[0]["cpu_seconds"], 3),
        "e2e_2vcpu_busy_s": {k: round(v, 3) for k, v in e2e_2cpu[0]["busy"].items()},
        "moto_core": args.moto_core,
        "repeat": args.repeat,
        "no_moto": no_moto,
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "one_worker_s": round(e2e_1_s, 3),
        "two_workers_s": round(e2e_2_s, 3),
        "two_over_one_speedup": round(e2e_1_s / e2e_2_s, 2),
        "worker_cpu_s": round(e2e_1[0]["cpu_seconds"], 3),
        "no_moto_one_worker_s": round(file_1_s, 3),
        "no_moto_two_workers_s": round(file_2_s, 3),
        "no_moto_two_over_one_speedup": round(file_1_s / file_2_s, 2),
        "peak_rss_mib_input_1x": round(e2e_1[0]["peak_rss_mib"], 1),
        "peak_rss_mib_input_2x": round(big[0]["peak_rss_mib"], 1),
        "engines": engine_figures,
        "goals": {
            "e2e_le_1.3x_slowest_stage": worker_s / stage[slowest] <= GOAL_OVERLAP,
            "e2e_2vcpu_le_1.3x_slowest_stage": worker_2cpu_s / stage[slowest] <= GOAL_OVERLAP,
            "no_moto_e2e_2vcpu_le_1.3x_slowest_cpu_stage": no_moto["ok_2vcpu"],
            "two_workers_ge_1.7x": e2e_1_s / e2e_2_s >= GOAL_SCALING,
            "memory_flat": big[0]["peak_rss_mib"] <= 1.2 * e2e_1[0]["peak_rss_mib"],
        },
    }
    print(f"{rows:,} rows, {figures['input_mib']} MiB, {n} shards of {figures['shard_mib']} MiB")
    for name, seconds in stage.items():
        print(
            f"  stage {name:<7} {seconds:7.3f} s  {rows / seconds:>12,.0f} rows/s  (CPU {figures['stages_cpu_s'][name]:.3f} s)"
        )
    print(
        f"  worker end to end {worker_s:7.3f} s  {rows / worker_s:>12,.0f} rows/s  ({figures['e2e_over_slowest_stage']}x the slowest stage, {figures['e2e_over_stages_sum']}x their sum)"
    )
    print(
        f"  worker on 2 vCPUs {worker_2cpu_s:7.3f} s  ({figures['e2e_2vcpu_over_slowest_stage']}x the slowest stage)"
    )
    print(
        f"  busy inside the 1-vCPU worker: {figures['e2e_busy_s']}; on 2 vCPUs: {figures['e2e_2vcpu_busy_s']}"
    )
    nm = figures["no_moto"]
    print(
        f"  from a local file (no moto): 1 vCPU {nm['e2e_1vcpu_s']} s ({nm['e2e_1vcpu_over_slowest_stage']}x the slowest CPU stage, "
        f"{nm['e2e_1vcpu_over_cpu_stages_sum']}x their sum), 2 vCPUs {nm['e2e_2vcpu_s']} s ({nm['e2e_2vcpu_over_slowest_stage']}x)"
    )
    print(
        f"  load average before {load_before}, after {figures['loadavg_after']}; moto on core {args.moto_core}"
    )
    print(f"  1 worker {e2e_1_s:.2f} s, 2 workers {e2e_2_s:.2f} s: {figures['two_over_one_speedup']}x")
    print(
        f"  shards from a local file (no moto): 1 worker {file_1_s:.2f} s, 2 workers {file_2_s:.2f} s: {figures['no_moto_two_over_one_speedup']}x"
    )
    print(
        f"  peak RSS {figures['peak_rss_mib_input_1x']} MiB (input 1x), {figures['peak_rss_mib_input_2x']} MiB (input 2x)"
    )
    for name, e in engine_figures.items():
        print(
            f"  score {name}: onnxruntime {e['onnxruntime_s']} s, scikit-learn {e['sklearn_s']} s ({e['ort_over_sklearn']}x)"
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
