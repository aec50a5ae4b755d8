"""Fitted pipeline -> ONNX, with one named input per feature, computed in double precision.

Why double, and why own converters: scikit-learn computes in float64 and HistGradientBoosting
compares float64 features with float64 thresholds. Fed float32, an ONNX copy moved HGB
probabilities by up to 0.1 (a value near a threshold takes the other branch), and regression
outputs of a few hundred lose ~1e-5 to float32 rounding alone. So numeric inputs are
DoubleTensorType and the whole graph stays in double. skl2onnx 1.20 cannot do that for every step:

* SimpleImputer on numbers becomes an ``Imputer`` node, which onnxruntime runs only in float32
  (and skl2onnx stores the medians as float32): replaced by ``Where(IsNaN(x), median, x)``.
* OneHotEncoder outputs float32: replaced by ``Equal(x, categories)`` cast to double, which is exact.
* LogisticRegression on text-only features: skl2onnx declares float probabilities while it
  computes them in double; the declared type is corrected.
* Tree ensembles become ``TreeEnsembleClassifier/Regressor`` (ai.onnx.ml 1-3) whose outputs are
  always float32 and whose thresholds skl2onnx writes as float32: replaced by the ai.onnx.ml 5
  ``TreeEnsemble`` operator, double thresholds and leaf values, followed by the same arithmetic
  scikit-learn does (average for forests; baseline + sum, then sigmoid/softmax for HGB).

A random forest casts features to float32 before comparing them with its (float64) thresholds;
in double, each threshold is moved to the value where a double input switches branch exactly as
its float32 cast would (skl2onnx's ``sklearn_threshold``), so forests keep parity as well.

The converters are passed per call (``custom_conversion_functions``), not registered globally, so
converting another model in the same process is not affected. Regression output is renamed
``prediction``; classifiers output ``label`` and ``probabilities`` (no ZipMap).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from skl2onnx.common.tree_ensemble import sklearn_threshold
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from .pipeline import CATEGORICAL, Feature

MAIN_OPSET = 21
ML_OPSET = 5  # TreeEnsemble (double throughout) appeared in ai.onnx.ml 5; onnxruntime >= 1.18 runs it
# skl2onnx 1.20 refuses to emit ai.onnx.ml 5, so nodes are declared at 3 and the import raised after.
_SKL2ONNX_ML_OPSET = 3
OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_PREDICTION = "label", "probabilities", "prediction"

_LEQ, _SUM = 0, 1  # TreeEnsemble enums: nodes_modes BRANCH_LEQ, aggregate_function SUM


def initial_types(features: list[Feature]) -> list[tuple[str, Any]]:
    return [
        (f.name, StringTensorType([None, 1]) if f.kind == CATEGORICAL else DoubleTensorType([None, 1]))
        for f in features
    ]


def to_onnx_model(
    pipeline: Any, features: list[Feature], classification: bool, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    estimator = pipeline.steps[-1][1]
    expected = output_names(classification)
    clash = sorted({f.name for f in features} & set(expected))
    if clash:
        # ONNX names inputs and outputs in one namespace.
        raise ValueError(f"feature column(s) {', '.join(clash)} clash with the model's output names")
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types(features),
        target_opset={"": MAIN_OPSET, "ai.onnx.ml": _SKL2ONNX_ML_OPSET},
        options={id(estimator): {"zipmap": False}} if classification else None,
        custom_conversion_functions=_CONVERTERS,
        custom_shape_calculators=_SHAPES,
    )
    _raise_ml_opset(model)
    outputs = [o.name for o in model.graph.output]
    if len(outputs) != len(expected):
        raise RuntimeError(f"unexpected ONNX outputs {outputs}, expected {expected}")
    for old, new in zip(outputs, expected, strict=True):
        _rename_output(model, old, new)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def _raise_ml_opset(model: onnx.ModelProto) -> None:
    """Import ai.onnx.ml 5, which TreeEnsemble needs; the other ml operators used (LabelEncoder in
    string imputation) keep their meaning there, which check_model and the parity check confirm."""
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = ML_OPSET
            return
    model.opset_import.append(onnx.helper.make_opsetid("ai.onnx.ml", ML_OPSET))


def output_names(classification: bool) -> list[str]:
    return [OUTPUT_LABEL, OUTPUT_PROBABILITIES] if classification else [OUTPUT_PREDICTION]


def _rename_output(model: onnx.ModelProto, old: str, new: str) -> None:
    if old == new:
        return
    taken = {name for node in model.graph.node for name in (*node.input, *node.output)}
    if new in taken | {i.name for i in model.graph.initializer}:
        raise RuntimeError(f"cannot name the output {new!r}: an intermediate tensor has that name")
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    for output in model.graph.output:
        if output.name == old:
            output.name = new


# --- small helpers on skl2onnx's scope and container -------------------------------------------


def _const(scope: Any, container: Any, name: str, array: np.ndarray) -> str:
    unique = scope.get_unique_variable_name(name)
    container.add_initializer(unique, *_tensor_args(array))
    return unique


def _tensor_args(array: np.ndarray) -> tuple[int, list[int], Any]:
    if array.dtype == object or array.dtype.kind in "US":
        return TensorProto.STRING, list(array.shape), [str(v).encode("utf-8") for v in array.ravel()]
    if array.dtype.kind in "iub":
        return TensorProto.INT64, list(array.shape), array.astype(np.int64).ravel().tolist()
    return TensorProto.DOUBLE, list(array.shape), array.astype(np.float64).ravel().tolist()


def _node(
    scope: Any, container: Any, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any
) -> str:
    out = output or scope.get_unique_variable_name(op_type.lower())
    domain = attrs.pop("op_domain", "")
    version = attrs.pop("op_version", None)
    container.add_node(
        op_type,
        inputs,
        [out],
        op_domain=domain,
        op_version=version,
        name=scope.get_unique_operator_name(op_type),
        **attrs,
    )
    return out


def _double_input(scope: Any, operator: Any, container: Any) -> str:
    """The operator's inputs as one double [N, C] tensor."""
    name = concatenate_variables(scope, operator.inputs, container)
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return str(name)
    return _node(scope, container, "Cast", [name], to=TensorProto.DOUBLE)


