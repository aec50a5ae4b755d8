"""CSV files -> typed columns, as the contract declares them.

The files were validated upstream (issue 3), so this reader is simple: the csv module, the
contract's delimiter, quote character and null values, header names matched as validation matches
them (``contract.header_names``: trimmed), numbers read by the one grammar
(``chalicelib.validation.numbers``), and a clear error if a value still does not parse. Types:

* integer, float -> float64, NaN for null
* boolean        -> float64 0/1, NaN for null (the model sees it as a number; so does ONNX)
* category, string -> object array of str, None for null
* timestamp      -> float64 seconds since the Unix epoch (naive values are UTC), NaN for null.
  Timestamps are parsed but are not model features unless the contract marks the column
  ``"feature": true`` (see ``pipeline.model_columns``): a date is usually when a row was recorded,
  and a model trained on it extrapolates badly to the future it serves.

Each row also gets its split key: the row id when the contract has one (a number by its value, as
validation compares ids: ``03`` is ``3``), else the row's content (its fields in contract column
order, JSON-encoded), so quoting, line endings or column order in a file do not move a row to
another split.

Several files are one snapshot, read oldest upload first (the data manifest's order): a row that a
later file holds again (the same row id, or the same values without one:
``chalicelib.validation.rowkeys``) replaces its earlier copy, so the newest upload wins and each row
is trained on once and lands in one split. Repeats within one file are left alone (validation
refuses repeated row ids; without a row id the contract's duplicate-row limit governs them).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, cast

import numpy as np

from chalicelib.validation import numbers, rowkeys
from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, Column, Contract, header_names

Source = str | os.PathLike[str] | bytes | IO[str] | IO[bytes]
NUMERIC_TYPES = ("integer", "float", "boolean", "timestamp")


@dataclass
class Table:
    """Typed columns of all rows of one or more CSV files, keyed by column name."""

    columns: dict[str, np.ndarray]
    keys: list[str]  # split key per row (row id or row content)
    sources: list[str] = field(default_factory=list)  # where the rows came from, for the model card
    # Per row, the index of its source in ``sources`` (the promotion stage reports the holdout by upload).
    origins: list[int] = field(default_factory=list)
    read: int = 0  # rows in the files, before later copies replaced earlier ones

    @property
    def n_rows(self) -> int:
        return len(self.keys)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def take(self, index: np.ndarray) -> Table:
        """The rows selected by a boolean mask or integer index."""
        keys = np.asarray(self.keys, dtype=object)[index].tolist()
        origins = np.asarray(self.origins, dtype=np.int64)[index].tolist() if self.origins else []
        return Table(
            {k: v[index] for k, v in self.columns.items()}, keys, list(self.sources), origins, self.read
        )

    @property
    def replaced(self) -> int:
        """Rows of earlier files that a later file's copy replaced."""
        return self.read - self.n_rows


def load_table(sources: Source | Iterable[Source], contract: Contract) -> Table:
    """Read CSV files (paths, bytes or open streams, text or binary), oldest upload first, into one
    typed Table holding each row once: a later file's copy of a row replaces an earlier one's."""
    listed: list[Source] = (
        [sources]  # type: ignore[list-item]
        if isinstance(sources, str | bytes | os.PathLike) or hasattr(sources, "read")
        else list(sources)
    )
    raw: dict[str, list[str | None]] = {c.name: [] for c in contract.columns}
    keys: list[str] = []
    names: list[str] = []
    origins: list[int] = []  # which file each row came from
    for number, source in enumerate(listed):
        name = os.fspath(source) if isinstance(source, str | os.PathLike) else f"stream {number}"
        names.append(str(name))
        before = len(keys)
        with _open_text(source, contract) as text:
            _read_rows(text, str(name), contract, raw, keys)
        origins += [number] * (len(keys) - before)
    read = len(keys)
    keep = _newest_copies(contract, raw, np.asarray(origins, dtype=np.int64))
    if keep is not None:
        raw = {name: [v for v, k in zip(values, keep, strict=True) if k] for name, values in raw.items()}
        keys = [key for key, k in zip(keys, keep, strict=True) if k]
        # The surviving copy's upload is the row's origin (the holdout's slices read it).
        origins = [o for o, k in zip(origins, keep, strict=True) if k]
    columns = {c.name: _typed(c, raw[c.name]) for c in contract.columns}
    return Table(columns, keys, names, origins, read)


