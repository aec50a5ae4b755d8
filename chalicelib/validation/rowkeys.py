"""Row identity across uploads: which rows of different files are the same row, and whether it changed.

A row is **identified** by the contract's row id, compared as validation compares ids within a file
(a number by its value: ``3``, ``03`` and ``+3`` are one id; anything else exactly as written), or,
when the contract has no row id, by its values. A row's **content** is its values, read as the
contract types them, in contract column order: numbers by value, booleans by truth (``TRUE``,
``yes``, ``1``), timestamps by instant, text exactly, a null as null. So the file's column order,
quoting, line endings, number spelling (``1.5``, ``1.50``, ``15e-1``), a byte-order mark and gzip
change neither; any changed value changes the content.

Both are reduced to 64-bit keys that are the same in every process (numbers by their bits, short
text absorbed into splitmix64 two characters at a time, long text through blake2b), so keys made
by the validating function for one upload can be compared with keys made for another upload, in
another process, months earlier, and with the keys the training job makes. Two different rows
share a key with probability about n²/2⁶⁵ (5e-7 for 4 million rows): a collision can make a new row
look repeated, never hide a repeat. The keys are one-way (``_one_way``): a value is found from them
only by guessing it and computing its key, as with any hash; digests are tagged with the dataset's
classification all the same.

``RowDigest`` is what an upload leaves for later ones: its distinct identity keys, sorted, each with
its content key. ``compare`` tells, from the digests of earlier uploads alone (never their rows),
how many of an upload's rows repeat them and how many of those changed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from chalicelib.validation import numbers
from chalicelib.validation.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, Column, Contract

BY_ROW_ID = "row_id"
BY_CONTENT = "content"
DIGEST_FORMAT = "mlops-row-digest/1"
KEY_BYTES = 16  # a digest stores 8 bytes of identity and 8 of content per distinct row

_PERSON = b"mlops-row-key/1"  # blake2b personalisation: a versioned scheme
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_NULL = 0x6E756C6C6E756C6C  # "nullnull": one key for every null cell
_TRUE, _FALSE = 1, 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Cells = Sequence[str | None]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, on uint64 arrays (wrapping arithmetic): a bijection, so no new collisions."""
    x = x ^ (x >> _U64(30))
    x = x * _M1
    x = x ^ (x >> _U64(27))
    x = x * _M2
    return x ^ (x >> _U64(31))


SAMPLE = 256  # cells looked at to tell a mostly distinct text column from one of few values
SHORT_TEXT = 64  # characters: shorter text is hashed with numpy, a column at a time; longer with blake2b


def _blake(text: str, tag: bytes) -> int:
    data = tag + text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=_PERSON).digest(), "little")


def text_keys(values: Sequence[str]) -> np.ndarray:
    """A uint64 key per text, the same for the same text in any process and any batch.

    Up to ``SHORT_TEXT`` characters, two code points at a time are absorbed into a 64-bit state by
    splitmix64 (a bijection; a short text's key depends on its characters and length alone, not on
    the longest text beside it); longer texts go through blake2b, one call each."""
    count = len(values)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    out = np.empty(count, dtype=np.uint64)
    short = lengths <= SHORT_TEXT
    if not short.all():
        for i in np.flatnonzero(~short).tolist():
            out[i] = _blake(values[i], b"t")
        values = [v for v, s in zip(values, short.tolist(), strict=True) if s]
        lengths = lengths[short]
    if len(values):
        out[short] = _short_text_keys(values, lengths)
    return out


def _short_text_keys(values: Sequence[str], lengths: np.ndarray) -> np.ndarray:
    count = len(values)
    width = int(lengths.max()) if count else 0
    pairs = (width + 1) // 2
    codes = np.zeros((count, 2 * pairs), dtype=np.uint32)
    if width:
        text = np.array(values, dtype=f"<U{width}")
        codes[:, :width] = text.view(np.uint32).reshape(count, width)
    packed = (
        codes.view(np.uint64) if codes.flags.c_contiguous else np.ascontiguousarray(codes).view(np.uint64)
    )
    state = np.full(count, _U64(0x6D6C6F70735F7478), dtype=np.uint64)  # "mlops_tx"
    ragged = bool(count) and int(lengths.min()) != width
    with np.errstate(over="ignore"):
        for k in range(pairs):
            step = _mix(state ^ (packed[:, k] + _U64(k + 1) * _GOLDEN))
            state = np.where(2 * k < lengths, step, state) if ragged else step
        return _mix(state ^ lengths.astype(np.uint64))


