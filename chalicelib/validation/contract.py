"""Data contracts: what a dataset's CSV uploads must look like. Documented in docs/contracts.md.

A contract is JSON. ``Contract.parse`` checks it strictly (unknown keys, wrong types, impossible
ranges, a target that is not a column...) and raises ContractError naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.settings import DATASET_NAME
from chalicelib.validation.capacity import MAX_COLUMNS
from chalicelib.validation.exceptions import ContractError

COLUMN_TYPES = ("integer", "float", "boolean", "category", "string", "timestamp")
CLASSIFICATIONS = ("public", "internal", "confidential", "pii")
# Strictness order: an object holding several columns carries the highest of their classifications.
CLASSIFICATION_RANK = {name: rank for rank, name in enumerate(CLASSIFICATIONS)}
TASKS = ("classification", "regression")
SENSITIVE = frozenset({"confidential", "pii"})
BOOLEAN_TRUE = frozenset({"true", "1", "yes", "t", "y"})
BOOLEAN_FALSE = frozenset({"false", "0", "no", "f", "n"})
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


def header_names(cells: Sequence[str]) -> list[str]:
    """A CSV header's cells as column names: whitespace around each trimmed (spaces, tabs, no-break
    spaces...), case kept. Validation, the training job and serving all match names this way."""
    return [cell.strip() for cell in cells]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    classification: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    pattern: str | None = None
    unique: bool = False
    max_length: int | None = None
    feature: bool | None = None  # None: a feature unless target, row id or pii
    description: str = ""

    @property
    def sensitive(self) -> bool:
        return self.classification in SENSITIVE


@dataclass(frozen=True)
class FileFormat:
    delimiter: str = ","
    quotechar: str = '"'
    max_bytes: int = 5 * 1024**3  # largest upload accepted (compressed size if compressed)
    max_decompressed_bytes: int = 20 * 1024**3  # largest a compressed upload may expand to
    max_field_bytes: int = 1024 * 1024
    allow_bom: bool = False
    allow_multiline_fields: bool = False
    null_values: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class Limits:
    min_rows: int = 1
    max_rows: int | None = None
    max_null_fraction: float = 1.0  # share of all cells of nullable columns that may be null
    max_duplicate_row_fraction: float = 1.0


# drift.min_values: below 10 values a verdict is a guess; above 5,000 (the numeric reservoir's size)
# a numeric feature could never be judged.
MIN_DRIFT_VALUES = 10
MAX_DRIFT_VALUES = 5000
# Before issue 13 the dataset drifted when more than this share of features drifted, so one badly
# shifted feature could hide behind stable ones. Stored contracts may still hold it: it is accepted
# (and checked) but no longer used or written.
LEGACY_DRIFT_KEY = "max_drifted_fraction"


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2  # population stability index above which a shift is large enough to count
    # The upload's false-alarm budget: each of its m tests is run at ks_pvalue / m (docs/contracts.md).
    ks_pvalue: float = 0.01
    js_distance: float = 0.1  # Jensen-Shannon distance above which a category mix change counts
    missing_rate_delta: float = 0.1  # absolute change in the share of missing or unreadable values
    bins: int = 10
    min_values: int = 100  # fewer values (a feature) or rows (the upload) than this: insufficient_data


@dataclass(frozen=True)
class Contract:
    dataset: str
    columns: tuple[Column, ...]
    target: str
    task: str
    row_id: str | None = None
    version: int = 1
    description: str = ""
    format: FileFormat = field(default_factory=FileFormat)
    limits: Limits = field(default_factory=Limits)
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    # Later stages keep their settings here (validated by their own modules): training, promotion...
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def features(self) -> list[Column]:
        """Columns a model may use: not the target, not the row id, pii only if marked feature."""
        return [
            c
            for c in self.columns
            if c.name not in (self.target, self.row_id)
            and (c.feature if c.feature is not None else c.classification != "pii")
        ]

    @property
    def classification(self) -> str:
        """The highest classification of any column: what objects holding the data are tagged."""
        return max((c.classification for c in self.columns), key=CLASSIFICATION_RANK.__getitem__)

    @classmethod
    def parse(cls, document: Any) -> Contract:
        return _parse_contract(document)

    @classmethod
    def from_json(cls, text: str | bytes) -> Contract:
        try:
            document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
        except ContractError:
            raise
        except (ValueError, TypeError) as exc:
            raise ContractError("contract", f"is not valid JSON: {exc}") from exc
        except RecursionError:
            raise ContractError("contract", "is nested too deeply to be a contract") from None
        return cls.parse(document)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "dataset": self.dataset,
            "version": self.version,
            "description": self.description,
            "target": self.target,
            "task": self.task,
            "row_id": self.row_id,
            "columns": [_column_dict(c) for c in self.columns],
            "format": _drop_none(asdict(self.format)),
            "limits": _drop_none(asdict(self.limits)),
            "drift": asdict(self.drift),
        }
        doc.update(self.extensions)
        return {k: v for k, v in doc.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def _column_dict(column: Column) -> dict[str, Any]:
    doc = _drop_none(asdict(column))
    for key, default in (("nullable", False), ("unique", False), ("description", "")):
        if doc.get(key) == default:
            doc.pop(key)
    if "allowed" in doc:
        doc["allowed"] = list(doc["allowed"])
    return doc


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in doc.items() if v is not None}


def _reject_constant(name: str) -> Any:
    raise ContractError("contract", f"{name} is not allowed in a contract (use a number or null)")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ContractError(key, "appears twice in the same object")
        doc[key] = value
    return doc


# --- parsing -------------------------------------------------------------------------------------

_TOP_KEYS = {
    "dataset", "version", "description", "columns", "target", "task", "row_id", "format", "limits", "drift",
}  # fmt: skip
EXTENSION_KEYS = {"training", "promotion", "serving", "monitoring"}
FIELDS = tuple(sorted(_TOP_KEYS | EXTENSION_KEYS))  # a contract document's top-level fields
_COLUMN_KEYS = {
    "name", "type", "classification", "nullable", "min", "max", "allowed", "pattern", "unique",
    "max_length", "feature", "description",
}  # fmt: skip


def _require(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise ContractError(f"{where}{key}", "is required")
    return doc[key]


def _check_keys(doc: Any, allowed: set[str], where: str) -> None:
    if not isinstance(doc, dict):
        raise ContractError(where.rstrip(".") or "contract", "must be a JSON object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ContractError(
            f"{where}{unknown[0]}", f"is not a known field (known: {', '.join(sorted(allowed))})"
        )


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    # bool is an int in Python; a contract saying `"min": true` is a mistake.
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ContractError(where, f"must be {what}, not a boolean")
    if not isinstance(value, kind):
        raise ContractError(where, f"must be {what}, not {type(value).__name__}")
    return value


def _number(value: Any, where: str) -> float:
    try:
        number = float(_typed(value, (int, float), where, "a number"))
    except OverflowError:
        raise ContractError(where, "is too large to be a number") from None
    if not math.isfinite(number):
        raise ContractError(where, f"must be a finite number, not {number}")
    return number


# A contract's numbers end up in DynamoDB (runs, lineage), whose numbers hold 38 digits, and in
# float() calls of the sections' checks: anything larger is refused before any of them reads it.
MAX_MAGNITUDE = 10**38
MAX_VERSION = 99_999_999


def _check_numbers(value: Any, where: str) -> None:
    """Every number in the document is finite and below ``MAX_MAGNITUDE``; ContractError naming it."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_MAGNITUDE < value < MAX_MAGNITUDE:
            raise ContractError(where or "contract", "is beyond any number a contract holds (±1e38)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ContractError(where or "contract", "must be a finite number (beyond ±1.8e308 is not)")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_numbers(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_numbers(inner, f"{where}[{i}]")


def _parse_contract(doc: Any) -> Contract:
    _check_keys(doc, _TOP_KEYS | EXTENSION_KEYS, "")
    _check_numbers(doc, "")
    dataset = _typed(_require(doc, "dataset", ""), str, "dataset", "a string")
    if not DATASET_NAME.fullmatch(dataset):
        raise ContractError("dataset", f"{dataset!r} must be 1-63 lowercase letters, digits, '-' or '_'")
    raw_columns = _typed(_require(doc, "columns", ""), list, "columns", "a list")
    if not raw_columns:
        raise ContractError("columns", "must list at least one column")
    if len(raw_columns) > MAX_COLUMNS:
        raise ContractError(
            "columns", f"lists {len(raw_columns):,} columns; at most {MAX_COLUMNS:,} are allowed"
        )
    columns = tuple(_parse_column(c, f"columns[{i}].") for i, c in enumerate(raw_columns))
    seen: set[str] = set()
    for i, column in enumerate(columns):
        if column.name in seen:
            raise ContractError(f"columns[{i}].name", f"{column.name!r} is declared twice")
        seen.add(column.name)

    task = _typed(_require(doc, "task", ""), str, "task", "a string")
    if task not in TASKS:
        raise ContractError("task", f"{task!r} is not one of {', '.join(TASKS)}")
    target = _typed(_require(doc, "target", ""), str, "target", "a string")
    if target not in seen:
        raise ContractError("target", f"{target!r} is not a declared column")
    target_column = next(c for c in columns if c.name == target)
    if task == "regression" and target_column.type not in ("integer", "float"):
        raise ContractError(
            "target", f"a regression target must be integer or float, {target!r} is {target_column.type}"
        )
    if task == "classification" and target_column.type in ("float", "timestamp", "string"):
        raise ContractError(
            "target",
            f"a classification target must be integer, boolean or category, {target!r} is {target_column.type}",
        )
    if target_column.nullable:
        raise ContractError("target", f"the target column {target!r} cannot be nullable")
    row_id = doc.get("row_id")
    if row_id is not None:
        _typed(row_id, str, "row_id", "a string or null")
        if row_id not in seen:
            raise ContractError("row_id", f"{row_id!r} is not a declared column")
        if row_id == target:
            raise ContractError("row_id", "cannot be the target column")
        id_column = next(c for c in columns if c.name == row_id)
        if id_column.nullable:
            raise ContractError("row_id", f"the row id column {row_id!r} cannot be nullable")

    version = _typed(doc.get("version", 1), int, "version", "an integer")
    if not 1 <= version <= MAX_VERSION:
        raise ContractError("version", f"must be from 1 to {MAX_VERSION:,}")
    return Contract(
        dataset=dataset,
        columns=columns,
        target=target,
        task=task,
        row_id=row_id,
        version=version,
        description=_typed(doc.get("description", ""), str, "description", "a string"),
        format=_parse_format(doc.get("format", {})),
        limits=_parse_limits(doc.get("limits", {})),
        drift=_parse_drift(doc.get("drift", {})),
        extensions={k: doc[k] for k in EXTENSION_KEYS if k in doc},
    )


def _parse_column(doc: Any, where: str) -> Column:
    _check_keys(doc, _COLUMN_KEYS, where)
    name = _typed(_require(doc, "name", where), str, f"{where}name", "a string")
    if not COLUMN_NAME.fullmatch(name):
        raise ContractError(
            f"{where}name", f"{name!r} must start with a letter or '_' and use letters, digits, '_', '.', '-'"
        )
    kind = _typed(_require(doc, "type", where), str, f"{where}type", "a string")
    if kind not in COLUMN_TYPES:
        raise ContractError(f"{where}type", f"{kind!r} is not one of {', '.join(COLUMN_TYPES)}")
    classification = _typed(_require(doc, "classification", where), str, f"{where}classification", "a string")
    if classification not in CLASSIFICATIONS:
        raise ContractError(
            f"{where}classification", f"{classification!r} is not one of {', '.join(CLASSIFICATIONS)}"
        )
    lo = _number(doc["min"], f"{where}min") if doc.get("min") is not None else None
    hi = _number(doc["max"], f"{where}max") if doc.get("max") is not None else None
    if (lo is not None or hi is not None) and kind not in ("integer", "float"):
        raise ContractError(
            f"{where}{'min' if lo is not None else 'max'}",
            f"applies to integer and float columns, not {kind}",
        )
    if lo is not None and hi is not None and lo > hi:
        raise ContractError(f"{where}min", f"{lo:g} is greater than max {hi:g}")
    allowed = doc.get("allowed")
    if allowed is not None:
        _typed(allowed, list, f"{where}allowed", "a list")
        if not allowed:
            raise ContractError(f"{where}allowed", "must not be empty")
        if kind in ("float", "timestamp", "boolean"):
            raise ContractError(
                f"{where}allowed", f"applies to category, string and integer columns, not {kind}"
            )
        member = int if kind == "integer" else str
        for i, value in enumerate(allowed):
            _typed(value, member, f"{where}allowed[{i}]", "an integer" if member is int else "a string")
        if len(set(allowed)) != len(allowed):
            raise ContractError(f"{where}allowed", "lists a value twice")
        allowed = tuple(allowed)
    elif kind == "category":
        raise ContractError(f"{where}allowed", "is required for a category column (list its values)")
    pattern = doc.get("pattern")
    if pattern is not None:
        _typed(pattern, str, f"{where}pattern", "a string")
        if kind not in ("string", "category"):
            raise ContractError(f"{where}pattern", f"applies to string and category columns, not {kind}")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}, ((((...))))
            raise ContractError(f"{where}pattern", f"is not a valid regular expression: {exc}") from None
    max_length = doc.get("max_length")
    if max_length is not None:
        _typed(max_length, int, f"{where}max_length", "an integer")
        if kind not in ("string", "category"):
            raise ContractError(f"{where}max_length", f"applies to string and category columns, not {kind}")
        if max_length < 1:
            raise ContractError(f"{where}max_length", "must be 1 or more")
    feature = doc.get("feature")
    if feature is not None:
        _typed(feature, bool, f"{where}feature", "true or false")
    return Column(
        name=name,
        type=kind,
        classification=classification,
        nullable=_typed(doc.get("nullable", False), bool, f"{where}nullable", "true or false"),
        min=lo,
        max=hi,
        allowed=allowed,
        pattern=pattern,
        unique=_typed(doc.get("unique", False), bool, f"{where}unique", "true or false"),
        max_length=max_length,
        feature=feature,
        description=_typed(doc.get("description", ""), str, f"{where}description", "a string"),
    )


