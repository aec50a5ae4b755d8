"""Batch inference units: sharding, pieces, requests, the worker's decision after a spot notice,
and scoring. (Costs: tests/unit/test_batch_costs.py. DLQ -> PARTIAL, the create-only part write,
visibility extension and the spot watcher on the AWS adapters: tests/adapters/test_batch_aws.py.)"""

from __future__ import annotations

import gzip
import itertools
import random
import time

import pytest
from scoring.engine import Scorer, row_pieces, score_pieces
from scoring.worker import SpotWatcher, Worker

from chalicelib.batch.exceptions import BadShard, InvalidRequest
from chalicelib.batch.requests import BatchRequest, choose_engine, job_id_from_key
from chalicelib.batch.sharding import InputObject, next_row_start_in, plan_shards, row_ranges
from tests.support import batch_input, logistic_scorer


def _csv(rows: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines = [b"id,a,text"]
    for i in range(rows):
        lines.append(b"%d,%d,%s" % (i, rng.randint(0, 10 ** rng.randint(0, 6)), b"x" * rng.randint(0, 50)))
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("seed", range(8))
def test_shards_are_row_aligned_and_cover_every_row_exactly_once(seed):
    data = _csv(2000, seed)
    header_end = data.index(b"\n") + 1
    shard_bytes = random.Random(seed).randint(1024, 20_000)
    ranges = row_ranges(len(data), header_end, shard_bytes, lambda p: next_row_start_in(data, p))
    assert ranges[0][0] == header_end and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    rows = []
    for start, end in ranges:
        assert data[start - 1 : start] == b"\n"  # every shard begins at a row start
        assert data[end - 1 : end] == b"\n"  # and ends at a row end
        rows += data[start:end].splitlines()
    assert rows == data.splitlines()[1:]


def test_plan_reads_headers_and_keeps_gzip_objects_whole():
    objects = {
        "in/a.csv": _csv(500, 1),
        "in/header-only.csv": b"id,a,text\n",
        "in/empty.csv": b"",
        "in/c.csv.gz": gzip.compress(_csv(50, 2)),
    }
    described, shards = plan_shards(
        [InputObject(k, len(v)) for k, v in objects.items()],
        4096,
        lambda obj, start, length: objects[obj.key][start : start + length],
    )
    by_key = {d["key"]: d for d in described}
    assert by_key["in/a.csv"]["header"] == ["id", "a", "text"] and by_key["in/a.csv"]["shards"] > 2
    assert by_key["in/header-only.csv"]["shards"] == 0 and by_key["in/empty.csv"]["shards"] == 0
    gz = [s for s in shards if s.compressed]
    assert len(gz) == 1 and (gz[0].start, gz[0].end) == (0, len(objects["in/c.csv.gz"]))
    assert [s.index for s in shards] == list(range(len(shards)))


def test_pieces_end_at_row_ends_whatever_the_chunking():
    data = _csv(300, 3)
    body = data[data.index(b"\n") + 1 :]
    chunks = [body[i : i + 97] for i in range(0, len(body), 97)]
    pieces = list(row_pieces(iter(chunks)))
    assert all(p.endswith(b"\n") for p in pieces) and b"".join(pieces) == body


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"input_prefix": "batch/in/"}, "model"),
        ({"model": "m", "input_prefix": "batch/requests/x"}, "input_prefix"),
        ({"model": "m", "input_prefix": "batch/in/", "output_prefix": "batch/in/out/"}, "output_prefix"),
        ({"model": "m", "input_prefix": "batch/in/", "shard_bytes": 10}, "shard_bytes"),
        ({"model": "m", "input_prefix": "batch/in/", "engine": "gpu"}, "engine"),
        ({"model": "m", "input_prefix": "batch/in/", "colour": 1}, "colour"),
        ({"model": "m", "input_prefix": "incoming/m/"}, "input_prefix"),  # not yet validated
        ({"model": "m", "input_prefix": "batch/in/", "output_prefix": "reports/"}, "output_prefix"),
        ({"model": "m", "input_prefix": "batch/in/", "include_pii": "email"}, "include_pii"),
        ({"model": "m", "input_prefix": "batch/in/", "include_pii": ["email", "email"]}, "include_pii"),
    ],
)
def test_bad_requests_name_the_field(doc, field):
    with pytest.raises(InvalidRequest, match=field):
        BatchRequest.parse(doc)


def test_request_defaults_and_job_ids_from_dropped_files():
    request = BatchRequest.parse({"model": "m", "input_prefix": "batch/in/"})
    assert request.version is None and request.job_output_prefix("j1") == "batch/output/j1/"
    assert job_id_from_key("batch/requests/nightly-42.json") == "nightly-42"
    with pytest.raises(InvalidRequest):
        job_id_from_key("batch/requests/a b.json")


