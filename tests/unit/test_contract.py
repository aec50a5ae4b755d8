"""Data contracts: the documented example parses, contracts survive a JSON round trip, every broken
contract is refused with the field named, and features and classification follow the columns.

The full example and the reference tables are read out of docs/contracts.md, so the doc cannot rot.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

import pytest

from chalicelib.validation import Column, Contract, ContractError, DriftThresholds, FileFormat, Limits
from chalicelib.validation.contract import _COLUMN_KEYS, _TOP_KEYS, CLASSIFICATIONS, COLUMN_TYPES
from chalicelib.validation.issues import CODES, FATAL
from tests.support import PROJECT

DOC = PROJECT / "docs" / "contracts.md"
EXAMPLE_MARKER = "<!-- contract-example:"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def doc_example_text() -> str:
    """The JSON block that follows the example marker in docs/contracts.md."""
    text = doc_text()
    assert EXAMPLE_MARKER in text, "docs/contracts.md lost the marker before its full example"
    block = re.search(r"```json\n(.*?)\n```", text[text.index(EXAMPLE_MARKER) :], re.DOTALL)
    assert block is not None, "no ```json block after the example marker"
    return block.group(1)


def doc_example() -> dict[str, Any]:
    return json.loads(doc_example_text())


def doc_table(heading: str) -> dict[str, str]:
    """field -> default cell of the reference table under ``### heading`` (single-field rows only)."""
    text = doc_text()
    section = text[text.index(f"\n### {heading}\n") + 1 :]
    rows: dict[str, str] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        field = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) >= 3 else None
        if field:
            rows[field.group(1)] = cells[2]
    return rows


def minimal(**top: Any) -> dict[str, Any]:
    """A small valid contract: an id, a float feature, a category feature, a boolean target."""
    doc: dict[str, Any] = {
        "dataset": "orders",
        "target": "returned",
        "task": "classification",
        "row_id": "order_id",
        "columns": [
            {"name": "order_id", "type": "string", "classification": "internal"},
            {"name": "amount", "type": "float", "classification": "confidential", "min": 0},
            {"name": "channel", "type": "category", "classification": "public", "allowed": ["web", "shop"]},
            {"name": "returned", "type": "boolean", "classification": "internal"},
        ],
    }
    doc.update(top)
    return doc


def with_column(index: int, **fields: Any) -> dict[str, Any]:
    """``minimal()`` with column ``index`` changed (a field set to ... is removed)."""
    doc = minimal()
    column = doc["columns"][index]
    for key, value in fields.items():
        if value is ...:
            column.pop(key, None)
        else:
            column[key] = value
    return doc


def refused(document: Any) -> ContractError:
    with pytest.raises(ContractError) as caught:
        if isinstance(document, str | bytes):
            Contract.from_json(document)
        else:
            Contract.parse(document)
    return caught.value


# --- the documented example ------------------------------------------------------------------------


def test_the_full_example_in_the_docs_parses() -> None:
    contract = Contract.parse(doc_example())

    assert contract.dataset == "telco_churn"
    assert contract.target == "churned"
    assert contract.row_id == "record_id"
    assert contract.format.null_values == ("", "NA")
    assert contract.limits.max_rows == 5_000_000
    assert contract.drift.min_values == 200


def test_the_full_example_text_passes_the_strict_json_checks_too() -> None:
    # from_json also refuses NaN and repeated keys, which json.loads lets through.
    assert Contract.from_json(doc_example_text()) == Contract.parse(doc_example())


def test_the_full_example_uses_every_column_type_and_classification() -> None:
    contract = Contract.parse(doc_example())

    assert {c.type for c in contract.columns} == set(COLUMN_TYPES)
    assert {c.classification for c in contract.columns} == set(CLASSIFICATIONS)


def test_the_full_example_uses_every_field_of_the_format() -> None:
    doc = doc_example()

    assert set(doc) == _TOP_KEYS
    assert set().union(*doc["columns"]) == _COLUMN_KEYS
    assert set(doc["format"]) == {f.name for f in dataclasses.fields(FileFormat)}
    assert set(doc["limits"]) == {f.name for f in dataclasses.fields(Limits)}
    assert set(doc["drift"]) == {f.name for f in dataclasses.fields(DriftThresholds)}


