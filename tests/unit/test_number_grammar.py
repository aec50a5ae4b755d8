"""One number grammar (issue 13): the validator, the training job's table and the serving schema read
a number written as text alike: the same strings accepted, the same values, the same strings refused.
Python's int() and float() (and numpy, which uses them) accept more: '1_00', Arabic-Indic and
fullwidth digits, any Unicode space around."""

from __future__ import annotations

import csv
import io
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chalicelib.serving.schema import InputSchema, InvalidInput
from chalicelib.validation import Contract, numbers, validate_stream
from chalicelib.validation.numbers import NOT_A_NUMBER, NOT_FINITE, TOO_LARGE, read_number
from training.table import load_table

ACCEPTED = [
    ("integer", "42", 42),
    ("integer", "-7", -7),
    ("integer", "+3", 3),
    ("integer", "007", 7),
    ("integer", " 3 ", 3),
    ("integer", "\t3", 3),
    ("integer", "-0", 0),
    ("integer", "12345678901234567890", 12345678901234567890),
    ("integer", "0" * 5000 + "1", 1),  # leading zeros never reach int()'s 4,300-digit limit
    ("integer", "9" * 308, int("9" * 308)),
    ("float", "3.5", 3.5),
    ("float", "-1e-3", -0.001),
    ("float", "7", 7.0),
    ("float", ".5", 0.5),
    ("float", "5.", 5.0),
    ("float", "1E+05", 1e5),
    ("float", "007.50", 7.5),
    ("float", " -2.5\t", -2.5),
    ("float", "1e-400", 0.0),
    ("float", "12345678901234567890", 12345678901234567890.0),
]
REJECTED = [
    ("integer", "3.0", NOT_A_NUMBER),
    ("integer", "1e3", NOT_A_NUMBER),
    ("integer", "1_000", NOT_A_NUMBER),
    ("integer", "1,000", NOT_A_NUMBER),
    ("integer", "1 000", NOT_A_NUMBER),
    ("integer", "1'000", NOT_A_NUMBER),
    ("integer", "0x10", NOT_A_NUMBER),
    ("integer", "\u0664\u0662", NOT_A_NUMBER),  # Arabic-Indic 42
    ("integer", "\uff13", NOT_A_NUMBER),  # fullwidth 3
    ("integer", "\u00a03", NOT_A_NUMBER),  # a no-break space before it
    ("integer", "3\n", NOT_A_NUMBER),
    ("integer", "", NOT_A_NUMBER),
    ("integer", "+-3", NOT_A_NUMBER),
    ("integer", "nan", NOT_FINITE),
    ("integer", "-Infinity", NOT_FINITE),
    ("integer", "9" * 309, TOO_LARGE),
    ("integer", "-1" + "0" * 400, TOO_LARGE),
    ("integer", "1" + "0" * 5000, TOO_LARGE),
    ("float", "nan", NOT_FINITE),
    ("float", "-NaN", NOT_FINITE),
    ("float", "inf", NOT_FINITE),
    ("float", "+Infinity", NOT_FINITE),
    ("float", "1e400", NOT_FINITE),
    ("float", "1_0.5", NOT_A_NUMBER),
    ("float", "1.5.2", NOT_A_NUMBER),
    ("float", "12,5", NOT_A_NUMBER),
    ("float", ".", NOT_A_NUMBER),
    ("float", "e5", NOT_A_NUMBER),
    ("float", "1e", NOT_A_NUMBER),
    ("float", "0x1p3", NOT_A_NUMBER),
    ("float", "\uff11.\uff15", NOT_A_NUMBER),  # fullwidth 1.5
    ("float", "\u0967.\u0966", NOT_A_NUMBER),  # Devanagari 1.0
    ("float", "2.5\u2003", NOT_A_NUMBER),  # an em space after it
    ("float", "nan(1)", NOT_A_NUMBER),
]


@pytest.mark.parametrize(("kind", "text", "value"), ACCEPTED)
def test_the_grammar_accepts_ascii_numbers(kind, text, value):
    reading = read_number(text, kind)
    assert reading.problem is None and reading.value == value
    assert type(reading.value) is (int if kind == "integer" else float)


@pytest.mark.parametrize(("kind", "text", "problem"), REJECTED)
def test_the_grammar_refuses_what_csv_consumers_refuse(kind, text, problem):
    assert read_number(text, kind) == (None, problem)


# --- the three readers agree -----------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=24)
SIGNS = st.sampled_from(["", "", "+", "-", "--", "+-"])
SPACES = st.sampled_from(["", "", "", " ", "\t", "  ", "\u00a0", "\u2007", "\u3000", "\x0b", "\x1c"])
FOREIGN_DIGITS = {"0": "\u0660", "1": "\u0661", "3": "\uff13", "5": "\u0967", "7": "\U0001d7d5"}