# --- SimpleImputer ---------------------------------------------------------------------------------


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    if isinstance(operator.inputs[0].type, StringTensorType):
        convert_sklearn_imputer(scope, operator, container)  # string imputation is exact already
        return
    imputer = operator.raw_operator
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise NotImplementedError(f"numeric SimpleImputer with missing_values={imputer.missing_values!r}")
    x = _double_input(scope, operator, container)
    fill = _const(scope, container, "fill", np.asarray(imputer.statistics_, dtype=np.float64).reshape(1, -1))
    isnan = _node(scope, container, "IsNaN", [x])
    _node(scope, container, "Where", [isnan, fill, x], operator.outputs[0].full_name)


def _imputer_shape(operator: Any) -> None:
    width = sum(v.type.shape[1] for v in operator.inputs)
    kind = StringTensorType if isinstance(operator.inputs[0].type, StringTensorType) else DoubleTensorType
    operator.outputs[0].type = kind([operator.inputs[0].get_first_dimension(), width])


# --- OneHotEncoder ---------------------------------------------------------------------------------


def _convert_one_hot(scope: Any, operator: Any, container: Any) -> None:
    encoder = operator.raw_operator
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        raise NotImplementedError("OneHotEncoder with drop or infrequent categories")
    strings = isinstance(operator.inputs[0].type, StringTensorType)
    x = (
        concatenate_variables(scope, operator.inputs, container)
        if strings
        else _double_input(scope, operator, container)
    )
    parts = []
    for j, categories in enumerate(encoder.categories_):
        index = _const(scope, container, "column", np.array([j], dtype=np.int64))
        column = _node(scope, container, "Gather", [x, index], axis=1)  # [N, 1]
        values = np.asarray(categories, dtype=object if strings else np.float64).reshape(1, -1)
        # Unknown values match no category: an all-zero row, as handle_unknown="ignore" gives.
        equal = _node(scope, container, "Equal", [column, _const(scope, container, "categories", values)])
        parts.append(_node(scope, container, "Cast", [equal], to=TensorProto.DOUBLE))
    if len(parts) == 1:
        _node(scope, container, "Identity", parts, operator.outputs[0].full_name)
    else:
        _node(scope, container, "Concat", parts, operator.outputs[0].full_name, axis=1)


def _one_hot_shape(operator: Any) -> None:
    width = sum(len(c) for c in operator.raw_operator.categories_)
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), width])