def test_the_full_example_has_the_features_and_classification_the_doc_states() -> None:
    contract = Contract.parse(doc_example())

    assert [c.name for c in contract.features] == [
        "birth_year", "region", "plan", "contract_months", "tenure_months", "monthly_charges",
        "paperless_billing", "signup_at",
    ]  # fmt: skip
    assert contract.classification == "pii"


@pytest.mark.parametrize(
    ("heading", "cls"),
    [
        ("Top level", Contract),
        ("Column", Column),
        ("format", FileFormat),
        ("limits", Limits),
        ("drift", DriftThresholds),
    ],
)
def test_the_reference_tables_give_the_dataclass_defaults(heading: str, cls: type) -> None:
    table = doc_table(heading)
    documented = {
        name: json.loads(literal.group(1))
        for name, cell in table.items()
        if (literal := re.match(r"`([^`]*)`", cell))
    }
    defaults = {}
    for f in dataclasses.fields(cls):
        if f.name == "extensions":
            continue
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = dataclasses.asdict(f.default_factory())
        else:
            continue  # required: no default to document
        defaults[f.name] = list(value) if isinstance(value, tuple) else value
    assert set(table) >= {f.name for f in dataclasses.fields(cls)} - {"extensions"}
    for name, value in defaults.items():
        if isinstance(value, dict):
            assert table[name] == "all defaults", name
        else:
            assert documented[name] == value, name


def test_the_reason_code_table_lists_every_code_with_its_fatality() -> None:
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|.*\| (\*\*fatal\*\*|no) \|$", doc_text(), re.MULTILINE)

    assert [code for code, _ in rows] == list(CODES)
    assert {code for code, fatal in rows if fatal == "**fatal**"} == FATAL


# --- round trip ------------------------------------------------------------------------------------


def test_the_full_example_survives_a_json_round_trip() -> None:
    contract = Contract.parse(doc_example())

    assert Contract.from_json(contract.to_json()) == contract


def test_a_minimal_contract_survives_a_json_round_trip_with_its_defaults() -> None:
    contract = Contract.parse(minimal())

    again = Contract.from_json(contract.to_json())
    assert again == contract
    assert again.format == FileFormat()
    assert again.limits == Limits()
    assert again.drift == DriftThresholds()
    assert again.version == 1


def test_extension_sections_are_kept_verbatim_through_a_round_trip() -> None:
    contract = Contract.parse(minimal(training={"model": "gbm", "max_depth": 4}, promotion={"min_auc": 0.8}))

    assert contract.extensions == {
        "training": {"model": "gbm", "max_depth": 4},
        "promotion": {"min_auc": 0.8},
    }
    assert Contract.from_json(contract.to_json()) == contract


def test_the_error_names_the_field_and_reads_field_colon_message() -> None:
    error = refused(with_column(2, allowed=...))

    assert error.field == "columns[2].allowed"
    assert error.message == "is required for a category column (list its values)"
    assert str(error) == "columns[2].allowed: is required for a category column (list its values)"


# --- the document ----------------------------------------------------------------------------------


def test_invalid_json_text_is_refused() -> None:
    assert refused('{"dataset": "orders",').field == "contract"


def test_bytes_that_are_not_utf8_are_refused_as_invalid_json() -> None:
    assert refused(b"\xff\xfe{}").field == "contract"


def test_a_top_level_that_is_not_an_object_is_refused() -> None:
    assert refused("[]").field == "contract"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_the_json_are_refused(constant: str) -> None:
    text = json.dumps(minimal()).replace('"min": 0', f'"min": {constant}')

    assert refused(text).field == "contract"


def test_duplicate_keys_in_the_json_are_refused_naming_the_key() -> None:
    text = json.dumps(minimal()).replace('"task": "classification"', '"task": "classification", "task": "x"')

    assert refused(text).field == "task"


def test_unknown_top_level_key_is_refused() -> None:
    error = refused(minimal(owner="data-team"))

    assert error.field == "owner"
    assert "known:" in error.message


