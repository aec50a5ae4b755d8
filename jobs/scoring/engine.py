"""Scoring one shard: read -> parse -> encode -> score -> format, with the stages overlapped.

Parsing uses pyarrow's CSV reader (C++, the GIL released; the job image is not size-bound, unlike
the Lambda package). Values are checked against the version's input schema with the same rules as
``InputSchema.encode_text`` (nullability, bounds, integers, allowed values), vectorised for numbers
and categories; booleans and timestamps go through the schema's own per-cell rules. A shard with a
value the model cannot take fails as ``BadShard``, naming the object, row and field: its rows are
never silently dropped or scored wrong.

Output: one CSV per shard with the input's non-feature columns passed through as they were (the
row id first among them, so outputs join back to inputs), except the contract's pii columns, which
are copied only when the job's request named them (``include_pii``, recorded on the job); then
``prediction`` and, for a classifier, ``probability_<class>`` per class.

Pipelining (``Pipeline``): a reader thread streams the byte range in ``chunk_bytes`` pieces cut at
row ends, a parser thread turns pieces into feature tensors, a scorer thread runs the model and a
formatter thread writes CSV, each on the next piece while the one after it works on the previous;
the calling thread appends the pieces in row order. The queues between them hold two pieces each,
so memory is set by the chunk and shard size, never by the object's. The stages overlap in time
only where they wait or release the GIL (socket reads, pyarrow, onnxruntime): on one vCPU the
CPU stages still take turns.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from chalicelib.batch.exceptions import BadShard
from chalicelib.serving.model import OnnxModel, Scores
from chalicelib.serving.schema import NUMERIC_TYPES, TEXT_TYPES

CHUNK_BYTES = 4 * 1024 * 1024
_END = object()


@dataclass
class Encoded:
    table: pa.Table
    feed: dict[str, np.ndarray]
    first_row: int
    nbytes: int


class Scorer:
    """A pinned version, ready to score CSV pieces with onnxruntime or its scikit-learn pipeline."""

    def __init__(
        self,
        model: OnnxModel,
        engine: str = "onnxruntime",
        pipeline: Any = None,
        drop: Collection[str] = (),
        include: Collection[str] = (),
    ) -> None:
        """``drop``: input columns never copied to the output (pii the request did not name);
        ``include``: columns copied even though the model takes them (pii features it named)."""
        if engine == "sklearn" and pipeline is None:
            raise ValueError("engine sklearn needs the version's fitted pipeline (model.joblib)")
        self.model = model
        self.schema = model.schema
        self.engine = engine
        self.pipeline = pipeline
        self.drop = frozenset(drop) - frozenset(include)
        self.include = frozenset(include)
        # A bad value of a pii or confidential feature is not quoted in a shard's failure reason
        # (it lands in the jobs table, the manifest and the logs): the row and field name it.
        self.sensitive = frozenset(
            str(f.get("name"))
            for f in self.schema.doc.get("features", [])
            if f.get("classification") in ("confidential", "pii")
        )

    def _copied(self, column: str) -> bool:
        """Whether an input column is copied to the output as it is."""
        return column not in self.drop and (column not in self.schema.by_name or column in self.include)

    # --- parse and encode -------------------------------------------------------------------------

    def parse(self, data: bytes, header: list[str], where: str = "") -> pa.Table:
        missing = [f.name for f in self.schema.features if f.name not in header]
        if missing:
            raise BadShard(f"{where}: missing column(s) {', '.join(missing)}: this model needs them")
        types = {
            name: pa.float64()
            if name in self.schema.by_name and self.schema.by_name[name].type in NUMERIC_TYPES
            else pa.string()
            for name in header
        }
        try:
            return pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    column_names=header, use_threads=False, block_size=max(1 << 20, len(data) + 1)
                ),
                parse_options=pacsv.ParseOptions(newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    null_values=[""],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise BadShard(f"{where}: {exc}") from None

    def encode(self, table: pa.Table, first_row: int = 0, where: str = "") -> dict[str, np.ndarray]:
        """The ONNX feed of a parsed piece; ``BadShard`` naming the first bad row (1-based in the shard)."""
        feed: dict[str, np.ndarray] = {}
        for feature in self.schema.features:
            column = table[feature.name]
            if feature.type in NUMERIC_TYPES:
                values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                bad = self._numeric_problems(feature, values, null, feature.name in self.sensitive)
                if bad is not None:
                    row, problem = bad
                    raise BadShard(f"{where}: row {first_row + row + 1}: field {feature.name!r}: {problem}")
                feed[feature.onnx_input] = values.reshape(-1, 1)
            elif feature.type in TEXT_TYPES:
                texts = column.to_numpy(zero_copy_only=False).astype(str)
                if not feature.nullable and (texts == "").any():
                    row = int(np.flatnonzero(texts == "")[0])
                    raise BadShard(
                        f"{where}: row {first_row + row + 1}: field {feature.name!r}: empty, and the contract says never null"
                    )
                if feature.allowed is not None:
                    ok = np.isin(texts, np.asarray([*sorted(map(str, feature.allowed)), ""]))
                    if not ok.all():
                        row = int(np.flatnonzero(~ok)[0])
                        shown = "a value" if feature.name in self.sensitive else repr(texts[row][:40])
                        raise BadShard(
                            f"{where}: row {first_row + row + 1}: field {feature.name!r}: {shown} is not an allowed value"
                        )
                feed[feature.onnx_input] = texts.reshape(-1, 1)
            else:  # booleans and timestamps: the schema's own per-cell rules
                cells = column.to_pylist()
                out = np.empty(len(cells), dtype=np.float64)
                for i, cell in enumerate(cells):
                    try:
                        out[i] = self.schema._text_value(feature, cell or "")
                    except ValueError as exc:
                        problem = (
                            f"not a valid {feature.type}" if feature.name in self.sensitive else str(exc)
                        )
                        raise BadShard(
                            f"{where}: row {first_row + i + 1}: field {feature.name!r}: {problem}"
                        ) from None
                feed[feature.onnx_input] = out.reshape(-1, 1)
        return feed

    @staticmethod
    def _numeric_problems(
        feature: Any, values: np.ndarray, null: np.ndarray, sensitive: bool = False
    ) -> tuple[int, str] | None:
        if not feature.nullable and null.any():
            return int(np.flatnonzero(null)[0]), "empty, and the contract says never null"
        present = ~null
        with np.errstate(invalid="ignore"):
            checks = [(present & ~np.isfinite(values), "not a finite number")]
            if feature.min is not None:
                checks.append((present & (values < feature.min), f"below the minimum {feature.min:g}"))
            if feature.max is not None:
                checks.append((present & (values > feature.max), f"above the maximum {feature.max:g}"))
            if feature.type == "integer":
                checks.append((present & np.isfinite(values) & (np.mod(values, 1) != 0), "not an integer"))
        for mask, problem in checks:
            if mask.any():
                row = int(np.flatnonzero(mask)[0])
                return row, f"{'a value' if sensitive else repr(values[row])}: {problem}"
        return None

    # --- score and format -------------------------------------------------------------------------

    def score(self, feed: dict[str, np.ndarray]) -> Scores:
        if self.engine == "onnxruntime":
            return self.model.run(feed)
        columns = [feed[f.onnx_input][:, 0] for f in self.schema.features]
        numeric = all(c.dtype.kind == "f" for c in columns)
        matrix = np.column_stack(columns) if numeric else np.column_stack([c.astype(object) for c in columns])
        if self.schema.classification:
            return Scores(
                labels=np.asarray(self.pipeline.predict(matrix)),
                probabilities=np.asarray(self.pipeline.predict_proba(matrix), dtype=np.float64),
            )
        return Scores(predictions=np.asarray(self.pipeline.predict(matrix), dtype=np.float64).reshape(-1))

    def output_columns(self, header: list[str]) -> list[str]:
        passthrough = [c for c in header if self._copied(c)]
        if self.schema.classification:
            return [*passthrough, "prediction", *(f"probability_{c}" for c in self.schema.classes)]
        return [*passthrough, "prediction"]

    def format(self, table: pa.Table, scores: Scores, include_header: bool) -> bytes:
        columns: dict[str, Any] = {c: table[c] for c in table.column_names if self._copied(c)}
        if self.schema.classification:
            assert scores.labels is not None and scores.probabilities is not None
            columns["prediction"] = pa.array(
                scores.labels.tolist() if scores.labels.dtype == object else scores.labels
            )
            for j, cls in enumerate(self.schema.classes):
                columns[f"probability_{cls}"] = pa.array(scores.probabilities[:, j])
        else:
            assert scores.predictions is not None
            columns["prediction"] = pa.array(scores.predictions)
        buf = io.BytesIO()
        pacsv.write_csv(
            pa.table(columns),
            buf,
            write_options=pacsv.WriteOptions(include_header=include_header, quoting_style="needed"),
        )
        return buf.getvalue()


# --- reading ---------------------------------------------------------------------------------------


def row_pieces(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Byte chunks -> pieces that end at a row end (the carry-over goes to the next piece)."""
    carry = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        yield data[: cut + 1]
        carry = data[cut + 1 :]
    if carry.strip():
        yield carry if carry.endswith(b"\n") else carry + b"\n"


