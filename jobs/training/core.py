"""The training core of the Batch job: split, fit, measure, export to ONNX, prove parity. No AWS here.

    table = load_table(paths, contract)
    settings = TrainingSettings.from_contract(contract)
    result = train(table, contract, settings)
    onnx_bytes = export_onnx(result, contract)
    parity = check_parity(result, onnx_bytes, contract, settings.parity_tolerance)
    schema = input_schema(contract, result)          # what /predict accepts
    card = model_card(result, contract, parity)      # markdown for humans

A candidate whose parity did not pass must not be published: the model served would not be the
model measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from chalicelib.training.settings import METRICS, TrainingSettings
from chalicelib.validation.contract import Contract
from chalicelib.validation.privacy import MIN_GROUP, values_listed

from .onnx_export import (
    MAIN_OPSET,
    ML_OPSET,
    OUTPUT_LABEL,
    OUTPUT_PREDICTION,
    OUTPUT_PROBABILITIES,
    metadata_json,
    output_names,
    to_onnx_model,
)
from .pipeline import (
    BOOLEAN,
    CATEGORICAL,
    MISSING_TEXT,
    Feature,
    build_pipeline,
    feature_matrix,
    learnable_categories,
    model_features,
    onnx_feed,
)
from .split import HOLDOUT, SPLITS, TRAIN, assign_split
from .table import Table

# One-hot encoding a column with more distinct values than this is almost surely an id or free
# text: refuse, and say how to fix the contract, rather than train a huge, overfitted model.
MAX_CATEGORIES = 1000


@dataclass
class TrainResult:
    pipeline: Pipeline
    task: str
    features: list[Feature]
    classes: list[Any] | None  # class labels in probability-column order (classification)
    metrics: dict[str, dict[str, float | None]]  # split -> metric -> value
    rows: dict[str, int]  # rows per split
    settings: TrainingSettings
    holdout_x: np.ndarray  # the holdout rows as the pipeline takes them (parity runs on these)
    holdout_y: np.ndarray
    dropped_rows: int = 0  # rows without a target value
    categories: dict[str, list[str]] = field(default_factory=dict)  # what each categorical feature learnt
    # The holdout rows with every column of the contract (features or not) and their sources: what
    # holdout.csv carries, so that a champion reading other columns scores the same rows.
    holdout_table: Table | None = None
    # Per sensitive text column without listed values, the values seen in at least MIN_GROUP training
    # rows: the only ones holdout.csv may show (``shareable_values``).
    shareable: dict[str, set[str]] = field(default_factory=dict)
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def primary_metric(self) -> tuple[str, float | None]:
        name = self.settings.primary_metric
        return name, self.metrics.get(HOLDOUT, {}).get(name)


def train(table: Table, contract: Contract, settings: TrainingSettings) -> TrainResult:
    """Split the rows (stably, by key), fit on train, measure on validation and holdout."""
    if settings.task != contract.task:
        raise ValueError(f"settings are for {settings.task}, the contract for {contract.task}")
    features = model_features(contract)
    y, keep = _target(table, contract)
    table = table.take(keep)
    x = feature_matrix(table, features)
    split = assign_split(table.keys, settings.split.validation, settings.split.holdout)
    rows = {name: int((split == name).sum()) for name in SPLITS}
    train_mask = split == TRAIN
    if rows[TRAIN] < 2:
        raise ValueError(f"only {rows[TRAIN]} training row(s): too few to train on")
    categories = learnable_categories(x[train_mask], features)
    _check_cardinality(categories)
    classification = contract.task == "classification"
    if classification and len(np.unique(y[train_mask])) < 2:
        raise ValueError("the training rows hold a single class: nothing to learn")

    pipeline = build_pipeline(contract, settings, categories)
    pipeline.fit(x[train_mask], y[train_mask])
    classes = [_plain(c) for c in pipeline.classes_] if classification else None

    metrics = {}
    for name in SPLITS:
        mask = split == name
        metrics[name] = _metrics(pipeline, x[mask], y[mask], contract.task)
    holdout = split == HOLDOUT
    return TrainResult(
        pipeline=pipeline,
        task=contract.task,
        features=features,
        classes=classes,
        metrics=metrics,
        rows=rows,
        settings=settings,
        holdout_x=x[holdout],
        holdout_y=y[holdout],
        dropped_rows=int((~keep).sum()),
        categories=categories,
        holdout_table=table.take(holdout),
        shareable=shareable_values(table.take(train_mask), contract),
    )


def shareable_values(train: Table, contract: Contract) -> dict[str, set[str]]:
    """For each confidential text column whose values the contract does not list, the values seen
    in at least ``MIN_GROUP`` training rows (as ``learnable_categories`` keeps for a feature): a rarer
    one may identify a person, and leaves the data zones only masked. pii columns never leave."""
    shareable: dict[str, set[str]] = {}
    for column in contract.columns:
        if column.type not in ("category", "string") or not column.sensitive or values_listed(column):
            continue
        present = [v for v in train[column.name].tolist() if v is not None]
        values, counts = np.unique(np.asarray(present, dtype=str), return_counts=True)
        shareable[column.name] = set(values[counts >= MIN_GROUP].tolist())
    return shareable


def _target(table: Table, contract: Contract) -> tuple[np.ndarray, np.ndarray]:
    """The target as the estimator takes it, and which rows have one."""
    column = contract.column(contract.target)
    values = table[column.name]
    if column.type in ("category", "string"):
        keep = np.array([v is not None for v in values], dtype=bool)
        return np.array([str(v) for v in values[keep]], dtype=object), keep
    keep = ~np.isnan(values.astype(np.float64))
    if contract.task == "classification":
        # Integer and boolean labels as int64: ONNX class labels are int64 or string.
        return values[keep].astype(np.int64), keep
    return values[keep].astype(np.float64), keep


def _check_cardinality(categories: dict[str, list[str]]) -> None:
    for name, learnt in categories.items():
        if len(learnt) > MAX_CATEGORIES:
            raise ValueError(
                f"feature {name} has {len(learnt)} distinct values in training (more than {MAX_CATEGORIES}): "
                'one-hot encoding it would not generalise; mark it "feature": false in the contract'
            )


def _plain(value: Any) -> Any:
    """A numpy scalar as the JSON-serialisable Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _metrics(pipeline: Pipeline, x: np.ndarray, y: np.ndarray, task: str) -> dict[str, float | None]:
    """The task's metrics on some rows; None where a metric is undefined (too few rows or classes)."""
    names = METRICS[task]
    if len(y) == 0:
        return dict.fromkeys(names)
    if task == "regression":
        predicted = pipeline.predict(x)
        return {
            "rmse": _finite(math.sqrt(mean_squared_error(y, predicted))),
            "mae": _finite(mean_absolute_error(y, predicted)),
            "r2": _finite(r2_score(y, predicted)) if len(y) > 1 else None,
        }
    classes = pipeline.classes_
    probabilities = pipeline.predict_proba(x)
    predicted = classes[np.argmax(probabilities, axis=1)]
    binary = len(classes) == 2
    present = len(np.unique(y)) > 1
    result: dict[str, float | None] = {
        "accuracy": _finite(accuracy_score(y, predicted)),
        # Binary: f1 of the positive class, the greater label (1, true, or the last category by name).
        "f1": _finite(
            f1_score(y, predicted, pos_label=classes[1], average="binary")
            if binary
            else f1_score(y, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "roc_auc": None,
        "log_loss": _finite(log_loss(y, probabilities, labels=classes)),
    }
    if present:
        try:
            if binary:
                result["roc_auc"] = _finite(roc_auc_score(y == classes[1], probabilities[:, 1]))
            else:
                result["roc_auc"] = _finite(
                    roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=classes)
                )
        except ValueError:
            result["roc_auc"] = None  # a class missing from these rows: one-vs-rest AUC is undefined
    return result


# --- ONNX ------------------------------------------------------------------------------------------


def export_onnx(result: TrainResult, contract: Contract) -> bytes:
    """The fitted pipeline as ONNX: one input per feature ([None, 1], double or string), outputs
    ``label`` + ``probabilities`` (classification) or ``prediction`` (regression), all in double."""
    metadata = {
        "mlops.dataset": contract.dataset,
        "mlops.contract_version": str(contract.version),
        "mlops.task": contract.task,
        "mlops.family": result.settings.model.family,
        "mlops.trained_at": result.trained_at,
        "mlops.input_schema": metadata_json(input_schema(contract, result)),
    }
    model = to_onnx_model(result.pipeline, result.features, contract.task == "classification", metadata)
    return model.SerializeToString()


def check_parity(
    result: TrainResult, onnx_bytes: bytes, contract: Contract, tolerance: float
) -> dict[str, Any]:
    """Run onnxruntime and the pipeline on the whole holdout and compare them.

    Classification: the largest absolute difference of any class probability, and the rows whose
    label differs. Regression: the largest absolute difference of the predictions. ``passed`` only
    if the difference is within ``tolerance`` (a NaN never is) and no label flipped. Without a
    holdout row (a tiny dataset) nothing can be compared, and parity does not pass.
    """
    import onnxruntime as ort

    x = result.holdout_x
    report: dict[str, Any] = {"rows": len(x), "tolerance": tolerance, "split": HOLDOUT}
    if len(x) == 0:
        return {
            **report,
            "max_abs_diff": None,
            "label_flips": 0,
            "passed": False,
            "reason": "no holdout rows",
        }
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    # One thread, no spinning: a holdout is small, and onnxruntime's spinning pool otherwise starves
    # scikit-learn's OpenMP threads in the same process (HGB fits went from 0.1 s to 4 s on 2 cores).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    outputs = dict(
        zip(
            output_names(contract.task == "classification"),
            session.run(None, onnx_feed(x, result.features)),
            strict=True,
        )
    )
    if contract.task == "classification":
        expected = result.pipeline.predict_proba(x)
        got = np.asarray(outputs[OUTPUT_PROBABILITIES], dtype=np.float64)
        labels = np.asarray(outputs[OUTPUT_LABEL]).ravel()
        flips = int((labels.astype(object) != result.pipeline.predict(x).astype(object)).sum())
    else:
        expected = result.pipeline.predict(x).reshape(-1, 1)
        got = np.asarray(outputs[OUTPUT_PREDICTION], dtype=np.float64).reshape(-1, 1)
        flips = 0
    if got.shape != expected.shape:
        return {
            **report,
            "max_abs_diff": None,
            "label_flips": flips,
            "passed": False,
            "reason": f"shape {got.shape}",
        }
    diff = float(np.max(np.abs(got - expected)))  # NaN propagates: a NaN output fails the check
    passed = math.isfinite(diff) and diff <= tolerance and flips == 0
    return {
        **report,
        "max_abs_diff": diff if math.isfinite(diff) else None,
        "label_flips": flips,
        "passed": passed,
    }