def test_unknown_column_key_is_refused() -> None:
    assert refused(with_column(1, unit="EUR")).field == "columns[1].unit"


@pytest.mark.parametrize("section", ["format", "limits", "drift"])
def test_unknown_key_in_a_section_is_refused(section: str) -> None:
    assert refused(minimal(**{section: {"colour": 1}})).field == f"{section}.colour"


@pytest.mark.parametrize("section", ["format", "limits", "drift"])
def test_a_section_that_is_not_an_object_is_refused(section: str) -> None:
    assert refused(minimal(**{section: []})).field == section


@pytest.mark.parametrize(
    ("where", "value"),
    [("min", True), ("max", False)],
)
def test_boolean_where_a_number_is_expected_in_a_column_is_refused(where: str, value: bool) -> None:
    error = refused(with_column(1, **{where: value}))

    assert error.field == f"columns[1].{where}"
    assert "boolean" in error.message


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("limits", "min_rows"),
        ("limits", "max_null_fraction"),
        ("drift", "psi"),
        ("drift", "bins"),
        ("format", "max_bytes"),
    ],
)
def test_boolean_where_a_number_is_expected_in_a_section_is_refused(section: str, key: str) -> None:
    assert refused(minimal(**{section: {key: True}})).field == f"{section}.{key}"


def test_a_float_where_an_integer_is_expected_is_refused() -> None:
    assert refused(minimal(limits={"min_rows": 10.0})).field == "limits.min_rows"


def test_a_string_where_a_boolean_is_expected_is_refused() -> None:
    assert refused(with_column(1, nullable="yes")).field == "columns[1].nullable"


# --- top level -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["dataset", "columns", "target", "task"])
def test_a_missing_required_top_level_field_is_refused(key: str) -> None:
    doc = minimal()
    del doc[key]

    error = refused(doc)
    assert error.field == key
    assert error.message == "is required"


@pytest.mark.parametrize("name", ["Orders", "orders/2026", "_orders", "", "a" * 64, "orders.csv"])
def test_a_bad_dataset_name_is_refused(name: str) -> None:
    assert refused(minimal(dataset=name)).field == "dataset"


def test_an_empty_column_list_is_refused() -> None:
    assert refused(minimal(columns=[])).field == "columns"


def test_a_column_that_is_not_an_object_is_refused() -> None:
    doc = minimal()
    doc["columns"].append("extra")

    assert refused(doc).field == "columns[4]"


def test_a_duplicate_column_name_is_refused_at_the_second_one() -> None:
    doc = minimal()
    doc["columns"].append({"name": "amount", "type": "integer", "classification": "public"})

    assert refused(doc).field == "columns[4].name"


def test_an_unknown_task_is_refused() -> None:
    assert refused(minimal(task="clustering")).field == "task"


def test_a_target_that_is_not_a_column_is_refused() -> None:
    assert refused(minimal(target="refund")).field == "target"


def test_a_nullable_target_is_refused() -> None:
    assert refused(with_column(3, nullable=True)).field == "target"


def test_a_regression_target_that_is_a_category_is_refused() -> None:
    error = refused(minimal(task="regression", target="channel"))

    assert error.field == "target"
    assert "integer or float" in error.message


@pytest.mark.parametrize("kind", ["boolean", "string", "timestamp"])
def test_a_regression_target_that_is_not_numeric_is_refused(kind: str) -> None:
    assert refused(with_column(3, type=kind) | {"task": "regression"}).field == "target"


def test_a_classification_target_that_is_a_float_is_refused() -> None:
    assert refused(minimal(target="amount")).field == "target"


@pytest.mark.parametrize("kind", ["string", "timestamp"])
def test_a_classification_target_that_is_text_or_time_is_refused(kind: str) -> None:
    assert refused(with_column(3, type=kind)).field == "target"


@pytest.mark.parametrize(
    ("task", "kind"), [("regression", "integer"), ("regression", "float"), ("classification", "integer")]
)
def test_numeric_targets_are_accepted_where_they_fit_the_task(task: str, kind: str) -> None:
    assert Contract.parse(with_column(3, type=kind) | {"task": task}).task == task