def s3_range_chunks(
    s3: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    start: int,
    end: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """One streamed GET of ``[start, end)``, yielded ``chunk_bytes`` at a time."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{end - 1}"}
    if version_id and version_id != "null":
        args["VersionId"] = version_id
    body = s3.get_object(**args)["Body"]
    try:
        while chunk := body.read(chunk_bytes):
            yield chunk
    finally:
        body.close()


def gzip_pieces(data: bytes, chunk_bytes: int = CHUNK_BYTES) -> tuple[list[str], Iterator[bytes], int]:
    """A gzip object (one shard): its header, its rows in pieces, and their size."""
    from chalicelib.batch.sharding import parse_header

    text = gzip.decompress(data)
    newline = text.find(b"\n")
    header = parse_header(text[: newline if newline >= 0 else len(text)])
    body = text[newline + 1 :] if newline >= 0 else b""
    chunks = iter([body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)])
    return header, row_pieces(chunks), len(body)


# --- the pipeline ----------------------------------------------------------------------------------


@dataclass
class ShardOutput:
    data: bytes
    rows: int
    sha256: str


class Pipeline:
    """Items from ``source`` through ``stages`` in order, one thread a stage, bounded queues between.

    Each stage is a function of one item run by its own thread, so a stage that releases the GIL
    (pyarrow's CSV reader and writer, onnxruntime, socket reads) runs while the others work; the
    caller iterates the last stage's results, in the source's order (one thread a stage keeps it).
    ``depth`` bounds every queue: at most ``depth`` items wait between two stages (plus the one each
    thread holds), so memory is set by the item size, never by the source's length. An exception in
    the source or a stage is raised to the caller in place of the item; when the caller stops (it
    raised, or closed the iterator) every thread stops at its next item, the source is closed and
    all threads are joined before the iterator ends. ``busy`` holds each stage's seconds of work."""

    def __init__(
        self,
        source: Iterator[Any],
        stages: list[tuple[str, Callable[[Any], Any]]],
        depth: int = 2,
    ) -> None:
        if depth < 1:
            raise ValueError("depth: at least 1")
        self.source = source
        self.stages = stages
        self.depth = depth
        self.busy: dict[str, float] = {"read": 0.0, **{name: 0.0 for name, _ in stages}}
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]
        self.threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        """Put, waiting for room; False if the pipeline stopped meanwhile."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue[Any]) -> Any:
        """Get, waiting for an item; ``_END`` if the pipeline stopped meanwhile."""
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return _END

    def _read(self) -> None:
        out = self.queues[0]
        source = iter(self.source)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    item = next(source)
                except StopIteration:
                    break
                finally:
                    self.busy["read"] += time.perf_counter() - started
                if not self._put(out, item):
                    return
        except BaseException as exc:  # handed down the line to the caller, which raises it
            self._put(out, _Failed(exc))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's ``finally`` (the S3 body) runs here, in its own thread
        self._put(out, _END)

    def _work(
        self, name: str, fn: Callable[[Any], Any], inbox: queue.Queue[Any], out: queue.Queue[Any]
    ) -> None:
        while True:
            item = self._get(inbox)
            if item is _END or isinstance(item, _Failed):
                self._put(out, item)
                return
            started = time.perf_counter()
            try:
                result = fn(item)
            except BaseException as exc:
                self._put(out, _Failed(exc))
                return
            finally:
                self.busy[name] += time.perf_counter() - started
            if not self._put(out, result):
                return

    def __iter__(self) -> Iterator[Any]:
        self.threads = [threading.Thread(target=self._read, name="pipeline-read", daemon=True)]
        for n, (name, fn) in enumerate(self.stages):
            self.threads.append(
                threading.Thread(
                    target=self._work,
                    args=(name, fn, self.queues[n], self.queues[n + 1]),
                    name=f"pipeline-{name}",
                    daemon=True,
                )
            )
        for t in self.threads:
            t.start()
        try:
            while True:
                item = self._get(self.queues[-1])
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop every stage at its next item and wait for the threads to end."""
        self._stop.set()
        for t in self.threads:
            t.join()


@dataclass
class _Failed:
    exc: BaseException


@dataclass
class _Scored:
    encoded: Encoded
    scores: Scores
    seconds: float


@dataclass
class _Formatted:
    scored: _Scored
    data: bytes


def score_pieces(
    pieces: Iterator[bytes],
    header: list[str],
    scorer: Scorer,
    where: str = "",
    check: Callable[[int], None] | None = None,
    overlap: bool = True,
    observe: Callable[[pa.Table, Scores, int, float], None] | None = None,
    depth: int = 2,
    busy: dict[str, float] | None = None,
) -> ShardOutput:
    """Score every row of the pieces; returns the part (CSV with header), its rows and sha256.

    Read, parse (with the schema's checks), score and format each run in a thread of their own
    (``Pipeline``, queues ``depth`` deep); the caller's thread appends the formatted pieces in row
    order. ``check(bytes_done)`` is called after each piece (the worker may abort there on a spot
    notice); ``observe(table, scores, first_row, seconds)`` after each piece is scored, in row order
    (capture). Any exception, in any stage, stops them all and is raised here: a part is returned
    whole or not at all. ``busy``, if given, receives each stage's seconds of work."""
    counter = {"rows": 0}

    def parse(piece: bytes) -> Encoded:
        table = scorer.parse(piece, header, where)
        first = counter["rows"]
        counter["rows"] += table.num_rows
        return Encoded(table, scorer.encode(table, first, where), first, len(piece))

    def score(encoded: Encoded) -> _Scored:
        started = time.perf_counter()
        scores = scorer.score(encoded.feed)
        return _Scored(encoded, scores, time.perf_counter() - started)

    headed = False

    def format_(scored: _Scored) -> _Formatted:
        nonlocal headed
        data = scorer.format(scored.encoded.table, scored.scores, include_header=not headed)
        headed = True
        return _Formatted(scored, data)

    out = io.BytesIO()
    digest = hashlib.sha256()
    rows = 0
    done_bytes = 0

    def append(formatted: _Formatted) -> None:
        nonlocal rows, done_bytes
        encoded = formatted.scored.encoded
        if observe:
            observe(encoded.table, formatted.scored.scores, encoded.first_row, formatted.scored.seconds)
        rows += encoded.table.num_rows
        done_bytes += encoded.nbytes
        digest.update(formatted.data)
        out.write(formatted.data)
        if check:
            check(done_bytes)

    stages: list[tuple[str, Callable[[Any], Any]]] = [("parse", parse), ("score", score), ("format", format_)]
    if not overlap:
        for piece in pieces:
            append(format_(score(parse(piece))))
    else:
        pipeline = Pipeline(pieces, stages, depth)
        try:
            for formatted in pipeline:
                append(formatted)
        finally:
            pipeline.stop()
            if busy is not None:
                busy.update(pipeline.busy)
    if rows == 0:
        data = ",".join(scorer.output_columns(header)).encode() + b"\n"
        return ShardOutput(data, 0, hashlib.sha256(data).hexdigest())
    return ShardOutput(out.getvalue(), rows, digest.hexdigest())
