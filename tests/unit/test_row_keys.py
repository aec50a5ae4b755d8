"""Row identity keys (chalicelib/validation/rowkeys.py): the same row gives the same keys however the
file spells it, in any process; a digest compared with earlier digests counts repeats and changes
as a plain model of "the newest earlier copy" does."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.validation import Capacity, Contract, validate_stream
from chalicelib.validation.layout import row_digest_key, row_digest_upload, upload_order
from chalicelib.validation.rowkeys import (
    BY_CONTENT,
    BY_ROW_ID,
    RowDigest,
    cell_keys,
    compare,
    id_text,
    read_digest,
    row_keys,
    text_keys,
)
from tests.support import PROJECT

DOC = {
    "dataset": "keys",
    "row_id": "id",
    "columns": [
        {"name": "id", "type": "integer", "classification": "internal"},
        {"name": "x", "type": "float", "classification": "internal", "nullable": True},
        {"name": "ok", "type": "boolean", "classification": "internal"},
        {"name": "at", "type": "timestamp", "classification": "internal"},
        {"name": "kind", "type": "category", "classification": "internal", "allowed": ["a", "b"]},
        {"name": "y", "type": "integer", "classification": "internal", "allowed": [0, 1]},
    ],
    "target": "y",
    "task": "classification",
}
CONTRACT = Contract.parse(DOC)
NO_ID = Contract.parse({**DOC, "row_id": None})

PLAIN = "id,x,ok,at,kind,y\n1,1.5,true,2026-11-30T12:00:00Z,a,0\n2,,false,2026-11-30,b,1\n3,-0.0,true,2026-01-01T01:00:00+01:00,a,1\n"
# The same rows: other column order, number spellings, boolean words, time zones, quoting, CRLF, gzip.
RESPELLED = (
    'y,kind,at,ok,x,id\r\n1,"a",2026-01-01T00:00:00+00:00,YES,0,+03\r\n'
    "0,a,2026-11-30T13:00:00+01:00,T,15e-1,001\r\n1,b,2026-11-30 00:00:00,no,,2\r\n"
)


def _digest(text: str | bytes, contract: Contract = CONTRACT) -> RowDigest:
    data = text.encode() if isinstance(text, str) else text
    result = validate_stream(io.BytesIO(data), contract)
    assert result.status == "valid", result.report["issues"]
    assert result.row_digest is not None
    return result.row_digest


def test_a_row_keeps_its_keys_however_the_file_spells_it():
    for contract in (CONTRACT, NO_ID):
        plain, respelled = _digest(PLAIN, contract), _digest(gzip.compress(RESPELLED.encode()), contract)
        np.testing.assert_array_equal(plain.ids, respelled.ids)
        np.testing.assert_array_equal(plain.contents, respelled.contents)
    assert _digest(PLAIN).by == BY_ROW_ID and _digest(PLAIN, NO_ID).by == BY_CONTENT


def test_any_changed_value_changes_the_content_but_not_the_row_id():
    plain = _digest(PLAIN)
    changed = _digest(PLAIN.replace("1,1.5,true", "1,1.25,true"))
    np.testing.assert_array_equal(plain.ids, changed.ids)
    assert (plain.contents != changed.contents).sum() == 1
    assert compare(changed, [(plain.ids, plain.contents)]).changed_rows == 1


def test_keys_are_the_same_in_another_process():
    """Python's own hash() is seeded per process; these keys must not be."""
    code = (
        "import io, json, sys; from chalicelib.validation import Contract, validate_stream; "
        "doc, text = json.load(sys.stdin); "
        "d = validate_stream(io.BytesIO(text.encode()), Contract.parse(doc)).row_digest; "
        "print(d.ids.tolist(), d.contents.tolist())"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps([DOC, PLAIN]),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    }
    here = _digest(PLAIN)
    assert runs == {f"{here.ids.tolist()} {here.contents.tolist()}\n"}


