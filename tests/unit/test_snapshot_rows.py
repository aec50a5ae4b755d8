"""A training snapshot of several uploads holds each row once: the newest upload's copy of a row
replaces older ones (same row id, or the same values without one), so a row cannot be trained on
twice nor sit in train and holdout at once through two uploads."""

from __future__ import annotations

import numpy as np

from chalicelib.validation import Contract
from training.split import HOLDOUT, TRAIN, assign_split
from training.table import load_table


def _contract(id_type: str = "string", row_id: bool = True) -> Contract:
    columns = [
        {"name": "id", "type": id_type, "classification": "internal"},
        {"name": "x", "type": "float", "classification": "internal"},
        {"name": "y", "type": "integer", "classification": "internal", "allowed": [0, 1]},
    ]
    doc = {"dataset": "rows", "columns": columns, "target": "y", "task": "classification"}
    if row_id:
        doc["row_id"] = "id"
    return Contract.parse(doc)


def _csv(rows: list[tuple[str, float, int]]) -> bytes:
    return ("id,x,y\n" + "".join(f"{i},{x},{y}\n" for i, x, y in rows)).encode()


def test_a_snapshot_of_two_uploads_with_overlapping_ids_holds_each_row_once_the_newest_copy():
    older = [(f"r{i}", float(i), 0) for i in range(300)]
    newer = [(f"r{i}", float(i) + 0.5, 1) for i in range(200, 400)]  # r200..r299 again, changed
    table = load_table([_csv(older), _csv(newer)], _contract())
    assert table.n_rows == 400 and len(set(table.keys)) == 400
    values = dict(zip(table.keys, table["x"].tolist(), strict=True))
    assert values["r250"] == 250.5 and values["r10"] == 10.0  # the newest upload's copy wins


def test_the_same_upload_twice_gives_the_rows_of_one():
    rows = [(f"r{i}", i / 7, i % 2) for i in range(100)]
    table = load_table([_csv(rows), _csv(rows[::-1])], _contract())
    assert table.n_rows == 100


def test_a_row_cannot_be_in_train_and_holdout_through_two_uploads():
    """3 and 03 are one row id (as validation compares them); split by the same key, always."""
    ids = range(1, 400)
    spelled = [
        i
        for i in ids
        if {str(assign_split([str(i)], 0.15, 0.15)[0]), str(assign_split([f"0{i}"], 0.15, 0.15)[0])}
        == {TRAIN, HOLDOUT}
    ]
    assert spelled  # ids whose two spellings would hash to different splits
    older = [(str(i), float(i), i % 2) for i in ids]
    newer = [(f"0{i}", float(i), i % 2) for i in spelled]
    table = load_table([_csv(older), _csv(newer)], _contract("integer"))
    split = assign_split(table.keys, 0.15, 0.15)
    ids_by_split = {
        name: {int(k) for k, s in zip(table.keys, split, strict=True) if s == name}
        for name in (TRAIN, HOLDOUT)
    }
    assert table.n_rows == len(ids)
    assert ids_by_split[TRAIN].isdisjoint(ids_by_split[HOLDOUT])


def test_without_a_row_id_equal_values_in_two_uploads_are_one_row_and_repeats_within_one_are_kept():
    contract = _contract(row_id=False)
    first = b"id,x,y\na,1.5,0\na,1.5,0\nb,2,1\n"
    second = b"y,x,id\n0,1.50,a\n1,3,c\n"  # a's values again (another spelling), and a new row
    table = load_table([first, second], contract)
    # a: the newest upload holding it has it once; b only in the first; c new.
    assert sorted(table["id"].tolist()) == ["a", "b", "c"]
    np.testing.assert_array_equal(np.sort(table["x"]), [1.5, 2.0, 3.0])
    # Within one upload, repeats are rows of their own (the contract's duplicate limit governs them).
    assert load_table([first], contract).n_rows == 3


def test_each_kept_row_names_the_upload_its_surviving_copy_came_from():
    """The holdout's slices (earlier / new uploads) read a row's origin: after a later upload's copy
    replaced an older one, the row belongs to the later upload, and the origins stay aligned."""
    older = [(f"r{i}", float(i), 0) for i in range(300)]
    newer = [(f"r{i}", float(i) + 0.5, 1) for i in range(200, 400)]
    table = load_table([_csv(older), _csv(newer)], _contract())
    assert len(table.origins) == table.n_rows
    origin = dict(zip(table.keys, table.origins, strict=True))
    assert {origin[f"r{i}"] for i in range(200)} == {0}
    assert {origin[f"r{i}"] for i in range(200, 400)} == {1}
    kept = table.take(np.asarray([k in ("r5", "r250") for k in table.keys]))
    assert dict(zip(kept.keys, kept.origins, strict=True)) == {"r5": 0, "r250": 1}
