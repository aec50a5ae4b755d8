"""Streaming CSV validation against a contract, in bounded memory.

The bytes flow through a guard (size limits, NUL bytes, line length), optional gzip decompression
(with its own limit), strict UTF-8 decoding and the csv module; rows are checked a chunk at a time
with numpy by one ``ColumnChecker`` per column. Memory is a chunk of rows (bounded in rows, cells
and characters), the per-column statistics and samples (bounded over all columns), and what the
duplicate checks sort at once; their spill to local disk has a limit too. Each figure is a field
of ``Capacity``; an upload that would pass one is quarantined with ``CAPACITY_EXCEEDED``.

Bad input is data: every problem becomes an issue with a stable code in the report, never an
exception. Structural problems (encoding, quoting, header) stop the reading; value problems are
all counted.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import gzip
import io
import itertools
import re
import time
import zlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from chalicelib.validation import rowkeys
from chalicelib.validation.capacity import Capacity
from chalicelib.validation.columns import (
    MAX_CATEGORY_CHARS,
    MAX_TRACKED_CATEGORIES,
    RESERVOIR_SIZE,
    ColumnChecker,
)
from chalicelib.validation.contract import Contract, header_names
from chalicelib.validation.dupes import ENTRY_BYTES, PARTITIONS, SORT_BYTES, SpillStore
from chalicelib.validation.exceptions import SpillLimitExceeded
from chalicelib.validation.issues import IssueLog
from chalicelib.validation.rowkeys import RowDigest

CHUNK_ROWS = 8192
READ_BYTES = 1024 * 1024
LINES_HINT = 1024 * 1024  # characters of lines read at a time for the csv reader
# Chunks of lines without a quote character are split in C instead of read by the csv module
# (``_quote_free_chunk``): the same records, issues and report either way. Tests turn it off to
# compare.
QUOTE_FREE_CHUNKS = True
GZIP_MAGIC = b"\x1f\x8b"
OTHER_COMPRESSION = {
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
UTF8_BOM = b"\xef\xbb\xbf"
OTHER_DELIMITERS = (";", "\t", "|", ",")
# Encodings a spreadsheet may save a CSV in; their text is full of NUL bytes. UTF-32 first: its
# little-endian byte-order mark starts with UTF-16's.
WIDE_ENCODINGS = (
    ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
    ("utf-32-be", codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
)
ENCODING_PROBE_BYTES = 4096


class _Undecodable:
    """Set when the UTF-8 decoder met a byte it could not decode (see ``_escape_undecodable``)."""

    seen = False


# The decoder reads ahead of the csv reader (1 MiB at a time), so an exception from it cannot say
# which row the bad byte is in. Instead, bytes that are not UTF-8 become lone surrogates
# (U+DC80-U+DCFF, as Python's "surrogateescape" makes them; valid UTF-8 never decodes to one) and
# the validation in progress is flagged; the reader then finds the first such character in the rows
# it reads and names that row and line.
_UNDECODABLE_CHAR = re.compile("[\udc80-\udcff]")
_CURRENT_UNDECODABLE: ContextVar[_Undecodable | None] = ContextVar("undecodable", default=None)
_ESCAPE_ERRORS = "mlops-validation-escape"


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    flag = _CURRENT_UNDECODABLE.get()
    if flag is not None:
        flag.seen = True
    return "".join(chr(0xDC00 + byte) for byte in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_ESCAPE_ERRORS, _escape_undecodable)


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: a file, an S3 streaming body, a hashing wrapper."""

    def read(self, n: int = -1, /) -> bytes: ...


class _Stop(Exception):
    """Reading must stop: the issue has been logged."""


class _RecordTooLong(Exception):
    """A record with embedded line breaks runs past the line limit."""


@dataclass
class ValidationResult:
    status: str  # "valid" or "invalid"
    report: dict[str, Any]
    profile: dict[str, Any] | None = field(default=None, repr=False)  # drift profile of a valid file
    # A valid file's row identities (None when invalid, or past ``Capacity.identity_rows``)
    row_digest: RowDigest | None = field(default=None, repr=False)
    # The column checkers' end state (counts, moments, categories, samples): what a shard of a
    # split upload hands to the merge (``chalicelib.validation.partial``)
    checkers: dict[str, ColumnChecker] | None = field(default=None, repr=False)


