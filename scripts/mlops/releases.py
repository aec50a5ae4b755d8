"""Releases for rollout rehearsals: model versions built by the training job's own code on the bundled
breast cancer table, good ones and ones bad in a known way (``make bench-rollout``, the demo).

Each release is what ``training.main.build_candidate`` makes (scikit-learn, the ONNX export, the parity
check): ``model.onnx``, ``input_schema.json`` and the manifest's fields. The bad ones are bad in ways
the offline gates on a holdout would not all see in production:

* ``segment``: a random forest trained with the labels of one segment (the largest third of
  ``mean_radius``) inverted: right elsewhere, badly wrong there;
* ``failing``: a good model whose input schema refuses a value range the champion takes (the top
  15% of ``mean_area``): those requests fail on it;
* ``slow``: a good model with an expensive dead-end computation spliced into its graph (a chain of
  1024 x 1024 matrix products whose result is multiplied by zero): the same answers, slower;
* ``collapse``: a logistic regression trained where 98% of the labels were set to one class: it
  predicts that class for (nearly) everyone.

Good ones: ``retrained`` (a logistic regression with other regularisation on a bootstrap resample),
``forest`` (a random forest) and ``boosted`` (gradient-boosted trees), each on the true labels.

Needs scikit-learn, skl2onnx and onnx (the development environment; never the Lambda package).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.validation import Contract

MODEL = "breast_cancer"
BAD = ("segment", "failing", "slow", "collapse")
GOOD = ("retrained", "forest", "boosted")
SEGMENT_FEATURE, FAILING_FEATURE = "mean_radius", "mean_area"


def table() -> tuple[list[str], list[list[str]]]:
    from mlops.datasets import breast_cancer_rows

    return breast_cancer_rows()


def contract(
    family: str = "logistic_regression",
    params: dict[str, Any] | None = None,
    rollout: dict[str, Any] | None = None,
) -> Contract:
    from mlops.datasets import breast_cancer_contract

    doc = breast_cancer_contract()
    doc["training"]["model"] = {"family": family, "params": params or {"C": 1.0, "max_iter": 1000}}
    if rollout is not None:
        doc["promotion"] = {"mode": "manual", "rollout": rollout}
    return Contract.parse(doc)


def _build(
    family: str, params: dict[str, Any], rows: list[list[str]], run_id: str
) -> tuple[dict[str, bytes], dict[str, Any]]:
    jobs = str(Path(__file__).resolve().parents[2] / "jobs")
    if jobs not in sys.path:  # the training job's package, as its image and the local launcher see it
        sys.path.append(jobs)
    from chalicelib.training.settings import TrainingSettings
    from mlops.datasets import to_csv
    from training.main import build_candidate
    from training.table import load_table

    header, _ = table()
    built_for = contract(family, params)
    training = TrainingSettings.from_contract(built_for)
    lineage = {"run_id": run_id, "dataset": MODEL, "data_hash": hashlib.sha256(run_id.encode()).hexdigest(),
               "data_objects": [], "parameters": training.to_dict()}  # fmt: skip
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the job's progress lines
        artifacts, fields = build_candidate(
            load_table([to_csv(header, rows)], built_for), built_for, training, lineage
        )
    if "model.onnx" not in artifacts:
        raise RuntimeError(f"{run_id}: parity failed, no model")
    return artifacts, fields


def _column(header: list[str], name: str) -> int:
    return header.index(name)


def _quantile(rows: list[list[str]], index: int, q: float) -> float:
    return float(np.quantile([float(r[index]) for r in rows], q))


def slow_graph(model_bytes: bytes, width: int = 1024, depth: int = 2, seed: int = 0) -> bytes:
    """The model with a dead-end chain of ``depth`` (1 x width) @ (width x width) products spliced in:
    its result times zero is added to the probabilities, so the answers are unchanged (to rounding)
    and onnxruntime cannot drop the work (it depends on the input)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    first = graph.input[0].name
    target = next(o for o in graph.output if "prob" in o.name)
    elem = target.type.tensor_type.elem_type
    np_type = np.float64 if elem == TensorProto.DOUBLE else np.float32
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((width, width)) / (2.0 * np.sqrt(width))).astype(np.float64)
    raw = target.name + "_before_slow"
    for node in graph.node:
        node.output[:] = [raw if o == target.name else o for o in node.output]
    nodes = [
        helper.make_node("Tile", [first, "slow_reps"], ["slow_h0"]),
        *(helper.make_node("MatMul", [f"slow_h{i}", "slow_w"], [f"slow_h{i + 1}"]) for i in range(depth)),
        helper.make_node("ReduceSum", [f"slow_h{depth}"], ["slow_sum"], keepdims=0),
        helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]),
        helper.make_node("Cast", ["slow_nothing"], ["slow_cast"], to=elem),
        helper.make_node("Add", [raw, "slow_cast"], [target.name]),
    ]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray([1, width], dtype=np.int64), "slow_reps"),
            numpy_helper.from_array(weights, "slow_w"),
            numpy_helper.from_array(np.asarray(0.0, dtype=np.float64), "slow_zero"),
        ]
    )
    graph.node.extend(nodes)
    del np_type
    return proto.SerializeToString()


