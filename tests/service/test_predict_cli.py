"""``mlops predict`` (issue 18, "friction"): every record of the file gets an answer, in the file's
order, named as the validation report names rows (data rows from 1, the header is row 0, the line
where the row starts, blank lines skipped); a record the API refuses is named with its problems and
the others are still scored. The API is faked here with the serving schema's own checks."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest

from chalicelib.serving.schema import InputSchema, InvalidInput
from chalicelib.validation import Contract, validate_stream
from mlops import models

SCHEMA = {
    "task": "regression",
    "features": [
        {"name": "x", "type": "float"},
        {"name": "flag", "type": "boolean"},
        {"name": "note", "type": "string"},
    ],
}
FILE = 'x,flag,note\n1.5,yes,a\n\n2.5,no,"two\nlines"\noops,true,c\n4,T,d\n'


class FakeApi:
    """The predict route as the API answers it: the whole request refused with its problems named
    (the first 20, and the count), or one prediction (here: ``x`` doubled) per record."""

    def __init__(self) -> None:
        self.schema = InputSchema(SCHEMA)
        self.requests = 0

    def __call__(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        if method == "GET":
            return {"champion": 1} if path == "/models/m" else {"input_schema": SCHEMA}
        self.requests += 1
        records = body["records"]
        try:
            self.schema.encode_records(records)
        except InvalidInput as exc:
            raise models.ApiError(400, str(exc), {"Message": str(exc), **exc.details()}) from None
        return {"version": 1, "predictions": [{"prediction": 2 * r["x"]} for r in records]}


@pytest.fixture
def api(monkeypatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(models, "call", fake)
    return fake


def _predict(path: str, *extra: str) -> int:
    return models.run_predict(argparse.Namespace(model="m", file=path, version=None, json="--json" in extra))


def test_rows_are_named_as_validation_names_them_and_a_refused_row_does_not_hide_the_others(
    api, tmp_path, capsys
):
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(FILE)
    assert _predict(str(csv_file)) == 1  # one row refused
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "m v1: 3 prediction(s), 1 record(s) refused"
    assert [line.split()[:5] for line in lines[1:]] == [
        ["row", "1", "(line", "2)", "3.0"],
        ["row", "2", "(line", "4)", "5.0"],
        ["row", "3", "(line", "6)", "refused:"],
        ["row", "4", "(line", "7)", "8.0"],
    ]
    assert "field 'x'" in lines[3]
    # The validation report names the same row the same way.
    contract = Contract.parse(
        {
            "dataset": "d",
            "target": "y",
            "task": "regression",
            "format": {"allow_multiline_fields": True},
            "columns": [
                {"name": "x", "type": "float", "classification": "public"},
                {"name": "flag", "type": "boolean", "classification": "public"},
                {"name": "note", "type": "string", "classification": "public"},
                {"name": "y", "type": "float", "classification": "public"},
            ],
        }
    )
    with_target = 'x,flag,note,y\n1.5,yes,a,1\n\n2.5,no,"two\nlines",1\noops,true,c,1\n4,T,d,1\n'
    report = validate_stream(io.BytesIO(with_target.encode()), contract).report
    assert [(i["code"], i["row"], i["line"]) for i in report["issues"]] == [("INVALID_FLOAT", 3, 6)]


def test_every_row_of_a_large_file_gets_its_answer_in_order(api, tmp_path, capsys):
    """More rows than a request takes, and more bad rows than one 400 names (20)."""
    n = 1234
    bad = {i for i in range(1, n + 1) if i % 37 == 0 or 500 <= i < 530}
    body = "".join(f"{'bad' if i in bad else i},no,r{i}\n" for i in range(1, n + 1))
    csv_file = tmp_path / "many.csv"
    csv_file.write_text("x,flag,note\n" + body)
    assert _predict(str(csv_file), "--json") == 1
    answers = json.loads(capsys.readouterr().out)["predictions"]
    assert [a["row"] for a in answers] == list(range(1, n + 1))
    assert [a["line"] for a in answers] == list(range(2, n + 2))
    assert {a["row"] for a in answers if "problems" in a} == bad
    assert all(a["prediction"] == 2.0 * a["row"] for a in answers if a["row"] not in bad)
    assert all(a["problems"][0]["field"] == "x" for a in answers if a["row"] in bad)


def test_json_records_are_named_by_their_index_in_the_file(api, tmp_path, capsys):
    json_file = tmp_path / "records.json"
    records = [{"x": 1.0, "flag": True, "note": "a"}, {"x": "no", "flag": True, "note": "b"}]
    json_file.write_text(json.dumps({"records": records}))
    assert _predict(str(json_file)) == 1
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[:2] for line in lines] == [["records[0]", "2.0"], ["records[1]", "refused:"]]


def test_a_file_every_row_of_which_is_fine_exits_0(api, tmp_path, capsys):
    csv_file = tmp_path / "fine.csv"
    csv_file.write_text("x,flag,note\n1,Y,a\n2,0,b\n")
    assert _predict(str(csv_file)) == 0
    assert capsys.readouterr().out.splitlines()[0] == "m v1: 2 prediction(s)"