def number_keys(parsed: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Keys of numbers already parsed (int64 values, or float64 ones: -0.0 is 0.0); with
    ``present``, they are the cells where it is True, and the others are null."""
    if parsed.dtype == np.int64:
        keys = parsed.view(np.uint64)
    else:
        keys = (parsed.astype(np.float64, copy=False) + 0.0).view(np.uint64)
    if present is None:
        return keys
    out = np.full(len(present), _NULL, dtype=np.uint64)
    out[present] = keys
    return out


def _bits(value: float) -> int:
    return int(np.array([value + 0.0]).view(np.uint64)[0])  # -0.0 + 0.0 == 0.0: one key for zero


def _number_key(kind: str, text: str) -> int:
    value, _problem = numbers.read_number(text, kind)
    if value is None:
        return _blake(text, b"?")  # not a number: never in a valid upload, keyed by its text
    if isinstance(value, int):
        return value & 0xFFFFFFFFFFFFFFFF if -(2**63) <= value < 2**63 else _blake(numbers.key(value), b"n")
    return _bits(value)


def _boolean_key(text: str) -> int:
    lowered = text.strip().lower()
    if lowered in BOOLEAN_TRUE:
        return _TRUE
    if lowered in BOOLEAN_FALSE:
        return _FALSE
    return _blake(text, b"?")


def _timestamp_key(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _blake(text, b"?")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // _MICROSECOND
    return micros & 0xFFFFFFFFFFFFFFFF


_ONE_AT_A_TIME: dict[str, Callable[[str], int]] = {"boolean": _boolean_key, "timestamp": _timestamp_key}


def cell_keys(column: Column, cells: Cells, nulls: frozenset[str] = frozenset()) -> np.ndarray:
    """A uint64 key per cell of ``column``: equal exactly when the values are equal as the contract
    types them. A cell that is None or one of ``nulls`` is null."""
    count = len(cells)
    kind = column.type
    if kind in numbers.KINDS:
        fast = _clean_numbers(kind, cells, nulls)
        if fast is not None:
            return fast
    text = kind not in numbers.KINDS and kind not in _ONE_AT_A_TIME
    if text and len(set(cells[:SAMPLE])) * 4 > min(count, SAMPLE) and not _has_null(cells, nulls):
        return text_keys(cells)  # type: ignore[arg-type]  # mostly distinct text: all at once
    # Few distinct values (or nulls, or values read one at a time): each distinct value once.
    distinct = list(set(cells))
    present = [cell for cell in distinct if not (cell is None or cell in nulls)]
    if kind in numbers.KINDS:
        keys = [_number_key(kind, cell) for cell in present]
    elif kind in _ONE_AT_A_TIME:
        keys = list(map(_ONE_AT_A_TIME[kind], present))
    else:
        keys = text_keys(present).tolist()
    table = dict.fromkeys(distinct, _NULL)
    table.update(zip(present, keys, strict=True))
    return np.fromiter(map(table.__getitem__, cells), dtype=np.uint64, count=count)


def _has_null(cells: Cells, nulls: frozenset[str]) -> bool:
    return None in cells or any(null in cells for null in nulls)  # C-speed membership tests


def _clean_numbers(kind: str, cells: Cells, nulls: frozenset[str]) -> np.ndarray | None:
    """The cells parsed in C, nulls aside, when each is plainly a number (as
    ``columns.ColumnChecker._parse_clean`` decides); None sends the cells to the exact path."""
    null_at: list[int] = []
    values: Sequence[str | None] = cells
    if _has_null(cells, nulls):
        null_at = [i for i, cell in enumerate(cells) if cell is None or cell in nulls]
        values = [cell for cell in cells if not (cell is None or cell in nulls)]
    joined = "".join(values)  # type: ignore[arg-type]  # no None left
    pattern = numbers.INTEGER_CHARS if kind == numbers.INTEGER else numbers.FLOAT_CHARS
    if pattern.search(joined):
        return None
    try:
        if kind == numbers.INTEGER:
            keys = np.array(values, dtype=np.int64).view(np.uint64)
        else:
            parsed = np.array(values, dtype=np.float64)
            if not np.isfinite(parsed).all():
                return None
            keys = (parsed + 0.0).view(np.uint64)
    except (ValueError, OverflowError):
        return None
    if not null_at:
        return keys
    present = np.ones(len(cells), dtype=bool)
    present[null_at] = False
    return number_keys(keys.view(np.int64) if kind == numbers.INTEGER else keys.view(np.float64), present)


def id_text(column: Column, text: str) -> str:
    """A row id as compared: a number by its value (``numbers.key``: ``03`` -> ``3``), anything else
    as written. The training job splits rows by this text."""
    if column.type in numbers.KINDS:
        value, _ = numbers.read_number(text, column.type)
        if value is not None:
            return numbers.key(value)
    return text


def row_keys(
    contract: Contract,
    columns: Mapping[str, Cells],
    nulls: frozenset[str] | None = None,
    known: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(identity keys, content keys) of the rows whose cells ``columns`` holds (every contract
    column, cells as written). ``nulls``: which cells are null (default: the contract's
    ``format.null_values``); None cells always are. ``known``: cell keys a caller already has
    (the validator's parsed numbers, through ``number_keys``)."""
    nulls = frozenset(contract.format.null_values) if nulls is None else nulls
    known = known or {}
    count = len(columns[contract.columns[0].name]) if contract.columns else 0
    content = np.full(count, _U64(0x6D6C6F70735F726F), dtype=np.uint64)  # "mlops_ro"
    identity = None
    with np.errstate(over="ignore"):
        for position, column in enumerate(contract.columns, start=1):
            keys = known.get(column.name)
            if keys is None:
                keys = cell_keys(column, columns[column.name], nulls)
            # Each column's key enters the state through a bijection, salted by the column's place.
            content = _mix(content ^ keys ^ (_U64(position) * _GOLDEN))
            if column.name == contract.row_id:
                identity = _one_way(keys)
        content = _one_way(content)
    return (content if identity is None else identity), content


def _one_way(keys: np.ndarray) -> np.ndarray:
    """mix(x) xor x (Davies-Meyer over a public permutation): the keys do not give the values back
    by inverting splitmix (a numeric row id would come straight back otherwise); only guessing a
    value and computing its key finds it, as with any hash."""
    return _mix(keys ^ _GOLDEN) ^ keys


# --- what an upload leaves for later ones --------------------------------------------------------------


@dataclass(frozen=True)
class RowDigest:
    """An upload's distinct row identities, sorted, with the content of each and its row count."""

    by: str  # BY_ROW_ID or BY_CONTENT
    ids: np.ndarray  # uint64, sorted, distinct
    contents: np.ndarray  # uint64, the content of the id's first row
    counts: np.ndarray  # int64, rows with the id in this upload (several only without a row id)

    @classmethod
    def of(cls, by: str, ids: np.ndarray, contents: np.ndarray) -> RowDigest:
        unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
        return cls(by, unique, contents[first], counts.astype(np.int64))

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def to_bytes(self, header: Mapping[str, object]) -> bytes:
        """A JSON header line, then the ids and contents (little-endian uint64), 16 bytes a row."""
        head = {
            **header,
            "format": DIGEST_FORMAT,
            "by": self.by,
            "distinct": len(self.ids),
            "rows": self.rows,
        }
        return (
            json.dumps(head, sort_keys=True).encode()
            + b"\n"
            + self.ids.astype("<u8").tobytes()
            + self.contents.astype("<u8").tobytes()
        )


def read_digest(body: bytes) -> tuple[dict[str, object], np.ndarray, np.ndarray]:
    """(header, ids, contents) of a stored digest. Raises ValueError if it is not one."""
    newline = body.find(b"\n")
    header = json.loads(body[:newline]) if newline > 0 else None
    if not isinstance(header, dict) or header.get("format") != DIGEST_FORMAT:
        raise ValueError(f"not a row digest ({DIGEST_FORMAT})")
    distinct = int(header["distinct"])
    payload = memoryview(body)[newline + 1 :]
    if len(payload) != distinct * KEY_BYTES:
        raise ValueError(
            f"row digest of {distinct} rows holds {len(payload)} bytes, not {distinct * KEY_BYTES}"
        )
    keys = np.frombuffer(payload, dtype="<u8")
    return header, keys[:distinct].astype(np.uint64), keys[distinct:].astype(np.uint64)


class DigestCache:
    """Parsed digests by key, kept by a process (a warm Lambda container, the local cloud) up to
    ``max_bytes``, the least recently used dropped first. A digest is written once for its upload
    and never changed, so what was read stays true; thread-safe (the local cloud runs a function's
    invocations on several threads)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._held: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            found = self._held.get(key)
            if found is not None:
                self._held.move_to_end(key)
            return found

    def put(self, key: str, ids: np.ndarray, contents: np.ndarray) -> None:
        size = ids.nbytes + contents.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._held:
                return
            self._held[key] = (ids, contents)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (old_ids, old_contents) = self._held.popitem(last=False)
                self._bytes -= old_ids.nbytes + old_contents.nbytes


@dataclass(frozen=True)
class Repeats:
    """How an upload's rows relate to earlier uploads'."""

    earlier_uploads: int  # digests compared with
    repeated_rows: int  # rows whose identity an earlier upload holds
    changed_rows: int  # of those, rows whose content differs from the newest earlier copy
    new_rows: int  # rows not seen before, plus changed ones: what the retrain policy counts


def compare(current: RowDigest, earlier: Iterable[tuple[np.ndarray, np.ndarray]]) -> Repeats:
    """Compare an upload's digest with earlier uploads' (ids, contents), **oldest first**: a later
    one's copy of a row is the newest. Memory: the current digest and one earlier digest at a time."""
    n = len(current.ids)
    seen = np.zeros(n, dtype=bool)
    newest = np.zeros(n, dtype=np.uint64)
    compared = 0
    for ids, contents in earlier:
        compared += 1
        if not n or not len(ids):
            continue
        at = np.minimum(np.searchsorted(current.ids, ids), n - 1)
        hit = current.ids[at] == ids
        seen[at[hit]] = True
        newest[at[hit]] = contents[hit]
    repeated = int(current.counts[seen].sum())
    changed = int(current.counts[seen & (newest != current.contents)].sum())
    return Repeats(compared, repeated, changed, current.rows - repeated + changed)
