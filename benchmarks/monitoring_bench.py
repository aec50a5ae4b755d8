"""Monitoring replay benchmark (issue 16, item 5): false alarms, detection delay, accuracy drops, cost.

    .venv/bin/python benchmarks/monitoring_bench.py           # 100 stable windows, 10 seeds of shift, per table
    .venv/bin/python benchmarks/monitoring_bench.py --quick   # 50 stable windows, 3 seeds: under a minute

Real parts only: a scikit-learn model is trained on each table, its reference profile is built by the
training job's own ``reference_profile`` (``jobs/training/main.py``) from the training rows read by
the job's table reader, and its reference predictions by ``reference_predictions`` from its holdout
predictions. Live traffic is replayed as windows of 500 inference records in capture's format
(one request per record, inputs masked by the contract: pii and confidential features absent, the
monitoring policy's default ``confidential: drop``), scored by the model, through ``window_report``
and ``sustained_breaches`` under the default policy (``chalicelib/capture/policy.py``).

Tables:

* ``generated``: ``make_classification`` (8 informative and noise features, 2 classes, 10% label
  flips) plus a three-valued category, 60,000 rows: 10,000 train the random forest, 5,000 are its
  holdout, the rest are live traffic (drawn without replacement while they last).
* ``breast_cancer``: scikit-learn's bundled table (569 rows) and the project's contract
  (``scripts/mlops/datasets.py``) with one change: its 30 measurements are ``confidential`` there,
  so capture would drop every one and no input drift could be seen; here they are ``internal``.
  A logistic regression as the contract's training section says; 80% train, 20% holdout; live
  windows are drawn with replacement from the whole table.

Scenarios:

a) stable: consecutive windows drawn from the live distribution; every sustained breach (a new run
   of breaching windows reaching its persistence) is a false alarm. Goal: at most 1 in 50 windows.
b) shift: stable windows, then from a known window on the model's most important feature (by
   permutation importance on its holdout) moved by +0.5 of its training standard deviation. Delay:
   the number of shifted windows seen when the drift breach is raised (persistence 2: at best 2).
   Goal: at most 2.
c) outcomes: each window's 500 predictions get their true labels (coverage 1.0); in "noisy"
   windows the labels of 25 correctly predicted rows are flipped, so the window's accuracy is
   exactly 5 points lower. ``performance_report`` (accuracy, floor = holdout accuracy - tolerance,
   bootstrap) must breach on noisy windows and not on clean ones.
d) cost per million predictions at us-east-1 list prices (``PRICES`` below, with their source):
   CloudWatch Logs ingestion of the capture lines at their measured mean size (plus the 26 bytes
   CloudWatch Logs counts per event), Firehose ingestion with its 5 KB rounding per record
   (worst case: every CloudWatch Logs subscription record carries one event), dynamic
   partitioning, S3 PUTs, GETs and a month of storage of the gzip objects, and the monitor Lambda
   (hourly, 1 GB) for the measured ``window_report`` time of an hourly window at that volume.

The tables go to stdout; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "jobs"), str(ROOT / "scripts")]

from machine import machine  # noqa: E402

from chalicelib.capture.policy import MonitoringPolicy  # noqa: E402
from chalicelib.monitoring.breach import sustained_breaches  # noqa: E402
from chalicelib.monitoring.join import join  # noqa: E402
from chalicelib.monitoring.outcomes import Outcome  # noqa: E402
from chalicelib.monitoring.performance import default_floor, performance_report  # noqa: E402
from chalicelib.monitoring.window import monitored_columns, reference_predictions, window_report  # noqa: E402
from chalicelib.validation import Contract  # noqa: E402

WINDOW = 500
T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

# us-east-1 list prices (USD), as published on the AWS pricing pages named; read 2026-12-01. Check
# them before relying on the totals: the script prints every component.
PRICES = {
    # aws.amazon.com/cloudwatch/pricing: Logs, Standard ingestion (Lambda logs are "vended logs",
    # first 10 TB/month tier), and archived storage per GB-month (compressed).
    "cloudwatch_logs_ingest_per_gb": 0.50,
    "cloudwatch_logs_store_per_gb_month": 0.03,
    "cloudwatch_logs_event_overhead_bytes": 26,
    # aws.amazon.com/firehose/pricing: Direct PUT / subscription ingestion, first 500 TB/month, each
    # record rounded up to the next 5 KB; dynamic partitioning per GB and per 1,000 objects delivered.
    "firehose_ingest_per_gb": 0.029,
    "firehose_rounding_bytes": 5 * 1024,
    "firehose_partitioning_per_gb": 0.020,
    "firehose_partitioning_per_1000_objects": 0.005,
    # aws.amazon.com/s3/pricing: S3 Standard, first 50 TB/month; PUT/LIST and GET per 1,000 requests.
    "s3_store_per_gb_month": 0.023,
    "s3_put_per_1000": 0.005,
    "s3_get_per_1000": 0.0004,
    # aws.amazon.com/lambda/pricing: x86, per GB-second and per million requests.
    "lambda_per_gb_second": 0.0000166667,
    "lambda_per_million_requests": 0.20,
}
# Firehose's largest buffering interval (900 s): one object per partition (model, date, hour) per
# flush, so about 4 objects per model and hour with steady traffic.
FIREHOSE_OBJECTS_PER_HOUR = 4
# What a monitor run does besides window_report: list the hour's partition, read its objects, write
# the report and metrics, and start (a cold start each hour: numpy and the code imported). Not
# measured here; a generous allowance.
MONITOR_OVERHEAD_S = 1.5


@dataclass
class Table:
    name: str
    contract: Contract
    features: list[str]  # the model's inputs, in order
    categories: dict[str, list[str]]  # categorical features and their values (ordinal codes for the model)
    model: Any
    live: np.ndarray  # object rows: one dict of inputs per row
    live_y: np.ndarray
    with_replacement: bool
    outcome_rows: np.ndarray  # rows the model never trained on, for the outcome scenario
    outcome_y: np.ndarray
    reference: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)
    holdout_accuracy: float = 0.0
    important: str = ""
    important_sd: float = 0.0
    importances: dict[str, float] = field(default_factory=dict)

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return np.array(
            [
                [
                    float(self.categories[f].index(r[f])) if f in self.categories else float(r[f])
                    for f in self.features
                ]
                for r in rows
            ]
        )


def _six(value: float) -> float:
    return float(f"{value:.6g}")  # as a CSV or a client would write it


def _csv(contract: Contract, rows: list[dict[str, Any]], y: np.ndarray) -> bytes:
    names = contract.column_names
    lines = [",".join(names)]
    for i, (row, label) in enumerate(zip(rows, y, strict=True)):
        cells = []
        for name in names:
            if name == contract.target:
                cells.append(str(int(label)))
            elif name == contract.row_id:
                cells.append(f"patient-{i:04d}" if contract.dataset == "breast_cancer" else f"r-{i}")
            else:
                cells.append(str(row.get(name, "")))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def _finish(
    table: Table,
    train: list[dict[str, Any]],
    train_y: np.ndarray,
    holdout: list[dict[str, Any]],
    holdout_y: np.ndarray,
) -> Table:
    from sklearn.inspection import permutation_importance

    from training.main import reference_profile
    from training.table import load_table

    x_train, x_hold = table.matrix(train), table.matrix(holdout)
    table.model.fit(x_train, train_y)
    held = table.model.predict(x_hold)
    table.holdout_accuracy = float((held == holdout_y).mean())
    table.reference = reference_profile(
        load_table(_csv(table.contract, train, train_y), table.contract), table.contract
    )
    table.predictions = reference_predictions([int(v) for v in held], task="classification")
    result = permutation_importance(table.model, x_hold, holdout_y, n_repeats=5, random_state=0)
    table.importances = {f: float(v) for f, v in zip(table.features, result.importances_mean, strict=True)}
    numeric = [f for f in table.features if f not in table.categories]
    table.important = max(numeric, key=table.importances.__getitem__)
    table.important_sd = float(np.std([r[table.important] for r in train]))
    return table


def generated_table(seed: int = 0) -> Table:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    n = 60_000
    x, y = make_classification(
        n_samples=n,
        n_features=8,
        n_informative=5,
        n_redundant=1,
        flip_y=0.1,
        class_sep=0.8,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    segment = rng.choice(["retail", "online", "partner"], n, p=[0.5, 0.35, 0.15])
    features = [f"f{j}" for j in range(8)]
    rows = [
        {**{f: _six(x[i, j]) for j, f in enumerate(features)}, "segment": str(segment[i])} for i in range(n)
    ]
    columns: list[dict[str, Any]] = [{"name": "rid", "type": "string", "classification": "internal"}]
    columns += [
        {"name": f, "type": "float", "classification": "public", "min": -50, "max": 50} for f in features
    ]
    columns += [
        {
            "name": "segment",
            "type": "category",
            "classification": "internal",
            "allowed": ["retail", "online", "partner"],
        },
        {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
    ]
    contract = Contract.parse(
        {"dataset": "generated", "target": "y", "task": "classification", "row_id": "rid", "columns": columns}
    )
    table = Table(
        name="generated",
        contract=contract,
        features=[*features, "segment"],
        categories={"segment": ["retail", "online", "partner"]},
        model=RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=1, random_state=seed),
        live=np.array(rows[15_000:], dtype=object),
        live_y=y[15_000:],
        with_replacement=False,
        outcome_rows=np.array(rows[15_000:], dtype=object),
        outcome_y=y[15_000:],
    )
    return _finish(table, rows[:10_000], y[:10_000], rows[10_000:15_000], y[10_000:15_000])


def breast_cancer_table(seed: int = 0) -> Table:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops.datasets import breast_cancer_contract, breast_cancer_rows

    doc = breast_cancer_contract()
    target, row_id = doc["target"], doc["row_id"]
    for column in doc["columns"]:
        if column["name"] not in (target, row_id):
            column["classification"] = "internal"  # as shipped: confidential, so capture drops them
    contract = Contract.parse(doc)
    header, text_rows = breast_cancer_rows(seed=7)
    features = [h for h in header if h not in (target, row_id)]
    rows = [{f: float(r[header.index(f)]) for f in features} for r in text_rows]
    y = np.array([int(r[header.index(target)]) for r in text_rows])
    cut = int(len(rows) * 0.8)
    table = Table(
        name="breast_cancer",
        contract=contract,
        features=features,
        categories={},
        model=make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
        live=np.array(rows, dtype=object),
        live_y=y,
        with_replacement=True,
        # Accuracy on training rows is higher than on new ones: outcomes come from the holdout rows.
        outcome_rows=np.array(rows[cut:], dtype=object),
        outcome_y=y[cut:],
    )
    return _finish(table, rows[:cut], y[:cut], rows[cut:], y[cut:])


# --- replay ------------------------------------------------------------------------------------------


class Live:
    """Windows of live traffic from a table: without replacement while the pool lasts, else with."""

    def __init__(self, table: Table, seed: int, outcomes: bool = False) -> None:
        self.rows, self.y = (table.outcome_rows, table.outcome_y) if outcomes else (table.live, table.live_y)
        self.with_replacement = table.with_replacement
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.rows))
        self.next = 0

    def draw(self, n: int) -> tuple[list[dict[str, Any]], np.ndarray]:
        if self.with_replacement or self.next + n > len(self.order):
            index = self.rng.integers(0, len(self.rows), n)
        else:
            index = self.order[self.next : self.next + n]
            self.next += n
        return [dict(r) for r in self.rows[index]], self.y[index]


def inference_records(
    table: Table, rows: list[dict[str, Any]], k: int, rng: np.random.Generator, policy: MonitoringPolicy
) -> list[dict[str, Any]]:
    """The records capture would write for one request per row in window ``k`` (inputs masked)."""
    kept = {c.name for c in monitored_columns(table.contract, policy)}
    probabilities = table.model.predict_proba(table.matrix(rows))
    classes = [int(c) for c in table.model.classes_]
    start = T0 + k * HOUR
    seconds = np.sort(rng.uniform(0, 3600, len(rows)))
    latencies = rng.lognormal(math.log(4.0), 0.4, len(rows))
    records = []
    for i, row in enumerate(rows):
        p = probabilities[i]
        records.append(
            {
                "request_id": f"{rng.integers(0, 2**63):016x}{k:08x}{i:08x}",
                "index": 0,
                "row_id": None,
                "model": table.name,
                "version": 1,
                "role": "champion",
                "time": (start + timedelta(seconds=float(seconds[i])))
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "latency_ms": round(float(latencies[i]), 3),
                "status": "ok",
                "problems": [],
                "inputs": {name: value for name, value in row.items() if name in kept},
                "prediction": classes[int(np.argmax(p))],
                "probabilities": {str(c): round(float(v), 6) for c, v in zip(classes, p, strict=True)},
                "job_id": None,
            }
        )
    return records


def _report(table: Table, records: list[dict[str, Any]], k: int, policy: MonitoringPolicy) -> dict[str, Any]:
    return window_report(
        records,
        contract=table.contract,
        policy=policy,
        reference_profile=table.reference,
        reference_predictions=table.predictions,
        start=T0 + k * HOUR,
        end=T0 + (k + 1) * HOUR,
    )


def _new_alarms(history: list[dict[str, Any]], policy: MonitoringPolicy, raised: set[str]) -> list[str]:
    """Kinds whose sustained breach starts at the newest window (a continuing run is one alarm)."""
    now = {b["kind"] for b in sustained_breaches(history, policy)}
    fresh = sorted(now - raised)
    raised.clear()
    raised.update(now)
    return fresh


def stable_scenario(table: Table, windows: int, policy: MonitoringPolicy, seed: int) -> dict[str, Any]:
    live, rng = Live(table, seed), np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    raised: set[str] = set()
    alarms: list[dict[str, Any]] = []
    drifted_windows = prediction_drift_windows = 0
    timings = []
    for k in range(windows):
        rows, _ = live.draw(WINDOW)
        records = inference_records(table, rows, k, rng, policy)
        started = time.perf_counter()
        report = _report(table, records, k, policy)
        timings.append(time.perf_counter() - started)
        history.append(report)
        drifted_windows += report["verdicts"]["drift"] == "breach"
        prediction_drift_windows += report["verdicts"]["prediction_drift"] == "breach"
        alarms += [
            {"window": k, "kind": kind, "features": report["drift"]["drifted_features"]}
            for kind in _new_alarms(history, policy, raised)
        ]
    return {
        "windows": windows,
        "false_alarms": len(alarms),
        "alarms": alarms,
        "drifted_windows": drifted_windows,
        "prediction_drift_windows": prediction_drift_windows,
        "window_report_s_mean": float(np.mean(timings)),
    }


def shift_scenario(
    table: Table, seeds: int, policy: MonitoringPolicy, inject_at: int = 3, limit: int = 8
) -> dict[str, Any]:
    delays: list[int | None] = []
    early: list[int] = []
    shift = 0.5 * table.important_sd
    for seed in range(seeds):
        live, rng = Live(table, 1000 + seed), np.random.default_rng(1000 + seed)
        history: list[dict[str, Any]] = []
        raised: set[str] = set()
        delay = None
        for k in range(inject_at + limit):
            rows, _ = live.draw(WINDOW)
            if k >= inject_at:
                for row in rows:
                    row[table.important] = _six(row[table.important] + shift)
            history.append(_report(table, inference_records(table, rows, k, rng, policy), k, policy))
            fresh = _new_alarms(history, policy, raised)
            if "drift" in fresh:
                if k < inject_at:
                    early.append(k)
                else:
                    delay = k - inject_at + 1
                    break
        delays.append(delay)
    found = [d for d in delays if d is not None]
    return {
        "feature": table.important,
        "shift": shift,
        "seeds": seeds,
        "injected_at_window": inject_at,
        "delays": delays,
        "max_delay": max(found) if len(found) == len(delays) else None,
        "mean_delay": float(np.mean(found)) if found else None,
        "alarms_before_the_shift": len(early),
    }


def outcome_scenario(table: Table, windows: int, policy: MonitoringPolicy) -> dict[str, Any]:
    rule = policy.performance
    floor = default_floor(table.holdout_accuracy, rule, greater_is_better=True)
    results: dict[str, list[dict[str, Any]]] = {"clean": [], "noisy": []}
    live, rng = Live(table, 5000, outcomes=True), np.random.default_rng(5000)
    for k in range(windows):
        rows, y = live.draw(WINDOW)
        records = inference_records(table, rows, k, rng, policy)
        labels = [int(v) for v in y]
        for kind in ("clean", "noisy"):
            truth = list(labels)
            if kind == "noisy":
                correct = [i for i, r in enumerate(records) if r["prediction"] == truth[i]]
                for i in rng.choice(correct, size=round(0.05 * WINDOW), replace=False):
                    truth[i] = 1 - truth[i]
            received = T0 + (k + 2) * HOUR
            outcomes = [
                Outcome(table.name, truth[i], received, "api", r["request_id"]) for i, r in enumerate(records)
            ]
            pairs = join(records, outcomes, timedelta(hours=policy.outcome_horizon_hours))
            report = performance_report(
                pairs,
                task="classification",
                metric="accuracy",
                greater_is_better=True,
                floor=floor,
                rule=rule,
                seed=k,
            )
            results[kind].append(report)
    clean, noisy = results["clean"], results["noisy"]
    return {
        "holdout_accuracy": table.holdout_accuracy,
        "floor": floor,
        "windows": windows,
        "outcomes_per_window": WINDOW,
        "clean_accuracy_mean": float(np.mean([r["value"] for r in clean])),
        "noisy_accuracy_mean": float(np.mean([r["value"] for r in noisy])),
        "clean_breaches": sum(r["verdict"] == "breach" for r in clean),
        "noisy_detected": sum(r["verdict"] == "breach" for r in noisy),
        "noisy_upper_bound_mean": float(np.mean([r["high"] for r in noisy])),
    }


def cost_scenario(
    table: Table, policy: MonitoringPolicy, predictions: int = 1_000_000, repeats: int = 3
) -> dict[str, Any]:
    """Per ``predictions`` a month of one model, hourly windows: every component, then the total."""
    per_window = math.ceil(predictions / (30 * 24))
    live, rng = Live(table, 7000), np.random.default_rng(7000)
    rows, _ = live.draw(per_window)
    records = inference_records(table, rows, 0, rng, policy)
    lines = [json.dumps({"mlops_capture": 1, "records": [r]}, separators=(",", ":")) for r in records]
    line_bytes = float(np.mean([len(s.encode()) for s in lines]))
    body = ("\n".join(lines) + "\n").encode()
    gzipped_per_prediction = len(gzip.compress(body)) / len(lines)
    envelope = json.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/aws/lambda/serverless-mlops-prod-api",
            "logStream": "2026/12/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "subscriptionFilters": ["capture"],
            "logEvents": [{"id": "3" * 56, "timestamp": 1764547200000, "message": lines[0]}],
        },
        separators=(",", ":"),
    ).encode()
    one_event_record = len(gzip.compress(envelope))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        decoded = [
            json.loads(line)["records"][0]
            for line in gzip.decompress(gzip.compress(body)).decode().splitlines()
        ]
        _report(table, decoded, 0, policy)
        timings.append(time.perf_counter() - started)
    window_s = float(min(timings))
    p = PRICES
    gb = predictions / 1e9
    firehose_records_bytes = (
        math.ceil(one_event_record / p["firehose_rounding_bytes"]) * p["firehose_rounding_bytes"]
    )
    runs = 30 * 24
    objects = runs * FIREHOSE_OBJECTS_PER_HOUR
    components = {
        "cloudwatch_logs_ingestion": (line_bytes + p["cloudwatch_logs_event_overhead_bytes"])
        * gb
        * p["cloudwatch_logs_ingest_per_gb"],
        "cloudwatch_logs_storage_month": gzipped_per_prediction
        * gb
        * p["cloudwatch_logs_store_per_gb_month"],
        "firehose_ingestion": firehose_records_bytes * predictions / 1024**3 * p["firehose_ingest_per_gb"],
        "firehose_dynamic_partitioning": line_bytes * gb * p["firehose_partitioning_per_gb"]
        + objects / 1000 * p["firehose_partitioning_per_1000_objects"],
        "s3_puts": (objects + runs) / 1000 * p["s3_put_per_1000"],  # capture objects + window reports
        "s3_reads": runs * (1 + FIREHOSE_OBJECTS_PER_HOUR) / 1000 * p["s3_get_per_1000"]
        + runs / 1000 * p["s3_put_per_1000"],
        "s3_storage_month": gzipped_per_prediction * gb * p["s3_store_per_gb_month"],
        "monitor_lambda": runs * (window_s + MONITOR_OVERHEAD_S) * 1.0 * p["lambda_per_gb_second"]
        + runs / 1e6 * p["lambda_per_million_requests"],
    }
    total = sum(components.values())
    return {
        "predictions_per_month": predictions,
        "records_per_hourly_window": per_window,
        "capture_line_bytes_mean": line_bytes,
        "gzip_bytes_per_prediction": gzipped_per_prediction,
        "firehose_record_bytes_one_event": one_event_record,
        "window_report_s": window_s,
        "components_usd": {k: round(v, 5) for k, v in components.items()},
        "total_usd_per_million": round(total * 1e6 / predictions, 4),
        "total_without_cloudwatch_logs_usd": round(
            (total - components["cloudwatch_logs_ingestion"] - components["cloudwatch_logs_storage_month"])
            * 1e6
            / predictions,
            4,
        ),
        "sample_rate_for_goal": min(1.0, 0.5 / (total * 1e6 / predictions)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the generated table: 50 stable windows, 3 shift seeds, 10 outcome windows",
    )
    parser.add_argument(
        "--tables", default=None, help="generated,breast_cancer (default: both; --quick: generated)"
    )
    args = parser.parse_args(argv)
    stable_windows, seeds, outcome_windows = (50, 3, 10) if args.quick else (100, 10, 50)
    tables = args.tables or ("generated" if args.quick else "generated,breast_cancer")
    policy = MonitoringPolicy()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    builders = {"generated": generated_table, "breast_cancer": breast_cancer_table}
    for name in tables.split(","):
        built = time.perf_counter()
        table = builders[name]()
        print(
            f"== {name}: holdout accuracy {table.holdout_accuracy:.4f}; most important feature {table.important} "
            f"(permutation importance {table.importances[table.important]:.4f}, SD {table.important_sd:.4g}); "
            f"built in {time.perf_counter() - built:.1f}s",
            flush=True,
        )
        stable = stable_scenario(table, stable_windows, policy, seed=1)
        print(
            f"a) stable: {stable['false_alarms']} false alarm(s) in {stable['windows']} windows "
            f"(windows drifted alone: {stable['drifted_windows']}, prediction drift: {stable['prediction_drift_windows']}); "
            f"window_report {stable['window_report_s_mean'] * 1000:.0f} ms",
            flush=True,
        )
        shift = shift_scenario(table, seeds, policy)
        print(
            f"b) +0.5 SD on {shift['feature']}: delays {shift['delays']} windows (max {shift['max_delay']}), "
            f"alarms before the shift {shift['alarms_before_the_shift']}",
            flush=True,
        )
        outcomes = outcome_scenario(table, outcome_windows, policy)
        print(
            f"c) outcomes: floor {outcomes['floor']:.4f}; clean accuracy {outcomes['clean_accuracy_mean']:.4f}, "
            f"{outcomes['clean_breaches']}/{outcomes['windows']} breaches; -5 points {outcomes['noisy_accuracy_mean']:.4f}, "
            f"{outcomes['noisy_detected']}/{outcomes['windows']} detected",
            flush=True,
        )
        cost = cost_scenario(table, policy, repeats=1 if args.quick else 3)
        print(
            f"d) cost per million predictions ${cost['total_usd_per_million']:.3f} (line {cost['capture_line_bytes_mean']:.0f} B; "
            f"without CloudWatch Logs ${cost['total_without_cloudwatch_logs_usd']:.3f}): {cost['components_usd']}",
            flush=True,
        )
        results[name] = {"stable": stable, "shift": shift, "outcomes": outcomes, "cost": cost}
    goals = {
        name: {
            "false_alarms_le_1_in_50": r["stable"]["false_alarms"] <= r["stable"]["windows"] / 50,
            "shift_within_2_windows": r["shift"]["max_delay"] is not None and r["shift"]["max_delay"] <= 2,
            "accuracy_drop_detected_at_500": r["outcomes"]["noisy_detected"] == r["outcomes"]["windows"],
            "no_breach_on_clean_outcomes": r["outcomes"]["clean_breaches"] == 0,
            "cost_below_0_50": r["cost"]["total_usd_per_million"] < 0.50,
        }
        for name, r in results.items()
    }
    summary = {
        "benchmark": "monitoring",
        "quick": args.quick,
        "window": WINDOW,
        "policy": policy.to_dict(),
        "prices": PRICES,
        "results": results,
        "goals": goals,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine("numpy", "scikit-learn"),
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