# --- tree ensembles ------------------------------------------------------------------------------


class _Ensemble:
    """The attributes of one ai.onnx.ml 5 TreeEnsemble node, filled tree by tree."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.features: list[int] = []
        self.splits: list[float] = []
        self.true_ids: list[int] = []
        self.true_leafs: list[int] = []
        self.false_ids: list[int] = []
        self.false_leafs: list[int] = []
        self.missing_true: list[int] = []
        self.leaf_targets: list[int] = []
        self.leaf_weights: list[float] = []

    def add_tree(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        missing_left: np.ndarray,
        is_leaf: np.ndarray,
        leaf_values: np.ndarray,
        target: int,
    ) -> None:
        """One tree in scikit-learn's layout (node 0 is the root; x <= threshold goes left)."""
        place: dict[int, int] = {}
        for i in range(len(is_leaf)):
            if is_leaf[i]:
                place[i] = len(self.leaf_weights)
                self.leaf_targets.append(target)
                self.leaf_weights.append(float(leaf_values[i]))
            else:
                place[i] = len(self.features)
                self.features.append(int(feature[i]))
                self.splits.append(float(threshold[i]))
                self.missing_true.append(int(bool(missing_left[i])))
                self.true_ids.append(-1)
                self.true_leafs.append(0)
                self.false_ids.append(-1)
                self.false_leafs.append(0)
        if is_leaf[0]:
            # A tree that is a single leaf: one node whose two branches both reach it (the spec's way).
            self.roots.append(len(self.features))
            self.features.append(0)
            self.splits.append(0.0)
            self.missing_true.append(0)
            self.true_ids.append(place[0])
            self.true_leafs.append(1)
            self.false_ids.append(place[0])
            self.false_leafs.append(1)
            return
        self.roots.append(place[0])
        for i in range(len(is_leaf)):
            if is_leaf[i]:
                continue
            k = place[i]
            self.true_ids[k], self.true_leafs[k] = place[int(left[i])], int(bool(is_leaf[int(left[i])]))
            self.false_ids[k], self.false_leafs[k] = place[int(right[i])], int(bool(is_leaf[int(right[i])]))

    def node(self, scope: Any, container: Any, x: str, n_targets: int, aggregate: int) -> str:
        return _node(
            scope,
            container,
            "TreeEnsemble",
            [x],
            op_domain="ai.onnx.ml",
            op_version=_SKL2ONNX_ML_OPSET,
            n_targets=n_targets,
            aggregate_function=aggregate,
            post_transform=0,
            tree_roots=self.roots,
            nodes_featureids=self.features,
            nodes_splits=numpy_helper.from_array(np.asarray(self.splits, dtype=np.float64), "nodes_splits"),
            nodes_modes=numpy_helper.from_array(
                np.full(len(self.features), _LEQ, dtype=np.uint8), "nodes_modes"
            ),
            nodes_truenodeids=self.true_ids,
            nodes_trueleafs=self.true_leafs,
            nodes_falsenodeids=self.false_ids,
            nodes_falseleafs=self.false_leafs,
            nodes_missing_value_tracks_true=self.missing_true,
            leaf_targetids=self.leaf_targets,
            leaf_weights=numpy_helper.from_array(
                np.asarray(self.leaf_weights, dtype=np.float64), "leaf_weights"
            ),
        )


def _forest(model: Any, classification: bool) -> tuple[_Ensemble, int]:
    """A random forest: per-tree class fractions (or values), averaged as scikit-learn does."""
    ensemble = _Ensemble()
    n_targets = len(model.classes_) if classification else 1
    for estimator in model.estimators_:
        tree = estimator.tree_
        is_leaf = tree.children_left == -1
        # The tree compares float32(x) with a float64 threshold; in double, move the threshold to
        # where x switches branch exactly as float32(x) does.
        thresholds = np.array(
            [
                sklearn_threshold(t, np.float64, "BRANCH_LEQ") if not leaf else 0.0
                for t, leaf in zip(tree.threshold, is_leaf, strict=True)
            ]
        )
        missing_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=bool))
        values = tree.value[:, 0, :]
        if classification:
            totals = values.sum(axis=1)
            values = values / np.where(totals == 0.0, 1.0, totals)[:, None]  # what predict_proba does
        for target in range(n_targets):
            ensemble.add_tree(
                tree.children_left,
                tree.children_right,
                tree.feature,
                thresholds,
                missing_left,
                is_leaf,
                values[:, target],
                target,
            )
    return ensemble, n_targets


