"""No input crashes validation (issue 13): random bytes, random CSV structures and random contracts
each end in a well-formed report (``tests.support.check_report`` says exactly what that is), and
validating the same bytes twice gives the same verdict and issues."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.validation import Contract, validate_stream
from chalicelib.validation import validator as validator_module
from chalicelib.validation.issues import FATAL
from tests.support import any_bytes, check_report, contracts, uploads


@contextmanager
def chunk_rows(n: int) -> Iterator[None]:
    """Small chunks, so a few dozen rows cross chunk boundaries as millions do."""
    saved = validator_module.CHUNK_ROWS
    validator_module.CHUNK_ROWS = n
    try:
        yield
    finally:
        validator_module.CHUNK_ROWS = saved


def validate(data: bytes, contract: Contract, chunk: int) -> tuple[dict, object]:
    with chunk_rows(chunk):
        result = validate_stream(io.BytesIO(data), contract, size=len(data))
    check_report(result.report, contract, result.profile)
    return result.report, result.profile


CHUNKS = st.sampled_from([2, 3, 7, validator_module.CHUNK_ROWS])


@settings(max_examples=150)
@given(data=st.data(), doc=contracts(), chunk=CHUNKS)
def test_any_csv_for_any_contract_gives_a_well_formed_report(data, doc, chunk):
    contract = Contract.parse(doc)
    upload = data.draw(uploads(doc), label="upload")
    first, _ = validate(upload, contract, chunk)
    again, _ = validate(upload, contract, validator_module.CHUNK_ROWS)
    # The chunk size never changes a verdict. It changes nothing else either, unless a structural
    # problem stopped the reading: then which rows before it were checked depends on the chunks.
    assert first["status"] == again["status"]
    assert fatal_issues(first) == fatal_issues(again)
    if not fatal_issues(first):
        assert exact_parts(first) == exact_parts(again)


def exact_parts(report: dict) -> dict:
    """The report without its time and its floating-point aggregates (a mean and a standard
    deviation merged chunk by chunk can differ in the last digits, or overflow in one order only)."""
    statistics = {
        name: {k: v for k, v in stats.items() if k not in ("mean", "std")}
        for name, stats in report["column_statistics"].items()
    }
    return {**report, "seconds": None, "column_statistics": statistics}


def fatal_issues(report: dict) -> list[tuple]:
    return [(i["code"], i["column"], i["row"], i["line"]) for i in report["issues"] if i["code"] in FATAL]


@given(upload=any_bytes(), doc=contracts(), chunk=CHUNKS)
@example(upload=b"reading_id,site ,temp_c\n1,a,2.5\n", doc=None, chunk=3)
@example(upload="id,y\n1,0\n".encode("utf-16"), doc=None, chunk=3)
@example(upload=b"\xff\xfe", doc=None, chunk=3)
@example(upload=b"\x1f\x8b", doc=None, chunk=3)
def test_any_bytes_give_a_well_formed_report(upload, doc, chunk):
    contract = Contract.parse(
        doc
        or {
            "dataset": "things",
            "task": "regression",
            "target": "temp_c",
            "columns": [
                {"name": "reading_id", "type": "integer", "classification": "internal"},
                {"name": "site", "type": "string", "classification": "public"},
                {"name": "temp_c", "type": "float", "classification": "public"},
            ],
        }
    )
    validate(upload, contract, chunk)


@settings(max_examples=20)
@given(doc=contracts(), rows=st.integers(20_000, 40_000))
def test_large_uploads_across_many_chunks_give_a_well_formed_report(doc, rows):
    contract = Contract.parse(doc)
    names = [c["name"] for c in doc["columns"]]
    delimiter = doc["format"]["delimiter"]
    line = delimiter.join("1" for _ in names)
    data = (delimiter.join(names) + "\n" + (line + "\n") * rows).encode()
    report, _ = validate(data, contract, validator_module.CHUNK_ROWS)
    if not any(i["code"] in ("FILE_TOO_LARGE", "FIELD_TOO_LARGE") for i in report["issues"]):
        assert report["rows"] == rows