def test_a_row_id_that_is_not_a_column_is_refused() -> None:
    assert refused(minimal(row_id="id")).field == "row_id"


def test_a_row_id_equal_to_the_target_is_refused() -> None:
    assert refused(minimal(row_id="returned")).field == "row_id"


def test_a_nullable_row_id_is_refused() -> None:
    assert refused(with_column(0, nullable=True)).field == "row_id"


def test_a_null_row_id_means_no_row_id() -> None:
    assert Contract.parse(minimal(row_id=None)).row_id is None


def test_a_version_below_one_is_refused() -> None:
    assert refused(minimal(version=0)).field == "version"


# --- columns ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["name", "type", "classification"])
def test_a_missing_required_column_field_is_refused(key: str) -> None:
    assert refused(with_column(1, **{key: ...})).field == f"columns[1].{key}"


@pytest.mark.parametrize("name", ["1st", "total amount", "a,b", "x" * 129])
def test_a_bad_column_name_is_refused(name: str) -> None:
    assert refused(with_column(1, name=name)).field == "columns[1].name"


def test_an_unknown_column_type_is_refused() -> None:
    assert refused(with_column(1, type="decimal")).field == "columns[1].type"


def test_an_unknown_classification_is_refused() -> None:
    assert refused(with_column(1, classification="secret")).field == "columns[1].classification"


def test_min_greater_than_max_is_refused() -> None:
    error = refused(with_column(1, min=10, max=1))

    assert error.field == "columns[1].min"
    assert error.message == "10 is greater than max 1"


def test_min_equal_to_max_is_accepted() -> None:
    assert Contract.parse(with_column(1, min=5, max=5)).column("amount").max == 5.0


@pytest.mark.parametrize("kind", ["string", "boolean", "timestamp"])
def test_min_on_a_non_numeric_column_is_refused(kind: str) -> None:
    assert refused(with_column(0, type=kind, min=0)).field == "columns[0].min"


def test_max_alone_on_a_string_column_names_max() -> None:
    assert refused(with_column(0, max=10)).field == "columns[0].max"


def test_a_category_column_without_allowed_is_refused() -> None:
    assert refused(with_column(2, allowed=...)).field == "columns[2].allowed"


def test_an_empty_allowed_list_is_refused() -> None:
    assert refused(with_column(2, allowed=[])).field == "columns[2].allowed"


def test_an_allowed_value_listed_twice_is_refused() -> None:
    assert refused(with_column(2, allowed=["web", "web"])).field == "columns[2].allowed"


@pytest.mark.parametrize("kind", ["float", "boolean", "timestamp"])
def test_allowed_on_a_float_boolean_or_timestamp_column_is_refused(kind: str) -> None:
    assert refused(with_column(1, type=kind, min=..., allowed=["1"])).field == "columns[1].allowed"


@pytest.mark.parametrize(
    ("kind", "allowed", "field"),
    [
        ("integer", [1, "2"], "columns[1].allowed[1]"),
        ("integer", [1, 2.5], "columns[1].allowed[1]"),
        ("integer", [True, 1], "columns[1].allowed[0]"),
        ("category", ["web", 3], "columns[1].allowed[1]"),
        ("string", [None], "columns[1].allowed[0]"),
    ],
)
def test_an_allowed_member_of_the_wrong_type_is_refused(kind: str, allowed: list[Any], field: str) -> None:
    assert refused(with_column(1, type=kind, min=..., allowed=allowed)).field == field


def test_allowed_integers_on_an_integer_column_are_accepted() -> None:
    column = Contract.parse(with_column(1, type="integer", allowed=[1, 12, 24])).column("amount")

    assert column.allowed == (1, 12, 24)


def test_an_invalid_regex_pattern_is_refused() -> None:
    error = refused(with_column(0, pattern="ORD-[0-9"))

    assert error.field == "columns[0].pattern"
    assert "regular expression" in error.message


@pytest.mark.parametrize("kind", ["float", "integer", "boolean", "timestamp"])
def test_a_pattern_on_a_non_text_column_is_refused(kind: str) -> None:
    assert refused(with_column(1, type=kind, min=..., pattern="[0-9]+")).field == "columns[1].pattern"


