"""Real data for the demo and the tests: scikit-learn's bundled datasets, as daily CSV uploads
with a data contract. Nothing is downloaded."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np


def breast_cancer_contract() -> dict[str, Any]:
    """The contract of the breast-cancer dataset: 30 confidential measurements, a diagnosis."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns: list[dict[str, Any]] = [
        {"name": "row_id", "type": "string", "classification": "internal", "pattern": r"^patient-\d{4,}$"}
    ]
    for name, values in zip(_names(data.feature_names), data.data.T, strict=True):
        columns.append(
            {
                "name": name,
                "type": "float",
                "classification": "confidential",
                "min": 0,
                # Generous but finite: a value ten times past anything seen is a unit or entry error.
                "max": float(10 ** math.ceil(math.log10(values.max() * 10))),
            }
        )
    columns.append(
        {
            "name": "diagnosis",
            "type": "integer",
            "classification": "confidential",
            "allowed": [0, 1],
            "description": "0 malignant, 1 benign",
        }
    )
    return {
        "dataset": "breast_cancer",
        "version": 1,
        "description": "Wisconsin diagnostic breast cancer measurements, one row per patient.",
        "columns": columns,
        "target": "diagnosis",
        "task": "classification",
        "row_id": "row_id",
        "limits": {"min_rows": 50, "max_null_fraction": 0.05, "max_duplicate_row_fraction": 0.0},
        "drift": {"psi": 0.25, "ks_pvalue": 0.001},
        "training": {
            "model": {"family": "logistic_regression", "params": {"C": 1.0, "max_iter": 1000}},
            "primary_metric": "roc_auc",
            "split": {"validation": 0.15, "holdout": 0.2},
            "retrain": {
                "min_new_rows": 300,
                "max_champion_age_days": 30,
                "on_drift": True,
                "cooldown_minutes": 0,
            },
        },
    }


def _names(feature_names: Any) -> list[str]:
    return [str(n).replace(" ", "_") for n in feature_names]


def breast_cancer_rows(seed: int = 7) -> tuple[list[str], list[list[str]]]:
    """Header and rows (shuffled with a fixed seed), row ids stable per patient."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    header = ["row_id", *_names(data.feature_names), "diagnosis"]
    rows = [
        [f"patient-{i:04d}", *(f"{v:.6g}" for v in x), str(int(y))]
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True))
    ]
    order = np.random.default_rng(seed).permutation(len(rows))
    return header, [rows[i] for i in order]


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def drifted(
    header: list[str], rows: list[list[str]], factor: float = 1.6, columns: int = 15
) -> list[list[str]]:
    """The same patients measured by a miscalibrated instrument: the first ``columns`` features scaled."""
    scaled = set(range(1, 1 + columns))
    return [[f"{float(v) * factor:.6g}" if i in scaled else v for i, v in enumerate(row)] for row in rows]


def breast_cancer_batch(rows: int, seed: int = 11, block_rows: int = 100_000) -> bytes:
    """A batch-scoring input of ``rows`` patients (one CSV, header first): real rows resampled with
    2% multiplicative noise, four significant digits, unique row ids ``patient-NNNNNNN``. Seeded.
    Blocks of ``block_rows`` resampled rows are repeated under new ids, so a million rows take about
    two seconds (pyarrow, a job-image dependency, writes the numbers). About 210 bytes a row."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    n = min(rows, block_rows)
    picks = rng.integers(0, len(data.data), size=n)
    x = data.data[picks] * (1.0 + 0.02 * rng.standard_normal((n, data.data.shape[1])))
    columns: dict[str, Any] = {}
    names = _names(data.feature_names)
    for j, name in enumerate(names):
        top = float(np.abs(data.data[:, j]).max())
        decimals = max(0, 3 - math.floor(math.log10(top)))
        columns[name] = pa.array(np.round(np.clip(x[:, j], 0, None), decimals))
    columns["diagnosis"] = pa.array(data.target[picks].astype(np.int64))
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buf, write_options=pacsv.WriteOptions(include_header=False))
    lines = buf.getvalue().splitlines()
    out = [",".join(["row_id", *names, "diagnosis"]).encode() + b"\n"]
    for i in range(rows):
        out.append(b"patient-%07d,%s\n" % (i, lines[i % n]))
    return b"".join(out)


# --- generated store sales (promotion stories: slices, feature changes, sticky decisions) -----------

SALES_REGIONS = ("north", "south", "east", "west")
_REGION_EFFECT = {"north": 40.0, "south": -25.0, "east": 10.0, "west": 0.0}


def sales_contract(model: dict[str, Any] | None = None, **promotion: Any) -> dict[str, Any]:
    """A regression contract for ``sales_rows``: daily units sold from price, ads, footfall, region.

    ``ads`` is bounded at 1,000 while real values stay below 100, so an upload whose ads are
    scaled by three (a unit mix-up) is still within the contract: validation cannot catch it."""
    return {
        "dataset": "store_sales",
        "version": 1,
        "description": "Generated daily sales per store: units from price, ads, footfall and region.",
        "columns": [
            {"name": "row_id", "type": "string", "classification": "internal", "pattern": r"^sale-\d{6}$"},
            {"name": "price", "type": "float", "classification": "public", "min": 0, "max": 1000},
            {"name": "ads", "type": "float", "classification": "public", "min": 0, "max": 1000},
            {"name": "footfall", "type": "integer", "classification": "public", "min": 0, "max": 100000},
            {
                "name": "region",
                "type": "category",
                "classification": "internal",
                "allowed": list(SALES_REGIONS),
            },
            {"name": "units", "type": "float", "classification": "internal"},
        ],
        "target": "units",
        "task": "regression",
        "row_id": "row_id",
        "training": {
            "model": model or {"family": "linear_regression"},
            "primary_metric": "rmse",
            "split": {"validation": 0.15, "holdout": 0.25},
            "retrain": {"min_new_rows": 100, "cooldown_minutes": 0},
        },
        "promotion": {"mode": "auto", **promotion},
    }


def sales_rows(
    n: int, start: int = 0, seed: int = 0, ads_factor: float = 1.0
) -> tuple[list[str], list[list[str]]]:
    """Header and ``n`` rows with ids ``sale-<start>``...: units = 0.2 footfall + 1.5 ads - 0.8 price
    + a region effect + noise (sd 8). ``ads_factor`` scales the ads column as written, not the
    units it explains: 3.0 is a corrupted export that still satisfies the contract."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(5, 100, n)
    ads = rng.uniform(0, 100, n)
    footfall = rng.integers(100, 1000, n)
    regions = rng.choice(SALES_REGIONS, n)
    units = (
        0.2 * footfall + 1.5 * ads - 0.8 * price
        + np.array([_REGION_EFFECT[r] for r in regions]) + rng.normal(0, 8, n)
    )  # fmt: skip
    header = ["row_id", "price", "ads", "footfall", "region", "units"]
    rows = [
        [f"sale-{start + i:06d}", f"{price[i]:.2f}", f"{ads[i] * ads_factor:.2f}", str(int(footfall[i])), str(regions[i]), f"{units[i]:.2f}"]
        for i in range(n)
    ]  # fmt: skip
    return header, rows
