"""The fast paths of /predict give what the exact paths give (issue 19): a few all-number records
checked value by value in Python, many with numpy, and the exact record-by-record path must agree on
every feed and on every refusal (which the exact path then names)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.serving import schema as schema_module
from chalicelib.serving.schema import InputSchema, InvalidInput

SCHEMA = {
    "task": "classification",
    "classes": [0, 1],
    "features": [
        {"name": "a", "type": "float", "min": -10.0, "max": 10.0},
        {"name": "b", "type": "integer", "min": 0.0},
        {"name": "c", "type": "float"},
    ],
}

anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-12, max_value=12),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([None, True, False, "1", [], {}, 2.0**53, -(2.0**53), 2**53, 2**53 - 1, 0.5, -0.0]),
)
valid = {  # what each feature takes: most values are clean, so most batches reach the fast path
    "a": st.one_of(st.floats(min_value=-10, max_value=10), st.integers(min_value=-10, max_value=10)),
    "b": st.one_of(st.integers(min_value=0, max_value=2**53 - 1), st.integers(0, 99).map(float)),
    "c": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-(2**53) + 1, max_value=2**53 - 1),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    ),
}
records = st.one_of(
    *[st.fixed_dictionaries({name: s for name, s in valid.items()})] * 3,
    st.fixed_dictionaries({name: st.one_of(*[s] * 4, anything) for name, s in valid.items()}),
    st.fixed_dictionaries({name: st.one_of(*[s] * 4, anything) for name, s in valid.items()}).map(
        lambda record: {**record, "d": 1.0}
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), anything, max_size=4),
    st.sampled_from([None, [], "abc", 1]),
)


def _exact(schema: InputSchema, batch: list[Any]) -> Any:
    """The exact path alone (what the fast paths fall back to)."""
    exact = InputSchema(SCHEMA)
    exact._all_numbers = False
    return _outcome(exact, batch)


def _outcome(schema: InputSchema, batch: list[Any]) -> Any:
    try:
        feed = schema.encode_records(batch)
    except InvalidInput as refused:
        return ("refused", [p.to_dict() for p in refused.problems], refused.count)
    return ("fed", {name: (array.dtype.str, array.shape, array.tolist()) for name, array in feed.items()})


@settings(max_examples=400, deadline=None)
@given(st.lists(records, min_size=1, max_size=schema_module.FEW_RECORDS))
def test_a_few_records_get_the_exact_paths_feed_or_refusal(batch):
    assert _outcome(InputSchema(SCHEMA), batch) == _exact(InputSchema(SCHEMA), batch)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, min_size=schema_module.FEW_RECORDS + 1, max_size=40))
def test_many_records_get_the_exact_paths_feed_or_refusal(batch):
    assert _outcome(InputSchema(SCHEMA), batch) == _exact(InputSchema(SCHEMA), batch)


def test_a_clean_single_record_is_fed_as_one_double_per_feature():
    feed = InputSchema(SCHEMA).encode_records([{"a": 1.5, "b": 2, "c": -3e10}])
    assert {name: array.shape for name, array in feed.items()} == {"a": (1, 1), "b": (1, 1), "c": (1, 1)}
    assert [feed[n][0, 0] for n in "abc"] == [1.5, 2.0, -3e10]
    assert all(array.dtype == np.float64 for array in feed.values())


EDGES = [
    0.5, 1.5, -0.5, 10.0, 10.5, -10.5, -0.0, 2**53 - 1, 2**53, -(2**53), 2.0**53, -(2.0**53), 1e308,
    math.nan, math.inf, -math.inf, None, True, False, "1", [], {},
]  # fmt: skip


@pytest.mark.parametrize("n", [1, schema_module.FEW_RECORDS, schema_module.FEW_RECORDS + 1])
@pytest.mark.parametrize("name", ["a", "b", "c"])
@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_one_edge_value_among_clean_records_gets_the_exact_paths_answer(value, name, n):
    batch: list[Any] = [{"a": 1.0, "b": 2, "c": 3.5} for _ in range(n)]
    batch[-1] = {**batch[-1], name: value}
    assert _outcome(InputSchema(SCHEMA), batch) == _exact(InputSchema(SCHEMA), batch)


@pytest.mark.parametrize("n", [1, schema_module.FEW_RECORDS + 1])
@pytest.mark.parametrize(
    "odd",
    [
        {"a": 1.0, "b": 2},
        {"a": 1.0, "b": 2, "c": 3.5, "d": 1.0},
        {"a": 1.0, "b": 2, "d": 1.0},
        None,
        [],
        "abc",
    ],
)
def test_a_record_with_a_missing_or_unknown_feature_gets_the_exact_paths_answer(odd, n):
    batch: list[Any] = [{"a": 1.0, "b": 2, "c": 3.5} for _ in range(n - 1)] + [odd]
    outcome = _outcome(InputSchema(SCHEMA), batch)
    assert outcome[0] == "refused" and outcome == _exact(InputSchema(SCHEMA), batch)