def _newest_copies(
    contract: Contract, raw: dict[str, list[str | None]], origins: np.ndarray
) -> np.ndarray | None:
    """Which rows to keep: those of the last file holding their identity (None: all of them)."""
    if len(origins) == 0 or origins[-1] == origins[0]:
        return None  # one file: nothing to replace
    identities, _ = rowkeys.row_keys(contract, raw, frozenset())  # nulls are None already
    # Sorted by identity, then file: each identity's group ends with its newest file.
    order = np.lexsort((origins, identities))
    sorted_ids = identities[order]
    starts = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]
    ends = np.r_[starts[1:], True]
    group = np.cumsum(starts) - 1
    newest = np.empty_like(origins)
    newest[order] = origins[order][ends][group]
    keep = origins == newest
    return None if keep.all() else keep


@contextmanager
def _open_text(source: Source, contract: Contract) -> Iterator[IO[str]]:
    """The source as text; closes only what it opened (a caller's stream stays open)."""
    encoding = "utf-8-sig" if contract.format.allow_bom else "utf-8"
    if isinstance(source, bytes):
        yield io.StringIO(codecs.decode(source, encoding), newline="")
    elif isinstance(source, str | os.PathLike):
        with open(source, encoding=encoding, newline="") as text:
            yield text
    elif isinstance(source.read(0), bytes):
        wrapper = io.TextIOWrapper(cast(IO[bytes], source), encoding=encoding, newline="")
        try:
            yield wrapper
        finally:
            wrapper.detach()
    else:
        yield cast(IO[str], source)


def _read_rows(
    text: Iterable[str], name: str, contract: Contract, raw: dict[str, list[str | None]], keys: list[str]
) -> None:
    reader = csv.reader(text, delimiter=contract.format.delimiter, quotechar=contract.format.quotechar)
    header = next(reader, None)
    if header is None:
        return  # an empty file has no rows
    position = {column: i for i, column in enumerate(header_names(header))}
    missing = [c for c in contract.column_names if c not in position]
    if missing:
        raise ValueError(f"{name}: the header lacks column(s) {', '.join(missing)}")
    order = [position[c] for c in contract.column_names]
    nulls = set(contract.format.null_values)
    width = len(header)
    row_id = next((c for c in contract.columns if c.name == contract.row_id), None)
    for row in reader:
        if not row:
            continue  # a blank line
        if len(row) != width:
            raise ValueError(f"{name} line {reader.line_num}: {len(row)} fields, the header has {width}")
        values = [row[i] for i in order]
        for column, value in zip(contract.column_names, values, strict=True):
            raw[column].append(None if value in nulls else value)
        if row_id is not None:
            keys.append(rowkeys.id_text(row_id, row[position[row_id.name]]))
        else:
            keys.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")))


def _typed(column: Column, values: list[str | None]) -> np.ndarray:
    if column.type in ("integer", "float"):
        return np.array([math.nan if v is None else _number(column, v) for v in values], dtype=np.float64)
    if column.type == "boolean":
        return np.array([math.nan if v is None else _boolean(column, v) for v in values], dtype=np.float64)
    if column.type == "timestamp":
        return np.array(
            [math.nan if v is None else epoch_seconds(v, column.name) for v in values], dtype=np.float64
        )
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _number(column: Column, value: str) -> float:
    try:
        return numbers.to_float(value, column.type)
    except ValueError as exc:
        raise ValueError(f"column {column.name}: {exc}") from None


def _boolean(column: Column, value: str) -> float:
    lowered = value.strip().lower()
    if lowered in BOOLEAN_TRUE:
        return 1.0
    if lowered in BOOLEAN_FALSE:
        return 0.0
    raise ValueError(f"column {column.name}: {value!r} is not a boolean")


def epoch_seconds(value: str, column: str = "timestamp") -> float:
    """ISO 8601 text -> seconds since the epoch; a value without a zone is UTC (as validation reads it)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"column {column}: {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
