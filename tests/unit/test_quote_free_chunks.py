"""Issue 19: chunks of lines without a quote character are split in C (``_quote_free_chunk``) and
free-text patterns are checked a chunk at a time (``columns.chunk_pattern``). Whatever path a
chunk takes, the report is the one the csv module and the per-cell checks give: the same issues
(rows, lines, counts, messages), statistics, drift profile and row digest."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.validation import Contract, validate_stream
from chalicelib.validation import validator as validator_module
from chalicelib.validation.columns import chunk_pattern
from tests.support import contracts, uploads


@contextmanager
def reading(quote_free: bool, chunk: int) -> Iterator[None]:
    saved = validator_module.QUOTE_FREE_CHUNKS, validator_module.CHUNK_ROWS
    validator_module.QUOTE_FREE_CHUNKS, validator_module.CHUNK_ROWS = quote_free, chunk
    try:
        yield
    finally:
        validator_module.QUOTE_FREE_CHUNKS, validator_module.CHUNK_ROWS = saved


def outcome(data: bytes, contract: Contract, quote_free: bool, chunk: int) -> dict[str, Any]:
    """Everything a validation leaves: the report (but its time), the profile and the row digest."""
    with reading(quote_free, chunk):
        result = validate_stream(io.BytesIO(data), contract, size=len(data))
    digest = result.row_digest
    return {
        "report": {**result.report, "seconds": None},
        "profile": result.profile,
        "digest": None
        if digest is None
        else (digest.by, digest.ids.tolist(), digest.contents.tolist(), digest.counts.tolist()),
    }


def assert_same_either_way(data: bytes, contract: Contract, chunk: int) -> dict[str, Any]:
    fast = outcome(data, contract, True, chunk)
    assert fast == outcome(data, contract, False, chunk)
    return fast


CHUNKS = st.sampled_from([1, 2, 3, 7, validator_module.CHUNK_ROWS])


@settings(max_examples=150)
@given(data=st.data(), doc=contracts(), chunk=CHUNKS)
def test_any_csv_gives_the_same_report_with_and_without_quote_free_chunks(data, doc, chunk):
    contract = Contract.parse(doc)
    assert_same_either_way(data.draw(uploads(doc), label="upload"), contract, chunk)


# One contract with a patterned unique row id, numbers with nulls and ranges, a category, a flag and
# free text; each line of a file is plain, quoted or ended by CRLF on its own, so one file mixes
# chunks of both paths.
MIXED = Contract.parse(
    {
        "dataset": "mixed",
        "task": "classification",
        "target": "flag",
        "row_id": "id",
        "limits": {"max_duplicate_row_fraction": 0.2, "max_null_fraction": 0.5},
        "columns": [
            {"name": "id", "type": "string", "classification": "internal", "pattern": "r[0-9]{3}", "unique": True},
            {"name": "x", "type": "float", "classification": "internal", "nullable": True, "min": 0, "max": 100},
            {"name": "n", "type": "integer", "classification": "confidential", "min": -5, "max": 5},
            {"name": "cat", "type": "category", "classification": "public", "allowed": ["a", "b", "c"]},
            {"name": "flag", "type": "boolean", "classification": "internal"},
            {"name": "note", "type": "string", "classification": "internal", "nullable": True, "max_length": 6},
        ],
    }
)  # fmt: skip
GOOD = {
    "id": st.integers(0, 999).map(lambda i: f"r{i:03d}"),
    "x": st.one_of(st.just(""), st.floats(0, 100).map(repr), st.integers(0, 100).map(str)),
    "n": st.integers(-5, 5).map(str),
    "cat": st.sampled_from(["a", "b", "c"]),
    "flag": st.sampled_from(["true", "false", "1", "0", "Yes"]),
    "note": st.text("abc xyz", max_size=6),
}
BAD = [
    "", " 1", "+3", "1e", "nan", "inf", "-inf", "1_0", "abc", "999", "r12", "R123", "-x", "=1+1", "@a",
    "d", "a,b", 'say "hi"', "two\nlines", "\t", "toolongtext", "\u00e9t\u00e9", "1e400",
]  # fmt: skip


@st.composite
def mixed_files(draw: Any) -> bytes:
    names = [c.name for c in MIXED.columns]
    header = draw(st.permutations(names))
    lines = [",".join(header) + "\n"]
    rows: list[list[str]] = []
    for _ in range(draw(st.integers(0, 40))):
        if rows and draw(st.integers(1, 8)) == 1:
            row = draw(st.sampled_from(rows))  # a repeated row
        else:
            bad = draw(st.sampled_from([0, 0, 5, 30]))
            row = [
                draw(st.sampled_from(BAD)) if draw(st.integers(1, 100)) <= bad else draw(GOOD[name])
                for name in header
            ]
            if draw(st.integers(1, 25)) == 1:
                row = row[:-1] if draw(st.booleans()) else [*row, "surplus"]
        rows.append(row)
        out = io.StringIO()
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        ending = draw(st.sampled_from(["\n", "\n", "\n", "\r\n"]))
        csv.writer(out, quoting=quoting, lineterminator=ending).writerow(row)
        lines.append(out.getvalue())
        if draw(st.integers(1, 30)) == 1:
            lines.append("\n")  # a blank line
    text = "".join(lines)
    if draw(st.booleans()) and text.endswith("\n"):
        text = text[:-1]  # no line feed after the last row
    return text.encode("utf-8")


@settings(max_examples=200)
@given(upload=mixed_files(), chunk=CHUNKS)
@example(upload=b"id,x,n,cat,flag,note\nr001,1.5,2,a,true,ab\nr002,,3,b,0,\n", chunk=1)
@example(upload=b'id,x,n,cat,flag,note\nr001,1.5,2,a,true,ab\n"r001",1.5,2,a,true,ab\n', chunk=1)
@example(upload=b"id,x,n,cat,flag,note\r\nr001,1,2,a,true,ab\nr002,1,2,a,true,ab\n", chunk=1)
def test_files_mixing_plain_quoted_and_crlf_lines_give_the_same_report_either_way(upload, chunk):
    assert_same_either_way(upload, MIXED, chunk)


def test_a_duplicate_row_is_found_whether_it_is_quoted_or_not():
    # The same row, plain in one chunk and quoted in another: one whole-row key either way.
    upload = b'id,x,n,cat,flag,note\nr001,1.5,2,a,true,ab\n"r002",1.5,2,a,true,ab\nr002,1.5,2,a,true,ab\n'
    report = assert_same_either_way(upload, MIXED, 1)["report"]
    assert report["duplicate_rows"] == 1
    assert ("DUPLICATE_ROWS_EXCEEDED", 3) in [(i["code"], i["row"]) for i in report["issues"]]


def test_fields_holding_the_delimiter_are_not_mistaken_for_another_row():
    # Joined with commas, both rows would read "r001,a,b,...": the quoted field keeps them apart.
    upload = b'id,note,x,n,cat,flag\nr001,"a,b",1,2,a,true\nr002,a,1,2,a,true\n'
    assert assert_same_either_way(upload, MIXED, 2)["report"]["duplicate_rows"] == 0


# --- patterns checked a chunk at a time ------------------------------------------------------------

PATTERNS = [
    r"c[0-9]{10}", r"[A-Z]{2}-[0-9]{4}", r"\d+", r"\w+|x", r"(?:ab|c)+", r"a*", r"[a-c]{0,2}b?",
    r"(a|ab)(c|bcd)", r"x{2,}?y", r"[0-9]+(?:\.[0-9]+)?",
]  # fmt: skip
MAY_MATCH_A_LINE_FEED = [
    r".*", r"a\nb", "a\nb", r"[^a]+", r"\s", r"[\x00-\x20]", "[\x00-z]", r"[\t-\r]", r"\D", r"\W", r"^a", r"a$",
    r"(a)\1", r"(\w)\1", r"(?=a)a", r"(?P<x>a)",
]  # fmt: skip


@given(
    pattern=st.sampled_from(PATTERNS),
    cells=st.lists(st.text("abcxyz0123456789.-ACZ_ ", max_size=12), min_size=1, max_size=8),
)
def test_a_chunk_pattern_matches_the_joined_cells_exactly_when_the_pattern_matches_each(pattern, cells):
    joined = chunk_pattern(pattern)
    assert joined is not None
    assert (joined.fullmatch("\n".join(cells)) is not None) == all(
        re.fullmatch(pattern, cell) for cell in cells
    )


def test_a_pattern_that_may_match_a_line_feed_is_matched_cell_by_cell():
    for pattern in MAY_MATCH_A_LINE_FEED:
        assert chunk_pattern(pattern) is None, pattern
    assert chunk_pattern("(?i)abc") is None  # global flags cannot be wrapped: per cell, as written