@st.composite
def numberish(draw) -> str:
    """Strings near the grammar's edge: signs, spaces, fractions, exponents, leading zeros, long
    digit runs, and the decorations Python accepts and CSV consumers do not."""
    mantissa = draw(DIGITS)
    if draw(st.booleans()):
        mantissa += draw(st.sampled_from([".", "." + draw(DIGITS)]))
    elif draw(st.integers(0, 9)) == 0:
        mantissa = "." + draw(DIGITS)
    if draw(st.integers(0, 3)) == 0:
        mantissa += draw(st.sampled_from("eE")) + draw(SIGNS) + draw(st.text("0123456789", max_size=4))
    if draw(st.integers(0, 9)) == 0:
        mantissa = draw(st.text("0123456789", min_size=300, max_size=420))
    decoration = draw(st.integers(0, 7))
    if decoration == 0 and len(mantissa) > 1:
        cut = draw(st.integers(1, len(mantissa) - 1))
        mantissa = mantissa[:cut] + draw(st.sampled_from(["_", ",", " ", "'"])) + mantissa[cut:]
    elif decoration == 1:
        mantissa = "".join(FOREIGN_DIGITS.get(ch, ch) for ch in mantissa)
    return draw(SPACES) + draw(SIGNS) + mantissa + draw(SPACES)


SPECIAL = st.sampled_from(
    ["nan", "NaN", "-nan", "inf", "-inf", "+Infinity", "INFINITY", "infinit", "1e400", "-1e999", "0x10", "."]
)
CELLS = st.one_of(numberish(), SPECIAL, st.text(max_size=12)).filter(
    lambda s: s != "" and not any(ch in s for ch in "\r\n\x00")
)
KINDS = st.sampled_from(["integer", "float"])


def _contract(kind: str, **column) -> Contract:
    return Contract.parse(
        {
            "dataset": "numbers",
            "target": "y",
            "task": "classification",
            "columns": [
                {"name": "x", "type": kind, "classification": "public", **column},
                {"name": "y", "type": "integer", "classification": "public"},
            ],
        }
    )


def _csv(cells: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["x", "y"])
    writer.writerows([cell, "1"] for cell in cells)
    return out.getvalue().encode()


def validator_reads(cell: str, kind: str) -> tuple[float | None, str | None]:
    """The value the validator took (from the column's statistics) or the code it gave the cell."""
    report = validate_stream(io.BytesIO(_csv([cell])), _contract(kind)).report
    issues = [i["code"] for i in report["issues"] if i["column"] == "x"]
    assert len(issues) <= 1 and not [i for i in report["issues"] if i["column"] != "x"], report["issues"]
    if issues:
        return None, issues[0]
    stats = report["column_statistics"]["x"]
    assert stats["min"] == stats["max"]
    return stats["min"], None


def training_reads(cell: str, kind: str) -> float | None:
    try:
        return float(load_table(_csv([cell]), _contract(kind))["x"][0])
    except ValueError:
        return None


def serving_reads(cell: str, kind: str) -> float | None:
    schema = InputSchema({"task": "regression", "features": [{"name": "x", "type": kind}]})
    try:
        return float(schema.encode_text(["x"], [[cell]])["x"][0, 0])
    except InvalidInput:
        return None


CODE = {"integer": "INVALID_INTEGER", "float": "INVALID_FLOAT"}


@given(cell=CELLS, kind=KINDS)
@example(cell="1_00", kind="integer")
@example(cell="\u0664\u0662", kind="float")
@example(cell="\uff13", kind="integer")
@example(cell="12345678901234567890", kind="integer")
@example(cell="9" * 400, kind="integer")
@example(cell=" 3\t", kind="integer")
@example(cell="nan", kind="integer")
def test_validator_training_and_serving_read_every_string_alike(cell, kind):
    value, problem = read_number(cell, kind)
    expected = None if value is None else float(value)
    taken, code = validator_reads(cell, kind)
    assert taken == expected
    if problem is not None:
        assert (
            code
            == {NOT_A_NUMBER: CODE[kind], NOT_FINITE: "NON_FINITE_NUMBER", TOO_LARGE: "OUT_OF_RANGE"}[problem]
        )
    assert training_reads(cell, kind) == expected
    assert serving_reads(cell, kind) == expected


