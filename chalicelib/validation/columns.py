"""Per-column checks and statistics, applied to a chunk of rows at a time with numpy.

A ``ColumnChecker`` sees a column's raw strings chunk by chunk, records issues (with the first
offending row) in the shared IssueLog, and keeps running statistics in bounded memory: counts,
min/max/mean/std, a reservoir sample of numeric values and category counts for drift.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, Column, FileFormat
from chalicelib.validation.dupes import DuplicateFinder, hash_strings
from chalicelib.validation.issues import IssueLog

MASK = "***"
EXAMPLE_CHARS = 40
MAX_TRACKED_CATEGORIES = 1000  # distinct values counted per text column before it counts as free text
RESERVOIR_SIZE = 5000
# OWASP CSV injection: a cell a spreadsheet would run as a formula.
FORMULA_START = ("=", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLEANS = np.array(sorted(BOOLEAN_TRUE | BOOLEAN_FALSE))
_TRUE = np.array(sorted(BOOLEAN_TRUE))


class ColumnChecker:
    def __init__(
        self, column: Column, fmt: FileFormat, track_unique: bool, seed: int = 0, partitions: int = 16
    ) -> None:
        self.column = column
        self.format = fmt
        self.count = 0
        self.nulls = 0
        self.n = 0  # numeric values seen (finite)
        self.total = 0.0
        self.total_sq = 0.0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.categories: dict[str, int] = {}
        self.free_text = False
        self.numeric = column.type in ("integer", "float")
        self._allowed = np.array([str(v) for v in column.allowed]) if column.allowed else None
        self._allowed_set = {str(v) for v in column.allowed} if column.allowed else set()
        self._pattern = re.compile(column.pattern) if column.pattern else None
        self._nulls = np.array(fmt.null_values)
        self._unique = DuplicateFinder(partitions) if track_unique else None
        self._reservoir: Any = None
        if self.numeric and column.classification != "pii":
            from chalicelib.validation.drift import Reservoir

            self._reservoir = Reservoir(capacity=RESERVOIR_SIZE, seed=seed)

    # --- feeding -----------------------------------------------------------------------------------

    def feed(
        self, raw: tuple[str, ...] | list[str], rows: np.ndarray, lines: np.ndarray, log: IssueLog
    ) -> None:
        if self._fast_feed(raw, rows):
            return
        values = np.asarray(raw, dtype=str)
        self.count += len(values)
        texts = raw  # the Python strings, for hashing without converting back from numpy
        null = values == self._nulls[0] if len(self._nulls) == 1 else np.isin(values, self._nulls)
        n_null = int(null.sum())
        if n_null:
            self.nulls += n_null
            if not self.column.nullable:
                self._issue(log, "NULL_NOT_ALLOWED", null, rows, lines, "an empty value", values)
            keep = ~null
            values, rows, lines = values[keep], rows[keep], lines[keep]
            texts = values.tolist()
        if not len(values):
            return
        kind = self.column.type
        if kind == "float":
            self._numbers(_floats_or_none(values), values, rows, lines, log)
        elif kind == "integer":
            self._integers(values, rows, lines, log)
        elif kind == "boolean":
            self._booleans(values, rows, lines, log)
        elif kind == "timestamp":
            self._timestamps(values, rows, lines, log)
        else:
            self._text(values, rows, lines, log)
        self._add_unique(texts, rows)

    def _fast_feed(self, raw: tuple[str, ...] | list[str], rows: np.ndarray) -> bool:
        """The common case, a clean chunk, without converting strings to a numpy text array.

        Works on the csv module's strings directly: numbers parsed in one C call, low-cardinality
        text counted with a Counter and checked once per distinct value. Returns False (nothing
        consumed) when the chunk has nulls or anything to report; the exact path then finds the
        rows and examples.
        """
        kind = self.column.type
        if self.free_text or kind == "timestamp" or any(null in raw for null in self.format.null_values):
            return False
        if self.numeric:
            try:
                # Integers parse as int64, with int()'s rules ("3.0" and "1e3" are not integers).
                parsed = np.array(raw, dtype=np.int64 if kind == "integer" else np.float64).astype(np.float64)
            except (ValueError, OverflowError):
                return False
            if not np.isfinite(parsed).all():
                return False
            lo, hi = self.column.min, self.column.max
            if (lo is not None and parsed.min() < lo) or (hi is not None and parsed.max() > hi):
                return False
            if self._allowed is not None and not np.isin(parsed, self._allowed.astype(np.float64)).all():
                return False
            self.count += len(parsed)
            self._accumulate(parsed)
        else:
            counts = Counter(raw)
            if len(raw) > 64 and len(counts) > len(raw) // 4:
                return False  # mostly distinct: the numpy path is faster
            distinct = list(counts)
            if kind == "boolean":
                lowered = [v.strip().lower() for v in distinct]
                if not all(v in BOOLEAN_TRUE or v in BOOLEAN_FALSE for v in lowered):
                    return False
                trues = sum(n for v, n in zip(lowered, counts.values(), strict=True) if v in BOOLEAN_TRUE)
                self.count += len(raw)
                self._count({"true": trues, "false": len(raw) - trues})
                self._add_unique(raw, rows)
                return True
            if self._allowed is not None and not self._allowed_set >= set(distinct):
                return False
            if self._pattern is not None and not all(self._pattern.fullmatch(v) for v in distinct):
                return False
            lengths = [len(v) for v in distinct]
            if self.column.max_length is not None and max(lengths) > self.column.max_length:
                return False
            if _formula_mask(np.asarray(distinct, dtype=str)).any():
                return False
            self.count += len(raw)
            lo_len, hi_len = min(lengths), max(lengths)
            self.min_length = lo_len if self.min_length is None else min(self.min_length, lo_len)
            self.max_length = hi_len if self.max_length is None else max(self.max_length, hi_len)
            self._count(dict(counts))
        self._add_unique(raw, rows)
        return True

    def _add_unique(self, texts: Sequence[str], rows: np.ndarray) -> None:
        if self._unique is not None:
            self._unique.add(hash_strings(texts), rows)

    def _accumulate(self, parsed: np.ndarray) -> None:
        self.n += len(parsed)
        self.total += float(parsed.sum())
        self.total_sq += float(np.square(parsed).sum())
        chunk_min, chunk_max = float(parsed.min()), float(parsed.max())
        self.minimum = chunk_min if self.minimum is None else min(self.minimum, chunk_min)
        self.maximum = chunk_max if self.maximum is None else max(self.maximum, chunk_max)
        if self._reservoir is not None:
            self._reservoir.add(parsed)

    def _numbers(
        self,
        parsed: np.ndarray | None,
        values: np.ndarray,
        rows: np.ndarray,
        lines: np.ndarray,
        log: IssueLog,
    ) -> None:
        if parsed is None:  # slow path: find the values that are not numbers
            parsed = np.array([_to_float(v) for v in values.tolist()])
            bad = np.isnan(parsed) & ~np.char.lower(np.char.strip(values)).__eq__("nan")
            if bad.any():
                code = "INVALID_INTEGER" if self.column.type == "integer" else "INVALID_FLOAT"
                self._issue(log, code, bad, rows, lines, "a value that is not a number", values)
                parsed, values, rows, lines = parsed[~bad], values[~bad], rows[~bad], lines[~bad]
        finite = np.isfinite(parsed)
        if not finite.all():
            self._issue(log, "NON_FINITE_NUMBER", ~finite, rows, lines, "NaN or infinity", values)
            parsed, values, rows, lines = parsed[finite], values[finite], rows[finite], lines[finite]
        if not len(parsed):
            return
        lo, hi = self.column.min, self.column.max
        if lo is not None or hi is not None:
            out = np.zeros(len(parsed), dtype=bool)
            if lo is not None:
                out |= parsed < lo
            if hi is not None:
                out |= parsed > hi
            if out.any():
                bounds = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
                self._issue(log, "OUT_OF_RANGE", out, rows, lines, f"a value outside {bounds}", values)
        if self._allowed is not None:
            not_allowed = ~np.isin(parsed, self._allowed.astype(np.float64))
            if not_allowed.any():
                self._issue(
                    log, "NOT_ALLOWED_VALUE", not_allowed, rows, lines, "a value not in 'allowed'", values
                )
        self._accumulate(parsed)

    def _integers(self, values: np.ndarray, rows: np.ndarray, lines: np.ndarray, log: IssueLog) -> None:
        try:
            parsed = values.astype(np.int64).astype(np.float64)
        except (ValueError, OverflowError):
            ints = [_to_int(v) for v in values.tolist()]
            bad = np.array([v is None for v in ints])
            self._issue(log, "INVALID_INTEGER", bad, rows, lines, "a value that is not an integer", values)
            keep = ~bad
            parsed = np.array([v for v in ints if v is not None], dtype=np.float64)
            values, rows, lines = values[keep], rows[keep], lines[keep]
        self._numbers(parsed, values, rows, lines, log)

    def _booleans(self, values: np.ndarray, rows: np.ndarray, lines: np.ndarray, log: IssueLog) -> None:
        lowered = np.char.lower(np.char.strip(values))
        bad = ~np.isin(lowered, _BOOLEANS)
        if bad.any():
            self._issue(log, "INVALID_BOOLEAN", bad, rows, lines, "a value that is not a boolean", values)
            lowered = lowered[~bad]
        trues = int(np.isin(lowered, _TRUE).sum())
        self._count({"true": trues, "false": len(lowered) - trues})

    def _timestamps(self, values: np.ndarray, rows: np.ndarray, lines: np.ndarray, log: IssueLog) -> None:
        unique, inverse = np.unique(values, return_inverse=True)
        seconds = np.array([_to_epoch(v) for v in unique.tolist()])[inverse]
        bad = np.isnan(seconds)
        if bad.any():
            self._issue(
                log,
                "INVALID_TIMESTAMP",
                bad,
                rows,
                lines,
                "a value that is not an ISO 8601 timestamp",
                values,
            )
            seconds = seconds[~bad]
        if len(seconds):
            lo, hi = float(seconds.min()), float(seconds.max())
            self.minimum = lo if self.minimum is None else min(self.minimum, lo)
            self.maximum = hi if self.maximum is None else max(self.maximum, hi)

    def _text(self, values: np.ndarray, rows: np.ndarray, lines: np.ndarray, log: IssueLog) -> None:
        column = self.column
        if self.free_text:  # ids and free text: (nearly) every value is distinct, sorting them buys nothing
            unique, inverse, counts = values, np.arange(len(values)), None
        else:
            unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        if self._allowed is not None:
            bad_unique = ~np.isin(unique, self._allowed)
            if bad_unique.any():
                code = "UNKNOWN_CATEGORY" if column.type == "category" else "NOT_ALLOWED_VALUE"
                self._issue(log, code, bad_unique[inverse], rows, lines, "a value not in 'allowed'", values)
        if self._pattern is not None:
            match = self._pattern.fullmatch
            bad_unique = np.array([match(v) is None for v in unique.tolist()])
            if bad_unique.any():
                self._issue(
                    log,
                    "PATTERN_MISMATCH",
                    bad_unique[inverse],
                    rows,
                    lines,
                    f"a value not matching {column.pattern!r}",
                    values,
                )
        lengths = np.char.str_len(unique)
        if column.max_length is not None and (lengths > column.max_length).any():
            too_long = (lengths > column.max_length)[inverse]
            self._issue(
                log,
                "VALUE_TOO_LONG",
                too_long,
                rows,
                lines,
                f"a value longer than {column.max_length}",
                values,
            )
        formula = _formula_mask(unique)
        if formula.any():
            self._issue(
                log,
                "FORMULA_INJECTION",
                formula[inverse],
                rows,
                lines,
                "a cell a spreadsheet would run",
                values,
            )
        lo, hi = int(lengths.min()), int(lengths.max())
        self.min_length = lo if self.min_length is None else min(self.min_length, lo)
        self.max_length = hi if self.max_length is None else max(self.max_length, hi)
        if counts is not None:
            self._count(dict(zip(unique.tolist(), counts.tolist(), strict=True)))

    def _count(self, counts: dict[str, int]) -> None:
        for value, n in counts.items():
            self.categories[value] = self.categories.get(value, 0) + n
        if len(self.categories) > MAX_TRACKED_CATEGORIES:
            self.free_text = True  # an id or free text: counting it would grow without bound
            self.categories = {}

    def _issue(
        self,
        log: IssueLog,
        code: str,
        mask: np.ndarray,
        rows: np.ndarray,
        lines: np.ndarray,
        what: str,
        values: np.ndarray,
    ) -> None:
        first = int(np.argmax(mask))
        example = self.example(str(values[first]))
        log.add(
            code,
            self.column.name,
            f"column {self.column.name!r} ({self.column.type}) has {what}, first at row {int(rows[first])}"
            + ("" if example == MASK else f": {example!r}"),
            row=int(rows[first]),
            line=int(lines[first]),
            count=int(mask.sum()),
            example=example,
        )

    def example(self, value: str) -> str:
        """A value as reports may show it: masked for confidential and pii columns."""
        if self.column.sensitive:
            return MASK
        return value if len(value) <= EXAMPLE_CHARS else value[:EXAMPLE_CHARS] + "…"

    # --- results -------------------------------------------------------------------------------------

    def finish(self, log: IssueLog) -> None:
        if self._unique is None:
            return
        duplicates, row = self._unique.duplicates()
        if duplicates:
            is_row_id = not self.column.unique
            log.add(
                "DUPLICATE_ROW_ID" if is_row_id else "DUPLICATE_VALUE",
                self.column.name,
                f"column {self.column.name!r} repeats a value {duplicates} time(s), first repeat at row {row}",
                row=row,
                count=duplicates,
            )

    def statistics(self) -> dict[str, Any]:
        column = self.column
        stats: dict[str, Any] = {
            "type": column.type,
            "classification": column.classification,
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": round(self.nulls / self.count, 6) if self.count else 0.0,
        }
        if self.numeric and self.n:
            mean = self.total / self.n
            variance = max(0.0, self.total_sq / self.n - mean * mean)
            stats.update(mean=mean, std=math.sqrt(variance))
            if not column.sensitive:  # an extreme is one row's value: not for confidential or pii data
                stats.update(min=self.minimum, max=self.maximum)
        elif (
            column.type == "timestamp"
            and self.minimum is not None
            and self.maximum is not None
            and not column.sensitive
        ):
            stats.update(
                min=datetime.fromtimestamp(self.minimum, UTC).isoformat(),
                max=datetime.fromtimestamp(self.maximum, UTC).isoformat(),
            )
        elif column.type in ("category", "string", "boolean"):
            if self.min_length is not None:
                stats.update(min_length=self.min_length, max_length=self.max_length)
            if self.free_text:
                stats["distinct"] = f">{MAX_TRACKED_CATEGORIES}"
            else:
                stats["distinct"] = len(self.categories)
                if not column.sensitive:  # values of confidential and pii columns never leave the data
                    top = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
                    stats["top"] = [{"value": v, "count": n} for v, n in top]
        return stats

    def profile(self) -> dict[str, Any] | None:
        """This column's part of the drift profile (None for pii and free-text columns).

        ``invalid`` counts the values that were neither empty nor readable as the column's type (not
        a number, NaN or infinity, not a boolean): they are in no sample and no count, and drift
        treats them as missing.
        """
        from chalicelib.validation import drift

        if self.column.classification == "pii":
            return None
        if self._reservoir is not None:
            unreadable = self.count - self.nulls - self.n  # self.n: the finite numbers read
            return drift.numeric_column_profile(self.count, self.nulls, self._reservoir, unreadable)
        if self.column.type in ("category", "boolean") or (
            self.column.type == "string" and not self.free_text
        ):
            # Every readable value is counted; a free-text column's counts were dropped, not its values.
            unreadable = 0 if self.free_text else self.count - self.nulls - sum(self.categories.values())
            return drift.categorical_column_profile(self.count, self.nulls, dict(self.categories), unreadable)
        return None

    def close(self) -> None:
        if self._unique is not None:
            self._unique.close()


def _floats_or_none(values: np.ndarray) -> np.ndarray | None:
    """All values parsed in C, or None when one is not a number (the slow path finds which)."""
    try:
        return values.astype(np.float64)
    except ValueError:
        return None


def _to_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def _to_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _to_epoch(value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return math.nan
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _formula_mask(values: np.ndarray) -> np.ndarray:
    """Cells a spreadsheet would run as a formula (OWASP CSV injection)."""
    first = values.astype("<U1")
    mask = np.isin(first, FORMULA_START)
    # '+' and '-' start formulas too, but also plain signed numbers ("-3.5"), which are harmless.
    signed = np.flatnonzero(np.isin(first, ("+", "-")))
    for i in signed.tolist():
        value = str(values[i])
        mask[i] = len(value) > 1 and not NUMBER.match(value)
    return mask