def test_a_max_length_below_one_is_refused() -> None:
    assert refused(with_column(0, max_length=0)).field == "columns[0].max_length"


def test_a_feature_flag_that_is_not_a_boolean_is_refused() -> None:
    assert refused(with_column(1, feature="no")).field == "columns[1].feature"


# --- format, limits, drift -------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["", ";;", "\n", "\r", '"'])
def test_a_bad_delimiter_is_refused(delimiter: str) -> None:
    assert refused(minimal(format={"delimiter": delimiter})).field == "format.delimiter"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_one_character_delimiters_are_accepted(delimiter: str) -> None:
    assert Contract.parse(minimal(format={"delimiter": delimiter})).format.delimiter == delimiter


def test_a_quotechar_equal_to_the_delimiter_is_refused() -> None:
    assert refused(minimal(format={"delimiter": ";", "quotechar": ";"})).field == "format.quotechar"


@pytest.mark.parametrize("key", ["max_bytes", "max_decompressed_bytes", "max_field_bytes"])
def test_a_size_limit_below_one_is_refused(key: str) -> None:
    assert refused(minimal(format={key: 0})).field == f"format.{key}"


def test_a_null_value_that_is_not_a_string_is_refused() -> None:
    assert refused(minimal(format={"null_values": ["", None]})).field == "format.null_values[1]"


@pytest.mark.parametrize("key", ["max_null_fraction", "max_duplicate_row_fraction"])
@pytest.mark.parametrize("value", [1.5, -0.1])
def test_a_fraction_outside_zero_and_one_in_limits_is_refused(key: str, value: float) -> None:
    assert refused(minimal(limits={key: value})).field == f"limits.{key}"


def test_min_rows_below_one_is_refused() -> None:
    assert refused(minimal(limits={"min_rows": 0})).field == "limits.min_rows"


def test_max_rows_below_min_rows_is_refused() -> None:
    error = refused(minimal(limits={"min_rows": 100, "max_rows": 10}))

    assert error.field == "limits.max_rows"
    assert error.message == "10 is less than min_rows 100"


@pytest.mark.parametrize("bins", [1, 101])
def test_drift_bins_out_of_range_are_refused(bins: int) -> None:
    assert refused(minimal(drift={"bins": bins})).field == "drift.bins"


@pytest.mark.parametrize("bins", [2, 100])
def test_drift_bins_at_the_bounds_are_accepted(bins: int) -> None:
    assert Contract.parse(minimal(drift={"bins": bins})).drift.bins == bins


@pytest.mark.parametrize("psi", [0, -0.1])
def test_a_drift_psi_that_is_not_positive_is_refused(psi: float) -> None:
    assert refused(minimal(drift={"psi": psi})).field == "drift.psi"


@pytest.mark.parametrize("key", ["ks_pvalue", "js_distance", "missing_rate_delta", "max_drifted_fraction"])
def test_a_drift_fraction_above_one_is_refused(key: str) -> None:
    assert refused(minimal(drift={key: 1.01})).field == f"drift.{key}"


def test_a_stored_contract_with_the_old_max_drifted_fraction_still_parses_and_drops_it() -> None:
    contract = Contract.parse(minimal(drift={"max_drifted_fraction": 0.3}))
    assert contract.drift == DriftThresholds()
    assert "max_drifted_fraction" not in contract.to_dict()["drift"]


@pytest.mark.parametrize("min_values", [9, 5001, 0])
def test_drift_min_values_out_of_range_are_refused(min_values: int) -> None:
    assert refused(minimal(drift={"min_values": min_values})).field == "drift.min_values"


@pytest.mark.parametrize("min_values", [10, 100, 5000])
def test_drift_min_values_at_the_bounds_are_accepted(min_values: int) -> None:
    assert Contract.parse(minimal(drift={"min_values": min_values})).drift.min_values == min_values


# --- features and classification -------------------------------------------------------------------


