"""The merge of a split upload's partial results holds one duplicate-check lane's hashes at a time
(issue 19): the shards' results stay in storage, each read without its lanes, and the merge reads
one lane of every shard, checks it and lets it go before the next. Before, the merging invocation
held every lane of every shard at once (~40 bytes a row): ~1.6 GB for a 5 GiB upload of short rows,
more than the ingest function's memory.

Memory is measured with tracemalloc (numpy reports its buffers to it): deterministic, not timing."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np

from chalicelib.adapters.memory.validation_outputs import MemoryValidationStore
from chalicelib.validation import Contract
from chalicelib.validation.layout import ObjectTags
from chalicelib.validation.partial import LANE, Partial, load_stored, merge, stored_lanes, validate_shard

DOC = {
    "dataset": "things",
    "task": "regression",
    "target": "y",
    "row_id": "id",
    "columns": [
        {"name": "id", "type": "integer", "classification": "internal"},
        {"name": "code", "type": "string", "classification": "public", "unique": True},
        {"name": "y", "type": "float", "classification": "public"},
    ],
}
TAGS = ObjectTags("things", "internal", "profile")
SHARDS, PER_SHARD, SHARED = 4, 150_000, 1_000  # SHARED: whole rows repeated across shards


def shard_upload(index: int) -> bytes:
    rows = [f"{index * 10 + i},c{index}-{i},{i}.5" for i in range(10)]
    return ("id,code,y\n" + "\n".join(rows) + "\n").encode()


def large_partials(contract: Contract) -> list[Partial]:
    """Real shard partials whose three lanes (row id, unique column, whole rows) are replaced by
    PER_SHARD distinct sorted hashes each, as a large upload's shards would leave: no row id or
    unique value repeats across shards; SHARED whole-row hashes of each shard repeat the first's."""
    partials = []
    for index in range(SHARDS):
        partial = validate_shard(io.BytesIO(shard_upload(index)), contract, index)
        assert sorted(n for n in partial.arrays if n.startswith(LANE)) == ["lane-0", "lane-1", "lane-2"]
        base = np.int64(index) * PER_SHARD
        for lane in range(3):
            hashes = np.arange(base, base + PER_SHARD, dtype=np.int64) * 3 + lane
            if lane == 2 and index:
                hashes[:SHARED] = np.arange(SHARED, dtype=np.int64) * 3 + lane  # the first shard's
            partial.arrays[f"{LANE}{lane}"] = np.sort(hashes)
        partial.rows = PER_SHARD
        partials.append(partial)
    return partials


def stored(contract: Contract) -> tuple[MemoryValidationStore, list[str]]:
    store, keys = MemoryValidationStore(), []
    for partial in large_partials(contract):
        key = f"shards/things/u/{partial.index:05d}.part"
        store.create_bytes(key, partial.to_bytes(), TAGS)
        keys.append(key)
    return store, keys


def test_the_merge_holds_one_lanes_hashes_at_a_time_not_every_lane_of_every_shard():
    contract = Contract.parse(DOC)
    store, keys = stored(contract)
    reads = [lambda a, b, key=key: store.get_range(key, a, b) for key in keys]
    lane = SHARDS * PER_SHARD * 8  # one lane's hashes, all shards
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        partials = load_stored(reads, identity_rows=10**9)
        answer = merge(contract, partials, consume=True, read_lane=stored_lanes(reads))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.result is not None, answer.one_pass
    assert answer.result.report["duplicate_rows"] == (SHARDS - 1) * SHARED
    # One lane, one shard's lane being read into it, and a small constant; all three lanes at once
    # (what the merge held before) would be 3 * lane = 14.4 MB, the bound is about 7 MB.
    assert peak <= lane + lane // SHARDS + 1024 * 1024, f"peak {peak:,} bytes, one lane {lane:,}"


def test_a_merge_from_storage_gives_the_in_memory_merges_report():
    contract = Contract.parse(DOC)
    store, keys = stored(contract)
    reads = [lambda a, b, key=key: store.get_range(key, a, b) for key in keys]
    partials = load_stored(reads, identity_rows=10**9)
    assert all(not any(n.startswith(LANE) for n in p.arrays) for p in partials)  # lanes stay stored
    from_storage = merge(contract, partials, read_lane=stored_lanes(reads))
    in_memory = merge(contract, [Partial.from_bytes(store.get_bytes(key) or b"") for key in keys])
    assert from_storage.result is not None and in_memory.result is not None
    mine, theirs = dict(from_storage.result.report), dict(in_memory.result.report)
    mine.pop("seconds", None), theirs.pop("seconds", None)
    assert mine == theirs
    assert from_storage.result.profile == in_memory.result.profile


def test_a_repeat_across_shards_in_a_stored_lane_is_found():
    contract = Contract.parse(DOC)
    partials = large_partials(contract)
    partials[2].arrays["lane-1"][5] = partials[0].arrays["lane-1"][7]  # a unique value again
    partials[2].arrays["lane-1"].sort()
    store = MemoryValidationStore()
    for partial in partials:
        store.create_bytes(f"shards/things/u/{partial.index:05d}.part", partial.to_bytes(), TAGS)
    reads = [lambda a, b, i=i: store.get_range(f"shards/things/u/{i:05d}.part", a, b) for i in range(SHARDS)]
    answer = merge(contract, load_stored(reads, identity_rows=10**9), read_lane=stored_lanes(reads))
    assert answer.result is None and "repeats across shards" in (answer.one_pass or "")


def test_a_partial_with_a_long_head_is_read_from_storage_whole():
    contract = Contract.parse(DOC)
    partial = large_partials(contract)[0]
    partial.columns["code"]["categories"] = {f"value-{i}": 1 for i in range(20_000)}  # > 64 KiB head
    data = partial.to_bytes()
    assert data.index(b"\n") > 64 * 1024
    read = lambda a, b: data[a:b]  # noqa: E731
    loaded = Partial.from_reader(read)
    whole = Partial.from_bytes(data)
    assert loaded.columns == whole.columns and loaded.rows == whole.rows
    assert set(loaded.arrays) | set(loaded.stored) == set(whole.arrays)
    for name, values in whole.arrays.items():
        mine = loaded.arrays[name] if name in loaded.arrays else loaded.read_stored(read, name)
        assert np.array_equal(mine, values)
