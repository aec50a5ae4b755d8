"""Large uploads in parallel through the ingest service, on in-memory adapters (issue 19): an
upload past the threshold is split into pieces sent through the ingest queue, each piece is checked
once however often it is delivered and in whatever order, the last one merges, and the upload ends
with the ledger entry, report, copy and announcement of one pass (tests/unit/test_validation_scaleout
proves the merge itself)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.memory.queues import MemoryQueue
from chalicelib.ingest.scaleout import ingest_upload, validate_piece
from chalicelib.ingest.service import IngestPorts, ShardPorts
from chalicelib.ingest.uploads import upload_id_for
from chalicelib.validation import Contract
from chalicelib.validation.partial import ScaleOut
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.service.world import BUCKET, World

DATASET = "breast_cancer"
KEY = f"incoming/{DATASET}/big.csv"
SCALE = ScaleOut(split_bytes=16 * 1024, shard_bytes=8 * 1024)


class SplitWorld(World):
    """A world whose ingest splits uploads of 16 KiB or more into shards of about 8 KiB."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pieces = MemoryQueue()
        self.ports = IngestPorts(
            ledger=self.ledger,
            source=self.source,
            validation=self.validation,
            shards=ShardPorts(queue=self.pieces, tally=self.ledger, scale_out=SCALE),
        )

    def ingest(self, notification: dict[str, Any]) -> dict[str, Any]:
        return ingest_upload(notification, self.ports)

    def deliver(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [validate_piece(m, self.ports) for m in messages]


def worlds() -> tuple[World, SplitWorld]:
    one, split = World(), SplitWorld()
    for world in (one, split):
        world.contracts.put(Contract.parse(breast_cancer_contract()))
    return one, split


@pytest.fixture(scope="module")
def data() -> bytes:
    header, rows = breast_cancer_rows()
    return to_csv(header, rows)


def deterministic(report: dict[str, Any]) -> dict[str, Any]:
    statistics = {
        name: {k: v for k, v in stats.items() if k not in ("mean", "std")}
        for name, stats in report["column_statistics"].items()
    }
    return {
        **{k: v for k, v in report.items() if k not in ("seconds", "shards")},
        "column_statistics": statistics,
    }


def assert_same_report(split: dict[str, Any], one: dict[str, Any]) -> None:
    assert deterministic(split) == deterministic(one)
    for name, stats in one["column_statistics"].items():
        for key in ("mean", "std"):
            if stats.get(key) is not None:
                assert math.isclose(split["column_statistics"][name][key], stats[key], rel_tol=1e-12)


def ingest_both(data: bytes, order: random.Random | None = None) -> tuple[World, SplitWorld, str, dict]:
    one, split = worlds()
    one.ingest(one.put(KEY, data))
    answer = split.ingest(split.put(KEY, data))
    upload_id = upload_id_for(BUCKET, KEY, split.objects.get(BUCKET, KEY).version_id)
    messages = split.pieces.receive()
    if order is not None:
        messages = messages + [order.choice(messages) for _ in range(len(messages))]  # redeliveries
        order.shuffle(messages)
    split.deliver(messages)
    return one, split, upload_id, answer


def test_a_large_upload_is_split_and_recorded_with_the_one_pass_report_and_outputs(data: bytes) -> None:
    one, split, upload_id, answer = ingest_both(data)
    assert answer["status"] == "split" and answer["shards"] >= 4
    assert split.ledger.get(upload_id) is not None
    mine, theirs = split.ledger.get(upload_id), one.ledger.get(upload_id)
    assert mine is not None and theirs is not None
    assert {**mine.as_item(), "recorded_at": ""} == {**theirs.as_item(), "recorded_at": ""}
    report = split.json(f"reports/{DATASET}/{upload_id}.json")
    assert report["shards"]["count"] == answer["shards"] and sum(report["shards"]["rows"]) == report["rows"]
    assert_same_report(report, one.json(f"reports/{DATASET}/{upload_id}.json"))
    assert split.objects.get(BUCKET, mine.output_key).body == data  # the validated copy
    assert split.outputs.reference(DATASET) == one.outputs.reference(DATASET)
    assert [m["event"] for m in split.queue.receive()] == ["data.validated"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_pieces_delivered_in_any_order_and_more_than_once_record_the_upload_once(
    data: bytes, seed: int
) -> None:
    one, split, upload_id, _ = ingest_both(data, random.Random(seed))
    entry = split.ledger.get(upload_id)
    assert entry is not None and entry.status == "valid" and entry.rows == one.ledger.get(upload_id).rows
    assert len(split.ledger.scan()) == 1
    assert_same_report(
        split.json(f"reports/{DATASET}/{upload_id}.json"), one.json(f"reports/{DATASET}/{upload_id}.json")
    )
    # A merge may run twice (a redelivery while the last piece merged): the announcement is the same.
    sent = split.queue.receive()
    assert sent and all(m == sent[0] for m in sent) and sent[0]["upload_id"] == upload_id


def test_a_piece_that_crashed_before_counting_itself_done_finishes_the_upload_on_redelivery(
    data: bytes,
) -> None:
    _, split = worlds()
    split.ingest(split.put(KEY, data))
    messages = split.pieces.receive()
    upload_id = messages[0]["validation_shard"]["upload_id"]
    split.deliver(messages[:-1])
    tally = split.ledger

    class Crash(Exception):
        pass

    def crash(upload: str, piece: int) -> int:
        raise Crash

    original = tally.piece_done
    tally.piece_done = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        split.deliver(messages[-1:])  # its result is written, then the invocation dies
    tally.piece_done = original  # type: ignore[method-assign]
    assert split.ledger.get(upload_id) is None
    assert split.deliver(messages[-1:])[0]["status"] == "valid"  # the redelivery merges
    outputs = split.keys("")
    assert split.deliver(messages)[0]["status"] == "recorded"  # late redeliveries change nothing
    assert split.keys("") == outputs


def test_an_invalid_large_upload_gets_the_one_pass_report_with_its_absolute_rows(data: bytes) -> None:
    lines = data.decode().splitlines(keepends=True)
    lines[-3] = lines[-3].replace("benign", "unknown").replace("malignant", "unknown")
    lines[400] = lines[5]  # a repeated row id far from its first row
    broken = "".join(lines).encode()
    one, split, upload_id, answer = ingest_both(broken)
    assert answer["status"] == "split"
    report = split.json(f"reports/{DATASET}/{upload_id}.json")
    theirs = one.json(f"reports/{DATASET}/{upload_id}.json")
    assert report["status"] == "invalid" and "shards" not in report
    assert {**report, "seconds": None} == {**theirs, "seconds": None}


def test_an_upload_below_the_threshold_is_validated_in_one_pass(data: bytes) -> None:
    _, split = worlds()
    small = b"".join(data.splitlines(keepends=True)[:20])
    assert len(small) < SCALE.split_bytes
    answer = split.ingest(split.put(KEY, small))
    assert answer["created"] is True and answer["status"] == "invalid"  # too few rows: one pass says so
    assert split.pieces.receive() == []


def test_a_gzip_upload_is_one_stream_never_split(data: bytes) -> None:
    import gzip

    _, split = worlds()
    packed = gzip.compress(data, compresslevel=0)
    assert len(packed) >= SCALE.split_bytes
    answer = split.ingest(split.put(f"incoming/{DATASET}/big.csv.gz", packed))
    assert answer["status"] == "valid" and split.pieces.receive() == []


def test_piece_results_are_written_create_only_with_the_dataset_classification(data: bytes) -> None:
    _, split = worlds()
    split.ingest(split.put(KEY, data))
    messages = split.pieces.receive()
    split.deliver(messages[:1])
    upload_id = messages[0]["validation_shard"]["upload_id"]
    key = f"shards/{DATASET}/{upload_id}/00000.part"
    first = split.objects.get(BUCKET, key)
    assert (
        first is not None
        and split.tags(key)["classification"] == Contract.parse(breast_cancer_contract()).classification
    )
    split.deliver(messages[:1])
    assert split.objects.get(BUCKET, key).version_id == first.version_id  # not rewritten
    assert json.loads(first.body.split(b"\n", 1)[0])["index"] == 0
