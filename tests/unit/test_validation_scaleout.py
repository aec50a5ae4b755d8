"""Large uploads in parallel (issue 19): an upload cut into row-aligned shards, each validated on its
own and merged, gives the report, profile and row digest of one pass over it; where it cannot (an
issue, a quoted field cut by a boundary), the merge says so and one pass is made instead."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.rowranges import next_row_start_in, row_ranges
from chalicelib.validation import Capacity, Contract, validate_stream
from chalicelib.validation import validator as validator_module
from chalicelib.validation.partial import Merged, Partial, merge, validate_shard
from tests.support import contracts, uploads

DOC = {
    "dataset": "things",
    "task": "regression",
    "target": "y",
    "row_id": "id",
    "columns": [
        {"name": "id", "type": "integer", "classification": "internal"},
        {"name": "site", "type": "category", "classification": "public", "allowed": ["north", "south"]},
        {"name": "note", "type": "string", "classification": "public"},
        {"name": "y", "type": "float", "classification": "public"},
    ],
    "format": {"allow_multiline_fields": True},
}


def split(data: bytes, cuts: list[int]) -> list[tuple[int, int]]:
    """Row-aligned ranges after the header line, cut at the row starts at or after ``cuts``."""
    header_end = data.find(b"\n") + 1
    if not 0 < header_end < len(data):
        return []  # no rows after the header line
    starts = sorted({header_end, *(next_row_start_in(data, c) for c in cuts if header_end < c < len(data))})
    starts = [s for s in starts if s < len(data)]
    return list(zip(starts, [*starts[1:], len(data)], strict=True))


def merged(data: bytes, contract: Contract, ranges: list[tuple[int, int]], **kwargs) -> Merged:
    header = data[: ranges[0][0]]
    partials = [
        Partial.from_bytes(validate_shard(io.BytesIO(header + data[a:b]), contract, i).to_bytes())
        for i, (a, b) in enumerate(ranges)
    ]
    return merge(contract, list(reversed(partials)), **kwargs)  # any order


def deterministic(report: dict) -> dict:
    """The fields that are equal byte for byte (partial.py's docstring: not the time, not the
    floating-point mean and std, not the split itself)."""
    statistics = {
        name: {k: v for k, v in stats.items() if k not in ("mean", "std")}
        for name, stats in report["column_statistics"].items()
    }
    return {
        **{k: v for k, v in report.items() if k not in ("seconds", "shards")},
        "column_statistics": statistics,
    }


def assert_same_as_one_pass(data: bytes, contract: Contract, result, one) -> None:
    assert deterministic(result.report) == deterministic(one.report)
    for name, stats in one.report["column_statistics"].items():
        for key in ("mean", "std"):
            if key in stats:
                mine, theirs = result.report["column_statistics"][name][key], stats[key]
                assert (mine is None) == (theirs is None)
                if theirs is not None:
                    assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9 * (1 + abs(theirs)))
    assert result.profile == one.profile  # the samples too: every column here fits its sample
    if one.row_digest is None:
        assert result.row_digest is None
    else:
        assert result.row_digest is not None
        assert result.row_digest.by == one.row_digest.by
        assert np.array_equal(result.row_digest.ids, one.row_digest.ids)
        assert np.array_equal(result.row_digest.contents, one.row_digest.contents)
        assert np.array_equal(result.row_digest.counts, one.row_digest.counts)


@settings(max_examples=120, deadline=None)
@given(data=st.data(), doc=contracts())
def test_any_upload_split_at_random_rows_is_merged_as_one_pass_or_refused_only_when_one_pass_fails_it(
    data, doc
):
    """Any contract, any upload (damaged ones mostly: these merges are refused, rightly; the valid
    ones merge in the test below)."""
    contract = Contract.parse(doc)
    upload = data.draw(uploads(doc), label="upload")
    if upload[:2] == b"\x1f\x8b" or len(upload) > contract.format.max_bytes:
        return  # gzip is one stream and an oversized upload is refused at once: neither is split
    cuts = data.draw(st.lists(st.integers(0, max(0, len(upload) - 1)), max_size=6), label="cuts")
    ranges = split(upload, cuts)
    if not ranges:
        return  # a header and no rows: never split
    one = validate_stream(io.BytesIO(upload), contract, size=len(upload))
    answer = merged(upload, contract, ranges)
    if answer.result is None:
        # Refused only for an upload one pass finds invalid, or a quoted field cut by a boundary.
        assert one.status == "invalid" or "quoted field spans a shard boundary" in (answer.one_pass or "")
        return
    assert one.status == "valid"
    assert_same_as_one_pass(upload, contract, answer.result, one)


def rows_of(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    sites = ["north", "south"]
    return [f"{i},{sites[i % 2]},note {i % 13},{rng.normal(20, 5):.4f}" for i in range(1, n + 1)]


def csv_of(lines: list[str]) -> bytes:
    return ("id,site,note,y\n" + "".join(line + "\n" for line in lines)).encode()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3000),
    cuts=st.lists(st.integers(0, 200_000), max_size=8),
    chunk=st.sampled_from([7, 8192]),
)
@example(n=3000, cuts=list(range(0, 200_000, 997)), chunk=7)
def test_a_clean_upload_split_anywhere_gives_the_one_pass_report(n, cuts, chunk):
    contract = Contract.parse(DOC)
    upload = csv_of(rows_of(n))
    saved = validator_module.CHUNK_ROWS
    validator_module.CHUNK_ROWS = chunk
    try:
        one = validate_stream(io.BytesIO(upload), contract, size=len(upload))
        answer = merged(upload, contract, split(upload, cuts))
    finally:
        validator_module.CHUNK_ROWS = saved
    assert one.status == "valid" and answer.result is not None
    assert answer.result.report["shards"]["count"] == len(split(upload, cuts))
    assert_same_as_one_pass(upload, contract, answer.result, one)


def test_drift_against_a_reference_is_the_one_pass_drift():
    contract = Contract.parse(DOC)
    reference = validate_stream(io.BytesIO(csv_of(rows_of(400, seed=1))), contract).profile
    upload = csv_of(rows_of(900, seed=2))
    one = validate_stream(io.BytesIO(upload), contract, reference=reference)
    ranges = row_ranges(len(upload), upload.find(b"\n") + 1, 4096, lambda p: next_row_start_in(upload, p))
    answer = merged(upload, contract, ranges, reference=reference)
    assert len(ranges) > 3 and answer.result is not None
    assert answer.result.report["drift"] == one.report["drift"]


def test_repeats_across_shards_are_found_and_sent_to_one_pass():
    contract = Contract.parse(DOC)
    lines = rows_of(200)
    upload = csv_of([*lines, lines[3].replace("4,", "999,", 1), lines[0]])  # row id 1 again, last shard
    one = validate_stream(io.BytesIO(upload), contract)
    answer = merged(upload, contract, split(upload, [len(upload) // 2, len(upload) - 30]))
    assert {i["code"] for i in one.report["issues"]} == {"DUPLICATE_ROW_ID"}
    assert answer.result is None and "repeats across shards" in (answer.one_pass or "")


def test_whole_row_repeats_across_shards_are_counted_as_one_pass_counts_them():
    doc = {**DOC, "row_id": None}
    contract = Contract.parse(doc)
    lines = rows_of(300)
    upload = csv_of([*lines, *lines[:40], lines[5]])
    one = validate_stream(io.BytesIO(upload), contract)
    answer = merged(upload, contract, split(upload, list(range(0, len(upload), 1500))))
    assert one.report["duplicate_rows"] == 41 and answer.result is not None
    assert answer.result.report["duplicate_rows"] == 41


def test_a_quoted_field_cut_by_a_boundary_is_detected_and_sent_to_one_pass():
    contract = Contract.parse(DOC)  # multi-line fields allowed: one pass finds the upload valid
    upload = csv_of(['1,north,"first line', 'second line",1.5', "2,south,plain,2.5"])
    cut = upload.index(b"second")  # a row start to the byte-range splitter, inside quotes to the reader
    one = validate_stream(io.BytesIO(upload), contract)
    answer = merged(upload, contract, split(upload, [cut]))
    assert one.status == "valid" and len(split(upload, [cut])) == 2
    assert answer.result is None and "quoted field spans a shard boundary" in (answer.one_pass or "")


def test_a_column_over_its_sample_merges_a_uniform_sample_of_the_same_size():
    contract = Contract.parse(DOC)
    capacity = Capacity(sample_values=2 * 50)  # two numeric columns: 50 values a column
    upload = csv_of(rows_of(1000))
    one = validate_stream(io.BytesIO(upload), contract, capacity=capacity)
    ranges = split(upload, list(range(0, len(upload), 3000)))
    header = upload[: ranges[0][0]]
    partials = [
        validate_shard(io.BytesIO(header + upload[a:b]), contract, i, capacity=capacity)
        for i, (a, b) in enumerate(ranges)
    ]
    answer = merge(contract, partials, capacity=capacity)
    assert answer.result is not None and answer.result.profile is not None and one.profile is not None
    mine, theirs = answer.result.profile["columns"]["y"], one.profile["columns"]["y"]
    assert len(mine["sample"]) == len(theirs["sample"]) == 50
    values = {float(line.rsplit(",", 1)[1]) for line in rows_of(1000)}
    assert set(mine["sample"]) <= values and len(set(mine["sample"])) == 50
    again = merge(contract, partials, capacity=capacity)
    assert again.result is not None and again.result.profile == answer.result.profile  # deterministic


@st.composite
def clean_uploads(draw) -> tuple[dict, bytes]:
    """A contract of random column types, classifications and nullability, and a file it accepts:
    quoted delimiters and line breaks, CRLF or LF, repeated rows, a BOM, nulls where allowed."""
    from datetime import datetime

    kinds = draw(
        st.lists(
            st.sampled_from(["integer", "float", "boolean", "category", "string", "timestamp"]),
            min_size=1,
            max_size=5,
        )
    )
    columns = [
        {
            "name": f"c{i}",
            "type": kind,
            "classification": draw(st.sampled_from(["public", "internal", "confidential", "pii"])),
            "nullable": draw(st.booleans()),
            **({"allowed": ["a", "b", "c d", "e,f"]} if kind == "category" else {}),
        }
        for i, kind in enumerate(kinds)
    ]
    with_id = draw(st.booleans())
    if with_id:
        columns.insert(0, {"name": "id", "type": "integer", "classification": "internal"})
    doc = {
        "dataset": "things",
        "task": "regression",
        "target": "y",
        "columns": [*columns, {"name": "y", "type": "float", "classification": "public"}],
        "format": {"allow_multiline_fields": True, "allow_bom": True},
        **({"row_id": "id"} if with_id else {}),
    }
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r=@+-\t"), min_size=1, max_size=8)
    cells = {
        "integer": st.integers(-(10**15), 10**15).map(str),
        "float": st.floats(-1e12, 1e12, allow_nan=False).map(repr),
        "boolean": st.sampled_from(["true", "false", "1", "0", "yes"]),
        "category": st.sampled_from(["a", "b", "c d", "e,f"]),
        "string": text.filter(lambda v: v.strip() == v and v != ""),
        "timestamp": st.datetimes(min_value=datetime(1900, 1, 1)).map(lambda d: d.isoformat()),
    }
    rows = []
    for n in range(draw(st.integers(1, 60))):
        row = [str(n)] if with_id else []
        for column in columns[1 if with_id else 0 :]:
            row.append(
                "" if column["nullable"] and draw(st.integers(0, 5)) == 0 else draw(cells[column["type"]])
            )
        row.append(draw(cells["float"]))
        rows.append(row)
    if not with_id and rows:
        rows.extend(draw(st.lists(st.sampled_from(rows), max_size=4)))  # whole-row repeats
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow([c["name"] for c in doc["columns"]])
    writer.writerows(rows)
    bom = "\ufeff" if draw(st.booleans()) else ""
    return doc, (bom + out.getvalue()).encode()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), upload=clean_uploads())
def test_random_valid_files_split_at_random_row_boundaries_merge_to_the_one_pass_result(data, upload):
    doc, raw = upload
    contract = Contract.parse(doc)
    one = validate_stream(io.BytesIO(raw), contract, size=len(raw))
    assert one.status == "valid", one.report["issues"]  # the generator writes only what the contract accepts
    cuts = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=6), label="cuts")
    ranges = split(raw, cuts)
    answer = merged(raw, contract, ranges)
    if answer.result is None:  # only a quoted line break cut by a boundary sends it to one pass
        assert "quoted field spans a shard boundary" in (answer.one_pass or "")
        return
    assert_same_as_one_pass(raw, contract, answer.result, one)
