"""`mlops validate`: the pipeline's validation offline, same JSON report; exit 0 valid, 1 invalid, 2 usage."""

from __future__ import annotations

import json

import pytest

from mlops.cli import main
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv


@pytest.fixture
def files(tmp_path):
    header, rows = breast_cancer_rows()
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps(breast_cancer_contract()))
    good = tmp_path / "good.csv"
    good.write_bytes(to_csv(header, rows[:100]))
    bad_rows = [list(r) for r in rows[:100]]
    bad_rows[7][0] = "@SUM(A1)"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv(header, bad_rows))
    return contract, good, bad


def test_valid_file_exits_0_and_prints_the_report(files, capsys):
    contract, good, _ = files
    assert main(["validate", "--contract", str(contract), str(good)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "valid" and report["rows"] == 100


def test_invalid_file_exits_1_with_the_issues(files, capsys):
    contract, _, bad = files
    assert main(["validate", "--contract", str(contract), str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {i["code"] for i in report["issues"]} >= {"FORMULA_INJECTION"}
    assert report["issues"][0]["row"] == 8


def test_drift_against_a_reference_profile(files, tmp_path, capsys):
    from chalicelib.validation import Contract, validate_stream

    contract, good, _ = files
    reference = tmp_path / "reference.json"
    with good.open("rb") as stream:
        reference.write_text(
            json.dumps(validate_stream(stream, Contract.from_json(contract.read_bytes())).profile)
        )
    assert main(["validate", "--contract", str(contract), "--reference", str(reference), str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["drift"]["verdict"] == "stable"


def test_a_file_too_small_to_judge_drift_is_valid_and_says_insufficient_data(files, tmp_path, capsys):
    from chalicelib.validation import Contract, validate_stream

    contract, good, _ = files
    reference = tmp_path / "reference.json"
    with good.open("rb") as stream:
        reference.write_text(
            json.dumps(validate_stream(stream, Contract.from_json(contract.read_bytes())).profile)
        )
    header, rows = breast_cancer_rows()
    small = tmp_path / "small.csv"
    small.write_bytes(to_csv(header, rows[200:260]))  # 60 rows: enough for the contract, not for drift
    assert main(["validate", "--contract", str(contract), "--reference", str(reference), str(small)]) == 0
    drift = json.loads(capsys.readouterr().out)["drift"]
    assert drift["verdict"] == "insufficient_data" and drift["drifted_features"] == []
    assert drift["reasons"] == ["60 rows, fewer than drift.min_values 100: too few to judge drift"]


@pytest.mark.parametrize("problem", ["missing file", "missing contract", "broken contract"])
def test_usage_errors_exit_2_with_a_message(files, tmp_path, capsys, problem):
    contract, good, _ = files
    if problem == "missing file":
        args = ["--contract", str(contract), str(tmp_path / "nope.csv")]
    elif problem == "missing contract":
        args = ["--contract", str(tmp_path / "nope.json"), str(good)]
    else:
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps({"dataset": "x"}))
        args = ["--contract", str(broken), str(good)]
    assert main(["validate", *args]) == 2
    err = capsys.readouterr().err
    assert "mlops validate:" in err and ("nope" in err or "columns: is required" in err)
