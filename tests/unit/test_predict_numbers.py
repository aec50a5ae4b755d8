"""A predict feature the model's arithmetic cannot hold is a 400 naming the record and the field,
never a 200 carrying NaN (invalid JSON) nor a 5xx (issue 14, What failed 6: "10**400 as a predict
feature"). Values beyond a double are refused by the schema; this is about finite doubles, like
1e308, that overflow inside the model (a logistic regression scales and sums them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.serving import predict
from chalicelib.serving.model import OnnxModel
from chalicelib.serving.schema import InvalidInput
from tests.support import built, holdout_records


def _unbounded(model: str) -> OnnxModel:
    """The model with its contract's bounds left out (a contract need not give any)."""
    artifacts, _ = built(model)
    schema = json.loads(artifacts["input_schema.json"])
    for feature in schema["features"]:
        feature.pop("min", None)
        feature.pop("max", None)
    return OnnxModel(artifacts["model.onnx"], schema)


def _predictor(session: OnnxModel) -> predict.Predictor:
    predictor = predict.Predictor(registry=None, artifacts=None, ttl_s=1.0)  # type: ignore[arg-type]
    predictor.session = lambda model, version: session  # type: ignore[method-assign]
    predictor.check_servable = lambda model, version: None  # type: ignore[method-assign]
    return predictor


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_a_feature_that_overflows_the_model_is_a_400_naming_record_and_field(value):
    session = _unbounded("logistic")
    records: list[dict[str, Any]] = holdout_records("logistic", n=3)
    # Huge values of both signs: the weighted sum meets inf - inf, and the score is NaN.
    records[1] = {name: (1e307 if i % 2 else -1e307) for i, name in enumerate(records[1])}
    records[1]["mean_area"] = value
    with pytest.raises(InvalidInput) as refused:
        _predictor(session).predict("m", records, version=1)
    (problem,) = refused.value.problems
    assert (problem.record, problem.field) == (1, "mean_area") and "overflows" in problem.problem


def test_records_within_what_the_model_holds_are_scored_as_before():
    session = _unbounded("logistic")
    records = holdout_records("logistic", n=3)
    answer = _predictor(session).predict("m", records, version=1)
    assert answer["version"] == 1 and len(answer["predictions"]) == 3
    assert json.dumps(answer, allow_nan=False)