def _boosting(model: Any) -> tuple[_Ensemble, int]:
    """HistGradientBoosting: the raw score of target k is baseline_k + the sum of its trees' leaves."""
    ensemble = _Ensemble()
    n_targets = model.n_trees_per_iteration_
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise NotImplementedError("HistGradientBoosting with native categorical splits")
            ensemble.add_tree(
                nodes["left"],
                nodes["right"],
                nodes["feature_idx"],
                nodes["num_threshold"],
                nodes["missing_go_to_left"],
                nodes["is_leaf"].astype(bool),
                nodes["value"],
                target,
            )
    return ensemble, n_targets


def _convert_trees(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    classification = hasattr(model, "classes_")
    x = _double_input(scope, operator, container)
    if isinstance(model, RandomForestClassifier | RandomForestRegressor):
        ensemble, n_targets = _forest(model, classification)
        # Sum, then divide, as the forest does (onnxruntime's AVERAGE divides by all trees of all targets).
        total = ensemble.node(scope, container, x, n_targets, _SUM)
        count = _const(scope, container, "n_estimators", np.array([[float(len(model.estimators_))]]))
        scores = _node(scope, container, "Div", [total, count])
        probabilities = scores
    else:
        loss = type(model._loss).__name__
        if not classification and loss != "HalfSquaredError":
            raise NotImplementedError(f"HistGradientBoostingRegressor with loss {loss}")
        ensemble, n_targets = _boosting(model)
        raw = ensemble.node(scope, container, x, n_targets, _SUM)
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, n_targets)
        scores = _node(scope, container, "Add", [raw, _const(scope, container, "baseline", baseline)])
        if classification and n_targets == 1:
            # HalfBinomialLoss.predict_proba: p1 = expit(raw), p0 = 1 - p1
            p1 = _node(scope, container, "Sigmoid", [scores])
            p0 = _node(scope, container, "Sub", [_const(scope, container, "one", np.ones((1, 1))), p1])
            probabilities = _node(scope, container, "Concat", [p0, p1], axis=1)
        elif classification:
            probabilities = _node(scope, container, "Softmax", [scores], axis=1)
    if not classification:
        _node(scope, container, "Identity", [scores], operator.outputs[0].full_name)
        return
    _node(scope, container, "Identity", [probabilities], operator.outputs[1].full_name)
    # predict() is classes_[argmax(predict_proba)]; ArgMax keeps the first maximum, like numpy.
    index = _node(scope, container, "ArgMax", [probabilities], axis=1, keepdims=0)
    classes = _const(scope, container, "classes", _label_array(model.classes_))
    _node(scope, container, "Gather", [classes, index], operator.outputs[0].full_name, axis=0)


def _label_array(classes: np.ndarray) -> np.ndarray:
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    return np.asarray([str(c) for c in classes], dtype=object)


def _tree_shape(operator: Any) -> None:
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    if hasattr(model, "classes_"):
        label = Int64TensorType if model.classes_.dtype.kind in "iub" else StringTensorType
        operator.outputs[0].type = label([n])
        operator.outputs[1].type = DoubleTensorType([n, len(model.classes_)])
    else:
        operator.outputs[0].type = DoubleTensorType([n, 1])


def _linear_classifier_shape(operator: Any) -> None:
    # skl2onnx keeps the probability type guessed while parsing, from the first step's input: float
    # when every feature is text, though the converter computes in double from the one-hot output.
    calculate_linear_classifier_output_shapes(operator)
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        operator.outputs[1].type = DoubleTensorType(operator.outputs[1].type.shape)


_TREES = (
    RandomForestClassifier,
    RandomForestRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
_CONVERTERS: dict[type, Callable[..., None]] = {
    SimpleImputer: _convert_imputer,
    OneHotEncoder: _convert_one_hot,
    **dict.fromkeys(_TREES, _convert_trees),
}
_SHAPES: dict[type, Callable[[Any], None]] = {
    SimpleImputer: _imputer_shape,
    OneHotEncoder: _one_hot_shape,
    LogisticRegression: _linear_classifier_shape,
    **dict.fromkeys(_TREES, _tree_shape),
}


def metadata_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
