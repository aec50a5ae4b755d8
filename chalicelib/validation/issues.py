"""Reason codes and the issue list of a validation report.

Codes are stable: dashboards, alerts and people's runbooks key on them. Each has a one-line
explanation and the fix, shown in reports and docs/contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# code -> (what is wrong, what to do about it)
CODES: dict[str, tuple[str, str]] = {
    "NO_CONTRACT": (
        "no contract is stored for this dataset",
        "store one: mlops contract put contract.json, or PUT /datasets/<dataset>/contract",
    ),
    "EMPTY_FILE": ("the file is empty", "upload a CSV with a header row and data rows"),
    "HEADER_ONLY": ("the file has a header but no data rows", "upload the data rows too"),
    "FILE_TOO_LARGE": ("the upload is larger than the contract allows", "split it into smaller files"),
    "BINARY_CONTENT": ("the file contains NUL bytes: it is not a text CSV", "export the data as CSV text"),
    "UTF8_BOM": (
        "the file starts with a UTF-8 byte-order mark",
        "save as UTF-8 without BOM, or set format.allow_bom",
    ),
    "INVALID_ENCODING": ("the bytes are not valid UTF-8", "re-export the file as UTF-8"),
    "UNSUPPORTED_ENCODING": (
        "the file is UTF-16 or UTF-32 text, not UTF-8",
        "re-export the file as UTF-8 (in a spreadsheet: CSV UTF-8)",
    ),
    "UNSUPPORTED_COMPRESSION": (
        "the file is compressed in a format other than gzip",
        "upload plain CSV or gzip",
    ),
    "CORRUPT_COMPRESSION": (
        "the gzip stream is truncated or corrupt",
        "compress the file again and re-upload",
    ),
    "DECOMPRESSED_TOO_LARGE": (
        "the compressed upload expands past the contract's limit",
        "upload smaller files",
    ),
    "FIELD_TOO_LARGE": (
        "a field or line is longer than format.max_field_bytes",
        "check for a missing newline or quote",
    ),
    "WRONG_DELIMITER": (
        "the header splits into one column: the file uses another delimiter",
        "use the contract's delimiter",
    ),
    "MISSING_COLUMN": ("a column of the contract is missing from the header", "add the column"),
    "UNEXPECTED_COLUMN": (
        "the header has a column the contract does not declare",
        "remove it or add it to the contract",
    ),
    "DUPLICATE_COLUMN": ("the header names a column twice", "rename or remove the duplicate"),
    "RAGGED_ROW": (
        "a row has a different number of fields than the header",
        "fix the row's delimiters or quoting",
    ),
    "UNTERMINATED_QUOTE": ("a quoted field is never closed", "close the quote or escape it by doubling it"),
    "MALFORMED_QUOTING": (
        "a field mixes quoted and unquoted text",
        "quote the whole field and double inner quotes",
    ),
    "EMBEDDED_NEWLINE": (
        "a quoted field contains a line break",
        "remove line breaks, or set format.allow_multiline_fields",
    ),
    "NULL_NOT_ALLOWED": (
        "an empty value in a column that is not nullable",
        "fill the value or make the column nullable",
    ),
    "INVALID_INTEGER": ("a value is not an integer", "write whole numbers without decimals or units"),
    "INVALID_FLOAT": ("a value is not a number", "write numbers with '.' as decimal point, no units"),
    "INVALID_BOOLEAN": ("a value is not a boolean", "use true/false, 1/0, yes/no"),
    "INVALID_TIMESTAMP": ("a value is not an ISO 8601 timestamp", "use e.g. 2026-11-23T10:00:00Z"),
    "NON_FINITE_NUMBER": (
        "NaN or infinity in a numeric column",
        "leave the cell empty (if nullable) or give a value",
    ),
    "OUT_OF_RANGE": ("a value is outside the contract's min/max", "correct the value or widen the range"),
    "UNKNOWN_CATEGORY": ("a category the contract does not list", "correct the value or add it to 'allowed'"),
    "NOT_ALLOWED_VALUE": ("a value the contract does not list", "correct the value or add it to 'allowed'"),
    "PATTERN_MISMATCH": ("a value does not match the column's pattern", "correct the value"),
    "VALUE_TOO_LONG": ("a value is longer than max_length", "shorten it or raise max_length"),
    "FORMULA_INJECTION": (
        "a text cell starts like a spreadsheet formula (=, +, -, @)",
        "remove the leading character",
    ),
    "DUPLICATE_ROW_ID": ("the same row id appears more than once", "give every row its own id"),
    "DUPLICATE_VALUE": ("a value repeats in a column declared unique", "remove the duplicates"),
    "TOO_FEW_ROWS": ("fewer data rows than limits.min_rows", "upload more rows at once"),
    "TOO_MANY_ROWS": ("more data rows than limits.max_rows", "split the file"),
    "NULL_FRACTION_EXCEEDED": ("more empty cells than limits.max_null_fraction", "fill the missing values"),
    "DUPLICATE_ROWS_EXCEEDED": (
        "more identical rows than limits.max_duplicate_row_fraction",
        "remove the duplicates",
    ),
    "CAPACITY_EXCEEDED": (
        "checking the upload needs more local disk, time, rows or columns than the validator has",
        "split the upload into smaller files (the message names the limit; docs/contracts.md, Capacity)",
    ),
}

# Structural problems: after one of these the rest of the file cannot be trusted, so reading stops.
FATAL = frozenset(
    {
        "NO_CONTRACT", "EMPTY_FILE", "FILE_TOO_LARGE", "BINARY_CONTENT", "UTF8_BOM", "INVALID_ENCODING",
        "UNSUPPORTED_ENCODING", "UNSUPPORTED_COMPRESSION", "CORRUPT_COMPRESSION", "DECOMPRESSED_TOO_LARGE",
        "FIELD_TOO_LARGE", "WRONG_DELIMITER", "MISSING_COLUMN", "UNEXPECTED_COLUMN", "DUPLICATE_COLUMN",
        "UNTERMINATED_QUOTE", "MALFORMED_QUOTING", "CAPACITY_EXCEEDED",
    }
)  # fmt: skip


@dataclass
class Issue:
    code: str
    column: str | None
    count: int
    row: int | None  # first offending data row, 1-based (the header is row 0)
    line: int | None  # the file line where that row starts, 1-based
    message: str
    example: str | None = None  # masked for confidential and pii columns

    def to_dict(self) -> dict[str, Any]:
        fix = CODES[self.code][1]
        doc = {
            "code": self.code,
            "column": self.column,
            "count": self.count,
            "row": self.row,
            "line": self.line,
            "message": self.message,
            "fix": fix,
        }
        if self.example is not None:
            doc["example"] = self.example
        return doc


@dataclass
class IssueLog:
    """Issues aggregated by (code, column): a count and the first example."""

    issues: dict[tuple[str, str | None], Issue] = field(default_factory=dict)

    def add(
        self,
        code: str,
        column: str | None,
        message: str,
        row: int | None = None,
        line: int | None = None,
        count: int = 1,
        example: str | None = None,
    ) -> None:
        if code not in CODES:
            raise KeyError(f"unknown issue code {code}")
        key = (code, column)
        if key in self.issues:
            self.issues[key].count += count
        else:
            self.issues[key] = Issue(code, column, count, row, line, message, example)

    @property
    def fatal(self) -> bool:
        return any(code in FATAL for code, _ in self.issues)

    def codes(self) -> set[str]:
        return {code for code, _ in self.issues}

    def to_list(self) -> list[dict[str, Any]]:
        return [
            i.to_dict()
            for i in sorted(self.issues.values(), key=lambda i: (-i.count, i.code, i.column or ""))
        ]

    def __bool__(self) -> bool:
        return bool(self.issues)