def input_schema(contract: Contract, result: TrainResult) -> dict[str, Any]:
    """What /predict accepts and returns, JSON-serialisable (also stored in the ONNX metadata)."""
    features = []
    for feature in result.features:
        column = feature.column
        entry: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "nullable": column.nullable,
            "onnx_input": column.name,
            "onnx_type": feature.onnx_type,
            "shape": [None, 1],
            "encoding": _encoding(feature),
            # The evaluator scores pii features as missing: holdout.csv never holds them.
            "classification": column.classification,
        }
        for key in ("min", "max"):
            if getattr(column, key) is not None:
                entry[key] = getattr(column, key)
        if column.allowed is not None:
            entry["allowed"] = list(column.allowed)
        features.append(entry)
    classification = contract.task == "classification"
    target = contract.column(contract.target)
    schema: dict[str, Any] = {
        "dataset": contract.dataset,
        "contract_version": contract.version,
        "task": contract.task,
        "target": {"name": target.name, "type": target.type},
        "features": features,
        "outputs": (
            {"label": OUTPUT_LABEL, "probabilities": OUTPUT_PROBABILITIES}
            if classification
            else {"prediction": OUTPUT_PREDICTION}
        ),
        "opsets": {"": MAIN_OPSET, "ai.onnx.ml": ML_OPSET},
    }
    if classification:
        schema["classes"] = list(result.classes or [])
    return schema