def _parse_format(doc: Any) -> FileFormat:
    defaults = FileFormat()
    _check_keys(doc, set(defaults.__dataclass_fields__), "format.")
    delimiter = _typed(doc.get("delimiter", defaults.delimiter), str, "format.delimiter", "a string")
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise ContractError(
            "format.delimiter", f"{delimiter!r} must be one character other than a quote or newline"
        )
    quotechar = _typed(doc.get("quotechar", defaults.quotechar), str, "format.quotechar", "a string")
    if len(quotechar) != 1 or quotechar == delimiter:
        raise ContractError(
            "format.quotechar", f"{quotechar!r} must be one character other than the delimiter"
        )
    sizes = {}
    for key in ("max_bytes", "max_decompressed_bytes", "max_field_bytes"):
        value = _typed(doc.get(key, getattr(defaults, key)), int, f"format.{key}", "an integer")
        if value < 1:
            raise ContractError(f"format.{key}", "must be 1 or more")
        sizes[key] = value
    nulls = _typed(doc.get("null_values", list(defaults.null_values)), list, "format.null_values", "a list")
    for i, value in enumerate(nulls):
        _typed(value, str, f"format.null_values[{i}]", "a string")
    return FileFormat(
        delimiter=delimiter,
        quotechar=quotechar,
        allow_bom=_typed(doc.get("allow_bom", False), bool, "format.allow_bom", "true or false"),
        allow_multiline_fields=_typed(
            doc.get("allow_multiline_fields", False), bool, "format.allow_multiline_fields", "true or false"
        ),
        null_values=tuple(nulls),
        **sizes,
    )


