"""Splitting batch inputs into shards: pure functions over sizes and bytes.

A shard is a byte range ``[start, end)`` of one input object that begins at the start of a row and
ends at the start of another (or at the end of the object), so that the shards of an object cover
each of its rows exactly once. The header (the object's first line) belongs to no shard; it is
recorded once per object in the plan and given to every shard's parser.

Boundaries are found with ``next_row_start(pos)`` (``chalicelib.rowranges``, shared with the
validator's scale-out): the planner answers it with small range reads around each nominal boundary
(every ``shard_bytes``), so planning a 10 GiB object reads about 64 KiB per shard, not the object.

Limitation, by design: rows must not contain raw newlines inside quoted fields. A newline inside
quotes would be taken for a row end; the shard's parser then finds a row with the wrong number of
fields and the shard fails, named, rather than scoring a broken row (docs/batch.md).

Gzip objects cannot be split by byte ranges: each is one shard, decompressed by the worker.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.rowranges import BOUNDARY_WINDOW, next_row_start_by_reads, row_ranges
from chalicelib.rowranges import MIN_SHARD_BYTES as MIN_SHARD_BYTES  # the batch request's bound
from chalicelib.rowranges import next_row_start_in as next_row_start_in

DEFAULT_SHARD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class InputObject:
    key: str
    size: int
    version_id: str | None = None

    @property
    def compressed(self) -> bool:
        return self.key.endswith(".gz")


@dataclass(frozen=True)
class Shard:
    """One unit of work: rows ``[start, end)`` of one object (``end`` exclusive)."""

    index: int
    key: str
    version_id: str | None
    start: int
    end: int
    compressed: bool = False

    @property
    def bytes(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Shard:
        return cls(
            index=int(doc["index"]),
            key=str(doc["key"]),
            version_id=doc.get("version_id"),
            start=int(doc["start"]),
            end=int(doc["end"]),
            compressed=bool(doc.get("compressed", False)),
        )


def parse_header(line: bytes) -> list[str]:
    """The column names of a CSV header line (quotes allowed; a BOM or CR is removed)."""
    text = line.decode("utf-8-sig").rstrip("\r\n")
    names = next(csv.reader([text]), [])
    if not names or any(not n for n in names):
        raise ValueError(f"the header line {text[:80]!r} has an empty column name")
    if len(set(names)) != len(names):
        raise ValueError(f"the header line {text[:80]!r} names a column twice")
    return names


def plan_shards(
    objects: list[InputObject],
    shard_bytes: int,
    read: Callable[[InputObject, int, int], bytes],
) -> tuple[list[dict[str, Any]], list[Shard]]:
    """The shard plan of the input objects: per object its header, and the shards in order.

    ``read(obj, start, length)`` returns up to ``length`` bytes of ``obj`` from ``start``. Objects
    with no rows (empty, header only) are listed with ``shards: 0``.
    """
    described: list[dict[str, Any]] = []
    shards: list[Shard] = []
    for obj in sorted(objects, key=lambda o: o.key):
        entry: dict[str, Any] = {"key": obj.key, "version_id": obj.version_id, "size": obj.size}
        if obj.compressed:
            entry.update(header=None, shards=1 if obj.size else 0)
            if obj.size:
                shards.append(Shard(len(shards), obj.key, obj.version_id, 0, obj.size, compressed=True))
            described.append(entry)
            continue
        header, header_end = _header(obj, read)
        entry["header"] = header

        def next_row_start(pos: int, obj: InputObject = obj) -> int:
            return _next_row_start(obj, pos, read)

        ranges = row_ranges(obj.size, header_end, shard_bytes, next_row_start) if header else []
        entry["shards"] = len(ranges)
        for start, end in ranges:
            shards.append(Shard(len(shards), obj.key, obj.version_id, start, end))
        described.append(entry)
    return described, shards


def _header(obj: InputObject, read: Callable[[InputObject, int, int], bytes]) -> tuple[list[str] | None, int]:
    if obj.size == 0:
        return None, 0
    window = BOUNDARY_WINDOW
    while True:
        data = read(obj, 0, window)
        newline = data.find(b"\n")
        if newline >= 0:
            return parse_header(data[:newline]), newline + 1
        if len(data) >= obj.size or len(data) < window:
            return parse_header(data), obj.size  # a header and no rows
        window *= 4


def _next_row_start(obj: InputObject, pos: int, read: Callable[[InputObject, int, int], bytes]) -> int:
    return next_row_start_by_reads(obj.size, pos, lambda start, length: read(obj, start, length))


def part_key(output_prefix: str, index: int) -> str:
    return f"{output_prefix}part-{index:05d}.csv"


def manifest_key(output_prefix: str) -> str:
    return f"{output_prefix}_manifest.json"
