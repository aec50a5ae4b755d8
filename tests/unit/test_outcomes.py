"""Outcomes checked against the model's contract (chalicelib/monitoring/outcomes.py): API items and
CSV rows, every problem naming the item and the field, sensitive values never echoed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.monitoring.outcomes import (
    MAX_INDEX,
    InvalidOutcomes,
    Outcome,
    OutcomeParser,
    classification_of,
    dataset_of_upload,
    decode_lines,
    encode_lines,
    keys_between,
    outcomes_key,
    received_of_key,
    stored_object,
)
from chalicelib.validation import Contract

NOW = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
RID = "9f0c" + "a" * 28


def _contract(target: dict, row_id: dict | None = None, task: str = "classification") -> Contract:
    columns = [{"name": "x", "type": "float", "classification": "public"}, {"name": "y", **target}]
    if row_id:
        columns.append({"name": "rid", **row_id})
    return Contract.parse(
        {
            "dataset": "churn",
            "version": 1,
            "task": task,
            "target": "y",
            "row_id": "rid" if row_id else None,
            "columns": columns,
        }
    )


CATEGORY = _contract(
    {"type": "category", "classification": "internal", "allowed": ["stay", "leave"]},
    {"type": "string", "classification": "internal", "pattern": r"r-[0-9]+"},
)
SECRET_INTEGER = _contract({"type": "integer", "classification": "confidential", "allowed": [0, 1]})
BOOLEAN = _contract({"type": "boolean", "classification": "public"})
REGRESSION = _contract({"type": "float", "classification": "public", "min": 0, "max": 100}, task="regression")


def _parse(contract: Contract, items: list) -> tuple[list[Outcome], list]:
    return OutcomeParser("churn", contract).parse_items(items, NOW, "api:t")


def test_good_items_become_outcomes_with_typed_labels():
    outcomes, problems = _parse(
        CATEGORY,
        [
            {"request_id": RID, "label": "stay"},
            {"request_id": RID.upper(), "index": 3, "label": "leave"},
            {"row_id": "r-7", "label": "stay"},
        ],
    )
    assert problems == []
    assert [(o.request_id, o.index, o.row_id, o.label) for o in outcomes] == [
        (RID, 0, None, "stay"),
        (RID, 3, None, "leave"),
        (None, 0, "r-7", "stay"),
    ]
    assert all(o.model == "churn" and o.received_at == NOW and o.source == "api:t" for o in outcomes)
    outcomes, _ = _parse(SECRET_INTEGER, [{"request_id": RID, "label": 1}])
    assert outcomes[0].label == 1 and type(outcomes[0].label) is int
    outcomes, _ = _parse(BOOLEAN, [{"request_id": RID, "label": False}])
    assert outcomes[0].label is False
    outcomes, _ = _parse(
        REGRESSION, [{"request_id": RID, "label": 12}, {"request_id": RID, "index": 1, "label": 99.5}]
    )
    assert [o.label for o in outcomes] == [12, 99.5]


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"label": "stay"}, "request_id", "exactly one"),
        ({"request_id": RID, "row_id": "r-1", "label": "stay"}, "request_id", "exactly one"),
        ({"request_id": "abc", "label": "stay"}, "request_id", "32 hexadecimal"),
        ({"request_id": RID, "index": -1, "label": "stay"}, "index", "from 0"),
        ({"request_id": RID, "index": True, "label": "stay"}, "index", "from 0"),
        ({"request_id": RID, "index": MAX_INDEX + 1, "label": "stay"}, "index", "from 0"),
        ({"row_id": "r-1", "index": 0, "label": "stay"}, "index", "goes with request_id"),
        ({"row_id": "", "label": "stay"}, "row_id", "non-empty"),
        ({"row_id": 7, "label": "stay"}, "row_id", "non-empty"),
        ({"row_id": "x-1", "label": "stay"}, "row_id", "pattern"),
        ({"request_id": RID}, "label", "required"),
        ({"request_id": RID, "label": 3}, "label", "must be a string"),
        ({"request_id": RID, "label": "maybe"}, "label", "does not list"),
        ({"request_id": RID, "label": ""}, "label", "empty value"),
        ({"request_id": RID, "label": "stay", "why": 1}, "why", "unknown field"),
    ],
)
def test_each_bad_item_is_refused_naming_its_position_and_field(item, field, words):
    good = {"request_id": RID, "label": "stay"}
    outcomes, problems = _parse(CATEGORY, [good, item])
    assert outcomes == []
    assert problems and all(p.item == 1 for p in problems)
    assert any(p.field == field and words in p.problem for p in problems), problems


def test_row_ids_are_refused_when_the_contract_has_none():
    _, problems = _parse(SECRET_INTEGER, [{"row_id": "r-1", "label": 1}])
    assert [(p.item, p.field) for p in problems] == [(0, "row_id")]
    assert "declares no row id" in problems[0].problem


def test_labels_must_have_the_targets_json_type():
    assert _parse(SECRET_INTEGER, [{"request_id": RID, "label": True}])[1][0].field == "label"
    assert _parse(SECRET_INTEGER, [{"request_id": RID, "label": 1.0}])[1][0].field == "label"
    assert _parse(SECRET_INTEGER, [{"request_id": RID, "label": "1"}])[1][0].field == "label"
    assert _parse(BOOLEAN, [{"request_id": RID, "label": "true"}])[1][0].field == "label"
    assert _parse(REGRESSION, [{"request_id": RID, "label": 100.5}])[1][0].problem.startswith(
        "a value is outside"
    )


def test_a_confidential_label_is_never_echoed_and_an_internal_one_is():
    _, problems = _parse(SECRET_INTEGER, [{"request_id": RID, "label": 7341}])
    assert problems[0].field == "label" and "7341" not in problems[0].problem
    _, problems = _parse(CATEGORY, [{"request_id": RID, "label": "sideways"}])
    assert "'sideways'" in problems[0].problem


def test_a_list_item_that_is_not_an_object_is_named():
    _, problems = _parse(CATEGORY, [["stay"]])
    assert [(p.item, p.field) for p in problems] == [(0, "outcomes[0]")]
    assert "not an object" in problems[0].problem


def test_invalid_outcomes_carries_every_problem_and_the_count():
    _, problems = _parse(CATEGORY, [{"request_id": "x", "label": "?"} for _ in range(150)])
    error = InvalidOutcomes(problems)
    details = error.details()
    assert details["problem_count"] == 300 and len(details["problems"]) == 100
    assert str(error).startswith("no outcome stored: item 0 request_id")


# --- the all-or-nothing rule, for any body ------------------------------------------------------------------

_labels = st.one_of(
    st.sampled_from(["stay", "leave", "", "maybe", "=1+1"]),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(),
)
_items = st.one_of(
    st.fixed_dictionaries({"request_id": st.sampled_from([RID, "b" * 32, "nothex", ""]), "label": _labels}),
    st.fixed_dictionaries(
        {
            "request_id": st.just(RID),
            "index": st.one_of(st.integers(-3, 5), st.text(max_size=2)),
            "label": _labels,
        }
    ),
    st.fixed_dictionaries({"row_id": st.sampled_from(["r-1", "r-22", "x", "", "r-"]), "label": _labels}),
    st.dictionaries(
        st.sampled_from(["request_id", "row_id", "index", "label", "other"]), _labels, max_size=4
    ),
    st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_items, min_size=1, max_size=12))
def test_any_body_is_accepted_whole_or_refused_with_every_bad_item_named(items):
    outcomes, problems = _parse(CATEGORY, items)
    if not problems:
        assert len(outcomes) == len(items)
        return
    assert outcomes == []
    for problem in problems:
        assert problem.item is not None and 0 <= problem.item < len(items)
        assert problem.field  # every refusal names a field (the item itself when it is no object)
        assert problem.problem
    # Each item that parses alone is no item of a problem (problems are the items' own).
    for position, item in enumerate(items):
        _alone, own = _parse(CATEGORY, [item])
        assert bool(own) == any(p.item == position for p in problems)


# --- CSV uploads ------------------------------------------------------------------------------------------


def _csv(contract: Contract, text: str):
    return OutcomeParser("churn", contract).parse_csv(text.encode(), NOW, "upload:k@v")


def test_csv_rows_good_and_bad_are_told_apart_row_by_row():
    found = _csv(
        CATEGORY,
        f"request_id,index,row_id,label\n{RID},0,,stay\n{RID},1,,maybe\nnothex,,,leave\n,,r-5,leave\n,,x-5,stay\n{RID},,r-1,stay\n,,,\n",
    )
    assert found.fatal == []
    assert [(o.request_id, o.index, o.row_id, o.label) for o in found.outcomes] == [
        (RID, 0, None, "stay"),
        (None, 0, "r-5", "leave"),
    ]
    named = {(p.item, p.field) for p in found.problems}
    assert named == {
        (2, "label"),
        (3, "request_id"),
        (5, "row_id"),
        (6, "request_id"),
        (7, "request_id"),
        (7, "label"),
    }
    assert [n for n, _ in found.bad_rows] == [2, 3, 5, 6, 7]
    rows = found.quarantine_csv().decode().splitlines()
    assert rows[0] == "row,request_id,index,row_id,label" and rows[1] == f"2,{RID},1,,maybe"


def test_csv_labels_are_read_as_the_validator_reads_uploads():
    found = _csv(SECRET_INTEGER, f"request_id,label\n{RID},01\n{RID},1.0\n{RID},2\n")
    assert [o.label for o in found.outcomes] == [1]
    assert {p.item for p in found.problems} == {2, 3}
    assert all("1.0" not in p.problem and "'2'" not in p.problem for p in found.problems)  # confidential
    found = _csv(BOOLEAN, f"request_id,label\n{RID},yes\n{RID},FALSE\n{RID},maybe\n")
    assert [o.label for o in found.outcomes] == [True, False] and [p.item for p in found.problems] == [3]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("request_id,label\n", "no rows"),
        ("request_id,label,extra\n", "header column 3"),
        (f"{RID},stay\n", "header column 1"),  # no header: its cells are never echoed
        ("request_id,index\n", "no 'label'"),
        ("index,label\n", "'request_id' or a 'row_id'"),
        ("label,label,request_id\n", "twice"),
    ],
)
def test_a_csv_whose_header_cannot_be_read_is_refused_whole(text, words):
    found = _csv(CATEGORY, text)
    assert found.outcomes == [] and len(found.fatal) == 1 and words in found.fatal[0].problem
    assert RID not in found.fatal[0].problem


def test_a_csv_that_is_not_utf8_text_is_refused_whole():
    parser = OutcomeParser("churn", CATEGORY)
    assert "UTF-8" in parser.parse_csv(b"request_id,label\n\xff,stay\n", NOW, "s").fatal[0].problem
    assert "NUL" in parser.parse_csv(b"request_id,label\n\x00,stay\n", NOW, "s").fatal[0].problem


def test_a_ragged_row_is_a_bad_row_not_a_bad_file():
    found = _csv(CATEGORY, f"request_id,label\n{RID},stay,extra\n{RID},leave\n")
    assert [o.label for o in found.outcomes] == ["leave"] and [(p.item, p.field) for p in found.problems] == [
        (1, None)
    ]


# --- keys and lines ---------------------------------------------------------------------------------------


def test_the_key_derives_from_model_time_and_source_and_carries_the_time():
    key = outcomes_key("churn", NOW, "upload:outcomes/churn/a.csv@v1")
    assert key.startswith("monitoring/churn/outcomes/2026-12-01/20261201T100000.123000Z-") and key.endswith(
        ".jsonl"
    )
    assert key == outcomes_key("churn", NOW, "upload:outcomes/churn/a.csv@v1")
    assert key != outcomes_key("churn", NOW, "upload:outcomes/churn/a.csv@v2")
    assert received_of_key(key) == NOW


def test_outcomes_read_back_equal_from_their_lines():
    outcomes = [
        Outcome("churn", "stay", NOW, "api:x", request_id=RID, index=2),
        Outcome("churn", 1.5, NOW, "api:x", row_id="r-1"),
    ]
    assert list(decode_lines(encode_lines(outcomes))) == outcomes


def test_one_object_keeps_one_model_and_one_receiving_time():
    one = Outcome("churn", "stay", NOW, "api:x", request_id=RID)
    with pytest.raises(ValueError):
        stored_object("churn", [], "api:x")
    with pytest.raises(ValueError):
        stored_object(
            "churn",
            [one, Outcome("churn", "stay", NOW + timedelta(seconds=1), "api:x", request_id=RID)],
            "api:x",
        )
    with pytest.raises(ValueError):
        stored_object("other", [one], "api:x")


def test_keys_between_lists_each_day_and_keeps_the_half_open_range():
    times = [NOW - timedelta(days=1), NOW, NOW + timedelta(hours=1), NOW + timedelta(days=2)]
    keys = [outcomes_key("churn", t, f"s{n}") for n, t in enumerate(times)]
    listed: list[str] = []

    def list_keys(prefix: str) -> list[str]:
        listed.append(prefix)
        return [k for k in keys if k.startswith(prefix)]

    assert keys_between("churn", NOW, NOW + timedelta(hours=1), list_keys) == [keys[1]]
    assert listed == ["monitoring/churn/outcomes/2026-12-01/"]
    assert keys_between("churn", NOW - timedelta(days=1), NOW + timedelta(days=3), list_keys) == keys


def test_uploads_route_by_their_key():
    assert dataset_of_upload("outcomes/churn/2026-12-01.csv") == ("churn", None)
    assert dataset_of_upload("outcomes/churn/late/batch.CSV") == ("churn", None)
    for key in ("outcomes/x.csv", "outcomes/Churn/a.csv", "outcomes/churn/a.json", "incoming/churn/a.csv"):
        assert dataset_of_upload(key)[0] is None


def test_objects_are_tagged_with_the_stricter_of_the_targets_and_the_row_ids_classification():
    assert classification_of(CATEGORY) == "internal"
    assert classification_of(SECRET_INTEGER) == "confidential"
    pii_ids = _contract(
        {"type": "boolean", "classification": "public"}, {"type": "string", "classification": "pii"}
    )
    assert classification_of(pii_ids) == "pii"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_every_bad_value_is_found_among_many_distinct_ones(bad_at):
    """The checks halve a chunk with a problem until each bad value is alone: none is missed."""
    rows = "".join(f",,{'x' if bad else 'r'}-{n},stay\n" for n, bad in enumerate(bad_at))
    found = _csv(CATEGORY, "request_id,index,row_id,label\n" + rows)
    assert [p.item for p in found.problems] == [n + 1 for n, bad in enumerate(bad_at) if bad]
    assert len(found.outcomes) == bad_at.count(False)
