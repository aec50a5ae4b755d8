"""Large uploads in parallel: one shard's partial result, and the merge of all of them into one
validation result, equal to what one pass over the whole upload gives.

    upload ──> header + row-aligned byte ranges (``chalicelib.rowranges``)
                 │ each range, with the header line before it: ``validate_shard`` ──> ``Partial``
                 └ all partials: ``merge`` ──> the ValidationResult of one pass, or a reason to make one

A shard is validated by the same streaming validator as a whole upload, with the header line
before its rows, so every per-value check runs unchanged. What only the whole upload can say is
left to the merge: the dataset's limits (rows, null fraction, duplicate-row fraction) are relaxed
for the shard and checked on the totals; repeats across shards of the row id, of unique columns
and of whole rows are found from each shard's sorted distinct hashes; the column statistics are
combined (counts, nulls, extremes and lengths exactly; means and variances with Chan's pairwise
formula); category counts are added (a column whose distinct values pass the budget becomes free
text, as in one pass); numeric samples are merged (below).

The merged result is the one-pass result, field by field, except where noted:

* ``mean`` and ``std`` of numeric columns: one pass combines chunk statistics from the file's start,
  the merge from each shard's start; the same figures, summed in another order (relative difference
  ~1e-15).
* ``distinct`` of a column that became free text (``">N"``): a lower bound, taken when the budget
  was passed; one pass and the merge pass it at different points.
* the numeric drift sample of a column with more values than the sample holds (5,000 until the
  columns share ``Capacity.sample_values``): both are uniform samples without replacement, not the
  same one. Up to that size the sample is exact (the very same values, in the same order): every
  shard keeps all of its values, and the merge draws the one-pass keys for them.
* ``seconds``: the merge's wall time. The report's ``shards`` section says how it was split.

An upload with any issue is validated again in one pass: row and line numbers in messages, first
offending rows and counts then come from one reading, exactly (the verdict, invalid, is known
from the shards already). So is an upload whose shards hashed differently (Python's string hash
is seeded per process: the ingest function runs with ``PYTHONHASHSEED`` fixed, and every partial
carries a probe of it), and one where a quoted field spans a shard boundary: the shard before the
boundary then ends inside quotes, which the strict reader reports (``UNTERMINATED_QUOTE``), so
such an upload always goes to one pass rather than to a wrong merge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from chalicelib.validation.capacity import MIB, Capacity
from chalicelib.validation.columns import ColumnChecker
from chalicelib.validation.contract import Contract
from chalicelib.validation.dupes import SpillStore
from chalicelib.validation.issues import IssueLog
from chalicelib.validation.rowkeys import RowDigest
from chalicelib.validation.validator import (
    Readable,
    ValidationResult,
    _checkers,
    _duplicate_checks,
    _partitions,
    _result,
    _validate,
)

PARTIAL_FORMAT = "mlops-validation-shard/1"
HASH_PROBE = "mlops-validation-shard-probe"
# The issue a shard that ends inside a quoted field reports (its range cut the field in two).
CUT_QUOTE = "UNTERMINATED_QUOTE"


@dataclass(frozen=True)
class ScaleOut:
    """When an upload is split, and into what. ``split_bytes``: uploads of at least this many bytes
    (plain CSV; gzip is one stream) are validated in shards of about ``shard_bytes``."""

    split_bytes: int = 256 * MIB
    shard_bytes: int = 128 * MIB

    def __post_init__(self) -> None:
        from chalicelib.rowranges import MIN_SHARD_BYTES

        if self.shard_bytes < MIN_SHARD_BYTES:
            raise ValueError(
                f"ScaleOut.shard_bytes must be at least {MIN_SHARD_BYTES}, not {self.shard_bytes}"
            )
        if self.split_bytes < self.shard_bytes:
            raise ValueError("ScaleOut.split_bytes must be at least shard_bytes")

    def splits(self, size: int) -> bool:
        return size >= self.split_bytes


@dataclass
class Partial:
    """What one shard leaves for the merge. Holds values of the data (category counts, numeric
    samples, hashes): stored with the dataset's classification, never in reports or logs."""

    index: int
    codes: list[str]  # the shard's issue codes (empty: clean)
    rows: int
    fields: int  # the header's fields
    duplicate_rows: int  # whole-row repeats inside the shard
    hash_probe: int
    seconds: float
    columns: dict[str, dict[str, Any]]  # each checker's end state (JSON)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # hashes, samples, row digest
    digest_by: str | None = None  # the row digest's kind; None: no digest (over identity_rows)
    contract_version: Any = None  # the contract's version the shard was checked against

    def drop_digest(self) -> None:
        """Let go of the row digest (the upload has more rows than digests are kept for)."""
        self.digest_by = None
        for name in ("digest-ids", "digest-contents", "digest-counts"):
            self.arrays.pop(name, None)

    def to_bytes(self) -> bytes:
        names = sorted(self.arrays)
        head = {
            "format": PARTIAL_FORMAT,
            "index": self.index,
            "codes": self.codes,
            "rows": self.rows,
            "fields": self.fields,
            "duplicate_rows": self.duplicate_rows,
            "hash_probe": self.hash_probe,
            "seconds": self.seconds,
            "columns": self.columns,
            "digest_by": self.digest_by,
            "contract_version": self.contract_version,
            "arrays": [[n, self.arrays[n].dtype.str, len(self.arrays[n])] for n in names],
        }
        body = b"".join(np.ascontiguousarray(self.arrays[n]).tobytes() for n in names)
        return json.dumps(head, sort_keys=True).encode() + b"\n" + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Partial:
        newline = data.find(b"\n")
        head = json.loads(data[:newline]) if newline > 0 else None
        if not isinstance(head, dict) or head.get("format") != PARTIAL_FORMAT:
            raise ValueError(f"not a shard's partial result ({PARTIAL_FORMAT})")
        arrays: dict[str, np.ndarray] = {}
        at = newline + 1
        for name, dtype, length in head["arrays"]:
            kind = np.dtype(dtype)
            arrays[name] = np.frombuffer(data, dtype=kind, count=length, offset=at).copy()
            at += kind.itemsize * length
        return cls(
            index=int(head["index"]),
            codes=list(head["codes"]),
            rows=int(head["rows"]),
            fields=int(head["fields"]),
            duplicate_rows=int(head["duplicate_rows"]),
            hash_probe=int(head["hash_probe"]),
            seconds=float(head["seconds"]),
            columns=dict(head["columns"]),
            arrays=arrays,
            digest_by=head.get("digest_by"),
            contract_version=head.get("contract_version"),
        )


