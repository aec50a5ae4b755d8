"""Which columns a model uses, how they are encoded, and the scikit-learn pipeline built on them.

The pipeline's input is a 2-D object array with one column per model feature, in contract order;
the ColumnTransformer selects columns by position, which lets skl2onnx map each position to one
named ONNX input (no pandas in the job image). The encodings are the ones /predict will feed:

* numeric (integer, float, timestamp marked as feature): float64, NaN for null
* boolean: float64 1.0 / 0.0, NaN for null
* category, string: str, "" for null (ONNX string tensors cannot hold a null)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from chalicelib.training.settings import TrainingSettings
from chalicelib.validation.contract import Column, Contract
from chalicelib.validation.privacy import MIN_GROUP, values_listed

from .table import Table

NUMERIC, BOOLEAN, CATEGORICAL = "numeric", "boolean", "categorical"
MISSING_TEXT = ""  # how a null category/string reaches the model (and the ONNX input)
MISSING_CATEGORY = "__missing__"  # the one-hot category nulls become: missingness can carry signal
MISSING_BOOLEAN = -1.0  # likewise for booleans: false, true and null are three one-hot columns
LINEAR_FAMILIES = ("logistic_regression", "linear_regression")


@dataclass(frozen=True)
class Feature:
    """A contract column as the model sees it."""

    column: Column
    kind: str  # NUMERIC, BOOLEAN or CATEGORICAL

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def onnx_type(self) -> str:
        """The element type of its ONNX input: double for numbers (parity, see onnx_export), else string."""
        return "string" if self.kind == CATEGORICAL else "double"


def model_features(contract: Contract) -> list[Feature]:
    """The contract's features, minus timestamps not explicitly marked ``"feature": true``."""
    features = []
    for column in contract.features:
        if column.type == "timestamp" and column.feature is not True:
            continue
        if column.type in ("integer", "float", "timestamp"):
            kind = NUMERIC
        elif column.type == "boolean":
            kind = BOOLEAN
        else:
            kind = CATEGORICAL
        features.append(Feature(column, kind))
    if not features:
        raise ValueError(f"dataset {contract.dataset}: the contract leaves no column to use as a feature")
    return features


def feature_matrix(table: Table, features: list[Feature]) -> np.ndarray:
    """The pipeline's input: an object array, one column per feature, nulls encoded as above."""
    matrix = np.empty((table.n_rows, len(features)), dtype=object)
    for j, feature in enumerate(features):
        values = table[feature.name]
        if feature.kind == CATEGORICAL:
            matrix[:, j] = [MISSING_TEXT if v is None else v for v in values]
        else:
            matrix[:, j] = values.astype(np.float64)
    return matrix


def onnx_feed(matrix: np.ndarray, features: list[Feature]) -> dict[str, np.ndarray]:
    """The same rows as ONNX inputs: one [n, 1] tensor per feature, named after the column."""
    feed = {}
    for j, feature in enumerate(features):
        column = matrix[:, j : j + 1]
        feed[feature.name] = column.astype(str) if feature.kind == CATEGORICAL else column.astype(np.float64)
    return feed


def learnable_categories(x_train: np.ndarray, features: list[Feature]) -> dict[str, list[str]]:
    """The categories the one-hot encoder learns, per categorical feature, from the training rows.

    Every value of a public or internal column, or of a column whose contract lists its values
    (``allowed``). Of another pii or confidential column, only the values
    seen in at least ``MIN_GROUP`` training rows: a rarer one (an account number, say) says nothing
    a model can generalise, and would be one person's value stored inside the model. Values left out
    count for nothing, in training and in serving alike (``handle_unknown="ignore"``). Null's own
    category is always learnt."""
    categories: dict[str, list[str]] = {}
    for j, feature in enumerate(features):
        if feature.kind != CATEGORICAL:
            continue
        values, counts = np.unique(
            np.asarray([MISSING_CATEGORY if v == MISSING_TEXT else v for v in x_train[:, j]], dtype=str),
            return_counts=True,
        )
        if feature.column.sensitive and not values_listed(feature.column):
            keep = (counts >= MIN_GROUP) | (values == MISSING_CATEGORY)
            values = values[keep]
        categories[feature.name] = sorted({*values.tolist(), MISSING_CATEGORY})
    return categories


def build_pipeline(
    contract: Contract, settings: TrainingSettings, categories: dict[str, list[str]] | None = None
) -> Pipeline:
    """An unfitted Pipeline: per-kind preprocessing (ColumnTransformer) then the family's estimator.

    ``categories`` (``learnable_categories``) fixes what each categorical feature's one-hot encoder
    learns; without it, every value seen in fitting."""
    features = model_features(contract)
    linear = settings.model.family in LINEAR_FAMILIES
    by_kind: dict[str, list[int]] = {NUMERIC: [], BOOLEAN: [], CATEGORICAL: []}
    for j, feature in enumerate(features):
        by_kind[feature.kind].append(j)

    # keep_empty_features: a column that is all null in training still exists at serving time.
    numeric_steps: list[tuple[str, object]] = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    ]
    if linear:
        numeric_steps.append(("scale", StandardScaler()))
    branches = {
        NUMERIC: Pipeline(numeric_steps),
        BOOLEAN: Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(strategy="constant", fill_value=MISSING_BOOLEAN, keep_empty_features=True),
                ),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        ),
        CATEGORICAL: Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(
                        missing_values=MISSING_TEXT, strategy="constant", fill_value=MISSING_CATEGORY
                    ),
                ),
                (
                    "onehot",
                    OneHotEncoder(
                        categories=(
                            "auto"
                            if categories is None
                            else [categories[features[j].name] for j in by_kind[CATEGORICAL]]
                        ),
                        handle_unknown="ignore",
                        sparse_output=False,
                    ),
                ),
            ]
        ),
    }
    transformers = [(kind, branches[kind], columns) for kind, columns in by_kind.items() if columns]
    columns = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("features", columns), ("model", make_estimator(contract.task, settings))])


def make_estimator(task: str, settings: TrainingSettings) -> object:
    family = settings.model.family
    params = settings.model.estimator_params()
    classification = task == "classification"
    if family == "logistic_regression":
        return LogisticRegression(**{"max_iter": 1000, **params})
    if family == "linear_regression":
        return LinearRegression(**params)
    if family == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(**{"n_jobs": -1, **params})
    if family == "hist_gradient_boosting":
        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(**params)
    raise ValueError(f"unknown model family {family!r}")