def narrowed_schema(schema_bytes: bytes, feature: str, maximum: float) -> bytes:
    """The input schema with ``feature``'s maximum lowered: the version refuses values above it."""
    schema = json.loads(schema_bytes)
    for entry in schema["features"]:
        if entry["name"] == feature:
            entry["max"] = maximum
    return json.dumps(schema).encode()


def release(kind: str, seed: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """One release of ``kind`` (``BAD`` or ``GOOD``) for ``seed``."""
    header, rows = table()
    rng = np.random.default_rng(1000 + seed)
    target = _column(header, "diagnosis")
    run_id = f"{kind}-{seed}"
    if kind == "segment":
        cut = _quantile(rows, _column(header, SEGMENT_FEATURE), 2 / 3)
        flipped = [[*r[:target], str(1 - int(r[target])), *r[target + 1:]]
                   if float(r[_column(header, SEGMENT_FEATURE)]) > cut else r for r in rows]  # fmt: skip
        return _build(
            "random_forest", {"n_estimators": 40, "max_depth": 8, "random_state": seed}, flipped, run_id
        )
    if kind == "collapse":
        forced = [[*r[:target], "1" if rng.random() < 0.98 else r[target], *r[target + 1 :]] for r in rows]
        return _build("logistic_regression", {"C": 1.0, "max_iter": 1000}, forced, run_id)
    resample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
    if kind in ("retrained", "failing", "slow"):
        artifacts, fields = _build(
            "logistic_regression",
            {"C": float(rng.choice([0.3, 0.5, 2.0])), "max_iter": 1000},
            resample,
            run_id,
        )
        if kind == "failing":
            top = _quantile(rows, _column(header, FAILING_FEATURE), 0.85)
            artifacts["input_schema.json"] = narrowed_schema(
                artifacts["input_schema.json"], FAILING_FEATURE, top
            )
        if kind == "slow":
            artifacts["model.onnx"] = slow_graph(artifacts["model.onnx"], seed=seed)
        return artifacts, fields
    if kind == "forest":
        return _build(
            "random_forest", {"n_estimators": 60, "max_depth": 8, "random_state": seed}, resample, run_id
        )
    if kind == "boosted":
        return _build("hist_gradient_boosting", {"max_iter": 80, "random_state": seed}, resample, run_id)
    raise ValueError(kind)


def champion_release() -> tuple[dict[str, bytes], dict[str, Any]]:
    _, rows = table()
    return _build("logistic_regression", {"C": 1.0, "max_iter": 1000}, rows, "champion")


def stored(artifacts: dict[str, bytes], put: Any, bucket: str, run_id: str) -> dict[str, Any]:
    """Store a release's model and schema with ``put(bucket, key, data) -> version id``; what a
    version record keeps of them (``bucket``, ``artifacts``: key, version id, SHA-256, size), as a
    training run's manifest records them."""
    kept = {}
    for name in ("model.onnx", "input_schema.json"):
        key = f"models/{MODEL}/candidates/{run_id}/{name}"
        data = artifacts[name]
        kept[name] = {
            "key": key,
            "version_id": put(bucket, key, data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    return {"bucket": bucket, "artifacts": kept}