class _GuardedStream(io.RawIOBase):
    """Counts bytes, and stops at a size limit, a NUL byte or an over-long line."""

    def __init__(
        self, source: Readable, log: IssueLog, max_bytes: int, max_line: int, too_large: str
    ) -> None:
        self._source = source
        self._log = log
        self._max_bytes = max_bytes
        self.max_line = max_line
        self._too_large = too_large
        self.bytes_read = 0
        self._since_newline = 0
        self.check_binary = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        if not data:
            return 0
        self.bytes_read += len(data)
        if self.bytes_read > self._max_bytes:
            what = "decompressed upload" if self._too_large == "DECOMPRESSED_TOO_LARGE" else "upload"
            self._log.add(
                self._too_large, None, f"the {what} is larger than the limit of {self._max_bytes:,} bytes"
            )
            raise _Stop
        if self.check_binary and b"\x00" in data:
            self._log.add("BINARY_CONTENT", None, "the file contains NUL bytes: it is binary, not a CSV")
            raise _Stop
        newline = data.rfind(b"\n")
        self._since_newline = len(data) - newline - 1 if newline >= 0 else self._since_newline + len(data)
        if self._since_newline > self.max_line:
            self._log.add(
                "FIELD_TOO_LARGE",
                None,
                f"a line is longer than {self.max_line:,} bytes (missing newline or quote?)",
            )
            raise _Stop
        buffer[: len(data)] = data
        return len(data)


def validate_stream(
    stream: Readable,
    contract: Contract,
    *,
    size: int | None = None,
    reference: dict[str, Any] | None = None,
    seed: int = 0,
    capacity: Capacity | None = None,
    spill_dir: str | None = None,
) -> ValidationResult:
    """Validate a CSV (plain or gzip) read from a binary stream. Never raises on bad data.

    ``capacity`` bounds what the validation may use (memory, local disk, time); ``spill_dir`` is
    where the duplicate checks spill (default: the temporary directory, /tmp on Lambda).
    """
    started = time.monotonic()
    capacity = capacity or Capacity()
    partitions = _partitions(size, _duplicate_checks(contract))
    store = SpillStore(capacity.spill_bytes, directory=spill_dir, partitions=partitions)
    try:
        return _validate(stream, contract, size, reference, seed, capacity, store, started)
    finally:
        store.close()


def _validate(
    stream: Readable,
    contract: Contract,
    size: int | None,
    reference: dict[str, Any] | None,
    seed: int,
    capacity: Capacity,
    store: SpillStore,
    started: float,
) -> ValidationResult:
    log = IssueLog()
    fmt = contract.format
    max_line = _max_field(contract, capacity) * 2 + 65536
    checkers = _checkers(contract, capacity, store, seed)
    identity = _RowIdentity(contract, capacity.identity_rows)
    state: dict[str, Any] = {
        "rows": 0,
        "header": None,
        "compression": None,
        "bytes": 0,
        "duplicate_rows": 0,
        "started": started,
        "checks": _duplicate_checks(contract),
        "identity": identity,
    }
    undecodable = _Undecodable()
    state["undecodable"] = undecodable
    row_hashes: Any = None
    flag_token = _CURRENT_UNDECODABLE.set(undecodable)
    try:
        if size is not None and size > fmt.max_bytes:
            log.add(
                "FILE_TOO_LARGE", None, f"the upload is {size:,} bytes, over the limit of {fmt.max_bytes:,}"
            )
            raise _Stop
        raw = _GuardedStream(stream, log, fmt.max_bytes, max_line, "FILE_TOO_LARGE")
        raw.check_binary = False  # decided below, once we know whether the bytes are compressed
        buffered = io.BufferedReader(raw, READ_BYTES)
        head = buffered.peek(8)[:8]
        if not head:
            log.add("EMPTY_FILE", None, "the file is empty (0 bytes)")
            raise _Stop
        source: Any = buffered
        text_guard = raw  # the guard that sees the text's bytes
        if head.startswith(GZIP_MAGIC):
            state["compression"] = "gzip"
            raw.max_line = 1 << 62  # compressed bytes have no lines; the decompressed ones are checked
            text_guard = _GuardedStream(
                gzip.GzipFile(fileobj=buffered),
                log,
                fmt.max_decompressed_bytes,
                max_line,
                "DECOMPRESSED_TOO_LARGE",
            )
            text_guard.check_binary = False  # decided below, as for plain text
            source = io.BufferedReader(text_guard, READ_BYTES)
        else:
            for magic, name in OTHER_COMPRESSION.items():
                if head.startswith(magic):
                    log.add(
                        "UNSUPPORTED_COMPRESSION",
                        None,
                        f"the file is {name}-compressed; only gzip is supported",
                    )
                    raise _Stop
        sample = source.peek(READ_BYTES)  # what is buffered already; the guard checks the rest
        encoding = _wide_encoding(sample)
        if encoding is not None:
            log.add(
                "UNSUPPORTED_ENCODING",
                None,
                f"the file is encoded as {encoding}, not UTF-8: re-save it as UTF-8",
            )
            raise _Stop
        if b"\x00" in sample:
            log.add("BINARY_CONTENT", None, "the file contains NUL bytes: it is binary, not a CSV")
            raise _Stop
        text_guard.check_binary = True
        if sample.startswith(UTF8_BOM):
            if not fmt.allow_bom:
                log.add("UTF8_BOM", None, "the file starts with a UTF-8 byte-order mark (EF BB BF)")
                raise _Stop
            source.read(len(UTF8_BOM))
        text = io.TextIOWrapper(source, encoding="utf-8", errors=_ESCAPE_ERRORS, newline="")
        text._CHUNK_SIZE = READ_BYTES  # type: ignore[attr-defined]  # default 8 KiB reads cost a call each
        row_hashes = _read_rows(text, contract, checkers, log, state, store, capacity, max_line)
    except _Stop:
        pass
    except SpillLimitExceeded as exc:
        log.add(
            "CAPACITY_EXCEEDED",
            None,
            f"the duplicate checks ({state['checks']} a row: the row id, unique columns and whole rows, "
            f"{ENTRY_BYTES} bytes each) need more than the {exc.limit:,} bytes of local disk the validator "
            f"has; the limit was reached after row {state['rows']:,}: split the upload into smaller files",
            row=state["rows"] + 1,
        )
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        log.add("CORRUPT_COMPRESSION", None, f"the gzip stream is corrupt or truncated: {exc}")
    finally:
        _CURRENT_UNDECODABLE.reset(flag_token)
        if log.fatal:
            for checker in checkers.values():
                checker.close()
    if not log.fatal:
        for checker in checkers.values():
            checker.finish(log)
        _dataset_checks(contract, checkers, log, state, row_hashes)
    result = _result(contract, checkers, log, state, time.monotonic() - started, reference)
    if result.status == "valid":
        result.row_digest = identity.digest()
    return result