@given(cells=st.lists(CELLS, min_size=1, max_size=40), kind=KINDS)
def test_a_chunk_of_mixed_cells_is_judged_cell_by_cell(cells, kind):
    """Clean chunks take numpy's path, the others the grammar's: every cell ends where the grammar says."""
    readings = [read_number(cell, kind) for cell in cells]
    report = validate_stream(io.BytesIO(_csv(cells)), _contract(kind)).report
    by_code = {i["code"]: i for i in report["issues"] if i["column"] == "x"}
    codes = {NOT_A_NUMBER: CODE[kind], NOT_FINITE: "NON_FINITE_NUMBER", TOO_LARGE: "OUT_OF_RANGE"}
    for problem, code in codes.items():
        rows = [n for n, r in enumerate(readings, start=1) if r.problem == problem]
        if rows:
            assert (by_code[code]["row"], by_code[code]["count"]) == (rows[0], len(rows))
        else:
            assert code not in by_code
    values = [float(r.value) for r in readings if r.value is not None]
    stats = report["column_statistics"].get("x", {})
    if values and "min" in stats:
        assert (stats["min"], stats["max"]) == (min(values), max(values))


@given(
    value=st.one_of(st.integers(-(2**80), 2**80), st.floats(allow_nan=False, allow_infinity=False)),
    kind=KINDS,
)
def test_a_number_written_for_a_file_reads_back_the_same(value, kind):
    as_double = float(value)
    if kind == "integer" and not as_double.is_integer():
        kind = "float"
    text = numbers.write_number(as_double, kind)
    assert read_number(text, kind).value == as_double


# --- exact comparisons ------------------------------------------------------------------------------


@pytest.mark.parametrize("clean", [True, False])
def test_integer_bounds_are_compared_exactly_in_the_validator(clean):
    c = _contract("integer", min=float(-(2**53)), max=float(2**53), nullable=True)
    cells = [str(2**53 + 1), str(-(2**53) - 1), str(2**53)] + ([] if clean else [""])
    report = validate_stream(io.BytesIO(_csv(cells)), c).report
    (issue,) = report["issues"]
    assert (issue["code"], issue["row"], issue["count"]) == ("OUT_OF_RANGE", 1, 2)


def test_serving_compares_big_json_integers_exactly_and_refuses_ones_beyond_a_double():
    schema = InputSchema(
        {"task": "regression", "features": [{"name": "x", "type": "integer", "max": float(2**53)}]}
    )
    assert schema.encode_records([{"x": 2**53}])["x"][0, 0] == 2.0**53
    for value in (2**53 + 1, 10**400):
        with pytest.raises(InvalidInput) as refused:
            schema.encode_records([{"x": value}])
        assert refused.value.problems[0].field == "x"
    with pytest.raises(InvalidInput):
        schema.encode_text(["x"], [[str(2**53 + 1)]])


def test_serving_and_training_match_header_names_as_validation_does():
    schema = InputSchema({"task": "regression", "features": [{"name": "x", "type": "float"}]})
    assert schema.encode_text([" x "], [["2.5"]])["x"][0, 0] == 2.5
    table = load_table(b" x ,y \n2.5,1\n", _contract("float"))
    assert table["x"][0] == 2.5 and table["y"][0] == 1.0


def test_non_finite_values_in_an_integer_column_are_named_as_such():
    report = validate_stream(io.BytesIO(_csv(["1", "nan", "inf"])), _contract("integer")).report
    assert [(i["code"], i["row"], i["count"]) for i in report["issues"]] == [("NON_FINITE_NUMBER", 2, 2)]
    assert math.isclose(report["column_statistics"]["x"]["mean"], 1.0)


def test_holdout_files_write_integer_features_as_the_grammar_reads_them():
    """The evaluator scores holdout.csv through the serving schema: integers must not come back as `3.0`."""
    import json

    from chalicelib.training.settings import TrainingSettings
    from training.main import build_candidate

    c = Contract.parse(
        {
            "dataset": "numbers",
            "target": "y",
            "task": "classification",
            "columns": [
                {"name": "count", "type": "integer", "classification": "public"},
                {"name": "level", "type": "float", "classification": "public"},
                {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
            ],
        }
    )
    rows = [[str(i % 9), f"{(i * 7) % 13}.25", str(int(i % 9 > 4))] for i in range(300)]
    lineage = {
        "run_id": "r",
        "dataset": "numbers",
        "data_hash": "0" * 64,
        "data_objects": [],
        "parameters": {},
    }
    artifacts, _ = build_candidate(
        load_table(_csv_rows(["count", "level", "y"], rows), c), c, TrainingSettings.from_contract(c), lineage
    )
    header, *holdout = list(csv.reader(io.StringIO(artifacts["holdout.csv"].decode())))
    assert holdout and all("." not in row[header.index("count")] for row in holdout)
    schema = InputSchema(json.loads(artifacts["input_schema.json"]))
    feed = schema.encode_text(header, holdout)
    assert feed["count"].shape == (len(holdout), 1)


def _csv_rows(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode()
