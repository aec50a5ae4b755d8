"""Predict benchmark: the /predict route against a bare session, a minimal handler and scikit-learn.

    .venv/bin/python benchmarks/predict_bench.py            # 2,000 records per model, 5 cold starts each
    .venv/bin/python benchmarks/predict_bench.py --quick    # 200 records, 2 cold starts: under a minute

Three models (logistic regression, random forest, HistGradientBoosting) are trained on the
breast-cancer data by the project's own training code (``jobs/training``: the same pipeline, ONNX
export and parity check as a real run), published as candidates into a moto server with the
data-plane stack, and promoted by the real ``evaluate_candidate`` code, each as the champion of its
own model. Then, in this one process and on the same records:

* **route**: an API Gateway proxy event for ``POST /models/{name}/predict`` with one record, through
  the Chalice app (middleware, authorizer-free local stage, body parsing, schema checks, session,
  response JSON), warm: the session and the champion pointer are cached after the first call;
* **session.run**: the same record's ONNX feed, prebuilt, through ``InferenceSession.run`` alone;
* **minimal handler**: ``json.loads`` the event body -> feed -> ``session.run`` -> ``json.dumps``:
  what a hand-written Lambda handler without a framework would do;
* **scikit-learn**: ``predict_proba`` of the fitted pipeline on the same record;
* **framework floor**: ``GET /health`` through the same app and middleware: what Chalice and the
  logging middleware cost per request before any work, the part of the route a framework-free
  handler does not pay;
* **capture** (issue 16): the route three ways, interleaved: **route** captures as a contract with
  public features asks (each answer's inference record with its 30 inputs as sent, encoded and
  written as a capture line to a real file descriptor, ``/dev/null``, as Lambda's stdout is a pipe);
  **route without capture** has the predictor's capture off; **route, hashed capture** captures as
  the bundled contract with ``monitoring.confidential: "hash"`` asks (30 confidential features: an
  HMAC-SHA256 each, the costliest masking).

Each figure is the p50 and p99 of single-record latencies over distinct records (holdout rows
resampled with small noise, seeded). Cold start, median of N fresh processes each: (a) start Python,
import the app, answer its first ``/predict`` (the model fetched from the moto server, verified,
session created); (b) start Python, ``joblib.load`` the scikit-learn pipeline, answer one
``predict_proba``. Wall time from spawn to the answer (not to exit: Lambda keeps the process).

Goals (issue 6): route p50 <= 1.5x the minimal handler's; ORT single-record >= 10x faster than
scikit-learn for every family; cold start <= 0.35x the scikit-learn process's. Issue 16: capture adds
at most 5% to the route's p50 and p99. The table goes to
stdout; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "jobs", ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

SEED = 20261123
FAMILIES = {
    "lr": ("logistic_regression", {"C": 1.0, "max_iter": 1000}),
    "rf": ("random_forest", {"n_estimators": 100}),
    "hgb": ("hist_gradient_boosting", {}),
}
GOAL_ROUTE_VS_MINIMAL = 1.5
GOAL_ORT_SPEEDUP = 10.0
GOAL_COLD_RATIO = 0.35
GOAL_CAPTURE_OVERHEAD = 0.05

COLD_APP = """
import json, sys, time
t0 = time.perf_counter()
import app
from chalice.local import LambdaContext
event = json.loads(sys.argv[1])
ctx = LambdaContext("serverless-mlops-local-api_handler", 1024)
response = app.app(event, ctx)
assert response["statusCode"] == 200, response
print(json.dumps({"answered_at": time.time(), "in_process_s": time.perf_counter() - t0}), flush=True)
"""

COLD_SKLEARN = """
import json, sys, time
t0 = time.perf_counter()
import joblib
import numpy as np
pipeline = joblib.load(sys.argv[1])
row = np.array([json.loads(sys.argv[2])], dtype=object)
pipeline.predict_proba(row)
print(json.dumps({"answered_at": time.time(), "in_process_s": time.perf_counter() - t0}), flush=True)
"""


def percentiles(times_s: list[float]) -> dict[str, float]:
    us = np.asarray(times_s) * 1e6
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 records, 2 cold starts: under a minute")
    parser.add_argument("--records", type=int, help="distinct records per model (default 2000, quick 200)")
    parser.add_argument("--cold", type=int, help="cold starts per side (default 5, quick 2)")
    args = parser.parse_args(argv)
    n_records = args.records or (200 if args.quick else 2000)
    n_cold = args.cold or (2 if args.quick else 5)
    started = time.monotonic()

    # Quiet, deterministic, one thread per library: a Lambda function has about one vCPU.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["MLOPS_AUTH_READS"] = "false"
    os.environ["MLOPS_TRACING"] = "false"

    from moto.server import ThreadedMotoServer

    from mlops.localcloud import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MLOPS_STAGE": "local",
    }
    os.environ.update(env)
    try:
        results = run(n_records, n_cold, env)
    finally:
        server.stop()
    results["seconds"] = round(time.monotonic() - started, 1)
    report(results)
    return 0


def run(n_records: int, n_cold: int, env: dict[str, str]) -> dict[str, Any]:
    import joblib
    from threadpoolctl import threadpool_limits

    from chalicelib import bootstrap
    from chalicelib.adapters import aws
    from chalicelib.bootstrap import contracts, evaluator_ports
    from chalicelib.registry.evaluator import evaluate_manifest
    from chalicelib.settings import Settings
    from chalicelib.training.settings import TrainingSettings
    from chalicelib.validation import Contract
    from mlops.cfn import deploy_stage
    from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
    from training.core import train
    from training.main import build_candidate, candidate_prefix, publish_candidate
    from training.pipeline import feature_matrix, model_features
    from training.table import load_table

    aws.reset_clients()
    settings = Settings.for_stage("local")
    deploy_stage(settings)
    header, rows = breast_cancer_rows()
    data = to_csv(header, rows)
    out: dict[str, Any] = {"records": n_records, "cold_starts": n_cold, "models": {}}
    tmp = Path(tempfile.mkdtemp(prefix="predict-bench-"))

    from chalice.config import Config
    from chalice.local import LambdaContext, LocalGateway

    import app as app_module

    gateway = LocalGateway(app_module.app, Config())
    context = LambdaContext("serverless-mlops-local-api_handler", 1024)

    for short, (family, params) in FAMILIES.items():
        name = f"bench_{short}"
        doc = breast_cancer_contract()
        doc["dataset"] = name
        doc["training"]["model"] = {"family": family, "params": params}
        doc["promotion"] = {"max_latency_ms": 1000}
        contract = Contract.parse(doc)
        contracts().put(contract)
        training = TrainingSettings.from_contract(contract)
        table = load_table([data], contract)
        with threadpool_limits(1):
            artifacts, fields = build_candidate(
                table, contract, training, {"run_id": f"{name}-1", "dataset": name, "data_hash": "0" * 64}
            )
            fitted = train(table, contract, training).pipeline  # the same fit (seeded), for sklearn
        # Serve one record on one thread, as a scikit-learn server would: the training job fits a
        # forest with n_jobs=-1, and predict_proba would then start and stop a thread pool per call
        # (about 70 ms a record here, an unfair comparison).
        fitted.set_params(**{k: 1 for k in fitted.get_params() if k.endswith("n_jobs")})
        prefix = candidate_prefix(name, f"{name}-1")
        publish_candidate(
            settings.models_bucket, prefix, artifacts, {**fields, "run_id": f"{name}-1"}, contract
        )
        outcome = evaluate_manifest(evaluator_ports(), settings.models_bucket, prefix + "manifest.json")
        assert outcome["action"] == "promoted", outcome

        # Distinct records: every row, resampled with 1% noise (seeded), features only.
        features = model_features(contract)
        names = [f.name for f in features]
        rng = np.random.default_rng(SEED)
        index = {h: i for i, h in enumerate(header)}
        picks = rng.integers(0, len(rows), n_records)
        records = [
            {n: float(rows[i][index[n]]) * float(1 + rng.normal(0, 0.01)) for n in names} for i in picks
        ]
        events = [
            gateway._generate_lambda_event(
                "POST",
                f"/models/{name}/predict",
                {"content-type": "application/json"},
                json.dumps({"records": [r]}).encode(),
            )
            for r in records
        ]
        for event in events:  # API Gateway sends the body as text
            if isinstance(event.get("body"), bytes):
                event["body"] = event["body"].decode()
        bootstrap.reset()
        first = app_module.app(events[0], context)
        assert first["statusCode"] == 200, first
        session_model = bootstrap.predictor().session(name, 1)
        matrices = [feature_matrix(_table(r, names), features) for r in records]
        health = gateway._generate_lambda_event("GET", "/health", {}, b"")
        with threadpool_limits(1):
            figures = _warm(
                app_module.app, context, health, events, session_model, names, fitted, matrices, doc
            )
        figures["route_vs_minimal_p50"] = figures["route"]["p50_us"] / figures["minimal_handler"]["p50_us"]
        figures["sklearn_vs_session_p50"] = figures["sklearn"]["p50_us"] / figures["session_run"]["p50_us"]
        for q in ("p50", "p99"):
            off = figures["route_no_capture"][f"{q}_us"]
            figures[f"capture_ratio_{q}"] = figures["route"][f"{q}_us"] / off
            figures[f"hashed_capture_ratio_{q}"] = figures["route_hashed_capture"][f"{q}_us"] / off

        # Cold starts: fresh processes, the model fetched from the moto server.
        joblib_path = tmp / f"{name}.joblib"
        joblib.dump(fitted, joblib_path)
        child_env = {**os.environ, **env, "MLOPS_AUTH_READS": "false", "POWERTOOLS_LOG_LEVEL": "WARNING"}
        child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "jobs")])
        child_env["OMP_NUM_THREADS"] = "1"
        app_times, sk_times = [], []
        row = matrices[0][0].tolist()
        for i in range(n_cold):
            app_times.append(_spawn(COLD_APP, [json.dumps(events[i])], child_env))
            sk_times.append(_spawn(COLD_SKLEARN, [str(joblib_path), json.dumps(row)], child_env))
        figures["cold_app_s"] = statistics.median(app_times)
        figures["cold_sklearn_s"] = statistics.median(sk_times)
        figures["cold_ratio"] = figures["cold_app_s"] / figures["cold_sklearn_s"]
        figures["model_bytes"] = len(artifacts["model.onnx"])
        out["models"][short] = figures
        print(f"   {short}: done", file=sys.stderr, flush=True)

    models = out["models"].values()
    out["goals"] = {
        "route_vs_minimal_p50_max": max(m["route_vs_minimal_p50"] for m in models),
        "route_goal": GOAL_ROUTE_VS_MINIMAL,
        "ort_speedup_min": min(m["sklearn_vs_session_p50"] for m in models),
        "ort_goal": GOAL_ORT_SPEEDUP,
        "cold_ratio_max": max(m["cold_ratio"] for m in models),
        "cold_goal": GOAL_COLD_RATIO,
        "capture_ratio_p50_max": max(m["capture_ratio_p50"] for m in models),
        "capture_ratio_p99_max": max(m["capture_ratio_p99"] for m in models),
        "capture_goal": 1 + GOAL_CAPTURE_OVERHEAD,
    }
    return out


def _warm(
    app: Any,
    context: Any,
    health: dict[str, Any],
    events: list[dict[str, Any]],
    session_model: Any,
    names: list[str],
    fitted: Any,
    matrices: list[np.ndarray],
    doc: dict[str, Any],
) -> dict[str, Any]:
    """The warm single-record latencies of the five cases, interleaved record by record."""
    from chalicelib import bootstrap
    from chalicelib.adapters.aws.capture import StdoutCaptureSink
    from chalicelib.adapters.memory.capture import MemoryCapture
    from chalicelib.adapters.memory.contracts import MemoryContractStore
    from chalicelib.capture.service import Capturer
    from chalicelib.validation import Contract

    session = session_model.session
    predictor = bootstrap.predictor()
    sink = StdoutCaptureSink(open(os.devnull, "w"))  # noqa: SIM115 (the run's whole life)

    def capturer_for(variant: dict[str, Any]) -> Capturer:
        store = MemoryContractStore()
        store.put(Contract.parse(variant))
        return Capturer(sink, store, MemoryCapture(), ttl_s=10.0)

    public = json.loads(json.dumps(doc))
    for column in public["columns"]:
        if column["name"] in names:
            column["classification"] = "public"
    capturer = capturer_for(public)
    hashing = capturer_for({**doc, "monitoring": {"confidential": "hash"}})
    feeds = [session_model.schema.encode_records([json.loads(e["body"])["records"][0]]) for e in events]

    def route(event: dict[str, Any]) -> None:
        predictor.capture = capturer
        response = app(event, context)
        if response["statusCode"] != 200:
            raise AssertionError(response)

    def route_no_capture(event: dict[str, Any]) -> None:
        predictor.capture = None
        response = app(event, context)
        if response["statusCode"] != 200:
            raise AssertionError(response)

    def route_hashed(event: dict[str, Any]) -> None:
        predictor.capture = hashing
        response = app(event, context)
        if response["statusCode"] != 200:
            raise AssertionError(response)

    def bare(feed: dict[str, np.ndarray]) -> None:
        session.run(None, feed)

    def minimal(event: dict[str, Any]) -> str:
        record = json.loads(event["body"])["records"][0]
        feed = {n: np.array([[float(record[n])]], dtype=np.float64) for n in names}
        label, probabilities = session.run(None, feed)
        return json.dumps({"prediction": int(label[0]), "probabilities": probabilities[0].tolist()})

    def sklearn(matrix: np.ndarray) -> None:
        fitted.predict_proba(matrix)

    def framework(_: Any) -> None:  # the same app and middleware, a route that does nothing
        app(health, context)

    figures: dict[str, Any] = _time_interleaved(
        {
            "framework_floor": (framework, events),
            "route": (route, events),
            "route_no_capture": (route_no_capture, events),
            "route_hashed_capture": (route_hashed, events),
            "session_run": (bare, feeds),
            "minimal_handler": (minimal, events),
            "sklearn": (sklearn, matrices),
        }
    )
    predictor.capture = capturer
    return figures


def _table(record: dict[str, float], names: list[str]) -> Any:
    """A one-row table in the training job's format (what ``feature_matrix`` takes)."""

    class One:
        n_rows = 1

        def __getitem__(self, name: str) -> np.ndarray:
            return np.array([record[name]], dtype=np.float64)

    return One()