def _encoding(feature: Feature) -> str:
    if feature.kind == CATEGORICAL:
        rare = f" (or, {feature.column.classification}, seen in fewer than {MIN_GROUP} training rows)"
        return (
            f"the text as is; null as {MISSING_TEXT!r}; a value unseen in training"
            f"{rare if feature.column.sensitive and not values_listed(feature.column) else ''} counts for nothing"
        )
    if feature.kind == BOOLEAN:
        return "1.0 for true, 0.0 for false, NaN for null"
    if feature.column.type == "timestamp":
        return "seconds since 1970-01-01T00:00:00Z (a value without a zone is UTC); NaN for null"
    return "the number; NaN for null (replaced by the training median)"


def model_card(result: TrainResult, contract: Contract, parity: dict[str, Any] | None = None) -> str:
    """A markdown model card: data, features, model, metrics, parity and limits."""
    settings = result.settings
    used = {f.name for f in result.features}
    unused = [c for c in contract.columns if c.name not in used and c.name != contract.target]
    lines = [
        f"# Model card: {contract.dataset}",
        "",
        f"Trained {result.trained_at} on contract version {contract.version}: a {contract.task} model of "
        f"`{contract.target}` ({settings.model.family.replace('_', ' ')}).",
        "",
        "## Data",
        "",
        f"{sum(result.rows.values())} rows with a target ({result.dropped_rows} without one were left out), "
        "split by a hash of each row's "
        f"{'id `' + contract.row_id + '`' if contract.row_id else 'content'}, so a row keeps its split in every run:",
        "",
        "| split | rows |",
        "|---|---|",
        *[f"| {name} | {result.rows[name]} |" for name in SPLITS],
        "",
        "## Features",
        "",
        "| column | type | as the model sees it |",
        "|---|---|---|",
        *[f"| `{f.name}` | {f.column.type} | {_encoding(f)} |" for f in result.features],
        "",
    ]
    if unused:
        lines += [
            "Not used: " + ", ".join(f"`{c.name}` ({_why_unused(c, contract)})" for c in unused) + ".",
            "",
        ]
    params = settings.model.estimator_params()
    lines += [
        "## Model",
        "",
        f"{settings.model.family}, parameters: "
        + (", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "defaults")
        + ". Numbers: median imputation"
        + (" and standard scaling" if settings.model.family.endswith("regression") else "")
        + "; booleans, categories and text: one-hot, with null as its own category.",
        "",
        "## Metrics",
        "",
        f"Primary metric: **{settings.primary_metric}** "
        f"({'higher' if METRICS[contract.task][settings.primary_metric] else 'lower'} is better).",
        "",
        "| metric | " + " | ".join(SPLITS) + " |",
        "|---|" + "---|" * len(SPLITS),
        *[
            f"| {metric} | " + " | ".join(_fmt(result.metrics[s].get(metric)) for s in SPLITS) + " |"
            for metric in METRICS[contract.task]
        ],
        "",
    ]
    if parity is not None:
        lines += [
            "## ONNX parity",
            "",
            f"onnxruntime against scikit-learn on {parity['rows']} holdout rows: largest difference "
            f"{_fmt(parity.get('max_abs_diff'), '.2e')}, {parity['label_flips']} label flips, tolerance "
            f"{parity['tolerance']:.0e}: **{'passed' if parity['passed'] else 'FAILED'}**.",
            "",
        ]
    lines += [
        "## Limits",
        "",
        "* Measured on rows like the training data; the holdout is a random (hashed) sample, not a later "
        "period, so drift after training is not reflected in these numbers.",
        "* A category or text value never seen in training contributes nothing to a prediction.",
        "* Missing numbers are replaced by the training median; missing categories are their own category.",
    ]
    if contract.task == "classification" and result.classes and len(result.classes) == 2:
        lines.append(f"* f1 and ROC AUC treat `{result.classes[1]}` as the positive class.")
    if any(c.type == "timestamp" for c in unused):
        lines.append('* Timestamps are not features unless the contract marks them `"feature": true`.')
    return "\n".join(lines) + "\n"


def _why_unused(column: Any, contract: Contract) -> str:
    if column.name == contract.row_id:
        return "row id"
    if column.feature is False:
        return "marked not a feature"
    if column.classification == "pii" and column.feature is None:
        return "pii"
    if column.type == "timestamp":
        return "timestamp"
    return "not a feature"


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)
