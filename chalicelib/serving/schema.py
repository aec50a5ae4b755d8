"""A model version's input schema (``input_schema.json``): what it accepts, and how to feed ONNX.

The training job writes the schema beside ``model.onnx``: one entry per feature with its contract type,
nullability, bounds and allowed values, and the ONNX input it feeds (one ``[n, 1]`` tensor per
feature, ``double`` for numbers, booleans and timestamps, ``string`` for categories and strings). This
module turns rows into those tensors, checking every value on the way, so a request that cannot be
scored is refused with a ``Problem`` naming the record, the field and what is wrong, never a 500.

Two entry points, one set of rules:

* ``encode_records``: JSON records (``/predict``): numbers as JSON numbers, booleans as JSON
  ``true``/``false`` or as text in the contract's CSV spellings (``"yes"``, ``"0"``...), timestamps
  as ISO 8601 text (without a zone: UTC), categories and strings as text, null where the feature is
  nullable.
* ``encode_text``: CSV text (``holdout.csv``, batch input): empty cell = null, numbers by the one
  number grammar (``chalicelib.validation.numbers``, as validation and training read them), booleans
  as ``true``/``false`` (also ``1``/``0``, ``yes``/``no``...: the contract's spellings), timestamps as
  ISO 8601 or seconds since the epoch; header names trimmed as validation trims them.

Encodings (the training job's, ``jobs/training/pipeline.py``): null number -> NaN (the pipeline imputes
the training median), boolean -> 1.0 / 0.0 / NaN, null text -> ``""``. Numpy and the standard library
only: this runs in Lambda.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from chalicelib import errors
from chalicelib.validation import numbers
from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, header_names

NUMERIC_TYPES = ("integer", "float")
TEXT_TYPES = ("category", "string")
FEATURE_TYPES = (*NUMERIC_TYPES, "boolean", "timestamp", *TEXT_TYPES)
MISSING_TEXT = ""
MAX_PROBLEMS = 20  # a request with thousands of bad rows gets the first 20 named, and the count
_INF = (math.inf, -math.inf)
_NUMBER = (float, int)  # exact types: bool (a subclass of int) is not a number here
_EXACT_DOUBLE = 2.0**53  # beyond this a double cannot hold every integer: check such values exactly
# Up to this many records, the all-number fast path checks values in Python: numpy's fixed cost per
# call (~7 reductions, ~40-50 us) is more than a loop over a few records' values (~0.15 us each).
FEW_RECORDS = 8


@dataclass(frozen=True)
class Problem:
    """One reason a row cannot be scored: ``record`` is its 0-based index (None: the whole request)."""

    record: int | None
    field: str | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "field": self.field, "problem": self.problem}

    def __str__(self) -> str:
        where = [] if self.record is None else [f"record {self.record}"]
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


class InvalidInput(errors.ServingError, errors.InvalidInput):
    """Rows that cannot be scored; ``problems`` lists the first ``MAX_PROBLEMS``, ``count`` them all."""

    def __init__(self, problems: Sequence[Problem], count: int | None = None) -> None:
        self.problems = list(problems[:MAX_PROBLEMS])
        self.count = len(problems) if count is None else count
        more = f" (and {self.count - len(self.problems)} more)" if self.count > len(self.problems) else ""
        super().__init__("; ".join(str(p) for p in self.problems) + more)

    def details(self) -> dict[str, object]:
        return {"problems": [p.to_dict() for p in self.problems], "problem_count": self.count}


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    type: str
    nullable: bool
    onnx_input: str
    onnx_type: str
    min: float | None = None
    max: float | None = None
    allowed: frozenset[Any] | None = None
    numeric_input: bool = field(init=False)  # a double tensor (else string): read per value, so stored

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric_input", self.onnx_type != "string")


def _epoch(text: str) -> float:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class InputSchema:
    """A version's ``input_schema.json``, parsed once (a warm container reuses it)."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        try:
            self.task: str = doc["task"]
            self.features: list[FeatureSpec] = [self._feature(f) for f in doc["features"]]
            target = doc.get("target") or {}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"input schema is malformed: {exc!r}") from None
        if self.task not in ("classification", "regression"):
            raise ValueError(f"input schema: task {self.task!r} is not classification or regression")
        self.target_name: str | None = target.get("name")
        self.target_type: str | None = target.get("type")
        self.classes: list[Any] = list(doc.get("classes") or [])
        outputs = doc.get("outputs") or {}
        self.outputs: dict[str, str] = dict(outputs)
        self.doc = dict(doc)
        self.by_name = {f.name: f for f in self.features}
        self._numeric = [f for f in self.features if f.numeric_input]
        self._text = [f for f in self.features if not f.numeric_input]
        # For the fast path of all-number models (see _encode_numbers).
        self._all_numbers = bool(self.features) and all(f.type in NUMERIC_TYPES for f in self.features)
        self._names = [f.name for f in self.features]
        self._lows = np.array([-np.inf if f.min is None else f.min for f in self.features])
        self._highs = np.array([np.inf if f.max is None else f.max for f in self.features])
        self._integers = np.array(
            [j for j, f in enumerate(self.features) if f.type == "integer"], dtype=np.intp
        )
        self._checks = [
            (
                f.name,
                -np.inf if f.min is None else f.min,
                np.inf if f.max is None else f.max,
                f.type == "integer",
            )
            for f in self.features
        ]
        if len(self.by_name) != len(self.features):
            raise ValueError("input schema: a feature is listed twice")

    @staticmethod
    def _feature(doc: Mapping[str, Any]) -> FeatureSpec:
        kind = doc["type"]
        if kind not in FEATURE_TYPES:
            raise ValueError(f"feature {doc.get('name')!r}: type {kind!r} is not one of {FEATURE_TYPES}")
        allowed = doc.get("allowed")
        return FeatureSpec(
            name=str(doc["name"]),
            type=kind,
            nullable=bool(doc.get("nullable", False)),
            onnx_input=str(doc.get("onnx_input", doc["name"])),
            onnx_type=str(doc.get("onnx_type", "string" if kind in TEXT_TYPES else "double")),
            min=None if doc.get("min") is None else float(doc["min"]),
            max=None if doc.get("max") is None else float(doc["max"]),
            allowed=None if allowed is None else frozenset(allowed),
        )

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    # --- JSON records -----------------------------------------------------------------------------

    def encode_records(self, records: Sequence[Any]) -> dict[str, np.ndarray]:
        """JSON records -> ONNX feed; raises ``InvalidInput`` naming every problem (up to the cap)."""
        if self._all_numbers:
            feed = self._encode_numbers(records)
            if feed is not None:
                return feed
        problems: list[Problem] = []
        count = 0
        n = len(records)
        columns: dict[str, list[Any]] = {f.name: [None] * n for f in self.features}
        for i, record in enumerate(records):
            found = self._record_problems(i, record, columns)
            if found:
                count += len(found)
                if len(problems) < MAX_PROBLEMS:
                    problems.extend(found[: MAX_PROBLEMS - len(problems)])
        if count:
            raise InvalidInput(problems, count)
        return self._feed(columns)

    def _encode_numbers(self, records: Sequence[Any]) -> dict[str, np.ndarray] | None:
        """The fast path of a model whose features are all integer or float: clean records checked
        with numpy at once. None when any record needs a closer look (the exact path then names it)."""
        if len(records) <= FEW_RECORDS:
            return self._encode_few(records)
        names = self._names
        try:
            rows = [[record[name] for name in names] for record in records if len(record) == len(names)]
        except (KeyError, TypeError):
            return None
        if len(rows) != len(records) or not all(type(v) in _NUMBER for row in rows for v in row):
            return None  # a missing or unknown feature, a null, a string, a boolean...
        try:
            values = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond any double: the exact path names it
            return None
        if not (
            np.isfinite(values).all()
            and (np.abs(values) < _EXACT_DOUBLE).all()
            and (values >= self._lows).all()
            and (values <= self._highs).all()
            and (values[:, self._integers] == np.floor(values[:, self._integers])).all()
        ):
            return None
        return self._numbers_feed(values)

    def _encode_few(self, records: Sequence[Any]) -> dict[str, np.ndarray] | None:
        """``_encode_numbers`` for a few records, the same checks value by value in Python: a
        finite float or an int (not a bool), below 2**53 in absolute value, within the feature's
        bounds, integral for an integer feature; every feature present and no other."""
        checks = self._checks
        rows: list[list[float | int]] = []
        for record in records:
            if type(record) is not dict or len(record) != len(checks):
                return None
            row: list[float | int] = []
            for name, low, high, integer in checks:
                value: Any = record.get(name)
                kind = type(value)
                if kind is float:
                    if not (
                        -_EXACT_DOUBLE < value < _EXACT_DOUBLE  # also refuses NaN and infinities
                        and low <= value <= high
                        and (not integer or value.is_integer())
                    ):
                        return None
                elif kind is int:
                    if not (-_EXACT_DOUBLE < value < _EXACT_DOUBLE and low <= value <= high):
                        return None
                else:  # missing (None), null, a string, a boolean, a list...
                    return None
                row.append(value)
            rows.append(row)
        return self._numbers_feed(np.array(rows, dtype=np.float64).reshape(len(rows), len(checks)))

    def _numbers_feed(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Checked values (records x features) as one ``[n, 1]`` tensor per feature, sharing one array."""
        n_rows, n_features = values.shape
        block = np.ascontiguousarray(values.T).reshape(n_features, n_rows, 1)
        return {feature.onnx_input: block[j] for j, feature in enumerate(self.features)}

    def _record_problems(self, i: int, record: Any, columns: dict[str, list[Any]]) -> list[Problem]:
        if not isinstance(record, Mapping):
            return [Problem(i, None, f"a record must be a JSON object of features, got {_kind(record)}")]
        found: list[Problem] = []
        if len(record) != len(self.by_name) or not self.by_name.keys() >= record.keys():
            found.extend(
                Problem(i, str(name), "unknown feature: this model does not take it")
                for name in record
                if name not in self.by_name
            )
        for feature in self.features:
            name = feature.name
            if name not in record:
                found.append(Problem(i, name, f"missing: this model needs it ({feature.type})"))
                continue
            value = record[name]
            # The common case first: a finite number within bounds for a float feature.
            if (
                feature.type == "float"
                and type(value) is float
                and value == value  # not NaN
                and value not in _INF
                and (feature.min is None or value >= feature.min)
                and (feature.max is None or value <= feature.max)
            ):
                columns[name][i] = value
                continue
            try:
                columns[name][i] = self._json_value(feature, value)
            except ValueError as exc:
                found.append(Problem(i, name, str(exc)))
        return found

    def _json_value(self, feature: FeatureSpec, value: Any) -> Any:
        if value is None:
            if not feature.nullable:
                raise ValueError("null is not allowed: the contract says this feature is never null")
            return MISSING_TEXT if not feature.numeric_input else math.nan
        kind = feature.type
        if kind in NUMERIC_TYPES:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number ({kind}), got {_kind(value)}")
            if isinstance(value, int):  # exact: JSON integers can have any number of digits
                if abs(value) > numbers.LARGEST:
                    raise ValueError(f"too large for a number (beyond ±{numbers.LARGEST:.3g})")
                return self._bounded(feature, value)
            if not math.isfinite(value):
                raise ValueError("expected a finite number")
            if kind == "integer" and not value.is_integer():
                raise ValueError(f"expected an integer, got {value!r}")
            return self._bounded(feature, value)
        if kind == "boolean":
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            if isinstance(value, str):  # the contract's CSV spellings, as a CSV cell is read
                return self._boolean_text(value)
            raise ValueError(f"expected true or false, got {_kind(value)}")
        if kind == "timestamp":
            if not isinstance(value, str):
                raise ValueError(f"expected an ISO 8601 timestamp string, got {_kind(value)}")
            try:
                return _epoch(value)
            except ValueError:
                raise ValueError(f"{_clip(value)!r} is not an ISO 8601 timestamp") from None
        if not isinstance(value, str):
            raise ValueError(f"expected text ({kind}), got {_kind(value)}")
        return self._member(feature, value)

    # --- CSV text ---------------------------------------------------------------------------------

    def encode_text(
        self, header: Sequence[str], rows: Sequence[Sequence[str]], withheld: Collection[str] = ()
    ) -> dict[str, np.ndarray]:
        """CSV cells (a header and rows of text) -> ONNX feed; columns the model does not take are
        ignored; a missing column, a bad cell: ``InvalidInput``. Features named in ``withheld`` are
        absent on purpose (pii left out of a holdout) and fed as missing in every row."""
        position = {name: j for j, name in enumerate(header_names(header))}
        missing = [f.name for f in self.features if f.name not in position and f.name not in withheld]
        if missing:
            raise InvalidInput(
                [Problem(None, name, "missing column: this model needs it") for name in missing]
            )
        n = len(rows)
        columns: dict[str, list[Any]] = {f.name: [None] * n for f in self.features}
        problems: list[Problem] = []
        count = 0
        for feature in self.features:
            if feature.name not in position:  # withheld
                columns[feature.name] = [math.nan if feature.numeric_input else MISSING_TEXT] * n
                continue
            j = position[feature.name]
            column = columns[feature.name]
            for i, row in enumerate(rows):
                try:
                    column[i] = self._text_value(feature, row[j] if j < len(row) else "")
                except ValueError as exc:
                    count += 1
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(Problem(i, feature.name, str(exc)))
        if count:
            raise InvalidInput(problems, count)
        return self._feed(columns)

    def _text_value(self, feature: FeatureSpec, cell: str) -> Any:
        if cell == "":
            if not feature.nullable:
                raise ValueError("empty: the contract says this feature is never null")
            return MISSING_TEXT if not feature.numeric_input else math.nan
        kind = feature.type
        if kind in NUMERIC_TYPES:
            value, problem = numbers.read_number(cell, kind)
            if value is None:
                raise ValueError(numbers.describe(cell, kind, problem or numbers.NOT_A_NUMBER))
            return self._bounded(feature, value)
        if kind == "boolean":
            return self._boolean_text(cell)
        if kind == "timestamp":
            seconds = numbers.read_float(cell).value  # the holdout file carries seconds since the epoch
            if seconds is not None:
                return float(seconds)
            try:
                return _epoch(cell)
            except ValueError:
                raise ValueError(f"{_clip(cell)!r} is not an ISO 8601 timestamp") from None
        return self._member(feature, cell)

    def overflow_problems(self, feed: Mapping[str, np.ndarray], rows: Sequence[int]) -> list[Problem]:
        """The records whose scores overflowed, each named with its largest number (the likely cause)."""
        problems = []
        for i in rows:
            values = [(abs(float(feed[f.onnx_input][i, 0])), f.name) for f in self._numeric]
            values = [(size, name) for size, name in values if math.isfinite(size)]
            size, name = max(values, default=(math.nan, None))
            problems.append(
                Problem(
                    i,
                    name,
                    (f"{size:g} in absolute value " if name else "")
                    + "overflows this model's arithmetic (its score is not a finite number): "
                    "send values in the range it was trained on",
                )
            )
        return problems

    # --- shared -----------------------------------------------------------------------------------

    @staticmethod
    def _bounded(feature: FeatureSpec, number: int | float) -> float:
        """The number as a double, once within bounds (an int is compared exactly, not rounded)."""
        if feature.min is not None and number < feature.min:
            raise ValueError(f"{number:g} is below the minimum {feature.min:g}")
        if feature.max is not None and number > feature.max:
            raise ValueError(f"{number:g} is above the maximum {feature.max:g}")
        return float(number)

    @staticmethod
    def _boolean_text(text: str) -> float:
        """A boolean written as text: the contract's spellings (``true``/``false``, ``1``/``0``,
        ``yes``/``no``, ``t``/``f``, ``y``/``n``, any case, spaces around ignored), as validation reads them."""
        lowered = text.strip().lower()
        if lowered in BOOLEAN_TRUE:
            return 1.0
        if lowered in BOOLEAN_FALSE:
            return 0.0
        raise ValueError(f"{_clip(text)!r} is not a boolean (true/false, 1/0, yes/no, t/f, y/n)")

    @staticmethod
    def _member(feature: FeatureSpec, text: str) -> str:
        if feature.allowed is not None and text not in feature.allowed:
            shown = ", ".join(sorted(map(str, feature.allowed))[:10])
            raise ValueError(f"{_clip(text)!r} is not an allowed value (one of: {shown})")
        return text

    def _feed(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        """One ``[n, 1]`` tensor per feature; the numeric ones share one array (one conversion)."""
        numeric = self._numeric
        feed: dict[str, np.ndarray] = {}
        if numeric:
            n = len(columns[numeric[0].name])
            block = np.array([columns[f.name] for f in numeric], dtype=np.float64).reshape(len(numeric), n, 1)
            for j, feature in enumerate(numeric):
                feed[feature.onnx_input] = block[j]
        for feature in self._text:
            feed[feature.onnx_input] = np.array(columns[feature.name], dtype=str).reshape(-1, 1)
        return feed


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