class _RecordingStore(SpillStore):
    """The shard's spill store, which also keeps every distinct hash each check saw (the merge
    finds repeats across shards with them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: dict[int, list[np.ndarray]] = {}

    def keep(self, lane: int, hashes: np.ndarray, rows: np.ndarray) -> None:
        super().keep(lane, hashes, rows)
        self.recorded.setdefault(lane, []).append(np.array(hashes, dtype=np.int64))

    def distinct(self, lane: int) -> np.ndarray:
        parts = self.recorded.get(lane)
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def shard_contract(contract: Contract) -> Contract:
    """The contract a shard is checked against: the dataset-wide limits are the merge's."""
    limits = replace(
        contract.limits, min_rows=0, max_rows=None, max_null_fraction=1.0, max_duplicate_row_fraction=1.0
    )
    return replace(contract, limits=limits)


def validate_shard(
    stream: Readable,
    contract: Contract,
    index: int,
    *,
    capacity: Capacity | None = None,
    spill_dir: str | None = None,
    size: int | None = None,
) -> Partial:
    """Validate one shard: ``stream`` is the upload's header line, then the shard's rows.

    ``size`` (the shard's bytes) sizes the spill; row numbers in the shard's own issues count from
    the shard's first row (issues send the upload to one pass, so they are never merged)."""
    started = time.monotonic()
    capacity = capacity or Capacity()
    checks = _duplicate_checks(contract)
    store = _RecordingStore(capacity.spill_bytes, directory=spill_dir, partitions=_partitions(size, checks))
    try:
        # Each shard samples with a seed of its own: the samples' keys are independent (merge).
        result = _validate(stream, shard_contract(contract), size, None, 1 + index, capacity, store, started)
        arrays = {f"lane-{lane}": store.distinct(lane) for lane in range(checks)}
    finally:
        store.close()
    report = result.report
    columns: dict[str, dict[str, Any]] = {}
    for name, checker in (result.checkers or {}).items():
        state, samples = _checker_state(checker)
        columns[name] = state
        for kind, values in samples.items():
            arrays[f"{kind}-{name}"] = values
    digest = result.row_digest
    if digest is not None:
        arrays.update(
            {"digest-ids": digest.ids, "digest-contents": digest.contents, "digest-counts": digest.counts}
        )
    return Partial(
        index=index,
        codes=sorted({i["code"] for i in report["issues"]}),
        rows=int(report["rows"]),
        fields=int(report.get("columns") or 0),
        duplicate_rows=int(report.get("duplicate_rows") or 0),
        hash_probe=hash(HASH_PROBE),
        seconds=time.monotonic() - started,
        columns=columns,
        arrays=arrays,
        digest_by=digest.by if digest is not None else None,
    )


