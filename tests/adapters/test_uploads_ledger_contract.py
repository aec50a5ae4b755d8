"""The uploads ledger port: one suite, run against the in-memory and the DynamoDB (moto)
implementation. The create-only writes are what keeps a redelivered upload single, so they are
also raced (moto gets DynamoDB's atomicity from the ``atomic_writes`` fixture)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.adapters.memory.uploads_ledger import MemoryUploadLedger
from chalicelib.ingest.ports import ContentClaim, UploadLedger
from chalicelib.ingest.uploads import Upload


@pytest.fixture(params=["memory", "moto"])
def ledger(request: pytest.FixtureRequest) -> UploadLedger:
    if request.param == "memory":
        return MemoryUploadLedger()
    from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger

    request.getfixturevalue("atomic_writes")
    return DynamoUploadLedger(request.getfixturevalue("aws_module").uploads_table)


def upload(
    status: str = "valid", recorded_at: str = "2026-11-30T12:00:00.000+00:00", **fields: Any
) -> Upload:
    """An entry with an id of its own (the moto table is shared by the module's tests)."""
    upload_id = uuid.uuid4().hex[:24]
    base = Upload(
        upload_id=upload_id,
        bucket="data",
        key=f"incoming/iris/{upload_id}.csv",
        dataset="iris",
        version_id="v1",
        etag="e" * 32,
        size=1234,
        sha256="a" * 64,
        event_time="2026-11-30T11:59:59.000Z",
        recorded_at=recorded_at,
        status=status,
    )
    return replace(base, **fields)


def test_the_first_record_creates_the_entry_and_it_reads_back_equal(ledger: UploadLedger) -> None:
    entry = upload(
        rows=150,
        report_key="reports/iris/x.json",
        issue_codes=["A", "B"],
        drift="reference",
        new_rows=40,
        repeated_rows=110,
    )
    assert ledger.record(entry) is True
    assert ledger.get(entry.upload_id) == entry


def test_optional_fields_left_out_read_back_as_none(ledger: UploadLedger) -> None:
    entry = upload(status="missing", dataset=None, sha256=None, version_id=None, problem="gone")
    ledger.record(entry)
    assert ledger.get(entry.upload_id) == entry


def test_recording_the_same_upload_again_changes_nothing(ledger: UploadLedger) -> None:
    entry = upload()
    ledger.record(entry)
    assert ledger.record(replace(entry, status="invalid", rows=9)) is False
    assert ledger.get(entry.upload_id) == entry


def test_an_unknown_upload_is_none(ledger: UploadLedger) -> None:
    assert ledger.get(uuid.uuid4().hex[:24]) is None


def notification(key: str, version_id: str | None = "v1") -> dict[str, Any]:
    return {
        "bucket": "data",
        "key": key,
        "size": 12,
        "etag": "e" * 32,
        "version_id": version_id,
        "event_name": "ObjectCreated:Put",
        "event_time": "2026-11-30T11:59:59.000Z",
        "sequencer": None,
    }


FIRST = notification("incoming/iris/first é 🩺.csv")
SECOND = notification("incoming/iris/second.csv", version_id=None)


def test_the_first_upload_of_some_bytes_holds_them_with_its_notification(ledger: UploadLedger) -> None:
    sha = uuid.uuid4().hex * 2
    assert ledger.claim_content("iris", sha, "first", FIRST) == ContentClaim("first", FIRST)
    assert ledger.claim_content("iris", sha, "second", SECOND) == ContentClaim("first", FIRST)
    # a retry of the first gets its own claim back
    assert ledger.claim_content("iris", sha, "first", FIRST) == ContentClaim("first", FIRST)
    assert ledger.claim_content("other", sha, "third", SECOND).upload_id == "third"  # per dataset


def test_a_claim_passes_only_from_the_upload_that_holds_it(ledger: UploadLedger) -> None:
    sha = uuid.uuid4().hex * 2
    ledger.claim_content("iris", sha, "first", FIRST)
    assert ledger.pass_claim("iris", sha, "someone-else", "second", SECOND) is False
    assert ledger.claim_content("iris", sha, "second", SECOND).upload_id == "first"
    assert ledger.pass_claim("iris", sha, "first", "second", SECOND) is True
    assert ledger.claim_content("iris", sha, "third", FIRST) == ContentClaim("second", SECOND)
    assert ledger.pass_claim("iris", sha, "first", "third", FIRST) is False  # it moved on


def test_scan_lists_the_entries_oldest_first_then_by_key_without_the_content_claims(
    ledger: UploadLedger,
) -> None:
    at = "2026-11-30T12:00:0{}.000+00:00".format
    later = upload(recorded_at=at(2), key="incoming/iris/a.csv")
    b_file = upload(recorded_at=at(1), key="incoming/iris/b.csv")
    a_file = upload(recorded_at=at(1), key="incoming/iris/a.csv")
    for entry in (later, b_file, a_file):
        ledger.record(entry)
    ledger.claim_content("iris", uuid.uuid4().hex * 2, later.upload_id, FIRST)
    ours = {later.upload_id, b_file.upload_id, a_file.upload_id}
    scanned = ledger.scan()
    assert [u.upload_id for u in scanned if u.upload_id in ours] == [
        a_file.upload_id,
        b_file.upload_id,
        later.upload_id,
    ]
    assert all(not u.upload_id.startswith("content#") for u in scanned)


def race(calls: int, call: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(calls)

    def run(i: int) -> Any:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(run, range(calls)))


def test_racing_records_of_one_upload_create_it_once(ledger: UploadLedger) -> None:
    entry = upload()
    created = race(8, lambda i: ledger.record(replace(entry, rows=i)))
    assert created.count(True) == 1
    assert ledger.get(entry.upload_id).rows == created.index(True)


def test_racing_claims_of_the_same_bytes_agree_on_one_first_upload(ledger: UploadLedger) -> None:
    sha = uuid.uuid4().hex * 2
    firsts = race(8, lambda i: ledger.claim_content("iris", sha, f"upload-{i}", notification(f"k{i}")))
    assert len({c.upload_id for c in firsts}) == 1 and firsts[0].upload_id in {
        f"upload-{i}" for i in range(8)
    }
    assert all(c == firsts[0] for c in firsts)
    assert firsts[0].notification == notification(f"k{firsts[0].upload_id.split('-')[1]}")


def test_racing_passes_of_a_claim_pass_it_once(ledger: UploadLedger) -> None:
    sha = uuid.uuid4().hex * 2
    ledger.claim_content("iris", sha, "gone", FIRST)
    passed = race(8, lambda i: ledger.pass_claim("iris", sha, "gone", f"upload-{i}", notification(f"k{i}")))
    assert passed.count(True) == 1
    assert ledger.claim_content("iris", sha, "late", SECOND).upload_id == f"upload-{passed.index(True)}"


# --- revocation ---------------------------------------------------------------------------------------


def test_revoking_a_valid_upload_records_who_when_and_why_once(ledger: UploadLedger) -> None:
    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    entry = upload(dataset=dataset)
    ledger.record(entry)
    assert ledger.revoked(dataset) == frozenset()
    revoked, created = ledger.revoke(
        entry.upload_id, "ops (admin)", "scaled by three", "2026-11-30T13:00:00+00:00"
    )
    assert created and revoked.revoked
    assert (revoked.revoked_by, revoked.revoked_reason) == ("ops (admin)", "scaled by three")
    assert ledger.get(entry.upload_id) == revoked
    assert (
        replace(revoked, revoked_at=None, revoked_by=None, revoked_reason=None) == entry
    )  # nothing else moved
    again, created = ledger.revoke(entry.upload_id, "bob (admin)", "again", "2026-11-30T14:00:00+00:00")
    assert not created and again == revoked  # the first decision stands
    assert ledger.revoked(dataset) == frozenset({entry.upload_id})
    assert entry.upload_id in {u.upload_id for u in ledger.scan()}  # the set is no entry of the scan
    assert all(u.upload_id.startswith(("content#", "revoked#")) is False for u in ledger.scan())


@pytest.mark.parametrize("status", ["invalid", "duplicate", "missing", "unroutable"])
def test_only_a_valid_upload_can_be_revoked(ledger: UploadLedger, status: str) -> None:
    from chalicelib.ingest.exceptions import NotRevocable

    entry = upload(status=status, dataset=f"ds_{uuid.uuid4().hex[:8]}")
    ledger.record(entry)
    with pytest.raises(NotRevocable, match=f"is {status}: only a valid upload"):
        ledger.revoke(entry.upload_id, "ops (admin)", "why", "2026-11-30T13:00:00+00:00")
    assert ledger.get(entry.upload_id) == entry and ledger.revoked(str(entry.dataset)) == frozenset()


def test_revoking_an_unknown_upload_is_not_found(ledger: UploadLedger) -> None:
    from chalicelib.ingest.exceptions import UploadNotFound

    with pytest.raises(UploadNotFound, match="no upload with id"):
        ledger.revoke("f" * 24, "ops (admin)", "why", "2026-11-30T13:00:00+00:00")


def test_racing_revocations_of_one_upload_revoke_it_once(ledger: UploadLedger) -> None:
    entry = upload(dataset=f"ds_{uuid.uuid4().hex[:8]}")
    ledger.record(entry)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda i: ledger.revoke(entry.upload_id, f"p{i}", f"r{i}", f"2026-11-30T13:00:0{i}+00:00"),
                range(8),
            )
        )
    assert sum(created for _, created in results) == 1
    winner = next(u for u, created in results if created)
    assert {u for u, _ in results} == {winner} and ledger.get(entry.upload_id) == winner


def test_pieces_done_count_each_piece_once_however_often_it_is_reported(ledger: UploadLedger) -> None:
    upload_id = uuid.uuid4().hex[:24]
    assert [ledger.piece_done(upload_id, p) for p in (0, 2, 0, 1, 2)] == [1, 2, 2, 3, 3]  # type: ignore[attr-defined]
    assert ledger.piece_done(uuid.uuid4().hex[:24], 0) == 1  # type: ignore[attr-defined]
    assert all(not u.upload_id.startswith("shards#") for u in ledger.scan())


def test_of_pieces_done_at_once_exactly_one_sees_them_all(ledger: UploadLedger) -> None:
    upload_id = uuid.uuid4().hex[:24]
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda p: ledger.piece_done(upload_id, p), range(16)))  # type: ignore[attr-defined]
    assert sorted(counts) == list(range(1, 17))