def _fraction(doc: dict[str, Any], key: str, default: float, where: str) -> float:
    value = _number(doc.get(key, default), f"{where}{key}")
    if not 0.0 <= value <= 1.0:
        raise ContractError(f"{where}{key}", f"{value:g} must be between 0 and 1")
    return value


def _parse_limits(doc: Any) -> Limits:
    _check_keys(doc, set(Limits.__dataclass_fields__), "limits.")
    min_rows = _typed(doc.get("min_rows", 1), int, "limits.min_rows", "an integer")
    if min_rows < 1:
        raise ContractError("limits.min_rows", "must be 1 or more")
    max_rows = doc.get("max_rows")
    if max_rows is not None:
        _typed(max_rows, int, "limits.max_rows", "an integer")
        if max_rows < min_rows:
            raise ContractError("limits.max_rows", f"{max_rows} is less than min_rows {min_rows}")
    return Limits(
        min_rows=min_rows,
        max_rows=max_rows,
        max_null_fraction=_fraction(doc, "max_null_fraction", 1.0, "limits."),
        max_duplicate_row_fraction=_fraction(doc, "max_duplicate_row_fraction", 1.0, "limits."),
    )


def _parse_drift(doc: Any) -> DriftThresholds:
    defaults = DriftThresholds()
    _check_keys(doc, set(defaults.__dataclass_fields__) | {LEGACY_DRIFT_KEY}, "drift.")
    _fraction(doc, LEGACY_DRIFT_KEY, 0.0, "drift.")  # checked as before, then dropped
    psi = _number(doc.get("psi", defaults.psi), "drift.psi")
    if psi <= 0:
        raise ContractError("drift.psi", "must be positive")
    bins = _typed(doc.get("bins", defaults.bins), int, "drift.bins", "an integer")
    if not 2 <= bins <= 100:
        raise ContractError("drift.bins", f"{bins} must be between 2 and 100")
    min_values = _typed(doc.get("min_values", defaults.min_values), int, "drift.min_values", "an integer")
    if not MIN_DRIFT_VALUES <= min_values <= MAX_DRIFT_VALUES:
        raise ContractError(
            "drift.min_values", f"{min_values} must be between {MIN_DRIFT_VALUES} and {MAX_DRIFT_VALUES:,}"
        )
    return DriftThresholds(
        psi=psi,
        ks_pvalue=_fraction(doc, "ks_pvalue", defaults.ks_pvalue, "drift."),
        js_distance=_fraction(doc, "js_distance", defaults.js_distance, "drift."),
        missing_rate_delta=_fraction(doc, "missing_rate_delta", defaults.missing_rate_delta, "drift."),
        bins=bins,
        min_values=min_values,
    )
