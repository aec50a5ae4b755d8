"""JSON ``/predict`` takes for a boolean feature the spellings a CSV upload may use (issue 18,
"friction"): every string the validator accepts in a boolean column, JSON accepts as the same
value; any other string is refused naming the record and the field (a 400, never a 5xx)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chalicelib import errors
from chalicelib.serving.schema import InputSchema, InvalidInput
from chalicelib.validation import Contract, validate_stream
from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE

SCHEMA = InputSchema({"task": "regression", "features": [{"name": "b", "type": "boolean"}]})
CONTRACT = Contract.parse(
    {
        "dataset": "flags",
        "target": "y",
        "task": "classification",
        "columns": [
            {"name": "b", "type": "boolean", "classification": "public"},
            {"name": "y", "type": "integer", "classification": "public"},
        ],
    }
)


def validator_reads(cell: str) -> bool | None:
    """The truth the validator took the cell for, or None if it refused it (any issue on ``b``)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["b", "y"], [cell, "1"]])
    report = validate_stream(io.BytesIO(out.getvalue().encode()), CONTRACT).report
    if [i for i in report["issues"] if i["column"] == "b"]:
        return None
    top = {entry["value"]: entry["count"] for entry in report["column_statistics"]["b"]["top"]}
    assert sum(top.values()) == 1, top
    return next(iter(top)) == "true"


def json_reads(value: object) -> bool | None:
    """The truth JSON /predict took the value for, or None if it refused it, naming the field."""
    try:
        feed = SCHEMA.encode_records([{"b": value}])
    except InvalidInput as exc:
        assert isinstance(exc, errors.InvalidInput)  # the API answers it 400 with the problems
        assert [(p.record, p.field) for p in exc.problems] == [(0, "b")]
        return None
    return {1.0: True, 0.0: False}[float(feed["b"][0, 0])]


SPELLINGS = sorted(BOOLEAN_TRUE | BOOLEAN_FALSE)


@st.composite
def spelled(draw) -> str:
    """A contract spelling in any case, with spaces or tabs around it or not."""
    word = draw(st.sampled_from(SPELLINGS))
    cased = "".join(ch.upper() if draw(st.booleans()) else ch for ch in word)
    return draw(st.sampled_from(["", " ", "\t", "  "])) + cased + draw(st.sampled_from(["", " ", "\t"]))


@pytest.mark.parametrize("word", SPELLINGS)
def test_each_contract_spelling_is_accepted_by_json_as_by_the_validator(word):
    truth = word in BOOLEAN_TRUE
    assert validator_reads(word) is truth
    assert json_reads(word) is truth
    assert json_reads(word.upper()) is truth


@given(text=spelled())
def test_every_spelling_the_csv_path_accepts_json_accepts_with_the_same_value(text):
    assert validator_reads(text) is not None
    assert json_reads(text) == validator_reads(text)


@given(text=st.text(max_size=8).filter(lambda s: s.strip() != "" and not any(c in s for c in "\r\n\x00")))
@example(text="maybe")
@example(text="truee")
@example(text="oui")
@example(text="2")
@example(text="\u00a0yes")  # a no-break space around it: both readers strip it alike
def test_any_other_string_is_refused_by_json_naming_the_field_as_the_validator_refuses_it(text):
    assert json_reads(text) == validator_reads(text)


@pytest.mark.parametrize("value", [1, 0, 1.0, None, [], {}, ""])
def test_values_that_are_not_booleans_or_spellings_stay_refused(value):
    assert json_reads(value) is None
