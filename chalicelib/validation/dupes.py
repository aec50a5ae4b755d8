"""Exact duplicate detection over any number of rows, in bounded memory and bounded local disk.

Every duplicate check of one validation (the row id, each unique column, whole rows) is a
``DuplicateFinder`` over one shared ``SpillStore``. A finder reduces each value to a 64-bit hash
(SipHash, Python's ``hash``) and, per batch of rows, counts the repeats inside the batch at once
and hands on only each hash's first row. The store keeps those entries (hash, row, which check:
14 bytes) in memory up to ``FLUSH_ENTRIES``, then appends them to partition files on local disk
(Lambda's /tmp), split by the top bits of the hash mixed with the check's number (so one value in
many columns spreads out too). At the end each partition is read back and sorted; one larger than
``SORT_BYTES`` is read key range by key range instead, so memory never holds more than that much of
it, however the hashes fall, and nothing is written twice.

So the disk used is at most 14 bytes per value and check (a value repeated inside a batch costs
nothing), and the store refuses to go past its limit (``SpillLimitExceeded``): the validator turns
that into ``CAPACITY_EXCEEDED``. Two different values share a hash with probability ~n²/2⁶⁵
(4e-7 for 4 million rows): an accepted risk, stated in docs/contracts.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np

from chalicelib.validation.exceptions import SpillLimitExceeded

# One value of one check on disk: its hash, its row (1-based, 32 bits) and the check's number.
ENTRY = np.dtype([("hash", "<i8"), ("row", "<u4"), ("lane", "<u2")])  # packed: 14 bytes
ENTRY_BYTES = ENTRY.itemsize
MAX_ROW = 2**32 - 1
MAX_FINDERS = 2**16
PARTITIONS = 256  # files on disk (Lambda allows 1,024 open files in all)
FLUSH_ENTRIES = 1 << 16  # entries kept in memory before they are written (896 KiB)
SORT_BYTES = 32 * 1024 * 1024  # the most of a partition sorted in memory at once
READ_ENTRIES = 1 << 18  # entries read at a time when a partition is read by key range
_SIGN = np.uint64(1 << 63)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: spreads a check's number over the key's bits


class SpillStore:
    """The disk and memory every duplicate check of one validation shares. Close it when done."""

    def __init__(
        self,
        limit_bytes: int,
        directory: str | None = None,
        partitions: int = PARTITIONS,
        sort_bytes: int | None = None,
        flush_entries: int | None = None,
    ) -> None:
        if partitions < 1 or partitions & (partitions - 1):
            raise ValueError(f"partitions must be a power of two, not {partitions}")
        self.limit = limit_bytes
        self.charged = 0  # bytes of entries accepted, in memory or on disk
        self.peak = 0  # the most bytes on disk at once
        self._parent = directory
        self._partitions = partitions
        # Partition p holds the keys [p << shift, (p + 1) << shift).
        self._shift = 64 - (partitions.bit_length() - 1)
        self._sort_bytes = SORT_BYTES if sort_bytes is None else sort_bytes
        self._flush_entries = FLUSH_ENTRIES if flush_entries is None else flush_entries
        self._dir: str | None = None  # made at the first write: small uploads never touch disk
        self._files: dict[int, BinaryIO] = {}
        self._pending: list[np.ndarray] = []
        self._pending_entries = 0
        self._lanes = 0
        self._results: list[tuple[int, int | None]] | None = None

    def finder(self) -> DuplicateFinder:
        if self._lanes >= MAX_FINDERS:
            raise ValueError(f"at most {MAX_FINDERS} duplicate checks share a store")
        self._lanes += 1
        return DuplicateFinder(self, self._lanes - 1)

    # --- writing -----------------------------------------------------------------------------------

    def keep(self, lane: int, hashes: np.ndarray, rows: np.ndarray) -> None:
        """Accept one batch of one check: hashes distinct within the batch, each with its first row."""
        needed = self.charged + len(hashes) * ENTRY_BYTES
        if needed > self.limit:
            raise SpillLimitExceeded(self.limit, needed)
        if len(rows) and int(rows.max()) > MAX_ROW:
            raise ValueError(f"row numbers are kept in 32 bits: {int(rows.max())} is too large")
        self.charged = needed
        entries = np.empty(len(hashes), dtype=ENTRY)
        entries["hash"] = hashes
        entries["row"] = rows
        entries["lane"] = lane
        self._pending.append(entries)
        self._pending_entries += len(entries)
        if self._pending_entries >= self._flush_entries:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        entries = np.concatenate(self._pending)
        self._pending, self._pending_entries = [], 0
        part = (_keys(entries) >> np.uint64(self._shift)).astype(np.intp) if self._partitions > 1 else None
        if part is None:
            _write(self._file(0), entries.tobytes())
        else:
            # A stable sort keeps each check's entries in row order within a partition.
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(self._partitions + 1))
            for p in np.flatnonzero(np.diff(bounds)).tolist():
                _write(self._file(p), entries[order[bounds[p] : bounds[p + 1]]].tobytes())
        self.peak = self.charged  # everything accepted is on disk now

    def _file(self, p: int) -> BinaryIO:
        handle = self._files.get(p)
        if handle is None:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="mlops-dupes-", dir=self._parent)
            # Unbuffered: every write is a whole slice already, and 256 buffers would cost memory.
            handle = open(os.path.join(self._dir, f"{p}.bin"), "wb", buffering=0)  # noqa: SIM115  # closed in close()
            self._files[p] = handle
        return handle

    # --- counting ----------------------------------------------------------------------------------

    def results(self, lane: int) -> tuple[int, int | None]:
        """(values of the check that repeat one of an earlier batch, the first such row)."""
        if self._results is None:
            counts = np.zeros(self._lanes, dtype=np.int64)
            firsts = np.full(self._lanes, MAX_ROW + 1, dtype=np.int64)
            if not self._files:  # everything is still in memory
                if self._pending:
                    _count(np.concatenate(self._pending), counts, firsts)
                self._pending, self._pending_entries = [], 0
            else:
                self._flush()
                for p, handle in sorted(self._files.items()):
                    handle.close()
                    lo = p << self._shift if self._partitions > 1 else 0
                    entries = os.path.getsize(handle.name) // ENTRY_BYTES
                    self._count_range(handle.name, entries, lo, lo + (1 << self._shift), counts, firsts)
            self._results = [
                (n, f if n else None) for n, f in zip(counts.tolist(), firsts.tolist(), strict=True)
            ]
        return self._results[lane]

    def _count_range(
        self, path: str, entries: int, lo: int, hi: int, counts: np.ndarray, firsts: np.ndarray
    ) -> None:
        """Count the repeats among the file's ``entries`` entries with a key in [lo, hi)."""
        if entries * ENTRY_BYTES <= self._sort_bytes or hi - lo <= 1:
            # One key is one value of one check, kept at most once a batch: never many entries.
            _count(_read(path, lo, hi), counts, firsts)
            return
        # Too many to sort at once: cut the range into parts that fit, sized in one reading.
        parts = min(hi - lo, -(-entries * ENTRY_BYTES // self._sort_bytes) + 1)
        edges = [lo + (hi - lo) * i // parts for i in range(parts + 1)]
        inner = np.array(edges[1:-1], dtype=np.uint64)
        sizes = np.zeros(parts, dtype=np.int64)
        for block in _blocks(path):
            keys = _keys(block)
            keys = keys[(keys >= np.uint64(lo)) & (keys <= np.uint64(hi - 1))]
            sizes += np.bincount(np.searchsorted(inner, keys, side="right"), minlength=parts)
        for i in np.flatnonzero(sizes).tolist():
            self._count_range(path, int(sizes[i]), edges[i], edges[i + 1], counts, firsts)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}
        self._pending, self._pending_entries = [], 0
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class DuplicateFinder:
    """One duplicate check: hashes of values with their row numbers in, repeats out."""

    def __init__(self, store: SpillStore, lane: int) -> None:
        self._store = store
        self._lane = lane
        self._count = 0  # repeats inside a batch, counted as they come
        self._first: int | None = None
        self.added = 0

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        """One batch of values: rows increase within a batch and from one batch to the next."""
        if not len(hashes):
            return
        unique, first = np.unique(hashes, return_index=True)  # the first row of each hash
        if len(unique) < len(hashes):
            repeat = np.ones(len(hashes), dtype=bool)
            repeat[first] = False
            self._count += int(repeat.sum())
            row = int(rows[repeat].min())
            self._first = row if self._first is None else min(self._first, row)
        self._store.keep(self._lane, unique, rows[first])
        self.added += len(hashes)

    def duplicates(self) -> tuple[int, int | None]:
        """(values that repeat an earlier one, the first row holding such a value)."""
        count, first = self._store.results(self._lane)
        firsts = [f for f in (first, self._first) if f is not None]
        return count + self._count, min(firsts) if firsts else None

    def close(self) -> None:
        """Nothing of its own to release: the store's owner closes the store."""


def _write(handle: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[handle.write(view) or 0 :]


def _keys(entries: np.ndarray) -> np.ndarray:
    """Unsigned keys: the hash mixed with the check's number (equal values of one check, equal keys)."""
    hashes = entries["hash"].astype(np.int64).view(np.uint64)
    return hashes ^ (entries["lane"].astype(np.uint64) * _MIX) ^ _SIGN


def _blocks(path: str) -> Iterator[np.ndarray]:
    with open(path, "rb") as handle:
        while len(block := np.fromfile(handle, dtype=ENTRY, count=READ_ENTRIES)):
            yield block


def _read(path: str, lo: int, hi: int) -> np.ndarray:
    """The file's entries with a key in [lo, hi), in file order."""
    kept = []
    for block in _blocks(path):
        keys = _keys(block)
        kept.append(block[(keys >= np.uint64(lo)) & (keys <= np.uint64(hi - 1))])
    return np.concatenate(kept) if kept else np.empty(0, dtype=ENTRY)


def _count(entries: np.ndarray, counts: np.ndarray, firsts: np.ndarray) -> None:
    """Add each check's repeats among ``entries`` (in batch order) to its count and first row."""
    if len(entries) < 2:
        return
    order = np.lexsort((entries["hash"], entries["lane"]))  # stable: batch order within equal values
    lane = entries["lane"][order]
    hashes = entries["hash"][order]
    repeat = (lane[1:] == lane[:-1]) & (hashes[1:] == hashes[:-1])
    if not repeat.any():
        return
    lanes = lane[1:][repeat].astype(np.intp)
    counts += np.bincount(lanes, minlength=len(counts))
    np.minimum.at(firsts, lanes, entries["row"][order[1:][repeat]].astype(np.int64))


def hash_strings(values: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