def test_a_numeric_row_id_is_its_value():
    column = CONTRACT.columns[0]
    assert {id_text(column, t) for t in ("3", "03", "+3", " 3 ", "0003")} == {"3"}
    text_id = Contract.parse(
        {**DOC, "columns": [{**DOC["columns"][0], "type": "string"}, *DOC["columns"][1:]]}
    ).columns[0]
    assert id_text(text_id, "03") == "03"
    cells = {name: ["3", "03"] if name == "id" else ["1", "1"] for name in CONTRACT.column_names}
    cells.update(x=["1.5", "1.5"], ok=["y", "y"], at=["2026-01-01", "2026-01-01"], kind=["a", "a"])
    ids, contents = row_keys(CONTRACT, cells)
    assert ids[0] == ids[1] and contents[0] == contents[1]


def test_a_digest_reads_back_as_written():
    digest = _digest(PLAIN)
    header, ids, contents = read_digest(digest.to_bytes({"upload_id": "u1"}))
    assert header["upload_id"] == "u1" and header["rows"] == 3 and header["by"] == BY_ROW_ID
    np.testing.assert_array_equal(ids, digest.ids)
    np.testing.assert_array_equal(contents, digest.contents)


# --- compare against a plain model ----------------------------------------------------------------------

uploads = st.lists(
    st.dictionaries(st.integers(0, 30), st.integers(0, 2), min_size=0, max_size=20), min_size=1, max_size=6
)


