"""Row-aligned byte ranges of a text object: pure functions over sizes and bytes.

Shared by the batch planner (shards of inputs to score) and the validator's scale-out (shards of
one large upload validated in parallel). A range ``[start, end)`` begins at the start of a row and
ends at the start of another (or at the end of the object), so the ranges of an object cover each
of its rows exactly once; the header (the first line) belongs to none of them.

Boundaries are found with ``next_row_start(pos)``: the first row start at or after ``pos``, i.e.
just past the first newline at or after ``pos - 1``. ``next_row_start_by_reads`` answers it with
small range reads around each nominal boundary, so splitting a 10 GiB object reads about 64 KiB a
range, not the object.

A newline inside a quoted field looks like a row end here. The callers say what then happens: the
batch planner's shard fails, named; the validator notices the cut quote and validates in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

MIN_SHARD_BYTES = 1024
BOUNDARY_WINDOW = 64 * 1024  # bytes read around a nominal boundary to find the next row start


def row_ranges(
    size: int, header_end: int, shard_bytes: int, next_row_start: Callable[[int], int]
) -> list[tuple[int, int]]:
    """Row-aligned ranges covering ``[header_end, size)``, each about ``shard_bytes`` long.

    ``next_row_start(pos)`` returns the first row start at or after ``pos`` (``size`` if none).
    A row longer than ``shard_bytes`` simply makes its shard longer: ranges never split a row.
    """
    if shard_bytes < MIN_SHARD_BYTES:
        raise ValueError(f"shard_bytes {shard_bytes} is below the minimum {MIN_SHARD_BYTES}")
    if header_end >= size:
        return []
    starts = [header_end]
    pos = header_end + shard_bytes
    while pos < size:
        boundary = next_row_start(pos)
        if boundary >= size:
            break
        if boundary > starts[-1]:
            starts.append(boundary)
        pos = max(boundary, pos) + shard_bytes
    return list(zip(starts, [*starts[1:], size], strict=True))


def next_row_start_in(data: bytes, pos: int) -> int:
    """``next_row_start`` over bytes held in memory (tests, small objects)."""
    if pos <= 0:
        return 0
    found = data.find(b"\n", pos - 1)
    return len(data) if found < 0 else found + 1


def next_row_start_by_reads(size: int, pos: int, read: Callable[[int, int], bytes]) -> int:
    """``next_row_start`` with range reads: ``read(start, length)`` returns up to ``length`` bytes
    from ``start``. The window doubles while no newline is found (a long row)."""
    at = pos - 1
    window = BOUNDARY_WINDOW
    while at < size:
        data = read(at, window)
        if not data:
            break
        found = data.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(data)
        window *= 2
    return size


def header_end_by_reads(size: int, read: Callable[[int, int], bytes]) -> int:
    """Where the first line ends (just past its newline; ``size`` if the object has one line)."""
    window = BOUNDARY_WINDOW
    while True:
        data = read(0, window)
        newline = data.find(b"\n")
        if newline >= 0:
            return newline + 1
        if len(data) >= size or len(data) < window:
            return size
        window *= 4
