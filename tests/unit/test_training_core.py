"""The training core (issue 4): settings, typed loading, stable split, pipelines, ONNX parity.

Real data: scikit-learn's bundled breast cancer, wine and diabetes sets, with generated category,
boolean, string, timestamp and pii columns and injected nulls, written to CSV and read back
through the contract, as the Batch job will read uploads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from threadpoolctl import threadpool_limits

from chalicelib.training import TrainingSettings
from chalicelib.validation.contract import Contract
from chalicelib.validation.exceptions import ContractError
from training import (
    assign_split,
    build_pipeline,
    check_parity,
    export_onnx,
    input_schema,
    load_table,
    model_card,
    train,
)
from training.core import TrainResult
from training.pipeline import feature_matrix, model_features, onnx_feed

FAST = {  # small models: the whole file must stay well under a minute on 2 cores
    "random_forest": {"n_estimators": 25},
    "hist_gradient_boosting": {"max_iter": 40},
    "logistic_regression": {},
    "linear_regression": {},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # OpenMP (HGB) and BLAS spinning on a busy 2-core machine cost seconds per fit; results are the same.
    with threadpool_limits(limits=1):
        yield


# --- data ----------------------------------------------------------------------------------------


def _csv(columns: list[dict[str, Any]], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["name"] for c in columns])
    writer.writerows(rows)
    return out.getvalue().encode()


def _num(value: float, rng: np.random.Generator, null_rate: float = 0.06) -> str:
    return "" if rng.random() < null_rate else repr(float(value))


def _col(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "classification": extra.pop("classification", "public"), **extra}


@cache
def breast_cancer() -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Binary classification, integer target, row id, every column type, nulls in features."""
    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    names = [n.replace(" ", "_") for n in data.feature_names]
    columns = [_col("id", "string", classification="internal", unique=True)]
    columns += [_col(n, "float", nullable=True) for n in names]
    columns += [
        _col("site", "category", nullable=True, allowed=["north", "south", "east", "west"]),
        _col("smoker", "boolean", nullable=True),
        _col("note", "string", nullable=True),
        _col("recorded", "timestamp"),
        _col("email", "string", classification="pii"),
        _col("diagnosis", "integer", allowed=[0, 1]),
    ]
    rows = []
    for i, (x, y) in enumerate(zip(data.data, data.target, strict=True)):
        # Generated columns carry a little signal, so the encoders have something to learn.
        site = rng.choice(
            ["north", "south"] if (y and rng.random() < 0.6) else ["north", "south", "east", "west"]
        )
        rows.append(
            [f"bc-{i:04d}"]
            + [_num(v, rng) for v in x]
            + [
                "" if rng.random() < 0.08 else str(site),
                rng.choice(["true", "false", "yes", "no", ""]),
                rng.choice(["", "follow-up", "referred", "second opinion"]),
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T08:30:00Z",
                f"patient{i}@example.org",
                str(int(y)),
            ]
        )
    return columns, rows