def _time_interleaved(
    cases: dict[str, tuple[Any, list[Any]]], block: int = 100
) -> dict[str, dict[str, float]]:
    """Each case on a block of records in turn, then the next block: the machine's drifts (a shared
    VM's neighbours, frequency changes) fall on every case alike, while each case still runs warm
    (interleaving record by record would have every call find the caches full of another case's
    data: that is not how a warm function serves its route)."""
    n = min(len(items) for _, items in cases.values())
    times: dict[str, list[float]] = {name: [] for name in cases}
    clock = time.perf_counter
    for start in range(0, n, block):
        for name, (fn, items) in cases.items():
            for item in items[start : start + 10]:  # re-warm after the other cases ran
                fn(item)
            for item in items[start : start + block]:
                t0 = clock()
                fn(item)
                times[name].append(clock() - t0)
    return {name: percentiles(values) for name, values in times.items()}


def _spawn(code: str, args: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning a fresh Python to its first answer (the child stamps the wall clock when
    it has answered; the interpreter's exit afterwards is not part of a cold start: Lambda keeps the
    process to serve the next request)."""
    spawned_at = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {done.stderr[-2000:]}")
    answered_at = float(json.loads(done.stdout.strip().splitlines()[-1])["answered_at"])
    return answered_at - spawned_at


def report(results: dict[str, Any]) -> None:
    print(
        f"\npredict benchmark: {results['records']} records per model, {results['cold_starts']} cold starts"
    )
    print(f"{'model':<6} {'floor':>9} {'route p50/p99 us':>18} {'session.run':>14} {'minimal':>14} {'sklearn':>16} "
          f"{'route/min':>9} {'sk/ort':>7} {'cold app s':>10} {'cold sk s':>9} {'ratio':>6}")  # fmt: skip

    def pair(m: dict[str, Any], key: str) -> str:
        return f"{m[key]['p50_us']:.0f}/{m[key]['p99_us']:.0f}"

    for short, m in results["models"].items():
        print(
            f"{short:<6} {pair(m, 'framework_floor'):>9} {pair(m, 'route'):>18} {pair(m, 'session_run'):>14} {pair(m, 'minimal_handler'):>14} "
            f"{pair(m, 'sklearn'):>16} {m['route_vs_minimal_p50']:>9.2f} {m['sklearn_vs_session_p50']:>7.1f} "
            f"{m['cold_app_s']:>10.2f} {m['cold_sklearn_s']:>9.2f} {m['cold_ratio']:>6.2f}"
        )
    head = f"\n{'model':<6} {'capture off':>14} {'capture on':>14} {'on/off p50, p99':>16} {'hashed':>14} {'hashed/off':>12}"
    print(head)
    for short, m in results["models"].items():
        print(
            f"{short:<6} {pair(m, 'route_no_capture'):>14} {pair(m, 'route'):>14} "
            f"{m['capture_ratio_p50']:>8.3f}{m['capture_ratio_p99']:>8.3f} {pair(m, 'route_hashed_capture'):>14} "
            f"{m['hashed_capture_ratio_p50']:>6.3f}{m['hashed_capture_ratio_p99']:>6.3f}"
        )
    g = results["goals"]
    print(
        f"goals: route/minimal p50 {g['route_vs_minimal_p50_max']:.2f} (<= {g['route_goal']}), "
        f"ORT speed-up {g['ort_speedup_min']:.1f}x (>= {g['ort_goal']}), "
        f"cold ratio {g['cold_ratio_max']:.2f} (<= {g['cold_goal']}), "
        f"capture on/off p50 {g['capture_ratio_p50_max']:.3f} p99 {g['capture_ratio_p99_max']:.3f} "
        f"(<= {g['capture_goal']:.2f})"
    )
    results["machine"] = {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
