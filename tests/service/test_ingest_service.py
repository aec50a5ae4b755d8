"""The ingest service on in-memory adapters: what each kind of upload leaves in the ledger, the
outputs and the retrain queue; duplicates, crashes and retries. No AWS, no moto."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from chalicelib.ingest.uploads import upload_id_for
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.service.world import BUCKET, World
from tests.support import GOOD, IRIS

DATASET = "breast_cancer"


@pytest.fixture(scope="module")
def days() -> tuple[list[str], list[list[str]]]:
    return breast_cancer_rows()


@pytest.fixture(scope="module")
def contract_doc() -> dict[str, Any]:
    return breast_cancer_contract()


@pytest.fixture
def world(contract_doc: dict[str, Any]) -> World:
    world = World()
    world.contracts.put(Contract.parse(IRIS))
    world.contracts.put(Contract.parse(contract_doc))
    return world


def test_an_upload_is_recorded_once_with_its_sha256_size_rows_and_version(world: World) -> None:
    notification = world.put("incoming/iris/day1.csv", GOOD)
    upload_id = upload_id_for(BUCKET, "incoming/iris/day1.csv", notification["version_id"])
    assert world.ingest(notification) == {"upload_id": upload_id, "created": True, "status": "valid"}
    entry = world.ledger.get(upload_id)
    assert entry is not None
    assert entry.dataset == "iris"
    assert entry.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert entry.size == len(GOOD)
    assert entry.status == "valid" and entry.rows == 2
    assert entry.version_id == notification["version_id"]
    assert entry.report_key == f"reports/iris/{upload_id}.json"
    assert entry.output_key == f"validated/iris/{upload_id}.csv"
    assert entry.issue_codes == [] and entry.drift == "reference"
    assert entry.recorded_at


def test_a_late_duplicate_of_a_finished_upload_is_answered_recorded_and_changes_nothing(world: World) -> None:
    """The ledger write is create-only, so even a redelivery the idempotency table forgot is absorbed."""
    notification = world.put("incoming/iris/day1.csv", GOOD)
    first = world.ingest(notification)
    outputs = world.keys("")
    again = world.ingest({**notification, "version_id": None})  # as moto notifies: no version, the ETag
    assert again == {"upload_id": first["upload_id"], "created": False, "status": "recorded"}
    entry = world.ledger.get(first["upload_id"])
    assert entry is not None and entry.status == "valid"
    assert len(world.ledger.scan()) == 1
    assert world.keys("") == outputs and len(world.queue.receive()) == 1


def test_upload_outside_a_dataset_folder_is_recorded_with_the_reason(world: World) -> None:
    entry = world.upload("incoming/loose.csv", GOOD)
    assert entry is not None and entry.status == "unroutable" and entry.dataset is None
    assert entry.problem is not None and "incoming/<dataset>/<file>" in entry.problem
    assert entry.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert world.keys("reports/") == [] and world.queue.receive() == []


def test_object_deleted_before_it_is_read_is_recorded_as_missing(world: World) -> None:
    notification = world.put("incoming/iris/gone.csv", GOOD)
    world.objects.delete(BUCKET, "incoming/iris/gone.csv", notification["version_id"])
    assert world.ingest(notification)["status"] == "missing"
    (entry,) = world.ledger.scan()
    assert entry.status == "missing" and entry.size == len(GOOD) and entry.sha256 is None
    assert entry.problem is not None and "gone before it could be read" in entry.problem


def test_identical_bytes_uploaded_twice_are_reported_not_double_counted(world: World, days) -> None:
    header, rows = days
    data = to_csv(header, rows[:80])
    first = world.upload(f"incoming/{DATASET}/a.csv", data)
    second = world.upload(f"incoming/{DATASET}/a-again.csv", data)
    assert first is not None and second is not None
    assert second.status == "duplicate" and second.duplicate_of == first.upload_id
    assert second.sha256 == first.sha256
    assert [m["upload_id"] for m in world.queue.receive()] == [first.upload_id]
    assert len(world.keys(f"validated/{DATASET}/")) == 1


def test_an_upload_over_the_size_limit_is_quarantined_unread_without_a_hash(world: World) -> None:
    world.contracts.put(Contract.parse({**IRIS, "format": {"max_bytes": 10}}))
    entry = world.upload("incoming/iris/big.csv", GOOD)
    assert entry is not None and entry.status == "invalid" and entry.issue_codes == ["FILE_TOO_LARGE"]
    assert entry.sha256 is None


def test_a_crash_while_publishing_records_nothing_and_the_retry_completes_once(
    world: World, days, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.validation import service

    header, rows = days
    real_publish = service.publish
    calls = []

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("network blip while writing outputs")
        return real_publish(*args, **kwargs)

    monkeypatch.setattr("chalicelib.ingest.service.publish", crash_once)
    notification = world.put(f"incoming/{DATASET}/c.csv", to_csv(header, rows[:70]))
    upload_id = upload_id_for(BUCKET, f"incoming/{DATASET}/c.csv", notification["version_id"])
    with pytest.raises(ConnectionError):
        world.ingest(notification)
    assert world.ledger.get(upload_id) is None  # nothing recorded as done
    assert world.ingest(notification)["created"] is True
    entry = world.ledger.get(upload_id)
    assert entry is not None and entry.status == "valid"
    assert len(world.queue.receive()) == 1


def test_a_contract_that_cannot_be_read_quarantines_the_upload_as_no_contract(world: World) -> None:
    world.objects.put(BUCKET, "contracts/iris.json", b'{"dataset": "iris"}')
    entry = world.upload("incoming/iris/day1.csv", GOOD)
    assert entry is not None and entry.status == "invalid" and entry.issue_codes == ["NO_CONTRACT"]


def test_logs_carry_codes_and_counts_never_values(world: World, days) -> None:
    from chalicelib.observability import logger

    header, rows = days
    bad = [list(r) for r in rows[:60]]
    bad[2][3] = "123456.789"  # a confidential measurement out of range
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        entry = world.upload(f"incoming/{DATASET}/leak.csv", to_csv(header, bad))
    finally:
        logger.registered_handler.setStream(previous)
    assert "OUT_OF_RANGE" in buffer.getvalue()
    assert "123456.789" not in buffer.getvalue()
    assert entry is not None
    report = world.json(f"reports/{DATASET}/{entry.upload_id}.json")
    assert "123456.789" not in json.dumps(report)
