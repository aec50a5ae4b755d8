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

from chalicelib.validation import numbers, privacy
from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, Column, FileFormat
from chalicelib.validation.dupes import DuplicateFinder, hash_strings
from chalicelib.validation.issues import IssueLog

MASK = "***"
EXAMPLE_CHARS = 40
MAX_TRACKED_CATEGORIES = 1000  # distinct values counted per text column before it counts as free text
RESERVOIR_SIZE = 5000
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
MAX_CATEGORY_CHARS = 1 << 20  # characters of the counted values of one text column
# OWASP CSV injection: a cell a spreadsheet would run as a formula.
FORMULA_START = ("=", "@", "\t", "\r")
_BOOLEANS = np.array(sorted(BOOLEAN_TRUE | BOOLEAN_FALSE))
_TRUE = np.array(sorted(BOOLEAN_TRUE))
# A cell of a chunk joined with line feeds that starts with a formula character (or a sign).
_FORMULA_AT_START = re.compile("(?:^|\n)[" + re.escape("".join(FORMULA_START)) + "+\\-]")


class ColumnChecker:
    def __init__(
        self,
        column: Column,
        fmt: FileFormat,
        unique: DuplicateFinder | None = None,
        seed: int = 0,
        sample_size: int = RESERVOIR_SIZE,
        max_categories: int = MAX_TRACKED_CATEGORIES,
        max_category_chars: int = MAX_CATEGORY_CHARS,
    ) -> None:
        self.column = column
        self.format = fmt
        self.count = 0
        self.nulls = 0
        self.n = 0  # numeric values seen (finite)
        self.mean = 0.0  # of the n values, and their sum of squared deviations (merged chunk by chunk)
        self.m2 = 0.0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.categories: dict[str, int] = {}
        self.free_text = False
        # Counting stops (the column is free text) past either figure: memory stays bounded.
        self._max_categories = max_categories
        self._max_category_chars = max_category_chars
        self._category_chars = 0
        self._distinct_floor = 0  # distinct values known when counting stopped
        self.numeric = column.type in ("integer", "float")
        self._allowed = np.array([str(v) for v in column.allowed]) if column.allowed else None
        self._allowed_set = {str(v) for v in column.allowed} if column.allowed else set()
        # Numbers are compared exactly: integers as integers (allowed values and bounds too).
        self._allowed_numbers = frozenset(column.allowed) if column.allowed and self.numeric else None
        self._allowed_int64 = np.array(
            [v for v in self._allowed_numbers or () if _INT64_MIN <= v <= _INT64_MAX], dtype=np.int64
        )
        if column.type == "integer":
            self._low: int | float | None = None if column.min is None else math.ceil(column.min)
            self._high: int | float | None = None if column.max is None else math.floor(column.max)
        else:
            self._low, self._high = column.min, column.max
        self._pattern = re.compile(column.pattern) if column.pattern else None
        self._chunk_pattern = chunk_pattern(column.pattern) if column.pattern else None
        self._nulls = np.array(fmt.null_values)
        self._unique = unique  # the row id's or a unique column's duplicate check
        # The last chunk's numbers, when its non-null cells were all clean numbers (else None), and
        # which cells they are (None: every cell): the row keys (``rowkeys``) reuse them.
        self.parsed: np.ndarray | None = None
        self.present: np.ndarray | None = None
        self._reservoir: Any = None
        if self.numeric and column.classification != "pii":
            from chalicelib.validation.drift import Reservoir

            self._reservoir = Reservoir(capacity=max(1, sample_size), seed=seed)

    # --- feeding -----------------------------------------------------------------------------------

    def feed(
        self, raw: tuple[str, ...] | list[str], rows: np.ndarray, lines: np.ndarray, log: IssueLog
    ) -> None:
        self.parsed = self.present = None
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
            self.present = keep
        if not len(values):
            return
        kind = self.column.type
        if self.numeric:
            identities = self._numbers(list(texts), values, rows, lines, log)
            if self._unique is not None:
                self._unique.add(identities, rows)
            return
        if kind == "boolean":
            self._booleans(values, rows, lines, log)
        elif kind == "timestamp":
            self._timestamps(values, rows, lines, log)
        else:
            self._text(values, rows, lines, log)
        self._add_unique(texts, rows)

    def _fast_feed(self, raw: tuple[str, ...] | list[str], rows: np.ndarray) -> bool:
        """The common case, a clean chunk, without converting strings to a numpy text array.

        Works on the csv module's strings directly: numbers parsed in one C call (nulls of a
        nullable column set aside first), low-cardinality text counted with a Counter and checked
        once per distinct value, free text checked against its pattern in one regular-expression
        call over the whole chunk. Returns False (nothing consumed) when the chunk has anything to
        report; the exact path then finds the rows and examples.
        """
        kind = self.column.type
        if kind == "timestamp":
            return False
        nulls = self.format.null_values
        # all(): no empty string, in one C loop (the usual null spelling is the empty cell alone)
        has_null = not all(raw) if nulls == ("",) else any(null in raw for null in nulls)
        if self.numeric:
            if not has_null:
                return self._fast_numbers(raw, raw, None, rows)
            if not self.column.nullable:
                return False
            if nulls == ("",):
                values = list(filter(None, raw))
                present = np.fromiter(map(bool, raw), dtype=bool, count=len(raw))
            else:
                null_set = frozenset(nulls)
                values = [v for v in raw if v not in null_set]
                present = ~np.fromiter(map(null_set.__contains__, raw), dtype=bool, count=len(raw))
            return self._fast_numbers(raw, values, present, rows)
        if has_null:
            return False
        if self.free_text:
            return self._fast_free_text(raw, rows)
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

    def _fast_numbers(
        self,
        raw: Sequence[str],
        values: Sequence[str],
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> bool:
        """``values``: the non-null cells of ``raw``, which are where ``present`` is True (None:
        every cell). Consumes the chunk when every value is a clean number within the limits."""
        if not values:  # every cell is null (and the column nullable)
            self.count += len(raw)
            self.nulls += len(raw)
            self.present = present
            return True
        parsed = self._parse_clean(values)
        if parsed is None or self._outside(parsed).any() or self._not_allowed(parsed).any():
            return False
        self.count += len(raw)
        self.nulls += len(raw) - len(values)
        self._accumulate(parsed.astype(np.float64, copy=False))
        if self._unique is not None:
            self._unique.add(_identities(parsed), rows if present is None else rows[present])
        self.parsed, self.present = parsed, present
        return True

    def _fast_free_text(self, raw: Sequence[str], rows: np.ndarray) -> bool:
        """A free-text string column (ids, names): its pattern, length limit and the formula scan
        over the chunk at once, without a numpy text array; False when any cell needs the exact path."""
        column = self.column
        if column.type != "string" or self._allowed is not None:
            return False
        if self._pattern is not None and self._chunk_pattern is None:
            return False
        joined = "\n".join(raw)
        if joined.count("\n") != len(raw) - 1:
            return False  # a cell holds a line feed
        if self._chunk_pattern is not None and self._chunk_pattern.fullmatch(joined) is None:
            return False
        if _FORMULA_AT_START.search(joined) is not None:
            return False  # a cell may start a formula ('+' and '-' ones are told apart exactly)
        lo_len, hi_len = min(map(len, raw)), max(map(len, raw))
        if column.max_length is not None and hi_len > column.max_length:
            return False
        self.count += len(raw)
        self.min_length = lo_len if self.min_length is None else min(self.min_length, lo_len)
        self.max_length = hi_len if self.max_length is None else max(self.max_length, hi_len)
        self._add_unique(raw, rows)
        return True

    def _add_unique(self, texts: Sequence[str], rows: np.ndarray) -> None:
        if self._unique is not None:
            self._unique.add(hash_strings(texts), rows)

    def _accumulate(self, parsed: np.ndarray) -> None:
        # Chan et al.'s pairwise update: exact for constant values and no cancellation, unlike
        # sum(x^2)/n - mean^2. Values near the largest double overflow: the statistic becomes null.
        with np.errstate(over="ignore", invalid="ignore"):
            n_chunk = len(parsed)
            mean_chunk = float(parsed.mean())
            m2_chunk = float(np.square(parsed - mean_chunk).sum())
            total = self.n + n_chunk
            delta = mean_chunk - self.mean
            self.mean += delta * n_chunk / total
            self.m2 += m2_chunk + delta * delta * self.n * n_chunk / total
            self.n = total
        chunk_min, chunk_max = float(parsed.min()), float(parsed.max())
        self.minimum = chunk_min if self.minimum is None else min(self.minimum, chunk_min)
        self.maximum = chunk_max if self.maximum is None else max(self.maximum, chunk_max)
        if self._reservoir is not None:
            self._reservoir.add(parsed)

    def _parse_clean(self, texts: Sequence[str]) -> np.ndarray | None:
        """All values parsed in C (int64 or float64), or None when one needs the grammar's exact
        reading: a character no grammatical number has (numpy reads numbers as Python does, which
        takes '1_00' and non-ASCII digits), a value beyond int64, a non-finite one, or not a number."""
        joined = "".join(texts)
        try:
            if self.column.type == "integer":
                if numbers.INTEGER_CHARS.search(joined):
                    return None
                return np.array(texts, dtype=np.int64)
            if numbers.FLOAT_CHARS.search(joined):
                return None
            parsed = np.array(texts, dtype=np.float64)
        except (ValueError, OverflowError):
            return None
        return parsed if np.isfinite(parsed).all() else None

    def _outside(self, parsed: np.ndarray) -> np.ndarray:
        """Values outside [min, max]; exact for int64 (the bounds are whole numbers for integers)."""
        out = np.zeros(len(parsed), dtype=bool)
        if self._low is not None:
            out |= parsed < self._low
        if self._high is not None:
            out |= parsed > self._high
        return out

    def _not_allowed(self, parsed: np.ndarray) -> np.ndarray:
        if self._allowed_numbers is None:
            return np.zeros(len(parsed), dtype=bool)
        return ~np.isin(parsed, self._allowed_int64)

    def _numbers(
        self,
        texts: list[str],
        values: np.ndarray,
        rows: np.ndarray,
        lines: np.ndarray,
        log: IssueLog,
    ) -> np.ndarray:
        """Checks the non-null cells of a numeric column; returns what their repeats are found by
        (``_identities``: by value, so ``03`` and ``3`` are one id; a cell that is not a number by
        its text's hash)."""
        parsed = self._parse_clean(texts)
        if parsed is not None:
            self.parsed = parsed
            self._range_issues(self._outside(parsed), self._not_allowed(parsed), rows, lines, log, values)
            self._accumulate(parsed.astype(np.float64, copy=False))
            return _identities(parsed)
        # The exact path: each distinct cell read by the grammar.
        unique, inverse = np.unique(values, return_inverse=True)
        readings = [numbers.read_number(v, self.column.type) for v in unique.tolist()]
        problem = np.array([r.problem or "" for r in readings])[inverse]
        invalid = problem == numbers.NOT_A_NUMBER
        if invalid.any():
            code, what = (
                ("INVALID_INTEGER", "a value that is not an integer")
                if self.column.type == "integer"
                else ("INVALID_FLOAT", "a value that is not a number")
            )
            self._issue(log, code, invalid, rows, lines, what, values)
        non_finite = problem == numbers.NOT_FINITE
        if non_finite.any():
            self._issue(log, "NON_FINITE_NUMBER", non_finite, rows, lines, "NaN or infinity", values)
        good_unique = np.array([r.value is not None for r in readings])
        outside = np.array(
            [r.value is not None and numbers.exceeds(r.value, self._low, self._high) for r in readings]
        )
        allowed = self._allowed_numbers
        not_allowed = np.array(
            [r.value is not None and allowed is not None and r.value not in allowed for r in readings]
        )
        too_large = problem == numbers.TOO_LARGE
        self._range_issues(outside[inverse] | too_large, not_allowed[inverse], rows, lines, log, values)
        good = good_unique[inverse]
        if good.any():
            as_float = np.array([float(r.value) if r.value is not None else math.nan for r in readings])
            self._accumulate(as_float[inverse][good])
        identities = np.fromiter(
            (_identity(r.value, text) for r, text in zip(readings, unique.tolist(), strict=True)),
            dtype=np.int64,
            count=len(readings),
        )
        return identities[inverse]

    def _range_issues(
        self,
        outside: np.ndarray,
        not_allowed: np.ndarray,
        rows: np.ndarray,
        lines: np.ndarray,
        log: IssueLog,
        values: np.ndarray,
    ) -> None:
        if outside.any():
            lo, hi = self.column.min, self.column.max
            if lo is None and hi is None:
                what = f"a value too large for a number (beyond ±{numbers.LARGEST:.3g})"
            else:
                what = f"a value outside [{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
            self._issue(log, "OUT_OF_RANGE", outside, rows, lines, what, values)
        if not_allowed.any():
            self._issue(
                log, "NOT_ALLOWED_VALUE", not_allowed, rows, lines, "a value not in 'allowed'", values
            )

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
        categories = self.categories
        for value, n in counts.items():
            if value in categories:
                categories[value] += n
            else:
                categories[value] = n
                self._category_chars += len(value)
        if len(categories) > self._max_categories or self._category_chars > self._max_category_chars:
            # An id, free text or long values: counting them would grow without bound.
            self.free_text = True
            self._distinct_floor = len(categories)
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
        if self.numeric and self.n and (not column.sensitive or privacy.enough_for_aggregate(self.n)):
            variance = self.m2 / self.n
            stats.update(
                mean=self.mean if math.isfinite(self.mean) else None,
                std=math.sqrt(variance) if math.isfinite(variance) else None,
            )
            if not column.sensitive:  # an extreme is one row's value: not for confidential or pii data
                stats.update(min=self.minimum, max=self.maximum)
        elif (
            column.type == "timestamp"
            and self.minimum is not None
            and self.maximum is not None
            and not column.sensitive
        ):
            stats.update(min=_iso(self.minimum), max=_iso(self.maximum))
        elif column.type in ("category", "string", "boolean"):
            if self.min_length is not None:
                stats.update(min_length=self.min_length, max_length=self.max_length)
            if self.free_text:
                stats["distinct"] = f">{self._distinct_floor - 1}"
            else:
                stats["distinct"] = len(self.categories)
                if not column.sensitive:  # values of confidential and pii columns never leave the data
                    top = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
                    stats["top"] = [{"value": v, "count": n} for v, n in top]
        return stats

    def profile(self) -> dict[str, Any] | None:
        """This column's part of the drift profile (None for pii and free-text columns; confidential
        ones as aggregates that cannot reveal a value: ``chalicelib.validation.privacy``).

        ``invalid`` counts the values that were neither empty nor readable as the column's type (not
        a number, NaN or infinity, not a boolean): they are in no sample and no count, and drift
        treats them as missing.
        """
        return privacy.mask_column_profile(self.column, self._profile())

    def _profile(self) -> dict[str, Any] | None:
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


def _identities(parsed: np.ndarray) -> np.ndarray:
    """What repeats of numbers are found by: an int64 value itself, a double's bits (with -0 as 0).
    Equal values give equal identities, in the fast and the exact path alike (``_identity``)."""
    if parsed.dtype == np.int64:
        return parsed
    return (parsed + 0.0).view(np.int64)


def _identity(value: int | float | None, text: str) -> int:
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else hash(numbers.key(value))
    if isinstance(value, float):
        return int(np.array([value + 0.0]).view(np.int64)[0])
    return hash(text)  # not a number: repeats of the same text, as for text columns


def _to_epoch(value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return math.nan
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _iso(seconds: float) -> str | None:
    """Seconds since the epoch as ISO 8601 in UTC; None outside years 1-9999 (a valid
    ``0001-01-01T00:00:00+01:00`` is in year 0 in UTC)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


def _formula_mask(values: np.ndarray) -> np.ndarray:
    """Cells a spreadsheet would run as a formula (OWASP CSV injection)."""
    first = values.astype("<U1")
    mask = np.isin(first, FORMULA_START)
    # '+' and '-' start formulas too, but also plain signed numbers ("-3.5"), which are harmless.
    signed = np.flatnonzero(np.isin(first, ("+", "-")))
    for i in signed.tolist():
        value = str(values[i])
        mask[i] = len(value) > 1 and not numbers.PLAIN_NUMBER.fullmatch(value)
    return mask


def chunk_pattern(pattern: str) -> re.Pattern[str] | None:
    """A pattern that fully matches a chunk's cells joined with line feeds exactly when
    ``pattern`` fully matches every cell (none holding a line feed), or None when that cannot be
    shown from the pattern's text (``_matches_no_line_feed``): then each cell is matched alone.

    When ``pattern`` can match no line feed, each repetition must match one whole cell: a match
    cannot stop inside a cell (the next character would have to be a line feed) nor run into the
    next one. So one C call checks a chunk.
    """
    if not _matches_no_line_feed(pattern):
        return None
    try:
        return re.compile(f"(?:{pattern})(?:\n(?:{pattern}))*")
    except re.error:
        return None


def _escaped_literal(char: str) -> bool:
    """A backslash and ``char`` stand for ``char`` itself (ASCII punctuation), not a class or a code."""
    return len(char) == 1 and char.isascii() and not char.isalnum() and not char.isspace()


def _matches_no_line_feed(pattern: str) -> bool:
    r"""True only for patterns built from parts that can never match a line feed, nor look around
    or refer back: literal characters other than a line feed, ``\d``, ``\w``, ``\b``, ``\B``,
    escaped punctuation, sets of those (not negated, no range across the line feed), groups ``(``
    and ``(?:``, alternation and quantifiers. Anything else (``.``, ``\s``, ``\D``, ``[^...]``,
    anchors, back-references, look-arounds, flags, escape codes) answers False, conservatively."""
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char in ".^$\n":
            return False
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped not in ("d", "w", "b", "B") and not _escaped_literal(escaped):
                return False
            i += 2
        elif char == "(":
            if pattern[i + 1 : i + 2] == "?":
                if pattern[i + 2 : i + 3] != ":":
                    return False
                i += 3
            else:
                i += 1
        elif char == "[":
            end = _set_end(pattern, i + 1)
            if end is None:
                return False
            i = end
        else:
            i += 1
    return True


def _set_end(pattern: str, i: int) -> int | None:
    """Where the set whose first item is at ``i`` ends, if no member of it can be a line feed."""
    n = len(pattern)
    if pattern[i : i + 1] == "^":
        return None
    first = True
    previous: str | None = None  # the last literal, which a '-' may make the start of a range
    while i < n:
        char = pattern[i]
        if char == "]" and not first:
            return i + 1
        first = False
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped in ("d", "w"):
                previous, i = None, i + 2
                continue
            if not _escaped_literal(escaped):
                return None
            literal, i = escaped, i + 2
        elif char == "-" and previous is not None and i + 1 < n and pattern[i + 1] != "]":
            high = pattern[i + 1]
            i += 2
            if high == "\\":
                high = pattern[i : i + 1]
                if not _escaped_literal(high):
                    return None
                i += 1
            if ord(previous) <= 10 <= ord(high):
                return None
            previous = None
            continue
        elif char == "[":
            return None  # nested-set syntax, reserved by Python
        else:
            literal, i = char, i + 1
        if literal == "\n":
            return None
        previous = literal
    return None