def test_engine_is_sklearn_only_for_deep_forests_with_a_pipeline():
    forest = {
        "family": "random_forest",
        "artifacts": {"model.joblib": {}},
        "lineage": {"parameters": {"model": {"params": {}}}},
    }
    assert choose_engine("auto", forest)[0] == "sklearn"
    shallow = {**forest, "lineage": {"parameters": {"model": {"params": {"max_depth": 2}}}}}
    assert choose_engine("auto", shallow)[0] == "onnxruntime"
    assert choose_engine("auto", {"family": "logistic_regression", "artifacts": {}})[0] == "onnxruntime"
    with pytest.raises(InvalidRequest):
        choose_engine("sklearn", {"artifacts": {}})


# --- the worker ---------------------------------------------------------------------------------------


def test_after_a_notice_a_worker_finishes_a_shard_only_if_it_has_the_time():
    worker = Worker.__new__(Worker)
    worker.watcher = SpotWatcher("", interval_s=1)
    worker.watcher.notice = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))}
    worker.shard_seconds = []
    started = time.monotonic() - 20  # 20 s in
    assert worker.can_finish(0.8, started)  # 5 s left of work, 60 s to go
    assert not worker.can_finish(0.2, started)  # 80 s of work left: release it
    assert not worker.can_finish(0.0, time.monotonic())  # nothing to go by: release


# --- scoring -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return logistic_scorer()


def test_scoring_in_pieces_equals_scoring_whole_and_passes_ids_through(scorer):
    header, body = batch_input(3000)
    whole = score_pieces(row_pieces(iter([body])), header, scorer, overlap=False)
    pieces = score_pieces(
        row_pieces(iter([body[i : i + 5000] for i in range(0, len(body), 5000)])), header, scorer
    )
    assert whole.rows == pieces.rows == 3000 and whole.data == pieces.data
    out_header, first = whole.data.splitlines()[:2]
    assert out_header.startswith(b'"row_id","diagnosis","prediction","probability_0"')
    assert first.startswith(b'"patient-0000000"')


def test_a_bad_value_fails_the_shard_naming_row_and_field(scorer):
    header, body = batch_input(20)
    lines = body.splitlines()
    cells = lines[5].split(b",")
    cells[3] = b"-1"  # below the contract's minimum 0
    lines[5] = b",".join(cells)
    with pytest.raises(BadShard, match=rf"row 6: field '{header[3]}'"):
        score_pieces(
            row_pieces(iter([b"\n".join(lines) + b"\n"])), header, scorer, where="in/a.csv", overlap=False
        )


def test_pii_columns_reach_the_output_only_when_the_job_names_them(scorer):
    """The job records the contract's pii columns it leaves out (``pii_dropped``) and the ones the
    request named (``include_pii``); the worker's scorer copies the named ones, features included."""
    header, body = batch_input(30)
    header = [*header, "email"]
    body = b"\n".join(line + b",a%d@example.com" % i for i, line in enumerate(body.splitlines())) + b"\n"
    model = scorer.model
    feature = scorer.schema.names[0]
    cases = {
        "default": (Scorer(model, drop=["email"]), False, False),
        "named": (Scorer(model, drop=[], include=["email"]), True, False),
        "named feature": (Scorer(model, drop=["email"], include=["email", feature]), True, True),
    }
    for name, (case, has_email, has_feature) in cases.items():
        out = score_pieces(row_pieces(iter([body])), header, case, overlap=False).data
        columns = out.splitlines()[0].decode().replace('"', "").split(",")
        assert ("email" in columns) is has_email and (b"@example.com" in out) is has_email, name
        assert (feature in columns) is has_feature, name
        assert "row_id" in columns and "prediction" in columns, name


def test_a_bad_value_of_a_confidential_feature_is_not_quoted_in_the_failure(scorer):
    header, body = batch_input(20)
    assert scorer.sensitive >= {header[3]}  # breast_cancer's measurements are confidential
    lines = body.splitlines()
    cells = lines[5].split(b",")
    cells[3] = b"-1.234567"  # below the contract's minimum 0
    lines[5] = b",".join(cells)
    with pytest.raises(BadShard, match=rf"row 6: field '{header[3]}': a value: below the minimum") as raised:
        score_pieces(row_pieces(iter([b"\n".join(lines) + b"\n"])), header, scorer, overlap=False)
    assert "1.234567" not in str(raised.value)