@given(uploads)
def test_compare_counts_repeats_and_changes_against_the_newest_earlier_copy(history):
    *earlier, current = history
    newest: dict[int, int] = {}
    for upload in earlier:
        newest.update(upload)
    repeated = sum(1 for i in current if i in newest)
    changed = sum(1 for i, c in current.items() if i in newest and newest[i] != c)

    def arrays(upload: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(sorted(upload), dtype=np.uint64)
        return ids, np.array([upload[i] for i in sorted(upload)], dtype=np.uint64)

    digest = RowDigest.of(BY_ROW_ID, *arrays(current))
    repeats = compare(digest, [arrays(u) for u in earlier])
    assert (repeats.earlier_uploads, repeats.repeated_rows, repeats.changed_rows) == (
        len(earlier),
        repeated,
        changed,
    )
    assert repeats.new_rows == len(current) - repeated + changed


def test_without_a_row_id_repeats_within_an_upload_are_counted_as_its_rows():
    first = _digest("id,x,ok,at,kind,y\n1,1,t,2026-01-01,a,0\n", NO_ID)
    again = _digest(
        "id,x,ok,at,kind,y\n1,1,t,2026-01-01,a,0\n1,1,t,2026-01-01,a,0\n2,1,t,2026-01-01,a,0\n", NO_ID
    )
    assert again.rows == 3 and len(again.ids) == 2
    repeats = compare(again, [(first.ids, first.contents)])
    assert (repeats.repeated_rows, repeats.changed_rows, repeats.new_rows) == (2, 0, 1)


# --- where digests live ---------------------------------------------------------------------------------


def test_digest_keys_sort_by_upload_time_then_upload_id_and_name_their_upload():
    times = ["2026-11-30T12:00:00.5Z", "2026-11-30T12:00:00.25+00:00", "2026-11-30T13:00:00.5+02:00", "junk"]
    keys = sorted(row_digest_key("d", t, f"u{i}") for i, t in enumerate(times))
    assert [row_digest_upload(k)[1] for k in keys] == ["u3", "u2", "u1", "u0"]  # type: ignore[index]
    assert row_digest_upload(keys[-1]) == ("20261130T120000.500000Z", "u0")
    assert row_digest_upload("profiles/d/reference.json") is None
    assert upload_order("2026-11-30") == "20261130T000000.000000Z"


# --- the same keys whatever the batch -------------------------------------------------------------------

texts = st.lists(st.text(max_size=80) | st.sampled_from(["a", "b", "", "x" * 65]), max_size=40)


@given(texts)
def test_a_texts_key_does_not_depend_on_the_texts_beside_it(values):
    together = text_keys(values).tolist()
    assert together == [int(text_keys([v])[0]) for v in values]
    assert len(set(together)) == len(set(values))  # no collision among these


@given(st.lists(st.sampled_from(["1", "01", "+1", " 2", "", "NA", "-0", "3"]), min_size=1, max_size=30))
def test_a_cells_key_does_not_depend_on_the_cells_beside_it(cells):
    column = Contract.parse(
        {
            "dataset": "n",
            "columns": [
                {"name": "n", "type": "integer", "classification": "public", "nullable": True},
                {"name": "y", "type": "integer", "classification": "public"},
            ],
            "target": "y",
            "task": "regression",
        }
    ).columns[0]
    nulls = frozenset(["", "NA"])
    together = cell_keys(column, cells, nulls).tolist()
    assert together == [int(cell_keys(column, [c], nulls)[0]) for c in cells]

    def value(cell: str) -> str | None:
        return None if cell in nulls else id_text(column, cell)

    assert (together[0] == together[-1]) == (value(cells[0]) == value(cells[-1]))


def test_the_digest_does_not_depend_on_how_the_validator_chunks_the_rows():
    rows = "".join(
        f"{i},{i / 3 if i % 5 else ''},{'true' if i % 2 else 'no'},2026-01-01,{'ab'[i % 2]},{i % 2}\n"
        for i in range(500)
    )
    text = "id,x,ok,at,kind,y\n" + rows
    whole = validate_stream(io.BytesIO(text.encode()), CONTRACT).row_digest
    small = validate_stream(io.BytesIO(text.encode()), CONTRACT, capacity=Capacity(chunk_cells=60)).row_digest
    assert whole is not None and small is not None
    np.testing.assert_array_equal(whole.ids, small.ids)
    np.testing.assert_array_equal(whole.contents, small.contents)


def test_an_upload_past_the_identity_capacity_is_valid_and_has_no_digest():
    result = validate_stream(io.BytesIO(PLAIN.encode()), CONTRACT, capacity=Capacity(identity_rows=2))
    assert result.status == "valid" and result.row_digest is None


def test_an_earlier_uploads_digest_is_read_once_per_process_not_once_per_later_upload():
    """Each upload compares with every earlier one's digest: reading them all again for each upload
    made a burst of uploads quadratic. A digest never changes once written (its key names its
    upload), so a process keeps what it read through a store; one no longer listed is not compared
    with, and another store holding the same key is read for itself."""
    import uuid

    from chalicelib.adapters.memory.validation_outputs import MemoryValidationStore
    from chalicelib.validation import rowkeys
    from chalicelib.validation.layout import ObjectTags
    from chalicelib.validation.service import _digests

    reads: list[str] = []

    class CountingStore(MemoryValidationStore):
        def get_bytes(self, key):
            reads.append(key)
            return super().get_bytes(key)

    store = CountingStore()
    keys = [f"profiles/d/row-digests/{uuid.uuid4().hex}-{i}.bin" for i in range(3)]  # new to the process
    for i, key in enumerate(keys):
        digest = rowkeys.RowDigest.of(
            rowkeys.BY_ROW_ID, np.array([i, i + 10], dtype=np.uint64), np.array([1, 2], dtype=np.uint64)
        )
        store.put_bytes(key, digest.to_bytes({}), ObjectTags("d", "internal", "profile"))
    first = [ids.tolist() for ids, _ in _digests(store, keys[:2])]
    second = [ids.tolist() for ids, _ in _digests(store, keys)]
    assert first == [[0, 10], [1, 11]] and second == [[0, 10], [1, 11], [2, 12]]
    assert sorted(reads) == sorted(keys)  # each once
    other = CountingStore()
    other.put_bytes(
        keys[0],
        rowkeys.RowDigest.of(
            rowkeys.BY_ROW_ID, np.array([7], dtype=np.uint64), np.array([1], dtype=np.uint64)
        ).to_bytes({}),
        ObjectTags("d", "internal", "profile"),
    )
    assert [ids.tolist() for ids, _ in _digests(other, keys[:1])] == [[7]]


def test_the_digest_cache_keeps_at_most_its_bytes_dropping_the_least_recently_used():
    from chalicelib.validation.rowkeys import DigestCache

    cache = DigestCache(max_bytes=64)  # two digests of two rows (32 bytes each)
    two = np.array([1, 2], dtype=np.uint64)
    cache.put("a", two, two)
    cache.put("b", two, two)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", two, two)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("big", np.zeros(10, dtype=np.uint64), np.zeros(10, dtype=np.uint64))  # larger than all
    assert cache.get("big") is None and cache.get("a") is not None
