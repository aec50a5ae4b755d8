"""`mlops validate`: the pipeline's validation offline, same JSON report; exit 0 valid, 1 invalid, 2 usage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.cli import main
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import any_bytes, contracts, uploads


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


def test_a_headerless_file_s_values_are_not_printed_as_column_names(files, capsys):
    """breast_cancer's measurements are confidential: a file without its header row gets the
    pipeline's report, which names no value of its first row."""
    contract, good, _ = files
    lines = good.read_bytes().split(b"\n", 1)[1]
    good.write_bytes(lines)
    first = lines.split(b"\n", 1)[0].decode().split(",")
    assert main(["validate", "--contract", str(contract), str(good)]) == 1
    out = capsys.readouterr().out
    assert {i["code"] for i in json.loads(out)["issues"]} == {"MISSING_COLUMN", "UNEXPECTED_COLUMN"}
    assert not any(f'"{value}"' in out or f"'{value}'" in out for value in first)


# --- any input: exit 0, 1 or 2, never a traceback (issue 13) ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "dataset": "readings",
    "task": "regression",
    "target": "temp_c",
    "columns": [
        {"name": "reading_id", "type": "integer", "classification": "internal"},
        {"name": "site", "type": "string", "classification": "public"},
        {"name": "temp_c", "type": "float", "classification": "public"},
    ],
}
# Contract files that are not contracts: each must be a usage error naming the file.
BROKEN_CONTRACTS = [
    b"",
    b"\xff\xfe{}",
    b"[" * 100_000,
    json.dumps(
        {**SMALL, "columns": [{**SMALL["columns"][1], "pattern": "a{99999999999}"}, *SMALL["columns"]]}
    ).encode(),
    json.dumps(
        {**SMALL, "columns": [{**SMALL["columns"][1], "pattern": "(" * 5000}, *SMALL["columns"]]}
    ).encode(),
]
BROKEN_REFERENCES = [
    b"[]",
    b'"profile"',
    b'{"columns": []}',
    b'{"columns": {"temp_c": 3}}',
    b"\xff",
    b"[" * 100_000,
]


def run_cli(*args: str) -> tuple[int, str, str]:
    """`mlops validate` in this process: exit status, stdout, stderr."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["validate", *args])
    return status, out.getvalue(), err.getvalue()


def check_outcome(status: int, out: str, err: str, contract_doc: dict | None) -> None:
    """0 or 1 with a well-formed report on stdout (0 exactly when valid), or 2 with one line on stderr."""
    from chalicelib.validation import Contract
    from tests.support import check_report

    assert status in (0, 1, 2), status
    assert "Traceback" not in err
    if status == 2:
        assert out == "" and err.startswith("mlops validate: ") and err.count("\n") == 1, err
        return
    assert err == ""
    report = json.loads(out)
    assert contract_doc is not None
    check_report(report, Contract.parse(contract_doc))
    assert (status == 0) == (report["status"] == "valid")


@pytest.mark.parametrize("contract_bytes", BROKEN_CONTRACTS, ids=range(len(BROKEN_CONTRACTS)))
def test_a_broken_contract_file_is_a_usage_error_naming_it(tmp_path, contract_bytes):
    (tmp_path / "c.json").write_bytes(contract_bytes)
    (tmp_path / "d.csv").write_bytes(b"reading_id,site,temp_c\n1,a,2.5\n")
    status, out, err = run_cli("--contract", str(tmp_path / "c.json"), str(tmp_path / "d.csv"))
    check_outcome(status, out, err, None)
    assert status == 2 and "c.json" in err


@pytest.mark.parametrize("reference_bytes", BROKEN_REFERENCES, ids=range(len(BROKEN_REFERENCES)))
def test_a_reference_that_is_not_a_profile_is_a_usage_error_naming_it(tmp_path, reference_bytes):
    (tmp_path / "c.json").write_text(json.dumps(SMALL))
    (tmp_path / "r.json").write_bytes(reference_bytes)
    (tmp_path / "d.csv").write_bytes(b"reading_id,site,temp_c\n1,a,2.5\n2,b,3.5\n")
    status, out, err = run_cli(
        "--contract",
        str(tmp_path / "c.json"),
        "--reference",
        str(tmp_path / "r.json"),
        str(tmp_path / "d.csv"),
    )
    check_outcome(status, out, err, None)
    assert status == 2 and "r.json" in err


@given(data=st.data(), doc=contracts(), with_reference=st.booleans())
def test_mlops_validate_answers_any_upload_with_a_report_and_exit_0_or_1(data, doc, with_reference):
    import tempfile

    upload = data.draw(st.one_of(uploads(doc), any_bytes()), label="upload")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "contract.json").write_text(json.dumps(doc))
        (folder / "upload.csv").write_bytes(upload)
        args = ["--contract", str(folder / "contract.json")]
        if with_reference:  # the upload's own profile when it has one: drift of a file against itself
            from chalicelib.validation import Contract, validate_stream

            profile = validate_stream(io.BytesIO(upload), Contract.parse(doc)).profile
            (folder / "reference.json").write_text(json.dumps(profile or {"rows": 0, "columns": {}}))
            args += ["--reference", str(folder / "reference.json")]
        status, out, err = run_cli(*args, str(folder / "upload.csv"))
    check_outcome(status, out, err, doc)
    assert status in (0, 1)


@pytest.mark.parametrize(
    "case",
    ["header with spaces", "utf-16", "big integer", "broken reference", "nested contract", "missing file"],
)
def test_the_installed_command_never_prints_a_traceback(tmp_path, case):
    """The same through a real process: what a user sees in a terminal."""
    import os
    import subprocess
    import sys

    contract, data, reference = json.dumps(SMALL).encode(), b"reading_id,site ,temp_c\n1,a,2.5\n", None
    if case == "utf-16":
        data = data.decode().encode("utf-16")
    elif case == "big integer":
        data = b"reading_id,site,temp_c\n12345678901234567890,a,2.5\n"
    elif case == "broken reference":
        reference = b"[1, 2]"
    elif case == "nested contract":
        contract = b"[" * 100_000
    (tmp_path / "c.json").write_bytes(contract)
    (tmp_path / "d.csv").write_bytes(data)
    args = ["--contract", str(tmp_path / "c.json")]
    if reference is not None:
        (tmp_path / "r.json").write_bytes(reference)
        args += ["--reference", str(tmp_path / "r.json")]
    target = tmp_path / ("nope.csv" if case == "missing file" else "d.csv")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "scripts")])}
    run = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "validate", *args, str(target)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    expected = {"header with spaces": 0, "utf-16": 1, "big integer": 0}.get(case, 2)
    assert (run.returncode, "Traceback" in run.stderr) == (expected, False), run.stderr