def _checker_state(checker: ColumnChecker) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    state = {
        "count": checker.count,
        "nulls": checker.nulls,
        "n": checker.n,
        "mean": checker.mean,
        "m2": checker.m2,
        "minimum": checker.minimum,
        "maximum": checker.maximum,
        "min_length": checker.min_length,
        "max_length": checker.max_length,
        "categories": None if checker.free_text else checker.categories,
        "distinct_floor": checker._distinct_floor,
    }
    samples: dict[str, np.ndarray] = {}
    reservoir = checker._reservoir
    if reservoir is not None:
        state["seen"] = reservoir.seen
        # Never full: the values are still in the order they came (the merge needs it).
        samples["sample"] = np.asarray(reservoir._values, dtype=np.float64)
        samples["keys"] = np.asarray(reservoir._keys, dtype=np.float64)
    return state, samples


@dataclass(frozen=True)
class Merged:
    """The merge's answer: the one-pass result, or why one pass must be made instead."""

    result: ValidationResult | None
    one_pass: str | None = None  # the reason, when the upload must be validated in one pass


def merge(
    contract: Contract,
    partials: list[Partial],
    *,
    reference: dict[str, Any] | None = None,
    capacity: Capacity | None = None,
    seed: int = 0,
    seconds: float = 0.0,
    consume: bool = False,
) -> Merged:
    """Merge the shards' partial results (in any order; each index once) into one result.

    With ``consume`` the partials' hashes are dropped as they are used (less memory; the partials
    cannot be merged again)."""
    capacity = capacity or Capacity()
    partials = sorted(partials, key=lambda p: p.index)
    if [p.index for p in partials] != list(range(len(partials))) or not partials:
        raise ValueError("merge needs every shard's partial exactly once")
    dirty = [p for p in partials if p.codes]
    if dirty:
        first = dirty[0]
        cut = first.index < len(partials) - 1 and CUT_QUOTE in first.codes
        why = "a quoted field spans a shard boundary" if cut else f"shard {first.index} has issues"
        return Merged(None, f"{why} ({', '.join(first.codes)}): the report's rows come from one pass")
    if len({p.hash_probe for p in partials}) > 1:
        return Merged(None, "the shards hashed values differently (PYTHONHASHSEED not fixed)")
    rows = sum(p.rows for p in partials)
    checks = _duplicate_checks(contract)

    def joined(lane: int) -> np.ndarray:
        # With ``consume``, each shard's hashes are let go once joined: memory holds one check twice.
        name = f"lane-{lane}"
        return np.concatenate([p.arrays.pop(name) if consume else p.arrays[name] for p in partials])

    for lane in range(checks - 1):  # the row id's and the unique columns' checks
        hashes = joined(lane)
        if len(np.unique(hashes)) < len(hashes):
            return Merged(
                None, "a row id or unique value repeats across shards: invalid, reported from one pass"
            )
        del hashes
    whole = joined(checks - 1)
    duplicate_rows = sum(p.duplicate_rows for p in partials) + len(whole) - len(np.unique(whole))
    del whole
    checkers = _checkers(contract, capacity, SpillStore(0), seed)
    for name, checker in checkers.items():
        _merge_checker(checker, [(p.columns[name], p.arrays) for p in partials], name, seed)
    problem = _dataset_problem(contract, checkers, rows, duplicate_rows, capacity)
    if problem:
        return Merged(None, f"{problem}: invalid, reported from one pass")
    state: dict[str, Any] = {
        "rows": rows,
        "header": [""] * partials[0].fields,  # only its length is reported
        "compression": None,
        "duplicate_rows": duplicate_rows,
    }
    result = _result(contract, checkers, IssueLog(), state, seconds, reference)
    result.checkers = None
    result.report["shards"] = {
        "count": len(partials),
        "rows": [p.rows for p in partials],
        "seconds": [round(p.seconds, 3) for p in partials],
    }
    result.row_digest = _merge_digests(partials, rows, capacity)
    return Merged(result)


