"""The batch worker's pipeline (``scoring.engine.Pipeline``, ``score_pieces``): rows come out in the
input's order whatever each stage takes, an exception in any stage reaches the caller and stops every
stage (no part is returned), and no stage runs more than the queues' depth ahead of the caller.
(Scoring's values, pii columns and bad rows: tests/unit/test_batch.py.)"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring.engine import Pipeline, Scorer, row_pieces, score_pieces

from tests.support import batch_input, logistic_scorer, wait_until


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return logistic_scorer()


def _cut(body: bytes, sizes: list[int]) -> list[bytes]:
    """The body in chunks of the given sizes, cycled (cuts fall anywhere, mid-row included)."""
    chunks, at, n = [], 0, 0
    while at < len(body):
        size = sizes[n % len(sizes)]
        chunks.append(body[at : at + size])
        at, n = at + size, n + 1
    return chunks


def _pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pipeline-") and t.is_alive()]


# --- order -------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.integers(), max_size=60),
    pauses=st.lists(st.sampled_from([0.0, 0.0, 0.0005]), min_size=1, max_size=7),
    depth=st.integers(1, 3),
)
def test_the_pipeline_yields_every_item_once_in_the_source_s_order(items, pauses, depth):
    """Stages that take different times per item (some yield the GIL, some do not) still hand
    the caller every item once, in order: one thread a stage, first in first out."""

    def stage(n: int):
        def run(pair: tuple[int, Any]) -> tuple[int, Any]:
            pause = pauses[(pair[0] + n) % len(pauses)]
            if pause:
                time.sleep(pause)
            return pair[0], (n, pair[1])

        return run

    stages = [(f"s{n}", stage(n)) for n in range(3)]
    out = list(Pipeline(iter(enumerate(items)), stages, depth))
    assert out == [(i, (2, (1, (0, v)))) for i, v in enumerate(items)]
    assert wait_until(lambda: not _pipeline_threads(), 30)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_part_scored_through_the_pipeline_equals_the_part_scored_piece_by_piece(scorer, depth):
    header, body = batch_input(4000)
    chunks = _cut(body, [997, 5000, 131, 20_000, 64])  # many pieces of uneven sizes
    sequential = score_pieces(row_pieces(iter(chunks)), header, scorer, overlap=False)
    busy: dict[str, float] = {}
    piped = score_pieces(row_pieces(iter(chunks)), header, scorer, depth=depth, busy=busy)
    assert piped.rows == sequential.rows == 4000
    assert piped.data == sequential.data and piped.sha256 == sequential.sha256
    ids = [line.split(b",", 1)[0] for line in piped.data.splitlines()[1:]]
    assert ids == [b'"patient-%07d"' % i for i in range(4000)]  # the input's order, each row once
    assert set(busy) == {"read", "parse", "score", "format"}


def test_capture_observes_the_pieces_in_row_order(scorer):
    header, body = batch_input(3000)
    seen: list[tuple[int, int]] = []
    score_pieces(
        row_pieces(iter(_cut(body, [3000, 700]))),
        header,
        scorer,
        observe=lambda table, scores, first, seconds: seen.append((first, table.num_rows)),
    )
    firsts = [first for first, _ in seen]
    assert firsts == sorted(firsts) and firsts[0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(seen))
    assert sum(n for _, n in seen) == 3000


# --- failures ------------------------------------------------------------------------------------------


class _Boom(Exception):
    pass


class _FailingScorer(Scorer):
    """The scorer, failing in one stage on the third piece."""

    def __init__(self, base: Scorer, stage: str) -> None:
        super().__init__(base.model)
        self.stage = stage
        self.calls = {"parse": 0, "score": 0, "format": 0}

    def _maybe_fail(self, stage: str) -> None:
        self.calls[stage] += 1
        if stage == self.stage and self.calls[stage] == 3:
            raise _Boom(stage)

    def parse(self, data: bytes, header: list[str], where: str = "") -> Any:
        self._maybe_fail("parse")
        return super().parse(data, header, where)

    def score(self, feed: Any) -> Any:
        self._maybe_fail("score")
        return super().score(feed)

    def format(self, table: Any, scores: Any, include_header: bool) -> bytes:
        self._maybe_fail("format")
        return super().format(table, scores, include_header)


@pytest.mark.parametrize("stage", ["read", "parse", "score", "format", "check"])
def test_an_exception_in_any_stage_reaches_the_caller_stops_every_stage_and_closes_the_source(scorer, stage):
    """The worker writes a part only with what ``score_pieces`` returns: when a stage fails (a
    broken read, a bad value, the model, the formatter, or a spot notice raised by ``check``) it
    returns nothing, every pipeline thread has ended, and the source (the S3 body) is closed."""
    header, body = batch_input(3000)
    chunks = _cut(body, [4000])
    closed = threading.Event()
    read = {"n": 0}

    def source() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                read["n"] += 1
                if stage == "read" and read["n"] == 3:
                    raise _Boom("read")
                yield chunk
        finally:
            closed.set()

    def check(done: int) -> None:
        if stage == "check" and done > 8000:
            raise _Boom("check")

    with pytest.raises(_Boom, match=stage):
        score_pieces(row_pieces(source()), header, _FailingScorer(scorer, stage), check=check)
    assert not _pipeline_threads()  # joined before the exception reached us
    assert closed.is_set()
    assert read["n"] < len(chunks)  # it stopped reading: nothing after the failure was fetched


# --- bounded queues ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2])
def test_no_stage_runs_more_than_the_queue_depth_ahead_of_the_caller(depth):
    """With a caller that stops taking items, the source is read only until every queue is full and
    every thread holds one item: (stages + 1) x (depth + 1) items ahead, never more, whatever the
    source's length (so memory is set by the piece size, not the input's)."""
    stages = [(f"s{n}", lambda x: x) for n in range(3)]
    bound = (len(stages) + 1) * (depth + 1)
    produced = {"n": 0}

    def source() -> Iterator[int]:
        for i in range(1000):
            produced["n"] += 1
            yield i

    taken = 0
    pipeline = Pipeline(source(), stages, depth)
    try:
        for _ in pipeline:
            taken += 1
            if taken == 5:
                # The caller pauses here: the stages fill up to the bound (failure bound: a hang)...
                assert wait_until(lambda: produced["n"] - 5 >= bound, 30)
                # ...and stay there (an unbounded queue would run on to the source's end).
                time.sleep(0.3)
                assert produced["n"] - taken == bound
                break
    finally:
        pipeline.stop()
    assert not _pipeline_threads()
    assert produced["n"] < 1000


def test_a_queue_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth"):
        Pipeline(iter([]), [], 0)