def _duplicate_checks(contract: Contract) -> int:
    """Whole rows, the row id and each unique column are checked for repeats."""
    return 1 + sum(c.unique or c.name == contract.row_id for c in contract.columns)


def _partitions(size: int | None, checks: int) -> int:
    """Spill files for an upload of ``size`` bytes: enough that each holds about what is sorted at
    once, were every row as short as a spilled value (14 bytes) and a gzip upload four times its
    size; fewer only cost reading a larger file twice or more, never memory."""
    expected = (size if size is not None else 256 * 1024 * 1024) * 4 * checks
    wanted = max(1, -(-expected // SORT_BYTES))
    return int(min(PARTITIONS, 1 << (wanted - 1).bit_length()))


def _max_field(contract: Contract, capacity: Capacity) -> int:
    """The longest field read: the contract's limit, within the capacity."""
    return min(contract.format.max_field_bytes, capacity.max_field_bytes)


def _checkers(
    contract: Contract, capacity: Capacity, store: SpillStore, seed: int
) -> dict[str, ColumnChecker]:
    """One checker per column; the sample and category budgets are shared out among the columns."""
    numeric = sum(c.type in ("integer", "float") for c in contract.columns) or 1
    text = sum(c.type in ("category", "string", "boolean") for c in contract.columns) or 1
    return {
        c.name: ColumnChecker(
            c,
            contract.format,
            unique=store.finder() if c.unique or c.name == contract.row_id else None,
            seed=seed,
            sample_size=min(RESERVOIR_SIZE, capacity.sample_values // numeric),
            max_categories=min(MAX_TRACKED_CATEGORIES, capacity.category_values // text),
            max_category_chars=min(MAX_CATEGORY_CHARS, capacity.category_chars // text),
        )
        for c in contract.columns
    }


class _LineMeter:
    """The file's lines, read a batch at a time and measured as they are handed out: to the csv
    reader (``lines``) or, a chunk at a time, to the quote-free path (``take``, ``give_back``).

    ``chars`` counts the characters of the lines handed out; ``longest`` is the longest line
    handed out since the current chunk began: when every record of the chunk is one line, none of
    its fields is longer. Handing out past ``limit`` characters raises _RecordTooLong. ``taken``
    counts the lines the quote-free path kept; the csv reader's ``line_num`` counts the others.
    Chunks end where they would with the csv reader alone: both paths count the same lines.
    """

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self.chars = 0
        self.longest = 0
        self.limit: int | None = None
        self.taken = 0
        self._batch: list[str] = []
        self._at = 0  # the next line of _batch not yet handed out

    def _refill(self) -> bool:
        batch = self._text.readlines(LINES_HINT)
        if not batch:
            return False
        self._batch, self._at = batch, 0
        return True

    def lines(self) -> Iterator[str]:
        while self._at < len(self._batch) or self._refill():
            line = self._batch[self._at]
            self._at += 1
            self.chars += len(line)
            if len(line) > self.longest:
                self.longest = len(line)
            if self.limit is not None and self.chars > self.limit:
                raise _RecordTooLong
            yield line

    def take(self, rows: int, chars: int, step: int, start: int) -> list[str]:
        """The lines ``_next_chunk`` would take were each a record: up to ``rows``, ``step`` at a
        time, stopping after the step that brings the chunk (begun at ``start``) to ``chars``."""
        if self.chars - start >= chars:
            return []
        taken: list[str] = []
        ends = [self.chars - start]  # the chunk's characters after each line taken
        limit = rows
        while len(taken) < limit and (self._at < len(self._batch) or self._refill()):
            part = self._batch[self._at : self._at + limit - len(taken)]
            self._at += len(part)
            taken += part
            ends += itertools.islice(itertools.accumulate(map(len, part), initial=ends[-1]), 1, None)
            if limit == rows and ends[-1] >= chars:
                # The line that reaches ``chars`` ends the chunk with the rest of its step.
                crossing = bisect.bisect_left(ends, chars, lo=1)
                limit = min(rows, -(-crossing // step) * step)
        if len(taken) > limit:
            self._unread(taken[limit:])
            del taken[limit:]
        self.chars += ends[len(taken)] - ends[0]
        self.longest = max(self.longest, max(map(len, taken), default=0))
        return taken

    def give_back(self, lines: list[str]) -> None:
        """The lines of the last ``take``, not kept: the csv reader reads them next."""
        self._unread(lines)
        self.chars -= sum(map(len, lines))
        self.longest = 0

    def _unread(self, lines: list[str]) -> None:
        if lines:
            self._batch = lines + self._batch[self._at :]
            self._at = 0

    def begin_chunk(self) -> int:
        self.longest = 0
        return self.chars


def _next_chunk(
    reader: Any, meter: _LineMeter, rows: int, chunk_bytes: int, max_line: int, start: int
) -> list[list[str]]:
    """Up to ``rows`` records, stopping once about ``chunk_bytes`` characters were read since
    ``start``.

    Records are taken a few at a time, as many as fit in ``chunk_bytes`` at the line limit, so a
    chunk overshoots by at most that much. A record may span lines (quoted line breaks): one that
    runs over twice the line limit stops the reading (_RecordTooLong).
    """
    step = _step(chunk_bytes, max_line)
    chunk: list[list[str]] = []
    while len(chunk) < rows and meter.chars - start < chunk_bytes:
        want = min(step, rows - len(chunk))
        meter.limit = meter.chars + want * 2 * max_line + LINES_HINT
        got = len(chunk)
        chunk.extend(itertools.islice(reader, want))
        if len(chunk) - got < want:
            break  # the end of the file
    meter.limit = None
    return chunk


def _step(chunk_bytes: int, max_line: int) -> int:
    return max(1, chunk_bytes // max_line)


def _read_rows(
    text: io.TextIOWrapper,
    contract: Contract,
    checkers: dict[str, ColumnChecker],
    log: IssueLog,
    state: dict[str, Any],
    store: SpillStore,
    capacity: Capacity,
    max_line: int,
) -> Any:
    fmt = contract.format
    undecodable: _Undecodable = state["undecodable"]
    csv.field_size_limit(_max_field(contract, capacity))
    meter = _LineMeter(text)
    reader = csv.reader(meter.lines(), delimiter=fmt.delimiter, quotechar=fmt.quotechar, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        _csv_error(exc, 0, 1, log)
        raise _Stop from exc
    if header is None or header == []:
        if undecodable.seen:  # e.g. a truncated character and nothing else
            _undecodable_issue(log, None, None, None)
            raise _Stop
        log.add("EMPTY_FILE", None, "the file has no header row (it is empty or blank)")
        raise _Stop
    if undecodable.seen and (found := _first_undecodable([header])) is not None:
        _undecodable_issue(log, 0, 1, found[1])
        raise _Stop
    state["header"] = header
    if len(header) > capacity.max_columns:
        log.add(
            "CAPACITY_EXCEEDED",
            None,
            f"the header has {len(header):,} fields; the validator reads at most {capacity.max_columns:,} columns",
            row=0,
            line=1,
        )
        raise _Stop
    order = _check_header(header, contract, log)
    n_columns = len(header)
    names = contract.column_names  # order[i] is the position of names[i] in the header
    dup_rows = _RowHashes(store, fmt.delimiter, n_columns)
    ragged = 0
    first_ragged: tuple[int, int, int] | None = None
    row = 0  # data rows so far
    line = reader.line_num  # file lines consumed so far
    rows_per_chunk = max(1, min(CHUNK_ROWS, capacity.chunk_cells // n_columns))
    field_limit = _max_field(contract, capacity)

    def consumed() -> int:
        return meter.taken + reader.line_num

    try:
        while True:
            start = meter.begin_chunk()
            fast = None
            if QUOTE_FREE_CHUNKS and n_columns > 1 and not undecodable.seen:
                lines = meter.take(
                    rows_per_chunk, capacity.chunk_bytes, _step(capacity.chunk_bytes, max_line), start
                )
                fast = _quote_free_chunk(lines, meter, undecodable, fmt, n_columns, field_limit)
                del lines
            if fast is not None:
                # Quote-free lines, split at C speed: the same records the csv module reads.
                texts, fields, width = fast
                count = len(texts)
                numbers = np.arange(row + 1, row + 1 + count, dtype=np.int64)
                starts = np.arange(line + 1, line + 1 + count, dtype=np.int64)
                columns: list[Any] = [fields[i::n_columns] for i in range(n_columns)]
                del fields
                keys = dup_rows.text_keys(texts)
                del texts
                row += count
                line += count
            else:
                chunk = _next_chunk(reader, meter, rows_per_chunk, capacity.chunk_bytes, max_line, start)
                if not chunk:
                    break
                if undecodable.seen and (found := _first_undecodable(chunk)) is not None:
                    bad_row, bad_line = _locate(chunk, found[0], row, line)
                    state["rows"] = bad_row - 1
                    _undecodable_issue(log, bad_row, bad_line, found[1])
                    raise _Stop
                lines_used = consumed() - line
                if lines_used == len(chunk) and set(map(len, chunk)) == {n_columns}:
                    # The common case: one line per row, every row complete.
                    numbers = np.arange(row + 1, row + 1 + len(chunk), dtype=np.int64)
                    starts = np.arange(line + 1, line + 1 + len(chunk), dtype=np.int64)
                    good = chunk
                    row += len(chunk)
                    width = meter.longest  # no field is longer than its line
                else:
                    good, kept_rows, kept_lines = [], [], []
                    # Where each record starts is lost in this chunk; recount from the records themselves.
                    cursor = line
                    for record in chunk:
                        start = cursor + 1
                        cursor += 1 + sum(field.count("\n") for field in record)
                        if record == []:
                            continue  # a blank line is not a row
                        row += 1
                        if cursor != start and not fmt.allow_multiline_fields:
                            log.add(
                                "EMBEDDED_NEWLINE",
                                None,
                                f"row {row} (line {start}) has a quoted field containing a line break",
                                row=row,
                                line=start,
                            )
                        if len(record) != n_columns:
                            ragged += 1
                            first_ragged = first_ragged or (row, start, len(record))
                            continue
                        good.append(record)
                        kept_rows.append(row)
                        kept_lines.append(start)
                    numbers = np.asarray(kept_rows, dtype=np.int64)
                    starts = np.asarray(kept_lines, dtype=np.int64)
                    width = max(map(len, itertools.chain.from_iterable(good)), default=0)
                line = consumed()
                columns = list(zip(*good, strict=True)) if good else []
                keys = dup_rows.record_keys(good)
                del chunk, good
            state["rows"] = row
            if row > capacity.max_rows:
                log.add(
                    "CAPACITY_EXCEEDED",
                    None,
                    f"the upload has more than {capacity.max_rows:,} rows, the most the validator numbers",
                    row=capacity.max_rows + 1,
                )
                raise _Stop
            if len(numbers):
                # Columns become numpy text arrays as wide as their longest value: a chunk with long
                # values is checked a slice at a time.
                rows_per_array = max(1, capacity.array_bytes // (4 * max(1, width)))
                for lo in range(0, len(numbers), rows_per_array):
                    hi = lo + rows_per_array
                    whole = lo == 0 and hi >= len(numbers)
                    _flush(
                        columns if whole else [column[lo:hi] for column in columns],
                        keys[lo:hi],
                        numbers[lo:hi],
                        starts[lo:hi],
                        order,
                        names,
                        checkers,
                        log,
                        dup_rows,
                        state["identity"],
                    )
            del columns, keys  # before the next chunk is read: one chunk in memory at a time
            if capacity.seconds is not None and time.monotonic() - state["started"] >= capacity.seconds:
                log.add(
                    "CAPACITY_EXCEEDED",
                    None,
                    f"validation stopped after {capacity.seconds:g} seconds, at row {row:,}: the upload "
                    "takes longer to check than the validator may spend",
                    row=row + 1,
                )
                raise _Stop
    except csv.Error as exc:
        # The failing chunk's rows are unknown here; the line is exact, the row is not.
        _csv_error(exc, None, consumed(), log)
        raise _Stop from exc
    except _RecordTooLong as exc:
        log.add(
            "FIELD_TOO_LARGE",
            None,
            f"a record with quoted line breaks, at line {consumed():,}, is longer than "
            f"{2 * max_line:,} characters (a missing closing quote?)",
            line=consumed(),
        )
        raise _Stop from exc
    if undecodable.seen:  # not in any row read: should not happen, but never pass the file as UTF-8
        _undecodable_issue(log, None, None, None)
        raise _Stop
    if ragged and first_ragged:
        r, ln, n = first_ragged
        log.add(
            "RAGGED_ROW",
            None,
            f"{ragged} row(s) do not have {n_columns} fields; the first is row {r} (line {ln}) with {n}",
            row=r,
            line=ln,
            count=ragged,
        )
    state["rows"] = row
    return dup_rows


def _quote_free_chunk(
    lines: list[str],
    meter: _LineMeter,
    undecodable: _Undecodable,
    fmt: Any,
    n_columns: int,
    field_limit: int,
) -> tuple[list[str], list[str], int] | None:
    """The chunk's lines read without the csv module, when that reads them as it would: (each
    row's text, every field in row order, the longest line). None, with the lines given back to
    the csv reader, when any line has a quote character, a carriage return or other than
    ``n_columns`` fields (a blank line has one), or could hold a field over ``field_limit``, or
    when the chunk has a byte that is not UTF-8: the csv path then reports exactly what it finds.

    Within such lines the csv module's reading is exactly ``line.split(delimiter)`` without the
    line feed; here it is done for the whole chunk at once, in C.
    """
    if not lines:
        return None
    text = "".join(lines)
    width = meter.longest
    if undecodable.seen or fmt.quotechar in text or "\r" in text or width > field_limit:
        meter.give_back(lines)
        return None
    body = text[:-1] if text.endswith("\n") else text
    del text
    texts = body.split("\n")
    delimiter = fmt.delimiter
    counts = list(map(str.count, texts, itertools.repeat(delimiter)))
    if len(texts) != len(lines) or counts.count(n_columns - 1) != len(counts):
        meter.give_back(lines)
        return None
    meter.taken += len(lines)
    return texts, body.replace("\n", delimiter).split(delimiter), width


def _first_undecodable(records: list[list[str]]) -> tuple[int, str] | None:
    """The index of the first record holding an undecodable byte (as a lone surrogate), and it."""
    for index, record in enumerate(records):
        for cell in record:
            if (match := _UNDECODABLE_CHAR.search(cell)) is not None:
                return index, match.group()
    return None


def _locate(chunk: list[list[str]], index: int, row: int, line: int) -> tuple[int, int]:
    """Row and start line of ``chunk[index]``, given the rows and lines read before the chunk."""
    start = line + 1
    for record in chunk[: index + 1]:
        start = line + 1
        line += 1 + sum(cell.count("\n") for cell in record)
        row += record != []
    return row, start


def _undecodable_issue(log: IssueLog, row: int | None, line: int | None, char: str | None) -> None:
    where = "the file" if row is None else ("the header" if row == 0 else f"row {row} (line {line})")
    byte = "" if char is None else f" (the first is {bytes([ord(char) - 0xDC00])!r})"
    log.add("INVALID_ENCODING", None, f"{where} has bytes that are not valid UTF-8{byte}", row=row, line=line)


def _wide_encoding(sample: bytes) -> str | None:
    """'UTF-16 (little-endian) with a byte-order mark' and the like, when the first bytes are such
    text; None otherwise (UTF-8, other text, or binary)."""
    for codec, bom, name in WIDE_ENCODINGS:
        if sample.startswith(bom) and _looks_like_text(sample[len(bom) : ENCODING_PROBE_BYTES], codec):
            return f"{name} with a byte-order mark"
    probe = sample[:ENCODING_PROBE_BYTES]
    if probe.count(0) < len(probe) // 4:
        return None  # CSV text in UTF-16 or UTF-32 is mostly ASCII: half or three quarters NUL bytes
    for codec, _, name in WIDE_ENCODINGS:
        if _looks_like_text(probe, codec):
            return f"{name} without a byte-order mark"
    return None


def _looks_like_text(probe: bytes, codec: str) -> bool:
    try:
        decoded = codecs.getincrementaldecoder(codec)("strict").decode(probe, final=False)
    except UnicodeDecodeError:
        return False
    if not decoded or "\x00" in decoded:
        return False
    odd = sum(1 for ch in decoded if not (ch.isprintable() or ch in "\t\r\n"))
    return odd <= len(decoded) // 100


class _RowHashes:
    """Whole-row duplicates: one more check on the shared spill store.

    A row is keyed by its fields joined with the delimiter, which is its line as written when it
    needs no quotes: the quote-free path hashes the lines it split, the csv path the joined
    records, and equal rows get equal keys whichever path read them. A record with the delimiter
    inside a field (a quoted one) is keyed by its fields instead, since joining would be ambiguous.
    """

    def __init__(self, store: SpillStore, delimiter: str, n_columns: int) -> None:
        self.finder = store.finder()
        self._delimiter = delimiter
        self._delimiters = n_columns - 1

    def text_keys(self, texts: list[str]) -> np.ndarray:
        return np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts))

    def record_keys(self, records: list[list[str]]) -> np.ndarray:
        joined = list(map(self._delimiter.join, records))
        keys = self.text_keys(joined)
        counts = list(map(str.count, joined, itertools.repeat(self._delimiter)))
        if counts.count(self._delimiters) != len(counts):
            for i, n in enumerate(counts):
                if n != self._delimiters:
                    keys[i] = hash(tuple(records[i]))
        return keys


class _RowIdentity:
    """Each row's identity and content keys (``rowkeys``), kept for the upload's digest up to a
    number of rows; past it, none are kept."""

    def __init__(self, contract: Contract, limit: int) -> None:
        self.contract = contract
        self.limit = limit
        self.rows = 0
        self.over = False
        self._ids: list[np.ndarray] = []
        self._contents: list[np.ndarray] = []
        self._nulls = frozenset(contract.format.null_values)

    def add(
        self, columns: list[tuple[str, ...]], order: list[int], checkers: dict[str, ColumnChecker]
    ) -> None:
        """The rows the checkers were just fed, as columns in file order (their parsed numbers are
        reused)."""
        if self.over or not columns or not columns[0]:
            return
        self.rows += len(columns[0])
        if self.rows > self.limit:
            self.over, self._ids, self._contents = True, [], []
            return
        cells = {name: columns[index] for index, name in zip(order, self.contract.column_names, strict=True)}
        known = {
            name: rowkeys.number_keys(checker.parsed, checker.present)
            for name, checker in checkers.items()
            if checker.parsed is not None
        }
        ids, contents = rowkeys.row_keys(self.contract, cells, self._nulls, known)
        self._ids.append(ids)
        self._contents.append(contents)

    def digest(self) -> RowDigest | None:
        if self.over:
            return None
        by = rowkeys.BY_ROW_ID if self.contract.row_id else rowkeys.BY_CONTENT
        empty = np.empty(0, dtype=np.uint64)
        ids = np.concatenate(self._ids) if self._ids else empty
        contents = np.concatenate(self._contents) if self._contents else empty
        self._ids, self._contents = [], []
        return RowDigest.of(by, ids, contents)


def _flush(
    columns: list[Any],
    row_keys: np.ndarray,
    row_numbers: np.ndarray,
    line_numbers: np.ndarray,
    order: list[int],
    names: list[str],
    checkers: dict[str, ColumnChecker],
    log: IssueLog,
    dup_rows: _RowHashes,
    identity: _RowIdentity,
) -> None:
    """Check a slice of rows, given as columns in file order, with their whole-row keys."""
    for index, name in zip(order, names, strict=True):
        checkers[name].feed(columns[index], row_numbers, line_numbers, log)
    dup_rows.finder.add(row_keys, row_numbers)
    identity.add(columns, order, checkers)


def _check_header(header: list[str], contract: Contract, log: IssueLog) -> list[int]:
    """Positions of the contract's columns in the header; logs and stops on a bad header."""
    expected = contract.column_names
    if len(header) == 1 and len(expected) > 1:
        found = [d for d in OTHER_DELIMITERS if d != contract.format.delimiter and d in header[0]]
        if found:
            log.add(
                "WRONG_DELIMITER",
                None,
                f"the header splits into one column on {contract.format.delimiter!r} but contains {found[0]!r}: "
                f"the file seems delimited by {found[0]!r}",
                row=0,
                line=1,
            )
            raise _Stop
    stripped = header_names(header)
    seen: set[str] = set()
    for name in stripped:
        if name in seen:
            log.add("DUPLICATE_COLUMN", name, f"the header names column {name!r} twice", row=0, line=1)
        seen.add(name)
    for name in expected:
        if name not in seen:
            log.add("MISSING_COLUMN", name, f"the header lacks column {name!r}", row=0, line=1)
    for name in stripped:
        if name not in expected:
            log.add(
                "UNEXPECTED_COLUMN",
                name,
                f"the header has column {name!r}, which the contract does not declare",
                row=0,
                line=1,
            )
    if log.fatal:
        raise _Stop
    return [stripped.index(name) for name in expected]


def _csv_error(exc: csv.Error, row: int | None, line: int, log: IssueLog) -> None:
    message = str(exc)
    if "field larger than field limit" in message:
        log.add(
            "FIELD_TOO_LARGE", None, f"line {line} has a field over the limit: {message}", row=row, line=line
        )
    elif "unexpected end of data" in message or "EOF inside string" in message:
        what = f"a quoted field is still open at line {line}, the end of the file"
        log.add("UNTERMINATED_QUOTE", None, what, row=row, line=line)
    else:
        log.add("MALFORMED_QUOTING", None, f"line {line}: {message}", row=row, line=line)


def _dataset_checks(
    contract: Contract,
    checkers: dict[str, ColumnChecker],
    log: IssueLog,
    state: dict[str, Any],
    row_hashes: Any,
) -> None:
    limits = contract.limits
    rows = state["rows"]
    if rows == 0:
        log.add("HEADER_ONLY", None, "the file has a header but no data rows", row=0, line=1)
        return
    if rows < limits.min_rows:
        log.add("TOO_FEW_ROWS", None, f"{rows} data rows, fewer than limits.min_rows = {limits.min_rows}")
    if limits.max_rows is not None and rows > limits.max_rows:
        log.add("TOO_MANY_ROWS", None, f"{rows} data rows, more than limits.max_rows = {limits.max_rows}")
    cells = sum(c.count for c in checkers.values())
    nulls = sum(c.nulls for c in checkers.values())
    if cells and nulls / cells > limits.max_null_fraction:
        log.add(
            "NULL_FRACTION_EXCEEDED",
            None,
            f"{nulls / cells:.1%} of cells are empty, more than limits.max_null_fraction = {limits.max_null_fraction:.1%}",
            count=nulls,
        )
    if row_hashes is not None:
        duplicates, first = row_hashes.finder.duplicates()
        state["duplicate_rows"] = duplicates
        if duplicates and duplicates / rows > limits.max_duplicate_row_fraction:
            log.add(
                "DUPLICATE_ROWS_EXCEEDED",
                None,
                f"{duplicates} row(s) repeat an earlier row ({duplicates / rows:.1%}), more than "
                f"limits.max_duplicate_row_fraction = {limits.max_duplicate_row_fraction:.1%}; first at row {first}",
                row=first,
                count=duplicates,
            )


def _result(
    contract: Contract,
    checkers: dict[str, ColumnChecker],
    log: IssueLog,
    state: dict[str, Any],
    seconds: float,
    reference: dict[str, Any] | None,
) -> ValidationResult:
    status = "invalid" if log else "valid"
    report: dict[str, Any] = {
        "status": status,
        "dataset": contract.dataset,
        "contract_version": contract.version,
        "rows": state["rows"],
        "columns": len(state["header"]) if state["header"] else 0,
        "compression": state["compression"],
        "duplicate_rows": state["duplicate_rows"],
        "issues": log.to_list(),
        "column_statistics": {} if log.fatal else {name: c.statistics() for name, c in checkers.items()},
        "seconds": round(seconds, 3),
    }
    profile = None
    if not log.fatal:
        columns = {name: p for name, c in checkers.items() if (p := c.profile()) is not None}
        profile = {"rows": state["rows"], "columns": columns}
        if reference is not None:
            from chalicelib.validation import drift

            features = [c.name for c in contract.features if c.name in columns]
            report["drift"] = drift.compare(reference, profile, contract.drift, columns=features)
    return ValidationResult(status=status, report=report, profile=profile, checkers=checkers)