def _dataset_problem(
    contract: Contract, checkers: dict[str, ColumnChecker], rows: int, duplicates: int, capacity: Capacity
) -> str | None:
    """The dataset-wide check one pass would fail (validator._dataset_checks), if any."""
    limits = contract.limits
    cells = sum(c.count for c in checkers.values())
    nulls = sum(c.nulls for c in checkers.values())
    if rows == 0:
        return "no data rows"
    if rows > capacity.max_rows:
        return "more rows than the validator numbers"
    if rows < limits.min_rows or (limits.max_rows is not None and rows > limits.max_rows):
        return "the row count is outside the contract's limits"
    if cells and nulls / cells > limits.max_null_fraction:
        return "too many empty cells"
    if duplicates and duplicates / rows > limits.max_duplicate_row_fraction:
        return "too many duplicate rows"
    return None


def _merge_checker(
    checker: ColumnChecker, parts: list[tuple[dict[str, Any], dict[str, np.ndarray]]], name: str, seed: int
) -> None:
    """The checker's end state after all shards' rows, in order."""
    categories: dict[str, int] | None = {}
    floor = 0
    for state, _ in parts:
        checker.count += state["count"]
        checker.nulls += state["nulls"]
        if state["n"]:
            n_a, n_b = checker.n, state["n"]
            total = n_a + n_b
            with np.errstate(over="ignore", invalid="ignore"):
                delta = state["mean"] - checker.mean
                checker.mean += delta * n_b / total
                checker.m2 += state["m2"] + delta * delta * n_a * n_b / total
            checker.n = total
        checker.minimum = _pick(min, checker.minimum, state["minimum"])
        checker.maximum = _pick(max, checker.maximum, state["maximum"])
        checker.min_length = _pick(min, checker.min_length, state["min_length"])
        checker.max_length = _pick(max, checker.max_length, state["max_length"])
        floor = max(floor, state["distinct_floor"])
        if state["categories"] is None:
            categories = None
        elif categories is not None:
            for value, count in state["categories"].items():
                categories[value] = categories.get(value, 0) + count
    if categories is not None:
        checker._count(categories)  # becomes free text exactly when one pass would have
    else:  # a shard's column became free text: so does the whole upload's
        checker.free_text, checker.categories = True, {}
    if checker.free_text:
        checker._distinct_floor = max(floor, checker._distinct_floor)
    reservoir = checker._reservoir
    if reservoir is None:
        return
    seen = sum(state["seen"] for state, _ in parts)
    values = [arrays[f"sample-{name}"] for _, arrays in parts]
    if seen <= reservoir.capacity:
        # Every value is in its shard's sample, in order: the one-pass keys are drawn afresh.
        from chalicelib.validation.drift import Reservoir

        exact = Reservoir(capacity=reservoir.capacity, seed=seed)
        exact.add(np.concatenate(values) if values else np.empty(0))
        checker._reservoir = exact
        return
    keys = np.concatenate([arrays[f"keys-{name}"] for _, arrays in parts])
    pooled = np.concatenate(values)
    smallest = np.argsort(keys, kind="stable")[: reservoir.capacity]
    reservoir._values, reservoir._keys, reservoir.seen = pooled[smallest], keys[smallest], seen


def _pick(choose: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else choose(a, b)


def _merge_digests(partials: list[Partial], rows: int, capacity: Capacity) -> RowDigest | None:
    """The upload's row digest from the shards' (None past ``identity_rows``, as in one pass)."""
    if rows > capacity.identity_rows or any(p.digest_by is None for p in partials):
        return None
    by = partials[0].digest_by
    assert by is not None
    ids = np.concatenate([p.arrays["digest-ids"] for p in partials])
    contents = np.concatenate([p.arrays["digest-contents"] for p in partials])
    counts = np.concatenate([p.arrays["digest-counts"] for p in partials])
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
    return RowDigest(by, unique, contents[first], totals)
