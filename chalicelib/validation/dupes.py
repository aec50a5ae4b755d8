"""Exact duplicate detection over any number of rows in bounded memory.

Each value is reduced to a 64-bit hash (SipHash, Python's ``hash``) with its row number and spilled
to one of several partition files on local disk (Lambda's /tmp); at the end each partition is
sorted on its own. Memory is one partition's worth, not the file's: the validator's peak memory
stays flat as uploads grow. Two different values share a hash with probability ~n²/2⁶⁵
(4e-7 for 4 million rows): an accepted risk, stated in docs/contracts.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np

_PAIR = np.dtype([("hash", "<i8"), ("row", "<i8")])


class DuplicateFinder:
    def __init__(self, partitions: int = 16, directory: str | None = None) -> None:
        self._partitions = partitions
        self._dir = tempfile.mkdtemp(prefix="mlops-dupes-", dir=directory)
        self._files = [open(os.path.join(self._dir, f"{p}.bin"), "wb") for p in range(partitions)]  # noqa: SIM115
        self.added = 0

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        if not len(hashes):
            return
        pairs = np.empty(len(hashes), dtype=_PAIR)
        pairs["hash"] = hashes
        pairs["row"] = rows
        # Partition on the low bits: SipHash output is uniform, so partitions are even.
        part = (hashes.astype(np.uint64) % np.uint64(self._partitions)).astype(np.intp)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self._partitions + 1))
        for p in range(self._partitions):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                self._files[p].write(pairs[order[lo:hi]].tobytes())
        self.added += len(hashes)

    def duplicates(self) -> tuple[int, int | None]:
        """(rows whose value was seen before, the first such row), then cleans up."""
        count, first = 0, None
        try:
            for handle in self._files:
                handle.close()
            for p in range(self._partitions):
                pairs = np.fromfile(os.path.join(self._dir, f"{p}.bin"), dtype=_PAIR)
                if len(pairs) < 2:
                    continue
                # Rows were appended in increasing order, so a stable sort on the hash keeps each
                # value's first occurrence first: every later one is a repeat.
                order = np.argsort(pairs["hash"], kind="stable")
                hashes = pairs["hash"][order]
                repeat = hashes[1:] == hashes[:-1]
                n = int(repeat.sum())
                if n:
                    count += n
                    row = int(pairs["row"][order][1:][repeat].min())
                    first = row if first is None else min(first, row)
        finally:
            self.close()
        return count, first

    def close(self) -> None:
        for handle in self._files:
            if not handle.closed:
                handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def hash_strings(values: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