def contract_with(*columns: dict[str, Any], target: str = "y", row_id: str | None = "id") -> Contract:
    base = [
        {"name": "id", "type": "string", "classification": "public"},
        {"name": "y", "type": "integer", "classification": "public"},
    ]
    return Contract.parse(
        {
            "dataset": "d",
            "target": target,
            "task": "classification",
            "row_id": row_id,
            "columns": [*base, *columns],
        }
    )


def test_features_exclude_the_target_and_the_row_id() -> None:
    contract = contract_with({"name": "x", "type": "float", "classification": "internal"})

    assert [c.name for c in contract.features] == ["x"]


def test_features_exclude_pii_columns_unless_marked_feature() -> None:
    contract = contract_with(
        {"name": "email", "type": "string", "classification": "pii"},
        {"name": "age", "type": "integer", "classification": "pii", "feature": True},
        {"name": "spend", "type": "float", "classification": "confidential"},
    )

    assert [c.name for c in contract.features] == ["age", "spend"]


def test_feature_false_excludes_any_column() -> None:
    contract = contract_with(
        {"name": "note", "type": "string", "classification": "public", "feature": False},
        {"name": "x", "type": "float", "classification": "public"},
    )

    assert [c.name for c in contract.features] == ["x"]


def test_feature_true_never_makes_the_target_or_row_id_a_feature() -> None:
    doc = {
        "dataset": "d",
        "target": "y",
        "task": "classification",
        "row_id": "id",
        "columns": [
            {"name": "id", "type": "string", "classification": "public", "feature": True},
            {"name": "y", "type": "integer", "classification": "public", "feature": True},
            {"name": "x", "type": "float", "classification": "public"},
        ],
    }

    assert [c.name for c in Contract.parse(doc).features] == ["x"]


def test_without_a_row_id_an_id_column_is_a_feature_like_any_other() -> None:
    contract = contract_with({"name": "x", "type": "float", "classification": "public"}, row_id=None)

    assert [c.name for c in contract.features] == ["id", "x"]


@pytest.mark.parametrize(
    ("classifications", "highest"),
    [
        (["public"], "public"),
        (["public", "internal"], "internal"),
        (["internal", "confidential", "public"], "confidential"),
        (["pii", "public"], "pii"),
        (["confidential", "pii", "internal"], "pii"),
    ],
)
def test_the_contract_classification_is_the_highest_of_its_columns(
    classifications: list[str], highest: str
) -> None:
    columns = [
        {"name": f"c{i}", "type": "float", "classification": level} for i, level in enumerate(classifications)
    ]
    contract = Contract.parse(
        {
            "dataset": "d",
            "target": "y",
            "task": "classification",
            "columns": [{"name": "y", "type": "integer", "classification": "public"}, *columns],
        }
    )

    assert contract.classification == highest


def test_confidential_and_pii_columns_are_sensitive() -> None:
    contract = Contract.parse(doc_example())

    assert {c.name for c in contract.columns if c.sensitive} == {
        "email", "birth_year", "monthly_charges", "last_complaint",
    }  # fmt: skip


def test_parse_does_not_modify_the_document() -> None:
    doc = doc_example()
    before = copy.deepcopy(doc)

    Contract.parse(doc)
    assert doc == before


# --- defects found while writing these tests, now fixed -------------------------------------------


@pytest.mark.parametrize(
    ("doc", "field"),
    [(minimal(dataset="orders\n"), "dataset"), (with_column(1, name="amount\n"), "columns[1].name")],
    ids=["dataset", "column"],
)
def test_a_name_with_a_trailing_newline_is_refused(doc: dict[str, Any], field: str) -> None:
    assert refused(doc).field == field


def test_a_number_that_overflows_to_infinity_is_refused() -> None:
    text = json.dumps(minimal()).replace('"min": 0', '"min": 1e400')

    assert refused(text).field == "columns[1].min"


def test_an_integer_too_large_for_a_float_is_refused_as_a_contract_error() -> None:
    text = json.dumps(minimal()).replace('"min": 0', '"min": 1' + "0" * 400)

    assert refused(text).field == "columns[1].min"


def test_max_length_on_a_non_text_column_is_refused() -> None:
    doc = with_column(1, max_length=5)
    assert refused(doc).field == "columns[1].max_length"