@cache
def wine() -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Three classes named by category, no row id (the split key is the row's content)."""
    data = load_wine()
    rng = np.random.default_rng(1)
    labels = ["barolo", "grignolino", "barbera"]
    columns = [_col(n.replace("/", "_"), "float", nullable=True) for n in data.feature_names]
    columns += [
        _col("cask", "category", nullable=True, allowed=["oak", "steel", "clay"]),
        _col("cultivar", "category", allowed=labels),
    ]
    rows = [
        [_num(v, rng) for v in x] + [str(rng.choice(["oak", "steel", "clay", ""])), labels[int(y)]]
        for x, y in zip(data.data, data.target, strict=True)
    ]
    return columns, rows


@cache
def diabetes() -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Regression, an integer row id, categorical and boolean features with nulls."""
    data = load_diabetes()
    rng = np.random.default_rng(2)
    columns = [_col("patient", "integer", classification="internal", unique=True)]
    columns += [_col(n, "float", nullable=True) for n in data.feature_names]
    columns += [
        _col("clinic", "category", nullable=True, allowed=["a", "b", "c"]),
        _col("fasting", "boolean", nullable=True),
        _col("progression", "float"),
    ]
    rows = [
        [str(1000 + i)]
        + [_num(v, rng) for v in x]
        + [str(rng.choice(["a", "b", "c", ""])), str(rng.choice(["1", "0", ""])), repr(float(y))]
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True))
    ]
    return columns, rows


DATASETS = {
    "breast_cancer": (breast_cancer, "diagnosis", "classification", "id"),
    "wine": (wine, "cultivar", "classification", None),
    "diabetes": (diabetes, "progression", "regression", "patient"),
}


def contract_for(
    dataset: str, training: dict[str, Any] | None = None, columns: list[dict[str, Any]] | None = None
) -> Contract:
    make, target, task, row_id = DATASETS[dataset]
    doc: dict[str, Any] = {
        "dataset": dataset.replace("_", "-"),
        "columns": columns if columns is not None else make()[0],
        "target": target,
        "task": task,
        "row_id": row_id,
    }
    if training is not None:
        doc["training"] = training
    return Contract.parse(doc)


@cache
def trained(dataset: str, family: str) -> tuple[Contract, TrainResult, bytes]:
    contract = contract_for(dataset, {"model": {"family": family, "params": FAST[family]}})
    columns, rows = DATASETS[dataset][0]()
    settings = TrainingSettings.from_contract(contract)
    result = train(load_table([_csv(columns, rows)], contract), contract, settings)
    return contract, result, export_onnx(result, contract)


CASES = [
    ("breast_cancer", "logistic_regression"),
    ("breast_cancer", "random_forest"),
    ("breast_cancer", "hist_gradient_boosting"),
    ("wine", "logistic_regression"),
    ("wine", "random_forest"),
    ("wine", "hist_gradient_boosting"),
    ("diabetes", "linear_regression"),
    ("diabetes", "random_forest"),
    ("diabetes", "hist_gradient_boosting"),
]


# --- parity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "family"), CASES)
def test_onnx_matches_scikit_learn_on_the_whole_holdout(dataset: str, family: str) -> None:
    contract, result, onnx_bytes = trained(dataset, family)
    parity = check_parity(result, onnx_bytes, contract, tolerance=1e-5)
    assert parity["passed"], parity
    assert parity["rows"] == result.rows["holdout"] > 20
    assert parity["label_flips"] == 0
    # Double precision end to end: far inside the tolerance, not just under it.
    assert parity["max_abs_diff"] < 1e-9, parity


@pytest.mark.parametrize(
    ("dataset", "family"), [("breast_cancer", "hist_gradient_boosting"), ("diabetes", "random_forest")]
)
def test_onnx_has_one_typed_input_per_feature_and_named_outputs(dataset: str, family: str) -> None:
    contract, result, onnx_bytes = trained(dataset, family)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    inputs = {i.name: (i.type, i.shape[1]) for i in session.get_inputs()}
    expected = {
        f.name: ("tensor(string)" if f.column.type in ("category", "string") else "tensor(double)", 1)
        for f in result.features
    }
    assert inputs == expected
    assert [i.name for i in session.get_inputs()] == [f.name for f in result.features]  # contract order
    outputs = {o.name: o.type for o in session.get_outputs()}
    if contract.task == "classification":
        assert outputs == {"label": "tensor(int64)", "probabilities": "tensor(double)"}
    else:
        assert outputs == {"prediction": "tensor(double)"}


@pytest.mark.parametrize(
    ("dataset", "family"),
    [
        ("breast_cancer", "logistic_regression"),
        ("wine", "random_forest"),
        ("diabetes", "hist_gradient_boosting"),
    ],
)
def test_onnx_handles_nulls_and_unseen_categories_like_the_pipeline(dataset: str, family: str) -> None:
    contract, result, onnx_bytes = trained(dataset, family)
    x = result.holdout_x[:12].copy()
    for j, feature in enumerate(result.features):
        if feature.kind == "categorical":
            x[0::3, j] = ""  # null
            x[1::3, j] = "never-seen-in-training"
        else:
            x[0::2, j] = np.nan
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, onnx_feed(x, result.features))
    if contract.task == "classification":
        np.testing.assert_allclose(outputs[1], result.pipeline.predict_proba(x), rtol=0, atol=1e-12)
        assert outputs[0].tolist() == result.pipeline.predict(x).tolist()
    else:
        np.testing.assert_allclose(outputs[0].ravel(), result.pipeline.predict(x), rtol=0, atol=1e-9)


def test_parity_fails_when_the_onnx_model_is_not_the_measured_one() -> None:
    contract, forest, _ = trained("breast_cancer", "random_forest")
    _, _, boosting_onnx = trained("breast_cancer", "hist_gradient_boosting")
    parity = check_parity(forest, boosting_onnx, contract, tolerance=1e-5)
    assert not parity["passed"]
    assert parity["max_abs_diff"] > 1e-3


def test_string_labels_and_only_text_features_convert_exactly() -> None:
    rng = np.random.default_rng(5)
    columns = [
        _col("key", "string", classification="internal"),
        _col("colour", "category", nullable=True, allowed=["red", "green", "blue"]),
        _col("shape", "string", nullable=True),
        _col("grade", "category", allowed=["low", "high"]),
    ]
    rows = []
    for i in range(400):
        colour = rng.choice(["red", "green", "blue", ""])
        grade = "high" if (colour == "red") != (rng.random() < 0.2) else "low"
        rows.append([f"k{i}", str(colour), str(rng.choice(["round", "square", ""])), grade])
    for family in ("logistic_regression", "random_forest", "hist_gradient_boosting"):
        contract = Contract.parse(
            {
                "dataset": "text-only",
                "columns": columns,
                "target": "grade",
                "task": "classification",
                "row_id": "key",
                "training": {"model": {"family": family, "params": FAST[family]}},
            }
        )
        result = train(
            load_table(_csv(columns, rows), contract), contract, TrainingSettings.from_contract(contract)
        )
        assert result.classes == ["high", "low"]
        onnx_bytes = export_onnx(result, contract)
        parity = check_parity(result, onnx_bytes, contract, 1e-5)
        assert parity["passed"] and parity["max_abs_diff"] < 1e-9, (family, parity)
        label = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).get_outputs()[0]
        assert label.type == "tensor(string)"


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_are_sensible_on_real_data() -> None:
    _, logistic, _ = trained("breast_cancer", "logistic_regression")
    holdout = logistic.metrics["holdout"]
    assert holdout["roc_auc"] > 0.9
    assert holdout["accuracy"] > 0.85
    assert 0.8 < holdout["f1"] <= 1.0
    assert 0 < holdout["log_loss"] < 0.5
    assert logistic.primary_metric == ("roc_auc", holdout["roc_auc"])

    _, forest, _ = trained("wine", "random_forest")
    assert forest.classes == ["barbera", "barolo", "grignolino"]
    assert forest.metrics["holdout"]["accuracy"] > 0.8
    assert forest.metrics["validation"]["roc_auc"] > 0.9

    _, linear, _ = trained("diabetes", "linear_regression")
    metrics = linear.metrics["holdout"]
    assert metrics["r2"] > 0.25
    assert 0 < metrics["mae"] < metrics["rmse"] < 70  # the target spans 25..346
    assert set(linear.metrics) == {"train", "validation", "holdout"}


# --- split ---------------------------------------------------------------------------------------


def test_split_is_stable_whatever_other_rows_and_their_order() -> None:
    keys = [f"row-{i}" for i in range(3000)]
    first = dict(zip(keys, assign_split(keys, validation=0.15, holdout=0.15), strict=True))
    grown = keys + [f"new-{i}" for i in range(2000)]
    np.random.default_rng(3).shuffle(grown)
    second = dict(zip(grown, assign_split(grown, validation=0.15, holdout=0.15), strict=True))
    assert all(second[k] == first[k] for k in keys)
    # So a row held out once is never trained on by a later run.
    assert not {k for k in keys if first[k] == "holdout"} & {k for k, s in second.items() if s == "train"}


def test_split_fractions_are_as_configured() -> None:
    splits = assign_split([f"key-{i}" for i in range(20_000)], validation=0.2, holdout=0.1)
    share = {name: float(np.mean(splits == name)) for name in ("train", "validation", "holdout")}
    assert share["holdout"] == pytest.approx(0.1, abs=0.01)
    assert share["validation"] == pytest.approx(0.2, abs=0.01)
    assert share["train"] == pytest.approx(0.7, abs=0.01)


def test_growing_the_holdout_only_takes_rows_from_the_other_splits() -> None:
    keys = [f"k{i}" for i in range(5000)]
    small = assign_split(keys, validation=0.15, holdout=0.10)
    large = assign_split(keys, validation=0.15, holdout=0.15)
    assert set(np.flatnonzero(small == "holdout")) <= set(np.flatnonzero(large == "holdout"))


def test_split_keys_come_from_the_row_id_or_the_row_content() -> None:
    columns, rows = wine()
    contract = contract_for("wine")
    table = load_table(_csv(columns, rows[:50]), contract)
    # The same rows with the columns in another order and every field quoted: same content keys.
    order = list(reversed(range(len(columns))))
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([columns[i]["name"] for i in order])
    writer.writerows([[row[i] for i in order] for row in rows[:50]])
    again = load_table(out.getvalue().encode(), contract)
    assert again.keys == table.keys
    assert len(set(table.keys)) == 50

    bc_columns, bc_rows = breast_cancer()
    assert load_table(_csv(bc_columns, bc_rows[:3]), contract_for("breast_cancer")).keys == [
        "bc-0000",
        "bc-0001",
        "bc-0002",
    ]


def test_holdout_rows_stay_held_out_when_new_files_arrive() -> None:
    columns, rows = diabetes()
    contract = contract_for("diabetes")
    first = load_table(_csv(columns, rows[:250]), contract)
    shuffled = list(rows)
    np.random.default_rng(4).shuffle(shuffled)
    later = load_table([_csv(columns, shuffled[:200]), _csv(columns, shuffled[200:])], contract)
    before = dict(zip(first.keys, assign_split(first.keys, 0.15, 0.15), strict=True))
    after = dict(zip(later.keys, assign_split(later.keys, 0.15, 0.15), strict=True))
    assert len(after) == len(rows)
    assert all(after[k] == split for k, split in before.items())


# --- features ------------------------------------------------------------------------------------


def test_pii_is_not_a_feature_unless_marked() -> None:
    _, result, onnx_bytes = trained("breast_cancer", "logistic_regression")
    names = [f.name for f in result.features]
    assert "email" not in names  # pii
    assert "id" not in names and "diagnosis" not in names  # row id, target
    assert "recorded" not in names  # timestamps only when marked
    assert {"site", "smoker", "note", "mean_radius"} <= set(names)
    assert "email" not in {i.name for i in ort.InferenceSession(onnx_bytes).get_inputs()}

    columns, _ = breast_cancer()
    marked = [dict(c, feature=True) if c["name"] == "email" else c for c in columns]
    assert "email" in [f.name for f in model_features(contract_for("breast_cancer", columns=marked))]


def test_a_timestamp_marked_as_feature_is_seconds_since_the_epoch() -> None:
    columns, rows = breast_cancer()
    marked = [dict(c, feature=True) if c["name"] == "recorded" else c for c in columns]
    contract = contract_for(
        "breast_cancer", {"model": {"family": "random_forest", "params": {"n_estimators": 5}}}, marked
    )
    table = load_table(_csv(marked, rows[:200]), contract)
    assert table["recorded"][0] == 1767256200.0  # 2026-01-01T08:30:00Z
    result = train(table, contract, TrainingSettings.from_contract(contract))
    schema = input_schema(contract, result)
    recorded = next(f for f in schema["features"] if f["name"] == "recorded")
    assert recorded["onnx_type"] == "double" and "seconds since 1970" in recorded["encoding"]
    assert check_parity(result, export_onnx(result, contract), contract, 1e-5)["passed"]


def test_load_table_types_columns_per_contract_from_paths_and_streams(tmp_path: Path) -> None:
    columns = [
        _col("n", "integer", nullable=True),
        _col("x", "float", nullable=True),
        _col("b", "boolean", nullable=True),
        _col("c", "category", nullable=True, allowed=["u", "v"]),
        _col("t", "timestamp", nullable=True),
        _col("y", "integer"),
    ]
    contract = Contract.parse(
        {"dataset": "types", "columns": columns, "target": "y", "task": "classification"}
    )
    text = 'n,x,b,c,t,y\n1,2.5,TRUE,u,2026-01-01T00:00:00+01:00,0\n,,,,,1\n-3,1e3,no,"v",2026-01-01,1\n'
    path = tmp_path / "part.csv"
    path.write_text(text)
    table = load_table([path, io.StringIO(text), io.BytesIO(text.encode()), text.encode()], contract)
    # Every source is read; the same rows four times are one snapshot's rows once (the newest copy).
    assert table.read == 12 and table.n_rows == 3 and len(table.sources) == 4
    np.testing.assert_array_equal(table["n"][:3], [1.0, np.nan, -3.0])
    np.testing.assert_array_equal(table["x"][:3], [2.5, np.nan, 1000.0])
    np.testing.assert_array_equal(table["b"][:3], [1.0, np.nan, 0.0])
    assert table["c"][:3].tolist() == ["u", None, "v"]
    np.testing.assert_array_equal(table["t"][:3], [1767222000.0, np.nan, 1767225600.0])
    assert table["y"].dtype == np.float64

    matrix = feature_matrix(table, model_features(contract))
    assert np.isnan(matrix[1, :3].astype(float)).all() and matrix[1, 3] == ""  # nulls as the model sees them


def test_input_schema_describes_what_predict_accepts() -> None:
    contract, result, onnx_bytes = trained("breast_cancer", "random_forest")
    schema = input_schema(contract, result)
    assert json.loads(json.dumps(schema)) == schema
    assert schema["task"] == "classification" and schema["classes"] == [0, 1]
    assert schema["outputs"] == {"label": "label", "probabilities": "probabilities"}
    by_name = {f["name"]: f for f in schema["features"]}
    assert by_name["site"] == {
        "name": "site",
        "type": "category",
        "nullable": True,
        "onnx_input": "site",
        "onnx_type": "string",
        "shape": [None, 1],
        "encoding": by_name["site"]["encoding"],
        "allowed": ["north", "south", "east", "west"],
        "classification": "public",
    }
    assert by_name["smoker"]["onnx_type"] == "double"
    assert by_name["mean_radius"]["onnx_type"] == "double"
    metadata = {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}
    assert json.loads(metadata["mlops.input_schema"]) == json.loads(json.dumps(schema))

    regression = input_schema(*trained("diabetes", "linear_regression")[:2])
    assert regression["outputs"] == {"prediction": "prediction"} and "classes" not in regression


def test_model_card_tells_data_features_metrics_and_limits() -> None:
    contract, result, onnx_bytes = trained("breast_cancer", "logistic_regression")
    parity = check_parity(result, onnx_bytes, contract, 1e-5)
    card = model_card(result, contract, parity)
    assert card.startswith("# Model card: breast-cancer")
    assert "| holdout |" in card and "roc_auc" in card and "**passed**" in card
    assert "`email` (pii)" in card and "`id` (row id)" in card
    assert "## Limits" in card


def test_build_pipeline_scales_only_for_linear_models() -> None:
    contract = contract_for("diabetes", {"model": {"family": "linear_regression"}})
    linear = build_pipeline(contract, TrainingSettings.from_contract(contract))
    numeric = linear.named_steps["features"].transformers[0][1]
    assert [name for name, _ in numeric.steps] == ["impute", "scale"]
    contract = contract_for("diabetes", {"model": {"family": "random_forest", "params": {"max_depth": 4}}})
    forest = build_pipeline(contract, TrainingSettings.from_contract(contract))
    assert [name for name, _ in forest.named_steps["features"].transformers[0][1].steps] == ["impute"]
    assert forest.named_steps["model"].max_depth == 4
    assert forest.named_steps["model"].random_state == 0  # reproducible by default


# --- settings ------------------------------------------------------------------------------------


def test_settings_defaults_per_task() -> None:
    classification = TrainingSettings.from_contract(contract_for("breast_cancer"))
    assert classification.model.family == "logistic_regression"
    assert classification.primary_metric == "roc_auc" and classification.greater_is_better
    assert (classification.split.validation, classification.split.holdout) == (0.15, 0.15)
    assert classification.parity_tolerance == 1e-5
    assert classification.retrain.min_new_rows == 100
    assert classification.retrain.max_champion_age_days == 30
    assert classification.retrain.on_drift is True
    assert classification.retrain.cooldown_minutes == 30
    regression = TrainingSettings.from_contract(contract_for("diabetes"))
    assert regression.model.family == "linear_regression"
    assert regression.primary_metric == "rmse" and not regression.greater_is_better
    assert regression.model.estimator_params() == {}  # LinearRegression takes no seed
    assert json.loads(json.dumps(regression.to_dict()))["model"]["family"] == "linear_regression"


def test_settings_read_every_field() -> None:
    settings = TrainingSettings.from_contract(
        contract_for(
            "wine",
            {
                "model": {
                    "family": "hist_gradient_boosting",
                    "params": {"max_iter": 50, "learning_rate": 0.05, "max_depth": None, "random_state": 7},
                },
                "primary_metric": "log_loss",
                "split": {"validation": 0.2, "holdout": 0.1},
                "parity_tolerance": 1e-6,
                "retrain": {
                    "min_new_rows": 10,
                    "max_champion_age_days": None,
                    "on_drift": False,
                    "cooldown_minutes": 5,
                },
            },
        )
    )
    assert settings.model.estimator_params() == {
        "max_iter": 50,
        "learning_rate": 0.05,
        "max_depth": None,
        "random_state": 7,
    }
    assert settings.primary_metric == "log_loss" and not settings.greater_is_better
    assert settings.split.holdout == 0.1 and settings.parity_tolerance == 1e-6
    assert settings.retrain.max_champion_age_days is None and settings.retrain.on_drift is False


@pytest.mark.parametrize(
    ("dataset", "training", "field"),
    [
        ("wine", [], "training"),
        ("wine", {"colour": 1}, "training.colour"),
        ("wine", {"model": {"family": "xgboost"}}, "training.model.family"),
        ("wine", {"model": {"family": "linear_regression"}}, "training.model.family"),
        ("diabetes", {"model": {"family": "logistic_regression"}}, "training.model.family"),
        ("wine", {"model": {"kind": "random_forest"}}, "training.model.kind"),
        (
            "wine",
            {"model": {"family": "random_forest", "params": {"n_estimator": 10}}},
            "training.model.params.n_estimator",
        ),
        ("wine", {"model": {"family": "random_forest", "params": {"C": 1.0}}}, "training.model.params.C"),
        ("wine", {"model": {"params": {"C": "1"}}}, "training.model.params.C"),
        ("wine", {"model": {"params": {"C": 0}}}, "training.model.params.C"),
        (
            "wine",
            {"model": {"family": "random_forest", "params": {"max_depth": 2.5}}},
            "training.model.params.max_depth",
        ),
        (
            "wine",
            {"model": {"family": "random_forest", "params": {"n_estimators": True}}},
            "training.model.params.n_estimators",
        ),
        (
            "wine",
            {"model": {"family": "random_forest", "params": {"n_estimators": None}}},
            "training.model.params.n_estimators",
        ),
        ("wine", {"model": {"params": {"random_state": -1}}}, "training.model.params.random_state"),
        ("wine", {"primary_metric": "rmse"}, "training.primary_metric"),
        ("diabetes", {"primary_metric": "roc_auc"}, "training.primary_metric"),
        ("wine", {"split": {"validation": 0.5, "holdout": 0.45}}, "training.split"),
        ("wine", {"split": {"holdout": 0}}, "training.split.holdout"),
        ("wine", {"split": {"test": 0.1}}, "training.split.test"),
        ("wine", {"parity_tolerance": -1}, "training.parity_tolerance"),
        ("wine", {"retrain": {"on_drift": "yes"}}, "training.retrain.on_drift"),
        ("wine", {"retrain": {"min_new_rows": -5}}, "training.retrain.min_new_rows"),
        ("wine", {"retrain": {"every": "day"}}, "training.retrain.every"),
    ],
)
def test_settings_errors_name_the_field(dataset: str, training: Any, field: str) -> None:
    with pytest.raises(ContractError) as error:
        TrainingSettings.from_contract(contract_for(dataset, training))
    assert error.value.field == field


# --- pii and confidential values in the candidate's artifacts ----------------------------------------


def _sensitive_rows(n: int = 400) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """A pii feature (income), a confidential text feature with one value per row (account) and one
    shared by many rows (branch), a confidential numeric feature (balance)."""
    columns = [
        _col("id", "string"),
        _col("income", "float", classification="pii", feature=True),
        _col("account", "string", classification="confidential"),
        _col("branch", "string", classification="confidential"),
        _col("balance", "float", classification="confidential"),
        _col("y", "integer", allowed=[0, 1]),
    ]
    rng = np.random.default_rng(17)
    rows = []
    for i in range(n):
        income, balance = rng.normal(40000, 8000), rng.normal(5000, 1500)
        branch = f"BRANCH{int(rng.integers(0, 3))}"
        y = int(rng.random() < 1 / (1 + np.exp(-(balance - 5000) / 1500 - (branch == "BRANCH0"))))
        rows.append([f"r{i}", f"{income:.4f}", f"ACCT{i:06d}Z", branch, f"{balance:.4f}", str(y)])
    return columns, rows


@cache
def _sensitive_candidate() -> tuple[Contract, TrainResult, bytes, bytes]:
    from training.main import holdout_csv

    columns, rows = _sensitive_rows()
    doc = {"model": {"family": "logistic_regression"}}
    contract = Contract.parse(
        {"dataset": "sensitive", "columns": columns, "target": "y", "task": "classification", "row_id": "id"}
        | {"training": doc}
    )
    result = train(
        load_table([_csv(columns, rows)], contract), contract, TrainingSettings.from_contract(contract)
    )
    return contract, result, export_onnx(result, contract), holdout_csv(result, contract)


def test_a_model_learns_no_confidential_text_value_seen_in_fewer_than_ten_rows() -> None:
    contract, result, onnx_bytes, _ = _sensitive_candidate()
    assert result.categories["account"] == ["__missing__"]  # one row each: none learnt
    assert result.categories["branch"] == ["BRANCH0", "BRANCH1", "BRANCH2", "__missing__"]
    assert b"ACCT" not in onnx_bytes and b"BRANCH0" in onnx_bytes
    from training.main import pipeline_bytes

    assert b"ACCT" not in pipeline_bytes(result.pipeline)
    parity = check_parity(result, onnx_bytes, contract, 1e-5)
    assert parity["passed"], parity


def test_the_holdout_leaves_out_pii_and_unlearnt_confidential_text_and_scores_the_same() -> None:
    """holdout.csv: no pii column, no account number (the model did not learn them: written as
    '***', which it does not know either), and the candidate scores every row as it did in memory."""
    from chalicelib.registry.scoring import withheld_features
    from chalicelib.serving import InputSchema, OnnxModel

    contract, result, onnx_bytes, holdout = _sensitive_candidate()
    text = holdout.decode()
    header = text.splitlines()[0].split(",")
    assert header == ["id", "account", "branch", "balance", "y", "#upload"] and "ACCT" not in text
    assert {row.split(",")[1] for row in text.splitlines()[1:]} == {"***"}
    schema = InputSchema(input_schema(contract, result))
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert withheld_features(schema, header) == ["income"]
    model = OnnxModel(onnx_bytes, schema)
    scored = model.run(schema.encode_text(header, rows, withheld_features(schema, header))).for_metrics
    # income scored as missing: the pipeline's median; everything else as in memory
    x = result.holdout_x.copy()
    x[:, [f.name for f in result.features].index("income")] = np.nan
    expected = result.pipeline.predict_proba(x)[:, 1]
    np.testing.assert_allclose(scored[:, 1] if scored.ndim == 2 else scored, expected, atol=1e-6)


def test_the_holdout_carries_every_column_but_pii_and_the_upload_of_each_row() -> None:
    """Columns the model does not use (``"feature": false``, a timestamp, the row id) are in the
    holdout too, so a champion that used them scores the same rows; integral numbers are written
    without a decimal point whatever the column's type; each row names its upload."""
    from training.main import holdout_csv

    columns = [
        _col("id", "string"),
        _col("amount", "float"),
        _col("dropped", "float", feature=False),
        _col("seen_at", "timestamp"),
        _col("note", "string", classification="confidential", feature=False),
        _col("email", "string", classification="pii"),
        _col("y", "integer", allowed=[0, 1]),
    ]
    rng = np.random.default_rng(3)
    files = []
    for day in range(2):
        rows = []
        for i in range(200):
            amount = float(rng.integers(0, 50))
            note = "common" if i % 2 else f"rare-{day}-{i}"
            rows.append([f"r{day}-{i}", f"{amount}", f"{amount / 3:.3f}", f"2026-11-2{day}T10:00:00Z", note,
                         f"p{i}@example.org", str(int(amount > 25))])  # fmt: skip
        files.append(_csv(columns, rows))
    doc = {"dataset": "wide", "columns": columns, "target": "y", "task": "classification", "row_id": "id"}
    contract = Contract.parse({**doc, "training": {"model": {"family": "logistic_regression"}}})
    result = train(load_table(files, contract), contract, TrainingSettings.from_contract(contract))
    assert [f.name for f in result.features] == ["amount"]
    header, *rows = list(csv.reader(io.StringIO(holdout_csv(result, contract, ["day-0", "day-1"]).decode())))
    assert header == ["id", "amount", "dropped", "seen_at", "note", "y", "#upload"]
    assert len(rows) == result.rows["holdout"] and "@" not in "".join(",".join(r) for r in rows)
    assert {r[6] for r in rows} == {"day-0", "day-1"}
    assert all(r[6] == f"day-{r[0][1]}" for r in rows)  # the upload each row was read from
    assert all("." not in r[1] and r[3].isdigit() for r in rows)  # 7, not 7.0; epoch seconds
    assert {r[4] for r in rows} == {"common", "***"}  # confidential text seen in < 10 rows: masked


def test_the_training_reference_profile_keeps_only_aggregates_of_sensitive_columns() -> None:
    from training.main import reference_profile

    columns, rows = _sensitive_rows()
    contract = Contract.parse(
        {"dataset": "sensitive", "columns": columns, "target": "y", "task": "classification", "row_id": "id"}
    )
    profile = reference_profile(load_table([_csv(columns, rows)], contract), contract)
    text = json.dumps(profile)
    assert "ACCT" not in text and "BRANCH" not in text and "income" not in profile["columns"]
    balances = {float(r[4]) for r in rows}
    assert not set(profile["columns"]["balance"]["sample"]) & balances
