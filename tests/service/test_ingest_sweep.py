"""The sweep of objects put outside the known prefixes (``chalicelib.ingest.sweep``), on in-memory
adapters: each stray object is recorded once, ``ignored``, with the reason; nothing under a prefix the
system knows is touched, and no object is read, moved or deleted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.memory.bucket_listing import MemoryBucketListing
from chalicelib.adapters.memory.objects import MemoryObjects
from chalicelib.adapters.memory.uploads_ledger import MemoryUploadLedger
from chalicelib.ingest.sweep import KNOWN_PREFIXES, REASON, SweepPorts, sweep_uploads
from chalicelib.ingest.uploads import upload_id_for
from tests.service.world import BUCKET, World
from tests.support import GOOD, IRIS

NOW = "2026-12-01T12:00:00.000+00:00"


def _ports(objects: MemoryObjects, ledger: MemoryUploadLedger, page_size: int = 1000) -> SweepPorts:
    return SweepPorts(ledger=ledger, listing=MemoryBucketListing(objects, page_size=page_size))


@pytest.fixture
def world() -> World:
    from chalicelib.validation import Contract

    world = World()
    world.contracts.put(Contract.parse(IRIS))
    return world


def test_an_object_outside_incoming_is_recorded_ignored_with_the_reason_and_left_as_it_is(
    world: World,
) -> None:
    stored = world.objects.put(BUCKET, "sales/day1.csv", GOOD)
    assert stored is not None
    result = sweep_uploads(_ports(world.objects, world.ledger), BUCKET, NOW)
    upload_id = upload_id_for(BUCKET, "sales/day1.csv", stored.etag)
    assert result == {"listed": 1, "recorded": 1, "upload_ids": [upload_id], "more": False}
    entry = world.ledger.get(upload_id)
    assert entry is not None
    assert (entry.status, entry.key, entry.dataset, entry.size, entry.etag) == (
        "ignored",
        "sales/day1.csv",
        None,
        len(GOOD),
        stored.etag,
    )
    assert entry.problem == REASON
    assert entry.problem.startswith("not under incoming/<dataset>/: ")
    assert "never read" in entry.problem and "incoming/<dataset>/" in entry.problem
    assert entry.sha256 is None and entry.recorded_at == NOW
    # The object is where it was, one version, the same bytes; nothing else was written.
    assert world.objects.version_ids(BUCKET, "sales/day1.csv") == [stored.version_id]
    assert world.keys("") == ["contracts/iris.json", "sales/day1.csv"]


def test_a_second_sweep_records_nothing_new(world: World) -> None:
    world.objects.put(BUCKET, "sales/day1.csv", GOOD)
    world.objects.put(BUCKET, "day2.csv", GOOD)
    ports = _ports(world.objects, world.ledger)
    first = sweep_uploads(ports, BUCKET, NOW)
    before = world.ledger.scan()
    again = sweep_uploads(ports, BUCKET, "2026-12-01T13:00:00.000+00:00")
    assert first["recorded"] == 2
    assert again == {"listed": 2, "recorded": 0, "upload_ids": [], "more": False}
    assert world.ledger.scan() == before


def test_an_object_overwritten_with_other_bytes_is_recorded_again(world: World) -> None:
    ports = _ports(world.objects, world.ledger)
    world.objects.put(BUCKET, "sales/day1.csv", GOOD)
    sweep_uploads(ports, BUCKET, NOW)
    world.objects.put(BUCKET, "sales/day1.csv", GOOD + b"5.0,3.0,1.0,0.2,setosa\n")
    assert sweep_uploads(ports, BUCKET, NOW)["recorded"] == 1
    assert [e.key for e in world.ledger.scan()] == ["sales/day1.csv", "sales/day1.csv"]


def test_objects_under_the_known_prefixes_are_untouched(world: World) -> None:
    """An upload under incoming/ goes through ingest (valid, or unroutable naming no dataset); the
    system's own outputs (reports, validated copies, contracts) are nobody's strays."""
    valid = world.upload("incoming/iris/day1.csv", GOOD)
    unroutable = world.upload("incoming/day1.csv", GOOD)
    assert valid is not None and unroutable is not None
    for prefix in sorted(KNOWN_PREFIXES):
        world.objects.put(BUCKET, f"{prefix}x/stray.csv", GOOD)
    before = {e.upload_id: e for e in world.ledger.scan()}
    result = sweep_uploads(_ports(world.objects, world.ledger), BUCKET, NOW)
    assert result == {"listed": 0, "recorded": 0, "upload_ids": [], "more": False}
    assert {e.upload_id: e for e in world.ledger.scan()} == before
    assert (before[valid.upload_id].status, before[unroutable.upload_id].status) == ("valid", "unroutable")


def test_a_prefix_that_only_starts_like_a_known_one_is_swept(world: World) -> None:
    world.objects.put(BUCKET, "incoming", GOOD)  # a root object named like the prefix, no slash
    world.objects.put(BUCKET, "incomings/iris/day1.csv", GOOD)
    world.objects.put(BUCKET, "Incoming/iris/day1.csv", GOOD)
    sweep_uploads(_ports(world.objects, world.ledger), BUCKET, NOW)
    assert sorted(e.key for e in world.ledger.scan()) == [
        "Incoming/iris/day1.csv",
        "incoming",
        "incomings/iris/day1.csv",
    ]


def test_a_run_records_at_most_its_bound_and_the_next_run_goes_on(world: World) -> None:
    keys = [f"dump/{i:03d}.csv" for i in range(7)]
    for key in keys:
        world.objects.put(BUCKET, key, key.encode())
    ports = _ports(world.objects, world.ledger, page_size=2)
    runs = [sweep_uploads(ports, BUCKET, NOW, limit=3) for _ in range(4)]
    assert [(r["recorded"], r["more"]) for r in runs] == [(3, True), (3, True), (1, False), (0, False)]
    assert sorted(e.key for e in world.ledger.scan()) == keys


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(
        st.text(alphabet="ab/._é", min_size=1, max_size=12).filter(lambda k: not k.endswith("/")),
        max_size=12,
        unique=True,
    ),
    page_size=st.integers(1, 4),
)
def test_every_key_outside_the_known_prefixes_is_recorded_once_whatever_the_paging(
    keys: list[str], page_size: int
) -> None:
    objects, ledger = MemoryObjects(), MemoryUploadLedger()
    keys = [k for k in keys if "//" not in k]
    known = ["incoming/a/x.csv", "reports/a/x.json", "batch/requests/a.json"]
    for key in [*keys, *known]:
        objects.put(BUCKET, key, key.encode())
    ports = _ports(objects, ledger, page_size)
    sweep_uploads(ports, BUCKET, NOW)
    sweep_uploads(ports, BUCKET, NOW)
    assert sorted(e.key for e in ledger.scan()) == sorted(keys)
    assert {e.status for e in ledger.scan()} <= {"ignored"}
